"""Leave-one-model-out accuracy guards on the reference measurements (skip without data)."""

from pathlib import Path

import pytest

from joulecast.calibration.validate import gpu_report, mape

# The project's targets, leave-one-model-out: power ≤ 4 %, time ≤ 7 %, no model family worse
# than 8 % power. Both GPUs meet them (A100 3.93 %, A10 3.89 %; worst families BERT 7.8 %,
# ViT-L 6.9 %), so a regression past a target fails.
POWER_MAPE_BOUND = {"a10": 4.0, "a100-pcie-40gb": 4.0}
TIME_MAPE_BOUND = {"a10": 7.0, "a100-pcie-40gb": 7.0}
FAMILY_POWER_BOUND = {"a10": 8.0, "a100-pcie-40gb": 8.0}


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
def test_power_at_measured_time_is_reported_per_family(
    data_dir: Path, set_name: str, gpu: str
) -> None:
    rep = gpu_report(data_dir, set_name, gpu)
    m = rep.measured_time
    assert m is not None
    assert m.n_rows == rep.n_rows
    assert set(m.lomo_by_model) == {p.row.model for p in rep.lomo}
    assert 0.0 < m.in_sample < 100.0 and 0.0 < m.lomo < 100.0
