"""``joulecast measure``: ground truth on this machine's GPU (time, energy, power).

* ``joulecast measure -- CMD ARGS...``: a command, repeated until the window is long enough;
* ``joulecast measure --model NAME --batch B --seq S [--compare] [--save FILE.csv]``: one model
  pass in PyTorch, measured as the reference data were;
* ``joulecast measure kernels --out FILE.csv``: per-kernel time, energy and power;
* ``joulecast measure check FILE.csv``: joulecast's kernel-level error on a collected table.

Energy comes from NVML's cumulative energy counter (or integrated sampled power, labelled, where
the part has none); ``--fake`` simulates a GPU instead (demos, tests). Method: docs/measure.md.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from joulecast.cli.common import Steps, echo_csv, echo_json, flat
from joulecast.cli.main import app
from joulecast.cli.options import (
    AttentionOpt,
    BatchOpt,
    ContextOpt,
    FormatOpt,
    ModelOpt,
    OutputFormat,
    PhaseOpt,
    PrecisionOpt,
    SeqOpt,
    SmClockOpt,
)
from joulecast.errors import JoulecastError
from joulecast.measure.kernels import default_plan, plan_summary
from joulecast.measure.meter import Clock, GpuMeter, MeasureError, RealClock, parse_gpu_indices

COMMAND_KEY = "joulecast.measure.command"


class _MeasureGroup(TyperGroup):
    """A group whose arguments after ``--`` are the command to measure, not a sub-command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta[COMMAND_KEY] = args[cut + 1 :]
            args = args[:cut]
        return super().parse_args(ctx, args)


measure_app = typer.Typer(
    cls=_MeasureGroup,
    invoke_without_command=True,
    no_args_is_help=False,
    help="Measure time, energy and power on this GPU (command, model, kernels).",
)
app.add_typer(measure_app, name="measure")

GpusOpt = Annotated[
    str | None, typer.Option("--gpus", help="NVML GPU indices to measure, e.g. 0 or 0,2-3.")
]
GpuIdOpt = Annotated[
    str | None,
    typer.Option("--gpu", help="joulecast GPU id (joulecast gpus); default: from the NVML name."),
]
PowerLimitOpt = Annotated[
    float | None, typer.Option("--power-limit", help="Set this power limit in W (needs root).")
]
FakeOpt = Annotated[
    str | None,
    typer.Option("--fake", help="Simulate the GPU: counter, no-counter or no-permission."),
]


def open_meter(fake: str | None, clock: Clock) -> GpuMeter:
    """NVML, or with ``--fake`` a simulated H100 on ``clock``."""
    if fake is None:
        from joulecast.measure.nvml import NvmlMeter

        return NvmlMeter()
    from joulecast.measure.fake import demo_meter

    return demo_meter(fake, clock, "NVIDIA H100 80GB HBM3 (simulated)")


def _gpu_id(gpu: str | None, nvml_name: str) -> str:
    from joulecast.hardware.spec import load_gpu
    from joulecast.measure.records import guess_gpu_id

    found = gpu or guess_gpu_id(nvml_name)
    if found is None:
        raise MeasureError(f"which joulecast GPU is '{nvml_name}'? pass --gpu ID (joulecast gpus)")
    return load_gpu(found).id


def _fmt(value: float | None, spec: str, unit: str) -> str:
    return "not readable" if value is None else f"{value:{spec}} {unit}"


def _render(m: Any, fmt: OutputFormat, extra: dict[str, Any]) -> None:
    from joulecast.measure.core import Measurement

    assert isinstance(m, Measurement)
    doc = {**extra, **m.to_dict()}
    if fmt is OutputFormat.JSON:
        echo_json(doc)
        return
    if fmt is OutputFormat.CSV:
        head = {k: v for k, v in doc.items() if k != "gpus"}
        echo_csv([flat({**head, "gpu": g}) for g in doc["gpus"]])
        return
    typer.echo(
        f"window {m.window_s:.3f} s, {m.iterations} iteration(s) of "
        f"{m.time_per_iteration_s * 1e3:.3f} ms; {m.energy_j:.3f} J, "
        f"{m.energy_per_iteration_j:.4f} J per iteration, {m.avg_power_w:.1f} W"
    )
    for g in m.gpus:
        typer.echo(
            f"GPU {g.index} ({g.name}): {g.energy_j:.3f} J, {g.avg_power_w:.1f} W average "
            f"[{g.method}], SM clock {_fmt(g.avg_sm_clock_mhz, '.0f', 'MHz')}, "
            f"temperature {_fmt(g.avg_temperature_c, '.1f', '°C')} "
            f"(max {_fmt(g.max_temperature_c, '.0f', '°C')}), {g.samples} samples"
        )
    s = m.settings
    clock = "driver's clocks" if not s.sm_clock_locked else f"locked {s.requested_sm_clock_mhz:g}"
    typer.echo(f"settings: {clock}, power limit {_fmt(s.power_limit_w, 'g', 'W')}")
    for note in m.notes:
        typer.echo(f"note: {note}")
    c = extra.get("compare")
    if c is not None:
        typer.echo(
            f"per pass        measured      joulecast ({c['gpu']}, {c['forecast_clock_mhz']:g} MHz)"
        )
        for label, key, scale, unit in (
            ("time", "time_s", 1e3, "ms"),
            ("energy", "energy_j", 1.0, "J"),
            ("power", "power_w", 1.0, "W"),
        ):
            meas, fc = c[f"measured_{key}"] * scale, c[f"forecast_{key}"] * scale
            err = c[f"{label}_error"] * 100
            typer.echo(
                f"  {label:<12}{meas:>10.4g} {unit:<3}{fc:>10.4g} {unit:<3} error {err:+.1f} %"
            )
        for note in c["notes"]:
            typer.echo(f"note: {note}")


@measure_app.callback()
def measure_command(
    ctx: typer.Context,
    model: ModelOpt = None,
    batch: BatchOpt = None,
    seq: SeqOpt = None,
    phase: PhaseOpt = "prefill",
    context: ContextOpt = None,
    precision: PrecisionOpt = "bf16",
    attention: AttentionOpt = None,
    gpu: GpuIdOpt = None,
    gpus: GpusOpt = None,
    warmup: Annotated[
        int | None, typer.Option(min=0, help="Untimed iterations (default: 10 for a model, 0).")
    ] = None,
    min_window_s: Annotated[
        float, typer.Option("--min-window-s", help="Repeat until the window lasts this long.")
    ] = 5.0,
    sample_period_s: Annotated[
        float, typer.Option("--sample-period-s", help="Power/clock/temperature sample period.")
    ] = 0.1,
    sm_clock: SmClockOpt = None,
    power_limit: PowerLimitOpt = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="--model: print joulecast's forecast beside it.")
    ] = False,
    save: Annotated[
        Path | None, typer.Option("--save", help="--model: append the row to this CSV.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Power, clock and temperature timeline PNG.")
    ] = None,
    fake: FakeOpt = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Measure time, energy and power on this GPU (command, model, kernels)."""
    if ctx.invoked_subcommand is not None:
        return
    command = ctx.meta.get(COMMAND_KEY)
    if bool(command) == bool(model):
        raise MeasureError(
            "give a command after -- (joulecast measure -- python train.py), or --model NAME, "
            "or a sub-command: kernels, check"
        )
    if not math.isfinite(min_window_s) or min_window_s <= 0:
        raise MeasureError(f"--min-window-s must be > 0, got {min_window_s:g}")
    clock: Clock = RealClock()
    meter = open_meter(fake, clock)
    indices = parse_gpu_indices(gpus) if gpus else None
    common: dict[str, Any] = {
        "gpus": indices,
        "clock": clock,
        "min_window_s": min_window_s,
        "sample_period_s": sample_period_s,
        "sm_clock_mhz": sm_clock,
        "power_limit_w": power_limit,
    }
    try:
        if command:
            from joulecast.measure.core import command_work, measure

            if compare or save is not None:
                raise MeasureError("--compare and --save apply to --model passes")
            m = measure(command_work(command), meter, warmup=warmup or 0, **common)
            extra: dict[str, Any] = {"command": " ".join(command)}
        else:
            request = (model, batch, seq, phase, context, precision, attention)
            m, extra = _measure_model(meter, request, gpu, warmup, fake, compare, save, common)
    finally:
        meter.close()
    if plot is not None:
        from joulecast.measure.plot import plot_timeline

        plot_timeline(m, plot)
    _render(m, fmt, extra)
    if plot is not None:
        typer.echo(f"timeline written to {plot}", err=True)


def _measure_model(
    meter: GpuMeter,
    request: tuple[str | None, int | None, int | None, str, int | None, str, str | None],
    gpu: str | None,
    warmup: int | None,
    fake: str | None,
    compare: bool,
    save: Path | None,
    common: dict[str, Any],
) -> tuple[Any, dict[str, Any]]:
    from joulecast.measure.model_run import ModelRequest, compare_pass, measure_model

    model, batch, seq, phase, context, precision, attention = request
    if batch is None:
        raise MeasureError("--model needs --batch")
    if phase == "decode" and save is not None:
        raise MeasureError(
            "--save writes prefill passes only: the calibration's measurement format has no "
            "KV-context field"
        )
    req = ModelRequest(model or "", batch, seq, phase, context, precision, attention or "eager")
    if common["gpus"] is None:
        common["gpus"] = (0,)
    mm = measure_model(
        req,
        meter,
        device="cpu" if fake else "cuda",
        warmup=10 if warmup is None else warmup,
        **common,
    )
    extra: dict[str, Any] = {"model": model, "batch": batch, "seq": seq, "phase": phase}
    if context is not None:
        extra["context"] = context
    if compare or save is not None:
        gpu_id = _gpu_id(gpu, mm.measurement.gpus[0].name)
        if compare:
            extra["compare"] = compare_pass(mm, gpu_id).to_dict()
        if save is not None:
            from joulecast.measure.records import append_row, measurement_row

            append_row(save, measurement_row(mm, gpu_id))
            typer.echo(f"row appended to {save}", err=True)
    return mm.measurement, extra


_KERNEL_HELP = (
    "Collect per-kernel time, energy and power (GEMM, attention, norms, pointwise) into a CSV "
    "that the kernel check reads. Default plan: "
    f"{plan_summary(default_plan())}; --quick: {plan_summary(default_plan(True))}. "
    "Each --sm-clock repeats the plan at that locked clock."
)


@measure_app.command("kernels", help=_KERNEL_HELP)
def kernels_command(
    out: Annotated[Path, typer.Option("--out", help="CSV to write.")],
    quick: Annotated[bool, typer.Option("--quick", help="The small plan (minutes).")] = False,
    sm_clock: Annotated[
        list[float] | None,
        typer.Option("--sm-clock", help="Lock the SM clock here (MHz); repeatable."),
    ] = None,
    power_limit: PowerLimitOpt = None,
    window_s: Annotated[
        float, typer.Option("--window-s", help="Measured window per shape (s).")
    ] = 1.0,
    gpu_index: Annotated[int, typer.Option("--gpu-index", min=0, help="NVML index.")] = 0,
    gpu: GpuIdOpt = None,
    fake: FakeOpt = None,
) -> None:
    """Collect per-kernel time, energy and power into a CSV the kernel check reads."""
    from joulecast.measure.kernel_table import write_table
    from joulecast.measure.kernels import KernelBench, collect

    if not math.isfinite(window_s) or window_s <= 0:
        raise MeasureError(f"--window-s must be > 0, got {window_s:g}")
    plan = replace(default_plan(quick, tuple(sm_clock or ())), window_s=window_s)
    bench: KernelBench
    clock: Clock
    if fake is not None:
        from joulecast.measure.fake import FakeClock, SimulatedKernelBench, demo_meter

        fake_clock = FakeClock()
        sim = demo_meter(fake, fake_clock, "NVIDIA H200 (simulated)")
        meter: GpuMeter = sim
        bench, clock = SimulatedKernelBench(fake_clock, sim), fake_clock
    else:
        from joulecast.measure.nvml import NvmlMeter
        from joulecast.measure.torch_kernels import TorchKernelBench

        meter, bench, clock = NvmlMeter(), TorchKernelBench(), RealClock()
    try:
        gpu_id = _gpu_id(gpu, meter.name(gpu_index))
        typer.echo(f"plan: {plan_summary(plan)}", err=True)
        with Steps(plan.points, "measuring") as steps:
            collection = collect(
                plan,
                bench,
                meter,
                gpu=gpu_index,
                clock=clock,
                power_limit_w=power_limit,
                progress=lambda _done, _total, label: steps.start(label),
            )
    finally:
        meter.close()
    n = write_table(out, collection, gpu_id)
    typer.echo(f"{n} kernel rows written to {out} ({len(collection.skipped)} shapes skipped)")
    for line in (*collection.skipped, *collection.notes):
        typer.echo(f"note: {line}", err=True)


@measure_app.command("check")
def check_command(
    table: Annotated[Path, typer.Argument(help="A CSV from `joulecast measure kernels`.")],
    gpu: GpuIdOpt = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """joulecast's kernel-level error on a collected table: latency, power and energy."""
    from joulecast.calibration.kernel_check import (
        collected_tables,
        error_stats,
        predict,
        read_table,
    )

    if not table.is_file():
        raise JoulecastError(f"kernel table not found: {table}")
    out: list[dict[str, Any]] = []
    for t in collected_tables(table, gpu):
        if t.locked_clock_mhz is not None:
            typer.echo(f"note: {t.name}: skipped (the check models the driver's clocks)", err=True)
            continue
        rows = read_table(t)
        assert rows.power_w is not None
        p = predict(rows)
        stats = {
            "latency": error_stats(p.latency_s, rows.latency_s),
            "power": error_stats(p.power_w, rows.power_w),
            "energy": error_stats(p.energy_j, rows.power_w * rows.latency_s),
        }
        out.append(
            {"table": t.name, "gpu": p.gpu, "rows": len(rows)}
            | {f"{k}_mape_pct": s.mape for k, s in stats.items()}
            | {f"{k}_bias_pct": s.bias for k, s in stats.items()}
        )
    if not out:
        raise MeasureError(f"{table}: no table at the driver's clocks to check")
    if fmt is OutputFormat.JSON:
        echo_json({"tables": out})
    elif fmt is OutputFormat.CSV:
        echo_csv(out)
    else:
        for r in out:
            typer.echo(
                f"{r['table']} on {r['gpu']}, {r['rows']} rows: MAPE / bias % — latency "
                f"{r['latency_mape_pct']:.1f} / {r['latency_bias_pct']:+.1f}, power "
                f"{r['power_mape_pct']:.1f} / {r['power_bias_pct']:+.1f}, energy "
                f"{r['energy_mape_pct']:.1f} / {r['energy_bias_pct']:+.1f}"
            )
