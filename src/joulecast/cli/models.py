"""``joulecast models``: list the shipped model architectures with their parameter counts."""

from __future__ import annotations

from joulecast.cli.common import Column, echo_csv, echo_json, fitted_table, flat
from joulecast.cli.main import app
from joulecast.cli.options import FormatOpt, JsonAliasOpt, OutputFormat, output_format
from joulecast.models.params import count_params
from joulecast.models.registry import load_model_config, model_ids

# The id is never cut; at 80 columns the optional columns make room for the longest one.
_COLUMNS = (
    Column("id", left=True),
    Column("family", left=True, optional=True),
    Column("total B"),
    Column("active B"),
    Column("dtype", left=True),
    Column("layers", optional=True),
    Column("experts"),
)


@app.command("models")
def models_command(fmt: FormatOpt = OutputFormat.TABLE, as_json: JsonAliasOpt = False) -> None:
    """List the models joulecast can build, with total and active parameters."""
    fmt = output_format(fmt, as_json)
    entries = [(cfg, count_params(cfg)) for cfg in map(load_model_config, model_ids())]
    if fmt is not OutputFormat.TABLE:
        records = [
            {
                "id": cfg.id,
                "family": cfg.family,
                "aliases": list(cfg.aliases),
                "total_params": counts.total,
                "active_params": counts.active,
                "total_params_billions": round(counts.total_billions, 4),
                "active_params_billions": round(counts.active_billions, 4),
                "weight_precision": cfg.weight_precision,
                "layers": cfg.num_hidden_layers,
                "experts": cfg.num_experts or None,
                "experts_per_token": cfg.num_experts_per_tok or None,
                "source": cfg.source,
            }
            for cfg, counts in entries
        ]
        if fmt is OutputFormat.JSON:
            echo_json({"models": records})
        else:
            echo_csv([flat(r) for r in records])
        return
    from rich import box
    from rich.console import Console

    rows = [
        (
            cfg.id,
            cfg.family,
            _billions(counts.total),
            _billions(counts.active),
            cfg.weight_precision,
            str(cfg.num_hidden_layers or "-"),
            f"{cfg.num_experts_per_tok}/{cfg.num_experts}" if cfg.is_moe else "-",
        )
        for cfg, counts in entries
    ]
    console = Console()
    title = "Models (parameter counts computed from the architecture)"
    # One space between columns: the longest id and the figures fit 80 columns.
    table = fitted_table(
        console, title, _COLUMNS, rows, box=box.SIMPLE_HEAD, show_edge=False, padding=0
    )
    console.print(table)


def _billions(params: int) -> str:
    value = params / 1e9
    return f"{value:.4f}" if value < 1 else (f"{value:.2f}" if value < 100 else f"{value:.1f}")
