"""MIG attribution benchmark: throughput on one day of telemetry, accuracy on held-out scenarios.

Run: ``.venv/bin/python benchmarks/bench_mig.py [--no-accuracy]``

1. Throughput (target: under 5 s): one synthetic day of 1 Hz telemetry for a 7-instance GPU is
   written as the documented long CSV; the timed part is everything a user runs, reading the
   file from disk, parsing it and attributing it with the default online method.
2. Accuracy: every method on the held-out scenarios and seeds (never used to choose the online
   settings), then the same on the tuning set for comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from joulecast.mig.attribute import attribute
from joulecast.mig.benchmark import evaluation_set, markdown_table, run_benchmark
from joulecast.mig.readers import read_telemetry
from joulecast.mig.synth import DAY_SCENARIO, generate


def throughput() -> None:
    """Generate one synthetic day, then time read + parse + attribute from the file."""
    t0 = time.perf_counter()
    run = generate(DAY_SCENARIO, seed=7)
    text = run.to_long_csv()
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "day.csv"
        path.write_text(text, encoding="utf-8")
        size_mb = path.stat().st_size / 1e6
        t2 = time.perf_counter()
        tel = read_telemetry(path, "auto")
        t3 = time.perf_counter()
        result = attribute(tel, method="online")
        t4 = time.perf_counter()
    g = result.gpus[0]
    rows = text.count("\n") - 1
    truth = dict(zip(run.instance_ids, run.true_dynamic_energy_j().tolist(), strict=True))
    err = np.array(
        [100.0 * (i.dynamic_energy_j / truth[i.gpu_instance_id] - 1.0) for i in g.instances]
    )
    print(
        f"synthetic day: {rows} rows ({size_mb:.1f} MB), {len(g.instances)} instances, "
        f"{g.time_s.size} samples"
    )
    print(f"generate + write CSV:              {t1 - t0:.2f} s  (not timed below)")
    print(f"read + parse long CSV:             {t3 - t2:.2f} s")
    print(f"attribute (online):                {t4 - t3:.2f} s")
    print(f"parse + attribute, end to end:     {t4 - t2:.2f} s  (target < 5 s)")
    gap = abs(g.conservation_error_j) / g.energy_j
    print(f"conservation gap:                  {gap:.2e} of {g.energy_j:.0f} J")
    print(
        f"day accuracy (online, vs truth):   median |error| {np.median(np.abs(err)):.2f} %, "
        f"worst {np.max(np.abs(err)):.2f} %"
    )


def accuracy() -> None:
    """Print the method comparison on the held-out set, then on the tuning set."""
    for which in ("held-out", "tuning"):
        scenarios, seeds = evaluation_set(which)
        scores = run_benchmark(scenarios, seeds)
        print()
        print(
            f"{which} set: {', '.join(s.name for s in scenarios)}; "
            f"seeds {', '.join(map(str, seeds))}"
        )
        print(markdown_table(scores))
        online = next(s for s in scores if s.method == "online")
        print(f"worst online: {online.worst_abs_error_pct:.2f} % at {online.worst_case}")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-accuracy", action="store_true", help="only the throughput part")
    args = parser.parse_args()
    throughput()
    if not args.no_accuracy:
        accuracy()


if __name__ == "__main__":
    main()
