"""``joulecast models``: list the shipped model architectures with their parameter counts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from joulecast.cli.main import app
from joulecast.models.params import count_params
from joulecast.models.registry import load_model_config, model_ids


@app.command("models")
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the models joulecast can build, with total and active parameters."""
    entries = [(cfg, count_params(cfg)) for cfg in map(load_model_config, model_ids())]
    if as_json:
        rows = [
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
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Models (parameter counts computed from the architecture)")
    table.add_column("id", no_wrap=True)
    table.add_column("family")
    for col in ("total (B)", "active (B)"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("weights")
    table.add_column("layers", justify="right")
    table.add_column("experts", justify="right")
    for cfg, counts in entries:
        experts = f"{cfg.num_experts_per_tok}/{cfg.num_experts}" if cfg.is_moe else "-"
        table.add_row(
            cfg.id,
            cfg.family,
            _billions(counts.total),
            _billions(counts.active),
            cfg.weight_precision,
            str(cfg.num_hidden_layers or "-"),
            experts,
        )
    Console().print(table)


def _billions(params: int) -> str:
    value = params / 1e9
    return f"{value:.4f}" if value < 1 else (f"{value:.2f}" if value < 100 else f"{value:.1f}")
