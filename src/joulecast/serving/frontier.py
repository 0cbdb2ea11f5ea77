"""The batch-size time-energy frontier of a served model (ML.ENERGY's central figure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from joulecast.serving.engine import ServeResult

# Batch sizes (vLLM max_num_seqs) a sweep visits, up to the memory limit.
SWEEP_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


def batch_sweep(
    run: Callable[[int], ServeResult], batches: Sequence[int] = SWEEP_BATCHES
) -> list[ServeResult]:
    """``run(batch)`` for each batch up to the first one the memory caps (that one included)."""
    out: list[ServeResult] = []
    for b in batches:
        r = run(b)
        out.append(r)
        if r.running_batch < b:
            break
    return out


def pareto_front(results: Sequence[ServeResult]) -> list[bool]:
    """Whether each point is on the J/token-vs-ITL frontier (no other point is at least as
    good on both and better on one)."""
    flags = []
    for r in results:
        dominated = any(
            o.itl_ms <= r.itl_ms
            and o.energy_per_token_j <= r.energy_per_token_j
            and (o.itl_ms < r.itl_ms or o.energy_per_token_j < r.energy_per_token_j)
            for o in results
        )
        flags.append(not dominated)
    return flags


def plot_frontier(results: Sequence[ServeResult], path: Path) -> None:
    """Energy per token vs ITL, one point per batch, the frontier drawn (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(results)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = [r.itl_ms for r in results]
    ys = [r.energy_per_token_j for r in results]
    ax.scatter(xs, ys, color="#888888", zorder=2)
    fx = [x for x, f in zip(xs, front, strict=True) if f]
    fy = [y for y, f in zip(ys, front, strict=True) if f]
    ax.plot(fx, fy, color="#d62728", marker="o", zorder=3, label="frontier")
    for r in results:
        ax.annotate(f"b{r.running_batch}", (r.itl_ms, r.energy_per_token_j), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")  # fmt: skip
    first = results[0]
    ax.set_title(f"{first.model} on {first.num_gpus}x {first.gpu}")
    ax.set_xlabel("median inter-token latency (ms)")
    ax.set_ylabel("energy per output token (J)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
