"""``joulecast host``: the machine (CPU and framework) issuing a pass's kernels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from joulecast.cli.common import echo_json
from joulecast.cli.main import app
from joulecast.cli.options import (
    BatchOpt,
    ContextOpt,
    ExampleOpt,
    FormatOpt,
    ModelConfigOpt,
    ModelOpt,
    OutputFormat,
    PhaseOpt,
    PrecisionOpt,
    SeqOpt,
    SmClockOpt,
    WorkloadFileOpt,
    WorkloadOptions,
)
from joulecast.errors import SpecError

host_app = typer.Typer(
    help="The machine issuing the kernels: list the shipped hosts, or fit yours.",
    no_args_is_help=True,
)
app.add_typer(host_app, name="host")


@host_app.command("list")
def list_command(fmt: FormatOpt = OutputFormat.TABLE) -> None:
    """List the shipped hosts and their per-op costs."""
    from joulecast.coefficients.host import host_ids, load_host

    hosts = [load_host(h) for h in host_ids()]
    if fmt is OutputFormat.JSON:
        echo_json({"hosts": [h.to_dict() for h in hosts]})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="hosts (per-op costs of eager PyTorch)")
    table.add_column("id", no_wrap=True)
    for col in ("op µs", "module op µs", "pass ms"):
        table.add_column(col, justify="right")
    for h in hosts:
        table.add_row(
            h.id,
            f"{h.host_op_s * 1e6:.2f}",
            f"{h.host_module_op_s * 1e6:.2f}",
            f"{h.pass_overhead_s * 1e3:.3f}",
        )
    Console().print(table)


@host_app.command("fit")
def fit_command(
    measured_ms: Annotated[
        float, typer.Option("--measured-ms", help="Measured wall time of one pass, in ms.")
    ],
    out: Annotated[Path, typer.Option(help="Write the fitted host to this YAML file.")],
    gpu: Annotated[str, typer.Option(help="GPU the pass ran on (joulecast gpus).")],
    workload: WorkloadFileOpt = None,
    model: ModelOpt = None,
    model_config: ModelConfigOpt = None,
    example: ExampleOpt = False,
    batch: BatchOpt = None,
    seq: SeqOpt = None,
    phase: PhaseOpt = "prefill",
    context: ContextOpt = None,
    precision: PrecisionOpt = "bf16",
    sm_clock: SmClockOpt = None,
    base: Annotated[
        str | None, typer.Option(help="Host whose costs are scaled (default: the GPU's default).")
    ] = None,
    host_id: Annotated[str, typer.Option("--id", help="Id of the fitted host.")] = "my-host",
) -> None:
    """Fit your host's speed from ONE measured eager pass; a launch-bound pass is best
    (GPT-2, batch 1, 128 tokens: --model gpt2 --batch 1 --seq 128)."""
    from joulecast.hardware.spec import load_gpu
    from joulecast.hostfit import fit_host
    from joulecast.yamlio import dump_yaml

    if out.suffix.lower() not in (".yaml", ".yml"):
        raise SpecError(f"--out must be a .yaml file (got {out.name})")
    if not out.parent.is_dir():
        raise SpecError(f"--out folder does not exist: {out.parent}")
    spec = load_gpu(gpu)
    wl = WorkloadOptions.pick(locals()).build(spec)
    fit = fit_host(wl, spec, measured_ms / 1e3, sm_clock_mhz=sm_clock, base=base, new_id=host_id)
    out.write_text(
        f"# joulecast host: fitted by joulecast host fit ({fit.host.sources[-1]}).\n"
        + dump_yaml(fit.host.to_dict())
    )
    if fit.warning:
        typer.echo(f"warning: {fit.warning}", err=True)
    typer.echo(
        f"{fit.host.id}: {fit.speed_factor:.3g}x the speed of the base host "
        f"(host share of the pass {fit.host_share:.0%}; the GPU alone would take "
        f"{fit.gpu_only_time_s * 1e3:.3g} ms) -> {out}"
    )
