"""``joulecast plan``: the least-energy deployment of one model within latency and power limits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from joulecast.cli.common import echo_json
from joulecast.cli.main import app
from joulecast.cli.options import FormatOpt, OutputFormat
from joulecast.errors import WorkloadError


def _render(result: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from joulecast.serving.plan import PlanResult

    assert isinstance(result, PlanResult)
    console = Console()
    table = Table(
        title=f"least energy per token: {len(result.candidates):,} of "
        f"{len(result.evaluated):,} deployments meet the limits"
    )
    for col in ("", "GPUs", "tp/ep", "batch", "MHz", "mJ/tok", "ITL ms", "TTFT ms", "kW"):
        table.add_column(col, justify="left" if col in ("", "GPUs") else "right", no_wrap=True)
    shown = [("best", result.best), *(("", c) for c in result.candidates[1:6])]
    if result.fastest not in result.candidates[:6]:
        shown.append(("fastest", result.fastest))
    for label, c in shown:
        table.add_row(
            label, f"{c.num_gpus}x {c.gpu}", f"{c.tp}/{c.ep}", str(c.batch),
            f"{c.sm_clock_mhz:g}", f"{c.energy_per_token_j * 1e3:.1f}", f"{c.itl_ms:.1f}",
            f"{c.ttft_ms:.0f}", f"{c.avg_power_w / 1e3:.2f}",
        )  # fmt: skip
    console.print(table)
    f, b = result.fastest, result.best
    if f is not b:
        console.print(
            f"The fastest deployment ({f.itl_ms:.1f} ms ITL) spends "
            f"{f.energy_per_token_j / b.energy_per_token_j:.1f}x the energy per token of the best."
        )


@app.command("plan")
def plan_command(
    model: Annotated[str, typer.Option(help="Model id or alias (joulecast models).")],
    input_tokens: Annotated[int, typer.Option(help="Mean prompt tokens per request.")],
    output_tokens: Annotated[int, typer.Option(help="Mean generated tokens per request.")],
    max_itl_ms: Annotated[
        float | None, typer.Option(help="Median inter-token latency limit, ms.")
    ] = None,
    max_ttft_ms: Annotated[
        float | None, typer.Option(help="Time-to-first-token limit, ms.")
    ] = None,
    min_throughput_tok_s: Annotated[
        float | None, typer.Option(help="Least output tokens per second of a replica.")
    ] = None,
    gpus: Annotated[
        str, typer.Option(help="Comma-separated GPU ids to consider.")
    ] = "h100-sxm,h200,b200,a100-sxm4-80gb",
    max_gpus: Annotated[int, typer.Option(help="Most GPUs in one replica.")] = 8,
    power_budget_w: Annotated[
        float | None, typer.Option(help="Power limit of one replica (all its GPUs), W.")
    ] = None,
    precision: Annotated[str, typer.Option(help="auto, bf16, fp8 or mxfp4.")] = "auto",
    plot: Annotated[
        Path | None, typer.Option(help="J/token vs ITL of every deployment, the choice marked.")
    ] = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Find the least-energy deployment (GPU, count, parallelism, batch, clock) within limits."""
    from joulecast.serving.plan import plan

    names = [g.strip() for g in gpus.split(",") if g.strip()]
    if not names:
        raise WorkloadError("--gpus is empty")
    result = plan(
        model, input_tokens, output_tokens, max_itl_ms=max_itl_ms, max_ttft_ms=max_ttft_ms,
        min_throughput_tok_s=min_throughput_tok_s, gpus=names, max_gpus=max_gpus,
        power_budget_w=power_budget_w, precision=precision,
    )  # fmt: skip
    if fmt is OutputFormat.JSON:
        echo_json(result.to_dict())
    elif fmt is OutputFormat.CSV:
        raise WorkloadError("plan prints table or json")
    else:
        _render(result)
    if plot is not None:
        from joulecast.serving.plan_plot import plot_plan

        plot_plan(result, plot, max_itl_ms)
        typer.echo(f"plot written to {plot}", err=True)
