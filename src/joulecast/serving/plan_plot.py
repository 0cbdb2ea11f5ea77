"""The plan's picture: energy per token vs ITL of every deployment, the frontier and the choice."""

from __future__ import annotations

from pathlib import Path

from joulecast.serving.plan import PlanResult


def plot_plan(result: PlanResult, path: Path, max_itl_ms: float | None = None) -> None:
    """Scatter of every evaluated deployment (per GPU type), the frontier, the choice marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    for gpu in sorted({c.gpu for c in result.evaluated}):
        pts = [c for c in result.evaluated if c.gpu == gpu]
        ax.scatter([c.itl_ms for c in pts], [c.energy_per_token_j for c in pts], s=6,
                   alpha=0.4, label=gpu)  # fmt: skip
    front, best_j = [], float("inf")
    for c in sorted(result.evaluated, key=lambda c: c.itl_ms):
        if c.energy_per_token_j < best_j:
            front.append(c)
            best_j = c.energy_per_token_j
    ax.plot([c.itl_ms for c in front], [c.energy_per_token_j for c in front], color="black",
            linewidth=1, label="frontier")  # fmt: skip
    b = result.best
    ax.scatter([b.itl_ms], [b.energy_per_token_j], marker="*", s=220, color="#d62728",
               zorder=5, label=f"choice: {b.num_gpus}x {b.gpu}, batch {b.batch}")  # fmt: skip
    if max_itl_ms is not None:
        ax.axvline(max_itl_ms, color="#d62728", linestyle="--", linewidth=1, label="ITL limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("median inter-token latency (ms)")
    ax.set_ylabel("energy per output token (J)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
