"""Shared CLI helpers: JSON and CSV output."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import typer


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON."""
    typer.echo(json.dumps(data, indent=2, default=float))


def echo_csv(rows: list[dict[str, Any]]) -> None:
    """Print a list of flat dicts as CSV (header from the first row)."""
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    typer.echo(buf.getvalue().rstrip("\n"))
