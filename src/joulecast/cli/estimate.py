"""``joulecast estimate``: time, power and energy of one pass."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from joulecast.cli.common import OutputFormat, echo_csv, echo_json
from joulecast.cli.main import app
from joulecast.errors import WorkloadError
from joulecast.estimator import Estimate, estimate
from joulecast.hardware.spec import GPUSpec, gpu_from_file, load_gpu
from joulecast.workload.ir import Precision, Workload


def workload_from_options(
    workload: Path | None,
    example: bool,
    model: str | None,
    model_config: Path | None,
    batch: int | None,
    seq: int | None,
    phase: str,
    context: int | None,
    precision: str,
    attention: str | None,
    image_size: int | None,
    trace_mode: bool,
    gpu: GPUSpec,
) -> Workload:
    """The pass described by the workload options of ``estimate`` (also used by ``sweep``)."""
    chosen = int(workload is not None) + int(bool(model or model_config)) + int(example)
    if chosen != 1:
        raise WorkloadError("give exactly one of --workload FILE, --model NAME or --example")
    if workload is not None:
        from joulecast.workload.energaizer import load_energaizer

        return load_energaizer(workload)
    if example:
        from joulecast.workload.example import example_workload

        return example_workload()
    if batch is None:
        raise WorkloadError("--model needs --batch")
    return workload_for_model(
        model_config if model_config is not None else str(model),
        gpu,
        batch=batch,
        seq=seq,
        phase=phase,
        context=context,
        precision=precision,
        attention=attention,
        image_size=image_size,
        trace_mode=trace_mode,
    )


def workload_for_model(
    model: str | Path,
    gpu: GPUSpec,
    *,
    batch: int,
    seq: int | None,
    phase: str,
    context: int | None,
    precision: str,
    attention: str | None,
    image_size: int | None,
    trace_mode: bool,
) -> Workload:
    """Build a model's pass after checking that the GPU supports it and that it fits."""
    from joulecast.models.build import build_workload, memory_required_bytes
    from joulecast.models.registry import ModelConfig, model_config_from_hf_json

    cfg: str | ModelConfig = model_config_from_hf_json(model) if isinstance(model, Path) else model
    prec = Precision(precision) if precision in Precision.__members__.values() else None
    if prec is None:
        raise WorkloadError(f"unsupported precision '{precision}' (use bf16, fp16, fp32 or fp8)")
    if prec in (Precision.FP8, Precision.FP4) and not gpu.supports_tensor(prec):
        raise WorkloadError(f"{gpu.id} has no {prec} tensor cores; use bf16 or fp16")
    kwargs: dict[str, Any] = {
        "batch": batch,
        "seq": seq,
        "phase": phase,
        "context": context,
        "precision": precision,
        "attention": attention,
        "image_size": image_size,
    }
    need = memory_required_bytes(cfg, **kwargs)
    if need > gpu.memory_capacity_bytes:
        raise WorkloadError(
            f"this request needs {need / 1e9:.1f} GB (weights, KV cache, activations) but "
            f"{gpu.id} has {gpu.memory_capacity_gb:g} GB; lower the batch or sequence"
        )
    return build_workload(cfg, trace_mode=trace_mode, **kwargs)


def render_table(est: Estimate) -> None:
    """Pretty-print an estimate with rich."""
    console = Console()
    head = Table(title=f"{est.workload} on {est.gpu}", show_header=False)
    head.add_column("metric")
    head.add_column("value", justify="right")
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
    for name, value in rows:
        head.add_row(name, value)
    console.print(head)
    br = Table(title="by op class")
    for col in ("class", "launches", "time ms", "energy J", "share"):
        br.add_column(col, justify="left" if col == "class" else "right")
    for b in est.breakdown:
        br.add_row(
            b.op_class,
            str(b.launches) if b.launches else "",
            f"{b.time_ms:.3f}",
            f"{b.energy_j:.3f}",
            f"{b.share_of_time:.0%}",
        )
    console.print(br)
    top = Table(title="top kernels")
    for col in ("kernel", "n", "time ms", "energy J", "bound"):
        top.add_column(col, justify="left" if col in ("kernel", "bound") else "right")
    for k in est.top_kernels[:5]:
        top.add_row(k.kernel, str(k.launches), f"{k.time_ms:.3f}", f"{k.energy_j:.3f}", k.bound)
    console.print(top)


@app.command("estimate")
def estimate_command(
    workload: Annotated[
        Path | None, typer.Option("--workload", "-w", help="EnergAIzer kernel-list JSON file.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model id or alias (joulecast models).")] = None,
    model_config: Annotated[
        Path | None, typer.Option("--model-config", help="A local Hugging Face config.json.")
    ] = None,
    example: Annotated[bool, typer.Option(help="Use the built-in example encoder.")] = False,
    gpu: Annotated[str, typer.Option(help="GPU id (joulecast gpus).")] = "a100-pcie-40gb",
    gpu_spec: Annotated[
        Path | None, typer.Option("--gpu-spec", help="YAML spec of a hypothetical GPU.")
    ] = None,
    batch: Annotated[int | None, typer.Option(min=1)] = None,
    seq: Annotated[int | None, typer.Option(min=1)] = None,
    phase: Annotated[str, typer.Option(help="prefill or decode.")] = "prefill",
    context: Annotated[int | None, typer.Option(min=1, help="KV-cache length for decode.")] = None,
    precision: Annotated[str, typer.Option(help="bf16, fp16, fp32 or fp8.")] = "bf16",
    attention: Annotated[str | None, typer.Option(help="eager, sdpa or flash.")] = None,
    image_size: Annotated[int | None, typer.Option(min=1)] = None,
    trace_mode: Annotated[
        bool, typer.Option(help="Match the EnergAIzer traces (base model, no LM head).")
    ] = False,
    sm_clock: Annotated[
        float | None, typer.Option("--sm-clock", help="Locked SM clock in MHz.")
    ] = None,
    power_cap: Annotated[
        float | None, typer.Option("--power-cap", help="Power limit in W.")
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table, json or csv.")] = (
        OutputFormat.TABLE
    ),
) -> None:
    """Estimate time, average power and energy of one forward pass (or decode step)."""
    spec = gpu_from_file(gpu_spec) if gpu_spec is not None else load_gpu(gpu)
    wl = workload_from_options(
        workload,
        example,
        model,
        model_config,
        batch,
        seq,
        phase,
        context,
        precision,
        attention,
        image_size,
        trace_mode,
        spec,
    )
    est = estimate(wl, spec, sm_clock_mhz=sm_clock, power_cap_w=power_cap)
    if fmt is OutputFormat.JSON:
        echo_json(est.to_dict())
    elif fmt is OutputFormat.CSV:
        d = est.to_dict()
        echo_csv([{k: v for k, v in d.items() if not isinstance(v, dict | list)}])
    else:
        render_table(est)
