"""Wall time of ``joulecast validate`` (every fit and report on the reference data).

Run: ``make bench`` (or ``python benchmarks/bench_validate.py [--repeats N]``); skipped with a
reason when the reference measurements are absent. Target: at most 15 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from joulecast.datapaths import find_data_dir

    if find_data_dir() is None:
        print("joulecast validate: skipped (no reference data; set JOULECAST_DATA)")
        return
    exe = shutil.which("joulecast", path=str(Path(sys.executable).parent)) or "joulecast"
    samples = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        subprocess.run([exe, "validate"], check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    med = statistics.median(samples)
    verdict = "met" if med <= TARGET_S else "MISSED"
    print(
        f"joulecast validate: {med:.1f} s median (min {min(samples):.1f}, max {max(samples):.1f}; "
        f"target <= {TARGET_S:g} s: {verdict})"
    )


if __name__ == "__main__":
    main()
