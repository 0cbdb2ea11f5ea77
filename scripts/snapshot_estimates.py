"""Write the estimate snapshot that tests/test_snapshot.py compares against.

The snapshot pins a fixed set of estimates (shipped GPUs, clocks, power caps, CUDA graphs, model
builders, a hypothetical part) so that a change meant to be a pure refactor or speed-up is
provably bit-identical. A change of physics regenerates it on purpose, in its own commit:

    python scripts/snapshot_estimates.py > tests/data/estimate_snapshot.json
"""

from __future__ import annotations

import json
from typing import Any

from joulecast import estimate, sweep
from joulecast.hardware.spec import load_gpu
from joulecast.models.build import build_workload
from joulecast.workload.example import example_workload

CASES: list[dict[str, Any]] = [
    {"workload": "example", "gpu": "a100-pcie-40gb"},
    {"workload": "example", "gpu": "a100-pcie-40gb", "sm_clock_mhz": 900},
    {"workload": "example", "gpu": "a100-pcie-40gb", "power_cap_w": 150},
    {"workload": "example", "gpu": "a10", "power_cap_w": 100},
    {"workload": "example", "gpu": "l40s"},
    {"workload": "example", "gpu": "h100-sxm", "sm_clock_mhz": 1200, "cuda_graphs": True},
    {"workload": "example", "gpu": "scaled-h100", "power_cap_w": 400},
    {
        "model": "llama-3.1-8b",
        "batch": 32,
        "phase": "decode",
        "context": 1024,
        "gpu": "h100-sxm",
        "cuda_graphs": True,
    },
    {"model": "llama-3.1-8b", "batch": 8, "seq": 512, "gpu": "a100-pcie-40gb", "power_cap_w": 200},
    {"model": "gpt2", "batch": 8, "seq": 1, "phase": "decode", "context": 1024, "gpu": "a10"},
    {"model": "bert-large", "batch": 16, "seq": 256, "gpu": "h200"},
    {
        "model": "qwen3-30b-a3b",
        "batch": 16,
        "phase": "decode",
        "context": 512,
        "gpu": "b200",
        "cuda_graphs": True,
    },
    {"model": "resnet-101", "batch": 32, "gpu": "a100-pcie-40gb", "sm_clock_mhz": 1110},
]


def _gpu(name: str) -> Any:
    if name == "scaled-h100":
        return load_gpu("h100-sxm").scaled(memory_bandwidth_gb_s=6700.0, id="scaled-h100")
    return name


def _workload(case: dict[str, Any]) -> Any:
    if case.get("workload") == "example":
        return example_workload()
    return build_workload(
        case["model"],
        batch=case["batch"],
        seq=case.get("seq"),
        phase=case.get("phase", "prefill"),
        context=case.get("context"),
    )


def snapshot() -> dict[str, Any]:
    """Every case's ``Estimate.to_dict()`` plus a small sweep."""
    out: list[dict[str, Any]] = []
    for case in CASES:
        est = estimate(
            _workload(case),
            _gpu(case["gpu"]),
            sm_clock_mhz=case.get("sm_clock_mhz"),
            power_cap_w=case.get("power_cap_w"),
            cuda_graphs=case.get("cuda_graphs", False),
        )
        out.append({"case": case, "estimate": est.to_dict()})
    points = sweep([example_workload(batch=4, seq=256)], ["a100-pcie-40gb", "h100-sxm"])
    swept = [
        [p.gpu, p.requested_clock_mhz, p.sm_clock_mhz, p.time_ms, p.energy_j, p.throttled]
        for p in points
    ]
    return {"estimates": out, "sweep": swept}


if __name__ == "__main__":
    print(json.dumps(snapshot(), indent=1, sort_keys=True))
