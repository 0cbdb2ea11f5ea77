"""Speed of joulecast estimates, in-process (medians over repeats).

Run: ``make bench`` (or ``python benchmarks/bench_estimate.py``).
"""

from __future__ import annotations

import statistics
import time

from joulecast import estimate, sweep
from joulecast.hardware import load_gpu
from joulecast.workload.example import example_workload
from joulecast.workload.ir import Workload


def _median_ms(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def main() -> None:
    base = example_workload(layers=62)  # 2 + 62 x 16 = 994 launches, about 1,000 kernels
    n = len(base)
    a100 = load_gpu("a100-pcie-40gb")
    estimate(base, a100)  # warm the per-shape kernel cache

    def cold() -> None:
        # A fresh workload object: op-list dedup, costing and evaluation all run again.
        estimate(Workload(base.name, base.ops), a100)

    warm = _median_ms(lambda: estimate(base, a100), 200)
    fresh = _median_ms(cold, 100)
    print(f"estimate, {n}-kernel workload, warm (same workload object): {warm:.2f} ms median")
    print(f"estimate, {n}-kernel workload, fresh workload object:       {fresh:.2f} ms median")

    workloads = [example_workload(batch=b, seq=s) for b in (1, 8, 32) for s in (128, 512)]
    gpus = ["a100-pcie-40gb", "a10", "h100-sxm", "h200", "b200", "l40s"]
    points = sweep(workloads, gpus)  # warm caches
    t0 = time.perf_counter()
    points = sweep(workloads, gpus)
    dt = time.perf_counter() - t0
    # Each point also evaluates its power cap; count requested clocks x workloads x GPUs.
    print(
        f"sweep, {len(points)} points ({len(workloads)} workloads x {len(gpus)} GPUs x "
        f"every supported clock): {dt:.2f} s"
    )
    big = sweep(workloads * 16, gpus)
    t0 = time.perf_counter()
    big = sweep([Workload(w.name, w.ops) for w in workloads * 16], gpus)
    dt = time.perf_counter() - t0
    print(f"sweep, {len(big)} points, fresh workload objects: {dt:.2f} s")


if __name__ == "__main__":
    main()
