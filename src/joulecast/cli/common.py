"""Shared CLI helpers: JSON and CSV output, tables that fit 80 columns, progress of long loops."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

#: Version of the JSON documents ``estimate``, ``sweep``, ``gpus`` and ``models`` print (their
#: ``schema_version`` key). Raised when a key is renamed, removed or changes meaning; new keys
#: do not raise it.
JSON_SCHEMA_VERSION = 1

#: A loop shows a progress bar only once it has run this long (and only on a terminal).
PROGRESS_AFTER_S = 1.0


def echo_json(document: Mapping[str, Any]) -> None:
    """Print ``document`` as indented JSON, ``schema_version`` its first key."""
    data = {"schema_version": JSON_SCHEMA_VERSION, **document}
    typer.echo(json.dumps(data, indent=2, default=float))


def echo_csv(rows: Sequence[Mapping[str, Any]]) -> None:
    """Print flat dicts as CSV: the header is every key, in order of first appearance; a row
    without a key leaves its cell empty."""
    if not rows:
        return
    fields = list(dict.fromkeys(key for row in rows for key in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    typer.echo(buf.getvalue().rstrip("\n"))


def flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """One CSV row of a nested record: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, lists joined by
    ``"; "``."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in flat(value).items()})
        elif isinstance(value, list | tuple):
            out[key] = "; ".join(map(str, value))
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Column:
    """A column of :func:`fitted_table`.

    Attributes:
        header: the header; it wraps between words, never inside one.
        left: left-justified (text); numbers are right-justified.
        optional: dropped, right to left, when the table would not fit the console.
    """

    header: str
    left: bool = False
    optional: bool = False


def fitted_table(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    styles: Sequence[str | None] | None = None,
    **options: Any,
) -> Table:
    """A rich table readable at 80 columns and in a pipe: no word is cut or truncated (ids and
    numbers keep their full text; headers and text cells wrap between words), and optional
    columns are left out when the table would be wider than ``console``.

    Args:
        console: where the table will print (its width decides the layout).
        title: the table's title.
        columns: the columns, in order.
        rows: one string per column and row.
        styles: a rich style per row (or ``None``).
        **options: passed to :class:`rich.table.Table` (``box``, ``caption``, ...).
    """
    from rich.cells import cell_len

    keep = list(range(len(columns)))
    texts = [[columns[i].header, *(row[i] for row in rows)] for i in keep]
    shortest = [max(cell_len(w) for t in col for w in t.split() or [""]) for col in texts]
    longest = [max(cell_len(line) for t in col for line in t.splitlines() or [""]) for col in texts]
    while True:
        table = _table(title, [columns[i] for i in keep], [1] * len(keep), options)
        wide = console.options.update(max_width=10_000)  # borders and padding, uncapped
        room = console.width - (console.measure(table, options=wide).maximum - len(keep))
        widths = _fit([longest[i] for i in keep], [shortest[i] for i in keep], room)
        optional = [i for i in keep if columns[i].optional]
        if widths is not None or not optional:
            break
        keep.remove(optional[-1])
    # Too wide even so: natural widths, and rich folds what does not fit (nothing is lost).
    table = _table(title, [columns[i] for i in keep], widths or [None] * len(keep), options)
    for n, row in enumerate(rows):
        table.add_row(*(row[i] for i in keep), style=styles[n] if styles else None)
    return table


def _fit(longest: list[int], shortest: list[int], room: int) -> list[int | None] | None:
    """Column widths that fit ``room``: natural ones (``None``) if the longest texts fit, else
    the widest columns narrowed toward their longest word; ``None`` if even that is too wide."""
    if sum(longest) <= room:
        return [None] * len(longest)
    if sum(shortest) > room:
        return None
    widths = list(longest)
    while sum(widths) > room:
        i = max(range(len(widths)), key=lambda j: widths[j] - shortest[j])
        widths[i] -= 1
    return list(widths)


def _table(
    title: str, columns: Sequence[Column], widths: Sequence[int | None], options: dict[str, Any]
) -> Table:
    from rich.table import Table

    table = Table(title=title, **options)
    for col, width in zip(columns, widths, strict=True):
        justify: Literal["left", "right"] = "left" if col.left else "right"
        table.add_column(col.header, justify=justify, width=width, overflow="fold")
    return table


class Steps:
    """A transient progress bar on stderr over a loop of slow steps.

    It appears only when stderr is a terminal and only once the loop has run for
    :data:`PROGRESS_AFTER_S`, so quick runs, pipes and captured output never see it::

        with Steps(len(specs), "sweeping") as steps:
            for spec in specs:
                steps.start(spec.id)
                ...
    """

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what = total, what
        self._done = -1
        self._t0 = time.perf_counter()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._tty = sys.stderr.isatty()

    def __enter__(self) -> Steps:
        self._t0 = time.perf_counter()
        return self

    def start(self, label: str) -> None:
        """Mark the start of the next step, ``label`` naming it."""
        self._done += 1
        if self._progress is None:
            if not self._tty or time.perf_counter() - self._t0 < PROGRESS_AFTER_S:
                return
            from rich.console import Console
            from rich.progress import Progress

            self._progress = Progress(console=Console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.what, total=self.total)
        assert self._task is not None
        self._progress.update(self._task, completed=self._done, description=f"{self.what} {label}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
