"""Stacked per-instance power plot (matplotlib is imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from joulecast.errors import JoulecastError
from joulecast.mig.attribute import AttributionResult


def plot_power(result: AttributionResult, path: Path) -> None:
    """Draw stacked static + per-instance power over time, one panel per GPU.

    Raises:
        JoulecastError: If matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise JoulecastError("--plot needs matplotlib (pip install 'joulecast[plot]')") from None
    fig, axes = plt.subplots(
        len(result.gpus), 1, figsize=(10, 3.5 * len(result.gpus)), squeeze=False
    )
    for ax, g in zip(axes[:, 0], result.gpus, strict=True):
        t = g.time_s - g.time_s[0]
        attributed = g.static_power_w.sum(axis=1) + g.dynamic_power_w.sum(axis=1)
        layers = [g.board_power_w - attributed]
        labels = ["static + residual (GPU)"]
        for i, inst in enumerate(g.instances):
            layers.append(g.dynamic_power_w[:, i] + g.static_power_w[:, i])
            labels.append(f"GI {inst.gpu_instance_id} ({inst.profile})")
        ax.stackplot(t, np.vstack(layers), labels=labels, linewidth=0)
        ax.plot(t, g.board_power_w, color="black", linewidth=0.6, label="measured")
        ax.set_title(f"{g.gpu_uuid} ({result.method}, static {result.static_policy})")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("power (W)")
        ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
