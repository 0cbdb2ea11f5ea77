"""MIG attribution benchmark: throughput on one day of telemetry, accuracy on held-out scenarios.

Run: ``.venv/bin/python benchmarks/bench_mig.py [--no-accuracy] [--repeats N]``

1. Throughput (target: median under 5 s): one synthetic day of 1 Hz telemetry for a 7-instance
   GPU is written as the documented long CSV; the timed part is everything a user runs, reading
   the file from disk, parsing it and attributing it with the default online method, repeated
   ``--repeats`` times. This is where the wall-time target is checked: the test suite only checks
   the results of the same run (timings on shared CI machines are too noisy to assert on).
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

#: Wall-time target for read + parse + attribute of one day of telemetry (seconds).
TARGET_S = 5.0


def throughput(repeats: int = 3) -> None:
    """Generate one synthetic day, then time read + parse + attribute from the file.

    Args:
        repeats: How many times the timed part runs; the medians are printed.
    """
    t0 = time.perf_counter()
    run = generate(DAY_SCENARIO, seed=7)
    text = run.to_long_csv()
    t1 = time.perf_counter()
    parse_s: list[float] = []
    attribute_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "day.csv"
        path.write_text(text, encoding="utf-8")
        size_mb = path.stat().st_size / 1e6
        for _ in range(max(repeats, 1)):
            t2 = time.perf_counter()
            tel = read_telemetry(path, "auto")
            t3 = time.perf_counter()
            result = attribute(tel, method="online")
            t4 = time.perf_counter()
            parse_s.append(t3 - t2)
            attribute_s.append(t4 - t3)
    total_s = [p + a for p, a in zip(parse_s, attribute_s, strict=True)]
    median_total = float(np.median(total_s))
    g = result.gpus[0]
    rows = text.count("\n") - 1
    truth = dict(zip(run.instance_ids, run.true_dynamic_energy_j().tolist(), strict=True))
    err = np.array(
        [100.0 * (i.dynamic_energy_j / truth[i.gpu_instance_id] - 1.0) for i in g.instances]
    )
    print(
        f"synthetic day: {rows} rows ({size_mb:.1f} MB), {len(g.instances)} instances, "
        f"{g.time_s.size} samples; timings are medians of {len(total_s)} runs"
    )
    print(f"generate + write CSV:              {t1 - t0:.2f} s  (not timed below)")
    print(f"read + parse long CSV:             {np.median(parse_s):.2f} s")
    print(f"attribute (online):                {np.median(attribute_s):.2f} s")
    verdict = "met" if median_total < TARGET_S else "MISSED"
    print(
        f"parse + attribute, end to end:     {median_total:.2f} s  "
        f"(target < {TARGET_S:g} s: {verdict}; min {min(total_s):.2f} s, "
        f"max {max(total_s):.2f} s)"
    )
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
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of the throughput part (median shown)"
    )
    args = parser.parse_args()
    throughput(args.repeats)
    if not args.no_accuracy:
        accuracy()


if __name__ == "__main__":
    main()
