"""``joulecast gpus``: list the shipped GPU specs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from joulecast.cli.main import app
from joulecast.hardware import gpu_ids, load_gpu
from joulecast.workload.ir import Precision


@app.command("gpus")
def gpus_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the GPUs joulecast knows, with their key figures."""
    specs = [load_gpu(g) for g in gpu_ids()]
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in specs], indent=2))
        return
    table = Table(title="GPUs (dense throughput at the spec clock)")
    for col in (
        "id",
        "SMs",
        "max MHz",
        "bf16 TFLOPS",
        "fp8 TFLOPS",
        "memory",
        "GB/s",
        "GB",
        "TDP W",
    ):
        table.add_column(col, justify="left" if col in ("id", "memory") else "right")
    for s in specs:
        fp8 = s.tensor_tflops.get(Precision.FP8)
        table.add_row(
            s.id,
            str(s.sm_count),
            f"{s.max_clock_mhz:g}",
            f"{s.tensor_tflops[Precision.BF16]:g}",
            f"{fp8:g}" if fp8 else "-",
            s.memory_technology.value,
            f"{s.memory_bandwidth_gb_s:g}",
            f"{s.memory_capacity_gb:g}",
            f"{s.tdp_w:g}",
        )
    Console().print(table)
