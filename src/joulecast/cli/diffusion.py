"""``joulecast diffusion``: energy per image or video of a diffusion pipeline on 1-8 GPUs."""

from __future__ import annotations

from typing import Annotated

import typer

from joulecast.cli.common import Column, echo_csv, echo_json, fitted_table, flat
from joulecast.cli.main import app
from joulecast.cli.options import FormatOpt, HostOpt, OutputFormat, PowerCapOpt
from joulecast.diffusion.api import GenerationEstimate, estimate_generation
from joulecast.schema import MAX_DIMENSION


def _render_table(est: GenerationEstimate) -> None:
    from rich.console import Console

    console = Console()
    item = est.item
    layout = f"{est.num_gpus} x {est.gpu} (ulysses {est.ulysses} x ring {est.ring})"
    size = f"{est.height}x{est.width}" + (f", {est.frames} frames" if item == "video" else "")
    rows: list[tuple[str, str]] = [
        ("GPUs", layout),
        (f"batch of {item}s", f"{est.batch} at {size}, {est.steps} steps"),
        ("batch latency", f"{est.batch_latency_s:.3f} s"),
        (f"energy per {item}", f"{est.energy_per_item_j:,.1f} J"),
        ("energy per batch", f"{est.energy_j:,.1f} J"),
        ("average power (all GPUs)", f"{est.avg_power_w:,.1f} W"),
        ("throughput", f"{est.throughput_items_per_s:.4g} {item}s/s"),
    ]
    for stage in est.stages:
        share = stage.energy_j / est.energy_j
        rows.append(
            (
                f"  {stage.stage.replace('_', ' ')}",
                f"{stage.time_s:.3f} s, {stage.energy_j:,.1f} J ({share:.0%})",
            )
        )
    pair = (Column("metric", left=True), Column("value"))
    console.print(fitted_table(console, est.model, pair, rows, show_header=False))


@app.command("diffusion")
def diffusion_command(
    model: Annotated[
        str, typer.Option(help="Pipeline id or alias (e.g. black-forest-labs/FLUX.1-dev).")
    ],
    gpu: Annotated[str, typer.Option(help="GPU id (joulecast gpus) or a spec file.")],
    batch: Annotated[int, typer.Option(min=1, max=4096, help="Prompts generated together.")] = 1,
    height: Annotated[
        int | None, typer.Option(min=1, max=MAX_DIMENSION, help="Height in pixels.")
    ] = None,
    width: Annotated[
        int | None, typer.Option(min=1, max=MAX_DIMENSION, help="Width in pixels.")
    ] = None,
    frames: Annotated[
        int | None, typer.Option(min=1, max=MAX_DIMENSION, help="Frames of a video model.")
    ] = None,
    steps: Annotated[
        int | None, typer.Option(min=1, max=MAX_DIMENSION, help="Denoising steps.")
    ] = None,
    num_gpus: Annotated[
        int, typer.Option("--num-gpus", min=1, max=8, help="GPUs (sequence parallel).")
    ] = 1,
    ulysses: Annotated[
        int | None, typer.Option(min=1, max=8, help="Ulysses degree (heads all-to-all).")
    ] = None,
    ring: Annotated[
        int | None, typer.Option(min=1, max=8, help="Ring-attention degree (KV passing).")
    ] = None,
    power_cap: PowerCapOpt = None,
    host: HostOpt = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Generate images or videos on 1-8 GPUs: energy per image/video, latency, throughput."""
    est = estimate_generation(
        model,
        gpu,
        batch=batch,
        height=height,
        width=width,
        frames=frames,
        steps=steps,
        num_gpus=num_gpus,
        ulysses=ulysses,
        ring=ring,
        host=host,
        power_cap_w=power_cap,
    )
    if fmt is OutputFormat.JSON:
        echo_json(est.to_dict())
    elif fmt is OutputFormat.CSV:
        echo_csv([flat(est.to_dict())])
    else:
        _render_table(est)
