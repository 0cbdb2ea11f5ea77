"""Speed of refusals and of answers the test suite checks only for correctness.

Run: ``make bench`` (or ``python benchmarks/bench_parsers.py``). Targets: absurd inputs (a GPU
clock grid of 1e11 points, a YAML alias bomb, a 4,000,000-layer config) are refused in under
1 s; a 10,000-layer model builds in under 20 s; one diffusion answer takes under 50 ms warm and
0.5 s cold.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from joulecast.diffusion import estimate_generation
from joulecast.errors import JoulecastError
from joulecast.hardware.spec import gpu_from_file
from joulecast.models.build import build_workload
from joulecast.models.registry import model_config_from_hf_json

LLAMA = {
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 131072,
}  # fmt: skip


def seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call (a refusal counts as done)."""
    t0 = time.perf_counter()
    with contextlib.suppress(JoulecastError):
        fn()
    return time.perf_counter() - t0


def report(label: str, value_s: float, target_s: float) -> None:
    """Print one figure and its verdict."""
    verdict = "met" if value_s <= target_s else "MISSED"
    print(f"{label}: {value_s * 1e3:.1f} ms (target <= {target_s * 1e3:g} ms: {verdict})")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "part.yaml"
        part.write_text("base: a100-pcie-40gb\nmax_clock_mhz: 1.98e12\n")
        report("GPU spec with a 1e11-clock grid refused", seconds(lambda: gpu_from_file(part)), 1)
        bomb = Path(tmp) / "bomb.yaml"
        lines = ["a0: &a0 [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
        bomb.write_text("\n".join(lines) + "\nbase: a100-pcie-40gb\nsources: *a8\n")
        report("YAML alias bomb refused", seconds(lambda: gpu_from_file(bomb)), 1)
        huge = Path(tmp) / "config.json"
        huge.write_text(str({**LLAMA, "num_hidden_layers": 4_000_000}).replace("'", '"'))
        report(
            "4,000,000-layer config refused", seconds(lambda: model_config_from_hf_json(huge)), 1
        )
        deep = Path(tmp) / "deep.json"
        deep.write_text(json.dumps({**LLAMA, "num_hidden_layers": 10_000}))
        cfg = model_config_from_hf_json(deep)
        report(
            "10,000-layer model built",
            seconds(lambda: build_workload(cfg, batch=1, seq=4)),
            20,
        )
    estimate_generation("flux", "h100-sxm", batch=3, num_gpus=4)
    report(
        "diffusion answer, warm",
        seconds(lambda: estimate_generation("flux", "h100-sxm", batch=3, num_gpus=4)),
        0.05,
    )
    report(
        "diffusion answer, cold",
        seconds(
            lambda: estimate_generation("cogvideox-2b", "h100-sxm", batch=3, num_gpus=2, ulysses=2)
        ),
        0.5,
    )


if __name__ == "__main__":
    main()
