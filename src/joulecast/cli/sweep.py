"""``joulecast sweep``: time, power and energy over SM clocks, power caps and GPUs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from joulecast.cli.common import Column, Steps, echo_csv, echo_json, fitted_table
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
    PrecisionOpt,
    PrefillTokensOpt,
    SeqOpt,
    TraceModeOpt,
    WorkloadFileOpt,
    WorkloadOptions,
)
from joulecast.hardware.spec import GPUSpec, gpu_from_file, load_gpu
from joulecast.sweeper import SweepError, SweepPoint, sweep

DEFAULT_GPU = "a100-pcie-40gb"
MAX_CLOCKS = 100_000  # a guard against ranges such as 0:1e9:1
ENERGY_MARK = "★"
BUDGET_MARK = "◆"


def parse_clocks(text: str, default_step_mhz: float | None = None) -> list[float]:
    """Parse a ``--clocks`` value into sorted, distinct clocks in MHz.

    Items are separated by commas; each is a clock (``900``), a range ``START:STOP:STEP``
    (``510:1410:60``; STOP is included when it lies on the step) or ``START:STOP``, which steps
    by ``default_step_mhz`` (the part's clock step).

    Raises:
        SweepError: empty or malformed text, a non-positive step, a range running backwards, or
            more than ``MAX_CLOCKS`` clocks.
    """
    if not text.strip():
        raise SweepError("nothing to sweep: --clocks is empty")
    out: set[float] = set()
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise SweepError(f"--clocks '{text}' has an empty item (write e.g. 900,1200,1410)")
        parts = [_number(p, item) for p in item.split(":")]
        if len(parts) == 1:
            out.add(parts[0])
            continue
        if len(parts) > 3:
            raise SweepError(f"--clocks item '{item}' must be CLOCK, START:STOP or START:STOP:STEP")
        start, stop = parts[0], parts[1]
        step = parts[2] if len(parts) == 3 else default_step_mhz
        if step is None:
            raise SweepError(f"--clocks range '{item}' needs a step: START:STOP:STEP")
        if step <= 0:
            raise SweepError(f"--clocks range '{item}': the step must be positive")
        if stop < start:
            raise SweepError(f"--clocks range '{item}' is empty: STOP is below START")
        n = math.floor((stop - start) / step + 1e-9) + 1
        if len(out) + n > MAX_CLOCKS:
            raise SweepError(f"--clocks asks for more than {MAX_CLOCKS:,} clocks")
        out.update(round(start + i * step, 6) for i in range(n))
    return sorted(out)


def parse_power_caps(text: str) -> list[float]:
    """Parse a ``--power-caps`` value (comma-separated watts, e.g. ``150,200,250W``).

    Raises:
        SweepError: empty or malformed text.
    """
    if not text.strip():
        raise SweepError("nothing to sweep: --power-caps is empty")
    caps: list[float] = []
    for raw in text.split(","):
        item = raw.strip().removesuffix("W").removesuffix("w").strip()
        if not item:
            raise SweepError(f"--power-caps '{text}' has an empty item (write e.g. 150,200,250)")
        caps.append(_number(item, raw.strip(), what="--power-caps"))
    return sorted(set(caps))


def _number(text: str, item: str, what: str = "--clocks") -> float:
    try:
        value = float(text)
    except ValueError:
        raise SweepError(f"{what}: '{item}' is not a number or range") from None
    if not math.isfinite(value):
        raise SweepError(f"{what}: '{item}' is not a finite number")
    return value


def _num(value: float, significant: int = 4) -> str:
    """``value`` with at least ``significant`` digits and no exponent (e.g. 674.7, 7.994)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, significant - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


_COLUMNS = (
    "req MHz",
    "cap W",
    "run MHz",
    "time ms",
    "power W",
    "energy J",
    "EDP J·s",
    "throttled",
)


def render_table(points: list[SweepPoint], max_slowdown: float) -> None:
    """Print one rich table per (workload, GPU), the two optima of each power cap marked."""
    from rich import box
    from rich.console import Console

    console = Console()
    groups: dict[tuple[str, str], list[SweepPoint]] = {}
    for p in points:
        groups.setdefault((p.workload, p.gpu), []).append(p)
    columns = (*map(Column, _COLUMNS), Column("optimum", left=True))
    caption = (
        f"optimum: {ENERGY_MARK} lowest energy at this cap, {BUDGET_MARK} lowest energy within "
        f"{max_slowdown:g}× the fastest time at this cap; run MHz: the clock after power-cap "
        "throttling"
    )
    for (workload, gpu), pts in groups.items():
        rows = [
            (
                f"{p.requested_clock_mhz:g}",
                f"{p.power_cap_w:g}",
                f"{p.sm_clock_mhz:g}",
                _num(p.time_ms),
                f"{p.avg_power_w:.1f}",
                _num(p.energy_j),
                _num(p.edp_j_s),
                "yes" if p.throttled else "",
                " ".join(
                    mark
                    for mark, on in (
                        (ENERGY_MARK, p.energy_optimal),
                        (BUDGET_MARK, p.fastest_within_budget),
                    )
                    if on
                ),
            )
            for p in pts
        ]
        styles = [
            "bold green" if p.energy_optimal or p.fastest_within_budget else None for p in pts
        ]
        title = f"{workload} on {gpu}"
        table = fitted_table(
            console, title, columns, rows, styles=styles, box=box.SIMPLE_HEAD, caption=caption
        )
        console.print(table)


@app.command("sweep")
def sweep_command(
    workload: WorkloadFileOpt = None,
    model: ModelOpt = None,
    model_config: ModelConfigOpt = None,
    example: ExampleOpt = False,
    gpu: Annotated[
        list[str] | None,
        typer.Option(help=f"GPU id (joulecast gpus); repeat for several. Default {DEFAULT_GPU}."),
    ] = None,
    gpu_spec: Annotated[
        list[Path] | None,
        typer.Option("--gpu-spec", help="YAML spec of a hypothetical GPU; repeatable."),
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
    clocks: Annotated[
        str | None,
        typer.Option(
            help="SM clocks in MHz: 900,1200 or START:STOP:STEP (510:1410:60) or START:STOP "
            "(every supported clock in between), mixed freely. Default: every supported clock."
        ),
    ] = None,
    power_caps: Annotated[
        str | None,
        typer.Option(
            "--power-caps",
            help="Power limits in W, e.g. 150,200,250, each within every part's min..max limit. "
            "Default: each part's default limit.",
        ),
    ] = None,
    max_slowdown: Annotated[
        float,
        typer.Option(
            help="Budget of the fastest-within-budget point: lowest energy with time at most "
            "this factor above the fastest point (>= 1)."
        ),
    ] = 1.1,
    host: HostOpt = None,
    fmt: FormatOpt = OutputFormat.TABLE,
    plot: Annotated[
        Path | None,
        typer.Option(help="Also write energy and time vs clock to this PNG (needs matplotlib)."),
    ] = None,
) -> None:
    """Sweep SM clocks and power caps (and GPUs): time, power, energy and EDP of one pass."""
    if not max_slowdown >= 1.0:
        raise SweepError(f"--max-slowdown must be at least 1 (got {max_slowdown:g})")
    if plot is not None:
        from joulecast.plot_sweep import check_plot_path

        check_plot_path(plot)
    specs: list[GPUSpec] = [load_gpu(g) for g in gpu or []]
    specs += [gpu_from_file(f) for f in gpu_spec or []]
    specs = list(dict.fromkeys(specs)) or [load_gpu(DEFAULT_GPU)]
    caps = parse_power_caps(power_caps) if power_caps is not None else None
    for spec in specs:
        for cap in caps or ():
            spec.check_power_limit(cap)
    options = WorkloadOptions.pick(locals())
    points: list[SweepPoint] = []
    with Steps(len(specs), "sweeping") as steps:
        for spec in specs:
            steps.start(spec.id)
            # Built per GPU so that each part's checks (fp8 support, memory capacity) apply.
            wl = options.build(spec)
            part_clocks = parse_clocks(clocks, spec.clock_step_mhz) if clocks is not None else None
            points += sweep(
                [wl],
                [spec],
                clocks_mhz=part_clocks,
                power_caps_w=caps,
                max_slowdown=max_slowdown,
                cuda_graphs=cuda_graphs,
                host=host,
            )
    if fmt is OutputFormat.JSON:
        echo_json({"points": [p.to_dict() for p in points]})
    elif fmt is OutputFormat.CSV:
        echo_csv([p.to_dict() for p in points])
    else:
        render_table(points, max_slowdown)
    if plot is not None:
        from joulecast.plot_sweep import plot_sweep

        plot_sweep(points, plot, max_slowdown=max_slowdown)
