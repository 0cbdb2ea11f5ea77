"""Energy and time versus SM clock for a sweep (matplotlib is imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from joulecast.errors import JoulecastError
from joulecast.sweeper import SweepPoint

_LINE_STYLES = ("-", "--", "-.", ":")
_MISSING = "--plot needs matplotlib (pip install 'joulecast[plot]')"


def check_plot_path(path: Path) -> None:
    """Fail early, with one line, when ``path`` cannot be plotted to (before a long sweep runs).

    Raises:
        JoulecastError: If matplotlib is not installed, the suffix is not an image format it
            writes, or the folder does not exist.
    """
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise JoulecastError(_MISSING) from None
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = path.suffix.lstrip(".").lower()
    if suffix not in formats:
        raise JoulecastError(
            f"--plot {path}: give an image file name ending in one of "
            f"{', '.join('.' + f for f in sorted(formats))}"
        )
    if not path.parent.is_dir():
        raise JoulecastError(f"--plot {path}: folder {path.parent} does not exist")


def plot_sweep(points: Sequence[SweepPoint], path: Path, *, max_slowdown: float) -> None:
    """Draw energy and time per pass against the requested SM clock, one column per GPU.

    Each (workload, power cap) is one line; the energy-optimal point is marked with a star and
    the fastest point within the slowdown budget with a diamond, on both panels.

    Args:
        points: output of :func:`joulecast.sweeper.sweep`.
        path: image file to write (format from the suffix, e.g. ``.png``).
        max_slowdown: the budget the points were marked with (for the legend).

    Raises:
        JoulecastError: If matplotlib is missing, there is nothing to plot, or the file cannot be
            written.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise JoulecastError(_MISSING) from None

    if not points:
        raise JoulecastError("nothing to plot: the sweep has no points")
    gpus = list(dict.fromkeys(p.gpu for p in points))
    several_workloads = len({p.workload for p in points}) > 1
    fig = Figure(figsize=(5.0 * len(gpus), 7.0), layout="constrained")
    axes = fig.subplots(2, len(gpus), squeeze=False, sharex="col")
    for col, gpu in enumerate(gpus):
        ax_e, ax_t = axes[0][col], axes[1][col]
        lines: dict[tuple[str, float], list[SweepPoint]] = {}
        for p in points:
            if p.gpu == gpu:
                lines.setdefault((p.workload, p.power_cap_w), []).append(p)
        for n, ((workload, cap), pts) in enumerate(lines.items()):
            pts = sorted(pts, key=lambda p: p.requested_clock_mhz)
            label = f"{workload}, cap {cap:g} W" if several_workloads else f"cap {cap:g} W"
            x = [p.requested_clock_mhz for p in pts]
            style = _LINE_STYLES[n % len(_LINE_STYLES)]
            (line,) = ax_e.plot(x, [p.energy_j for p in pts], style, marker=".", label=label)
            ax_t.plot(x, [p.time_ms for p in pts], style, marker=".", color=line.get_color())
            for ax, attr in ((ax_e, "energy_j"), (ax_t, "time_ms")):
                _mark(ax, pts, attr, line.get_color())
        ax_e.set_title(gpu)
        ax_e.set_ylabel("energy per pass (J)")
        ax_t.set_ylabel("time per pass (ms)")
        ax_t.set_xlabel("requested SM clock (MHz)")
        ax_e.legend(fontsize="small")
        ax_t.legend(handles=_marker_legend(max_slowdown), fontsize="small")
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        raise JoulecastError(f"cannot write the plot to {path}: {exc}") from None


def _mark(ax: Any, pts: list[SweepPoint], attr: str, color: str) -> None:
    for p in pts:
        y = getattr(p, attr)
        if p.energy_optimal:
            ax.plot(p.requested_clock_mhz, y, marker="*", ms=16, color=color, mec="k", zorder=3)
        if p.fastest_within_budget:
            ax.plot(p.requested_clock_mhz, y, marker="D", ms=11, mfc="none", mec="k", zorder=4)


def _marker_legend(max_slowdown: float) -> list[Any]:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], ls="", marker="*", markersize=12, color="grey", mec="k", label="min energy"),
        Line2D(
            [],
            [],
            ls="",
            marker="D",
            mfc="none",
            mec="k",
            label=f"min energy within {max_slowdown:g}× fastest",
        ),
    ]
