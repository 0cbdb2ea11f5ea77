"""``joulecast estimate``: time, power and energy of one pass."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from joulecast.cli.common import Column, echo_csv, echo_json, fitted_table
from joulecast.cli.main import app
from joulecast.cli.options import (
    AttentionOpt,
    BatchOpt,
    ContextOpt,
    CudaGraphsOpt,
    ExampleOpt,
    FormatOpt,
    HostOpt,
    ImageSizeOpt,
    ModelConfigOpt,
    ModelOpt,
    OutputFormat,
    PhaseOpt,
    PowerCapOpt,
    PrecisionOpt,
    PrefillTokensOpt,
    SeqOpt,
    SmClockOpt,
    TraceModeOpt,
    WorkloadFileOpt,
    WorkloadOptions,
)
from joulecast.errors import SpecError
from joulecast.estimator import Estimate, estimate
from joulecast.hardware.spec import gpu_from_file, load_gpu

DEFAULT_GPU = "a100-pcie-40gb"


def render_table(est: Estimate) -> None:
    """Pretty-print an estimate with rich (readable at 80 columns)."""
    from rich.console import Console

    console = Console()
    clock = f"{est.sm_clock_mhz:g} MHz" + (
        f" (throttled from {est.requested_clock_mhz:g} by the {est.power_cap_w:g} W cap)"
        if est.throttled
        else ""
    )
    rows: tuple[tuple[str, str], ...] = (
        ("time per pass", f"{est.time_ms:.3f} ms"),
        ("energy per pass", f"{est.energy_j:.3f} J"),
        ("average power", f"{est.avg_power_w:.1f} W"),
        ("SM clock", clock),
        ("GPU busy", f"{est.gpu_busy_s * 1e3:.3f} ms ({est.activity['gpu_busy']:.0%})"),
        ("kernels", str(est.kernels)),
        ("tensor / DRAM activity", f"{est.activity['tensor']:.0%} / {est.activity['dram']:.0%}"),
    )
    per_token_j, tokens_per_s = est.energy_per_token_j, est.tokens_per_s
    if per_token_j is not None and tokens_per_s is not None:
        rows += (
            ("tokens per pass", f"{est.tokens:,}"),
            ("energy per token", f"{1e3 * per_token_j:.3f} mJ"),
            ("throughput", f"{tokens_per_s:,.0f} tokens/s"),
        )
    fitted = est.coefficients.startswith("fitted")
    rows += (
        ("host", est.host),
        (
            "coefficients",
            f"fitted on {est.gpu} measurements"
            if fitted
            else "transferred by physics, unvalidated here",
        ),
    )
    pair = (Column("metric", left=True), Column("value"))
    console.print(
        fitted_table(console, f"{est.workload} on {est.gpu}", pair, rows, show_header=False)
    )
    by_class = [
        (
            b.op_class,
            str(b.launches) if b.launches else "",
            f"{b.time_ms:.3f}",
            f"{b.energy_j:.3f}",
            f"{b.share_of_time:.0%}",
        )
        for b in est.breakdown
    ]
    heads = ("launches", "time ms", "energy J", "share")
    columns = (Column("class", left=True), *map(Column, heads))
    console.print(fitted_table(console, "by op class", columns, by_class))
    top = [
        (k.kernel, str(k.launches), f"{k.time_ms:.3f}", f"{k.energy_j:.3f}", k.bound)
        for k in est.top_kernels[:5]
    ]
    columns = (
        Column("kernel", left=True),
        *map(Column, ("n", "time ms", "energy J")),
        Column("bound", left=True),
    )
    console.print(fitted_table(console, "top kernels", columns, top))


@app.command("estimate")
def estimate_command(
    workload: WorkloadFileOpt = None,
    model: ModelOpt = None,
    model_config: ModelConfigOpt = None,
    example: ExampleOpt = False,
    gpu: Annotated[
        str | None, typer.Option(help=f"GPU id (joulecast gpus). Default {DEFAULT_GPU}.")
    ] = None,
    gpu_spec: Annotated[
        Path | None, typer.Option("--gpu-spec", help="YAML spec of a hypothetical GPU.")
    ] = None,
    batch: BatchOpt = None,
    seq: SeqOpt = None,
    phase: PhaseOpt = "prefill",
    context: ContextOpt = None,
    precision: PrecisionOpt = "bf16",
    attention: AttentionOpt = None,
    image_size: ImageSizeOpt = None,
    prefill_tokens: PrefillTokensOpt = None,
    trace_mode: TraceModeOpt = False,
    cuda_graphs: CudaGraphsOpt = False,
    sm_clock: SmClockOpt = None,
    power_cap: PowerCapOpt = None,
    host: HostOpt = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Estimate time, average power and energy of one forward pass (or decode step)."""
    if gpu is not None and gpu_spec is not None:
        raise SpecError("give --gpu or --gpu-spec, not both (a spec file can say 'base: ID')")
    spec = gpu_from_file(gpu_spec) if gpu_spec is not None else load_gpu(gpu or DEFAULT_GPU)
    if power_cap is not None:
        spec.check_power_limit(power_cap)
    wl = WorkloadOptions.pick(locals()).build(spec)
    est = estimate(
        wl, spec, sm_clock_mhz=sm_clock, power_cap_w=power_cap, host=host, cuda_graphs=cuda_graphs
    )
    if fmt is OutputFormat.JSON:
        echo_json(est.to_dict())
    elif fmt is OutputFormat.CSV:
        d = est.to_dict()
        echo_csv([{k: v for k, v in d.items() if not isinstance(v, dict | list)}])
    else:
        render_table(est)
