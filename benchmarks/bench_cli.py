"""Speed of the ``joulecast`` command as a user runs it (a fresh process each time).

Run: ``make bench`` (or ``python benchmarks/bench_cli.py [--repeats N]``). Medians of wall time
over repeated runs, against the targets: a whole CLI estimate of a 960-kernel kernel list with
JSON output in at most 0.3 s, ``joulecast --help`` in at most 0.25 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from kernel_list import write_kernel_list


def wall_s(cmd: list[str], repeats: int) -> list[float]:
    """Wall time of each run of ``cmd`` (one warm-up run first, not counted)."""
    subprocess.run(cmd, check=True, capture_output=True)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


def report(label: str, samples: list[float], target_s: float) -> None:
    """Print the median, spread and verdict of one command."""
    med = statistics.median(samples)
    verdict = "met" if med <= target_s else "MISSED"
    print(
        f"{label}: {med:.3f} s median (min {min(samples):.3f}, max {max(samples):.3f}; "
        f"target <= {target_s:g} s: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    exe = shutil.which("joulecast", path=str(Path(sys.executable).parent)) or "joulecast"
    with tempfile.TemporaryDirectory() as tmp:
        kernels = write_kernel_list(Path(tmp) / "decoder-960.json")
        estimate = [exe, "estimate", "--workload", str(kernels), "--gpu", "a100-pcie-40gb"]
        report(
            "joulecast estimate, 960-kernel list, JSON",
            wall_s([*estimate, "--format", "json"], args.repeats),
            0.3,
        )
        report("joulecast --help", wall_s([exe, "--help"], args.repeats), 0.25)
        report(
            "joulecast estimate --model llama-3.1-8b, JSON",
            wall_s(
                [
                    exe,
                    "estimate",
                    "--model",
                    "meta-llama/Llama-3.1-8B-Instruct",
                    "--batch",
                    "8",
                    "--seq",
                    "512",
                    "--format",
                    "json",
                ],
                args.repeats,
            ),
            0.3,
        )


if __name__ == "__main__":
    main()
