"""``joulecast gpus``: list the shipped GPU specs."""

from __future__ import annotations

from joulecast.cli.common import Column, echo_csv, echo_json, fitted_table, flat
from joulecast.cli.main import app
from joulecast.cli.options import FormatOpt, JsonAliasOpt, OutputFormat, output_format
from joulecast.hardware import gpu_ids, load_gpu
from joulecast.workload.ir import Precision

_COLUMNS = (
    Column("id", left=True),
    Column("SMs"),
    Column("max MHz"),
    Column("bf16 TFLOPS"),
    Column("fp8 TFLOPS"),
    Column("memory", left=True),
    Column("GB/s"),
    Column("GB"),
    Column("TDP W"),
    Column("power limits W", optional=True),
)


@app.command("gpus")
def gpus_command(fmt: FormatOpt = OutputFormat.TABLE, as_json: JsonAliasOpt = False) -> None:
    """List the GPUs joulecast knows, with their key figures."""
    fmt = output_format(fmt, as_json)
    specs = [load_gpu(g) for g in gpu_ids()]
    if fmt is OutputFormat.JSON:
        echo_json({"gpus": [s.to_dict() for s in specs]})
        return
    if fmt is OutputFormat.CSV:
        echo_csv([flat(s.to_dict()) for s in specs])
        return
    from rich.console import Console

    rows = []
    for s in specs:
        fp8 = s.tensor_tflops.get(Precision.FP8)
        bf16 = s.tensor_tflops.get(Precision.BF16)
        rows.append(
            (
                s.id,
                str(s.sm_count),
                f"{s.max_clock_mhz:g}",
                f"{bf16:g}" if bf16 else "-",
                f"{fp8:g}" if fp8 else "-",
                s.memory_technology.value,
                f"{s.memory_bandwidth_gb_s:g}",
                f"{s.memory_capacity_gb:g}",
                f"{s.tdp_w:g}",
                f"{s.min_power_limit_w:g}-{s.max_power_limit_w:g}",
            )
        )
    console = Console()
    title = "GPUs (dense throughput at the spec clock)"
    console.print(fitted_table(console, title, _COLUMNS, rows))
