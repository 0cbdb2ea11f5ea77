"""The collective-cost model, and its check against the aiconfigurator H100 NCCL table."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from joulecast.hardware.spec import load_gpu
from joulecast.kernels.collective import (
    Algorithm,
    Collective,
    CollectiveKind,
    collective_energy_j,
    collective_time_s,
)

H100 = load_gpu("h100-sxm")
_KINDS = {
    "all_gather": CollectiveKind.ALL_GATHER,
    "alltoall": CollectiveKind.ALL_TO_ALL,
    "reduce_scatter": CollectiveKind.REDUCE_SCATTER,
    "all_reduce": CollectiveKind.ALL_REDUCE,
}


def test_basics() -> None:
    assert collective_time_s(Collective(CollectiveKind.ALL_TO_ALL, 1e9, 1), H100) == 0.0
    small = collective_time_s(Collective(CollectiveKind.ALL_TO_ALL, 1e3, 8), H100)
    big = collective_time_s(Collective(CollectiveKind.ALL_TO_ALL, 1e9, 8), H100)
    assert 5e-6 < small < 2e-5 and big > 100 * small
    # a large message runs near the link rate: 7/8 of 1 GB at 450 GB/s x 0.68
    assert big == pytest.approx(0.875e9 / (450e9 * 0.68), rel=0.05)
    ring = Collective(CollectiveKind.ALL_REDUCE, 1e4, 8)
    assert collective_time_s(ring, H100, algorithm=Algorithm.TREE) < collective_time_s(ring, H100)
    # a PCIe card is slower than NVSwitch; link energy follows the bytes
    pcie = collective_time_s(Collective(CollectiveKind.ALL_TO_ALL, 1e9, 8), load_gpu("l40s"))
    assert pcie > 10 * big
    assert collective_energy_j(Collective(CollectiveKind.SEND_RECV, 1e9, 2), H100) == (
        pytest.approx(1e9 * 8 * 5e-12)
    )


def test_nccl_table_mape(data_dir: Path) -> None:
    path = data_dir / "aiconfigurator" / "h100_sxm_nccl_nccl_perf.csv"
    errors: dict[str, list[float]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            op = Collective(
                _KINDS[row["op_name"]], float(row["message_bytes"]), int(row["num_gpus"])
            )
            measured = float(row["latency_ms"]) * 1e-3
            errors.setdefault(row["op_name"], []).append(collective_time_s(op, H100) / measured - 1)
    every = np.abs(np.concatenate([np.array(v) for v in errors.values()]))
    assert len(every) > 1800
    assert every.mean() < 0.12  # 11.5 % (docs/diffusion.md)
    for name, values in errors.items():
        assert abs(np.mean(values)) < 0.06, name  # no collective biased
