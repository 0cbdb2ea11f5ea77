"""``joulecast fleet``: place several models on a GPU inventory under a power budget."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from joulecast.cli.common import echo_json
from joulecast.cli.main import app
from joulecast.cli.options import FormatOpt, OutputFormat
from joulecast.errors import WorkloadError


@app.command("fleet")
def fleet_command(
    spec: Annotated[
        Path, typer.Option(help="Fleet spec (YAML): power_budget_w, gpus {id: count}, models.")
    ],
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Place several models on a GPU inventory at least energy (mixed-integer program)."""
    from joulecast.serving.fleet import load_fleet_spec, solve_fleet

    demands, inventory, budget = load_fleet_spec(spec)
    result = solve_fleet(demands, inventory, budget)
    if fmt is OutputFormat.JSON:
        echo_json(result.to_dict())
        return
    if fmt is OutputFormat.CSV:
        raise WorkloadError("fleet prints table or json")
    from rich.console import Console
    from rich.table import Table

    table = Table(title="least-energy fleet")
    table.add_column("model", overflow="fold")
    table.add_column("GPUs", no_wrap=True)
    for col in ("tp/ep", "batch", "MHz", "replicas", "kW"):
        table.add_column(col, justify="right")
    for p in result.placements:
        c = p.deployment
        table.add_row(
            p.model.split("/")[-1], f"{c.num_gpus}x {c.gpu}", f"{c.tp}/{c.ep}", str(c.batch),
            f"{c.sm_clock_mhz:g}", str(p.replicas), f"{p.power_w / 1e3:.2f}",
        )  # fmt: skip
    console = Console()
    console.print(table)
    saving = 1 - result.power_w / result.baseline_power_w
    console.print(
        f"fleet {result.power_w / 1e3:.2f} kW ({result.power_w * 3600 / 3.6e6:.2f} kWh per hour) "
        f"against {result.baseline_power_w / 1e3:.2f} kW for each model on its smallest "
        f"deployment at full clock: {saving:.0%} less energy."
    )
