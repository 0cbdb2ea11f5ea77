"""Speed of joulecast estimates, in-process (medians over repeats), against the targets.

Run: ``make bench`` (or ``python benchmarks/bench_estimate.py``). "Warm" re-estimates the same
workload object (its per-GPU compilation is cached); "fresh" builds a new workload object each
time, so de-duplication and costing of every shape run again.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from kernel_list import kernel_list

from joulecast import estimate, sweep
from joulecast.hardware import load_gpu
from joulecast.workload.energaizer import parse_energaizer
from joulecast.workload.example import example_workload
from joulecast.workload.ir import Workload


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in ms."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def verdict(value: float, target: float) -> str:
    """``met`` or ``MISSED`` against an upper bound."""
    return f"target <= {target:g}: {'met' if value <= target else 'MISSED'}"


def main() -> None:
    a100 = load_gpu("a100-pcie-40gb")
    real = parse_energaizer(kernel_list(), "decoder-960")
    wide = example_workload(layers=62)  # 2 + 62 x 16 = 994 launches
    huge = example_workload(layers=6250)  # 100,002 launches
    for wl, repeats, target in ((real, 300, 1.0), (wide, 300, 1.0), (huge, 30, 20.0)):
        estimate(wl, a100)  # compile once
        warm = median_ms(lambda wl=wl: estimate(wl, a100), repeats)
        fresh = median_ms(lambda wl=wl: estimate(Workload(wl.name, wl.ops), a100), repeats // 3)
        n = len(wl)
        print(f"estimate, {n:,} kernels, warm:  {warm:7.3f} ms median ({verdict(warm, target)})")
        print(f"estimate, {n:,} kernels, fresh: {fresh:7.3f} ms median")

    workloads = [example_workload(batch=b, seq=s) for b in (1, 8, 32) for s in (128, 512)]
    gpus = ["a100-pcie-40gb", "a10", "h100-sxm", "h200", "b200", "l40s"]
    sweep(workloads, gpus)  # warm caches
    t0 = time.perf_counter()
    points = sweep(workloads, gpus)
    dt = time.perf_counter() - t0
    print(
        f"sweep, {len(points):,} points ({len(workloads)} workloads x {len(gpus)} GPUs x "
        f"every supported clock): {dt:.3f} s"
    )
    t0 = time.perf_counter()
    big = sweep([Workload(w.name, w.ops) for w in workloads * 16], gpus)
    dt = time.perf_counter() - t0
    print(f"sweep, {len(big):,} points, fresh workload objects: {dt:.3f} s")


if __name__ == "__main__":
    main()
