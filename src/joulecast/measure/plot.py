"""``--plot``: the sampled power, SM clock and temperature of a measurement (matplotlib, lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from joulecast.measure.core import Measurement
from joulecast.measure.meter import MeasureError


def plot_timeline(m: Measurement, path: Path) -> None:
    """Write a PNG: power, SM clock and temperature per GPU over time, the window shaded.

    Raises:
        MeasureError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MeasureError("--plot needs matplotlib: pip install 'joulecast[plot]'") from None
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(8, 7))
    rows = (
        ("power_w", "power (W)"),
        ("sm_clock_mhz", "SM clock (MHz)"),
        ("temperature_c", "temperature (°C)"),
    )
    for tl in m.timelines:
        t = tl.time_s - m.start_s
        for ax, (field, _) in zip(axes, rows, strict=True):
            values = getattr(tl, field)
            if np.isfinite(values).any():
                ax.plot(t, values, label=f"GPU {tl.gpu}", lw=1)
    for ax, (_, label) in zip(axes, rows, strict=True):
        ax.axvspan(0.0, m.window_s, color="0.9", zorder=0)
        ax.set_ylabel(label)
    axes[0].legend(loc="upper right", fontsize="small")
    methods = ", ".join(sorted({g.method for g in m.gpus}))
    axes[0].set_title(
        f"{m.energy_j:.1f} J over {m.window_s:.2f} s ({m.iterations} iterations), {methods}"
    )
    axes[-1].set_xlabel("time from window start (s); shaded: measured window")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
