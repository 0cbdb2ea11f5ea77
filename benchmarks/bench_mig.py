"""Throughput of MIG attribution: one day of 1 Hz telemetry for a 7-instance GPU.

Run: ``.venv/bin/python benchmarks/bench_mig.py`` (target: attribution under 5 s).
"""

from __future__ import annotations

import time

from joulecast.mig.attribute import attribute
from joulecast.mig.readers import read_long_csv
from joulecast.mig.synth import DAY_SCENARIO, generate


def main() -> None:
    """Generate, parse and attribute one synthetic day; print the timings."""
    t0 = time.perf_counter()
    run = generate(DAY_SCENARIO, seed=7)
    text = run.to_long_csv()
    t1 = time.perf_counter()
    tel = read_long_csv(text)
    t2 = time.perf_counter()
    result = attribute(tel, method="online")
    t3 = time.perf_counter()
    g = result.gpus[0]
    rows = len(text.splitlines()) - 1
    print(f"synthetic day: {rows} rows, {len(g.instances)} instances, {g.time_s.size} samples")
    print(f"generate + write CSV: {t1 - t0:.2f} s")
    print(f"parse long CSV:       {t2 - t1:.2f} s")
    print(f"attribute (online):   {t3 - t2:.2f} s  (target < 5 s)")
    print(f"parse + attribute:    {t3 - t1:.2f} s")
    gap = abs(g.conservation_error_j) / g.energy_j
    print(f"conservation gap:     {gap:.2e} of {g.energy_j:.0f} J")


if __name__ == "__main__":
    main()
