"""``joulecast serve``: steady-state LLM serving on 1 to 8 GPUs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from joulecast.cli.common import echo_csv, echo_json
from joulecast.cli.main import app
from joulecast.cli.options import FormatOpt, HostOpt, OutputFormat, PowerCapOpt, SmClockOpt
from joulecast.errors import WorkloadError


def _ms(*seconds: float) -> str:
    return " / ".join(f"{s * 1e3:.2f}" for s in seconds) + " ms"


def _render(results: list[object], sweep: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from joulecast.serving import ServeResult
    from joulecast.serving.frontier import pareto_front

    rs = [r for r in results if isinstance(r, ServeResult)]
    console = Console()
    first = rs[0]
    layout = f"{first.num_gpus}x {first.gpu} (tp {first.tp}, ep {first.ep}, dp {first.dp})"
    if not sweep:
        table = Table(title=f"{first.model} on {layout}", show_header=False)
        table.add_column("metric", no_wrap=True)
        table.add_column("value", justify="right")
        mem = first.memory
        rows = (
            ("running / max batch", f"{first.running_batch} / {first.max_batch}"),
            ("ITL (median)", f"{first.itl_ms:.2f} ms"),
            ("TTFT", f"{first.ttft_ms:.1f} ms"),
            ("output throughput", f"{first.output_throughput_tok_s:,.0f} tok/s"),
            ("power (all GPUs)", f"{first.avg_power_w:,.0f} W"),
            ("energy per token", f"{first.energy_per_token_j * 1e3:.1f} mJ"),
            ("energy per request", f"{first.energy_per_request_j:.1f} J"),
            ("tokens per joule", f"{1 / first.energy_per_token_j:.2f}"),
            ("step: decode / prefill / comm", _ms(first.step.decode_s, first.step.prefill_s,
                                                   first.step.comm_s)),
            ("memory per GPU: weights / KV", f"{mem.weights_bytes / 1e9:.1f} / "
             f"{max(0.0, mem.kv_bytes) / 1e9:.1f} GB"),
            ("SM clock", f"{first.sm_clock_mhz:g} MHz" + (" (capped)" if first.throttled else "")),
        )  # fmt: skip
        for name, value in rows:
            table.add_row(name, value)
        console.print(table)
        for note in first.notes:
            console.print(f"note: {note}")
        return
    table = Table(title=f"{first.model} on {layout}: batch sweep")
    for col in ("batch", "running", "ITL ms", "TTFT ms", "tok/s", "power W", "mJ/token", ""):
        table.add_column(col, justify="right")
    for r, front in zip(rs, pareto_front(rs), strict=True):
        table.add_row(
            str(r.batch), str(r.running_batch), f"{r.itl_ms:.2f}", f"{r.ttft_ms:.1f}",
            f"{r.output_throughput_tok_s:,.0f}", f"{r.avg_power_w:,.0f}",
            f"{r.energy_per_token_j * 1e3:.1f}", "frontier" if front else "",
        )  # fmt: skip
    console.print(table)


@app.command("serve")
def serve_command(
    model: Annotated[str, typer.Option(help="Model id or alias (joulecast models).")],
    batch: Annotated[int, typer.Option(help="vLLM max_num_seqs: sequences run at once.")],
    input_tokens: Annotated[int, typer.Option(help="Mean prompt tokens per request.")],
    output_tokens: Annotated[int, typer.Option(help="Mean generated tokens per request.")],
    gpu: Annotated[str, typer.Option(help="GPU id (joulecast gpus).")] = "h100-sxm",
    num_gpus: Annotated[int, typer.Option(help="GPUs of one replica.")] = 1,
    tp: Annotated[int | None, typer.Option(help="Tensor parallel (default: GPUs / dp).")] = None,
    ep: Annotated[int | None, typer.Option(help="Expert parallel (MoE; = tp x dp).")] = None,
    dp: Annotated[int, typer.Option(help="Data-parallel attention groups.")] = 1,
    precision: Annotated[
        str, typer.Option(help="auto (the checkpoint's), bf16, fp16, fp8 or mxfp4.")
    ] = "auto",
    sm_clock: SmClockOpt = None,
    power_cap: PowerCapOpt = None,
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="Share of GPU memory the engine may use (vLLM default 0.9).")
    ] = 0.9,
    host: HostOpt = None,
    batch_sweep: Annotated[
        bool, typer.Option("--batch-sweep", help="Sweep batch sizes up to the memory limit.")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option(help="With --batch-sweep: J/token vs ITL to this PNG.")
    ] = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Serve an LLM on 1-8 GPUs: joules per token and request, ITL, TTFT, throughput."""
    from joulecast.serving import ServeResult, serve
    from joulecast.serving.frontier import batch_sweep as sweep_batches
    from joulecast.serving.frontier import plot_frontier

    if plot is not None and not batch_sweep:
        raise WorkloadError("--plot draws the batch sweep: add --batch-sweep")

    def run(b: int) -> ServeResult:
        return serve(
            model, gpu, batch=b, input_tokens=input_tokens, output_tokens=output_tokens,
            num_gpus=num_gpus, tp=tp, ep=ep, dp=dp, precision=precision,
            sm_clock_mhz=sm_clock, power_cap_w=power_cap,
            gpu_memory_utilization=gpu_memory_utilization, host=host,
        )  # fmt: skip

    results = sweep_batches(run) if batch_sweep else [run(batch)]
    if fmt is OutputFormat.JSON:
        docs = [r.to_dict() for r in results]
        echo_json({"results": docs} if batch_sweep else docs[0])
    elif fmt is OutputFormat.CSV:
        flat = []
        for r in results:
            d = r.to_dict()
            flat.append({k: v for k, v in d.items() if not isinstance(v, dict | list)})
        echo_csv(flat)
    else:
        _render(list(results), batch_sweep)
    if plot is not None:
        plot_frontier(results, plot)
        typer.echo(f"plot written to {plot}", err=True)
