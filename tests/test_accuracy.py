"""Leave-one-model-out accuracy guards on the reference measurements (skip without data)."""

from pathlib import Path

import pytest

from joulecast.calibration.validate import gpu_report, mape

# A10 meets the project target (4 % power); the A100 does not, so its bound guards the
# current level (4.67 %) against regressions.
POWER_MAPE_BOUND = {"a10": 4.0, "a100-pcie-40gb": 4.8}
TIME_MAPE_BOUND = {"a10": 7.0, "a100-pcie-40gb": 7.0}
# Worst model family's power MAPE: the target is 8 % on both. The A10 meets it (ResNet-101
# 7.9 %); the A100's bound guards its current level (BERT 10.5 %).
FAMILY_POWER_BOUND = {"a10": 8.0, "a100-pcie-40gb": 11.0}


@pytest.mark.parametrize(("set_name", "gpu"), [("a10", "a10"), ("a100", "a100-pcie-40gb")])
def test_lomo_power_mape(data_dir: Path, set_name: str, gpu: str) -> None:
    rep = gpu_report(data_dir, set_name, gpu)
    time_mape, power_mape, _ = mape(rep.lomo)
    assert power_mape <= POWER_MAPE_BOUND[gpu]
    assert rep.n_rows >= 60
    assert time_mape <= TIME_MAPE_BOUND[gpu]
    families = {p.row.model for p in rep.lomo}
    worst = max(mape([p for p in rep.lomo if p.row.model == m])[1] for m in families)
    assert worst <= FAMILY_POWER_BOUND[gpu]


def test_dvfs_leave_model_out(data_dir: Path) -> None:
    """DVFS rows of held-out models, throttled ones included: the issue's targets."""
    from joulecast.calibration.validate import dvfs_report

    rep = dvfs_report(data_dir)
    time_mape, power_mape, energy_mape = mape(rep.lomo)
    assert len(rep.lomo) >= 100
    assert time_mape <= 8.0
    assert energy_mape <= 8.0
    assert power_mape <= 5.0


@pytest.mark.parametrize(("set_name", "gpu"), [("a10", "a10"), ("a100", "a100-pcie-40gb")])
def test_power_bound_is_reported_per_family(data_dir: Path, set_name: str, gpu: str) -> None:
    """The oracle bound covers every held-out family and never beats its own in-sample fit."""
    rep = gpu_report(data_dir, set_name, gpu)
    assert rep.bound is not None
    assert rep.bound.n_rows == rep.n_rows
    assert set(rep.bound.lomo_by_model) == {p.row.model for p in rep.lomo}
    assert 0.0 < rep.bound.in_sample <= rep.bound.lomo < 100.0
