"""Saved passes: the EnergAIzer measurement row, read back by the calibration's own reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulecast.calibration.data import read_measurements
from joulecast.measure import MeasureError, measure
from joulecast.measure.fake import FakeClock, SimulatedMeter
from joulecast.measure.model_run import ModelMeasurement, ModelRequest, compare_pass
from joulecast.measure.records import (
    MEASUREMENT_COLUMNS,
    append_row,
    guess_gpu_id,
    measurement_row,
    workload_name,
)

from .conftest import tick_work


def measured_pass(
    request: ModelRequest, *, permitted: bool = True, counter: bool = True
) -> ModelMeasurement:
    """A 'pass' of 31.25 ms at 200 W on a simulated GPU, measured over 5 s at a locked 1005 MHz."""
    clock = FakeClock()
    meter = SimulatedMeter(clock, [([0.0], [200.0])], permitted=permitted, energy_counter=counter)
    m = measure(tick_work(clock, 0.03125), meter, clock=clock, min_window_s=5.0, sm_clock_mhz=1005)
    return ModelMeasurement(request, m)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA A100-PCIE-40GB", "a100-pcie-40gb"),
        ("NVIDIA A100-SXM4-40GB", "a100-sxm4-40gb"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("NVIDIA A10", "a10"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_gpu_names(name: str, expected: str | None) -> None:
    assert guess_gpu_id(name) == expected


def test_saved_rows_read_back_through_the_calibration(tmp_path: Path) -> None:
    data = tmp_path / "data"
    target = data / "energaizer" / "measurements" / "h100.csv"
    requests = [
        ModelRequest("gpt2", 8, 128),
        ModelRequest("Qwen/Qwen2-1.5B", 2, 512, attention="sdpa"),
        ModelRequest("opt-1.3b", 1, 1024, precision="fp16"),
    ]
    for req in requests:
        append_row(target, measurement_row(measured_pass(req), "h100-sxm"))
    rows = read_measurements(data, "h100")
    assert [(r.model, r.batch, r.seq, r.precision) for r in rows] == [
        ("gpt2", 8, 128, "bf16"),
        ("qwen2", 2, 512, "bf16"),
        ("opt", 1, 1024, "fp16"),
    ]
    first = rows[0]
    assert first.eager_tag and not rows[1].eager_tag
    assert first.time_s == pytest.approx(0.03125)
    assert first.energy_j == pytest.approx(200.0 * 0.03125, rel=1e-5)
    assert first.power_w == pytest.approx(200.0, rel=1e-5)
    assert first.requested_clock_mhz == 1005 == first.measured_clock_mhz
    assert first.iterations == 160 and first.valid  # 160 passes x 31.25 ms = a 5 s window
    header = target.read_text().splitlines()[0].split(",")
    assert tuple(header[:5]) == MEASUREMENT_COLUMNS
    assert {"driver", "cuda", "torch", "date", "power_limit_w", "method"} <= set(header)


def test_unlocked_runs_record_the_measured_clock(tmp_path: Path) -> None:
    mm = measured_pass(ModelRequest("gpt2", 1, 64), permitted=False, counter=False)
    row = measurement_row(mm, "h100-sxm")
    assert "_freq1410_" in row["workload"]  # the clock it ran at, not the refused 1005
    assert row["sm_clock_locked"] == "false" and row["method"] == "integrated power"


def test_workload_name_matches_the_reference_files() -> None:
    assert (
        workload_name("facebook/opt-1.3b", "bf16", 8, 128, 1140, 1252, True)
        == "optmodel_opt-1p3b_pbf16_b8_s128_modeprefill_attneager_freq1140_iter1252.csv"
    )
    assert workload_name("Qwen2-1.5B", "bf16", 1, 128, 900, 5, False).startswith(
        "qwen2model_qwen2-1p5b_pbf16_b1_s128_modeprefill_freq900"
    )


def test_save_refuses_what_the_format_cannot_hold(tmp_path: Path) -> None:
    decode = measured_pass(ModelRequest("gpt2", 1, 1, phase="decode", context=128))
    with pytest.raises(MeasureError, match="prefill passes only"):
        measurement_row(decode, "h100-sxm")
    other = tmp_path / "other.csv"
    other.write_text("workload,energy,time,avg_freq,temp,operator\n")
    row = measurement_row(measured_pass(ModelRequest("gpt2", 1, 64)), "h100-sxm")
    with pytest.raises(MeasureError, match="has unknown operator"):
        append_row(other, row)
    other.write_text("workload,energy\n")
    with pytest.raises(MeasureError, match="lacks time, avg_freq, temp"):
        append_row(other, row)


def test_appending_keeps_an_existing_five_column_header(tmp_path: Path) -> None:
    path = tmp_path / "a100.csv"
    path.write_text("workload,energy,time,avg_freq,temp\n")
    append_row(path, measurement_row(measured_pass(ModelRequest("gpt2", 1, 64)), "a100"))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[1].count(",") == 4


def test_compare_puts_the_forecast_beside_the_measurement() -> None:
    mm = measured_pass(ModelRequest("gpt2", 8, 128))
    c = compare_pass(mm, "h100-sxm")
    assert c.gpu == "h100-sxm" and c.forecast_clock_mhz == 1005  # at the locked clock
    assert c.measured_time_s == pytest.approx(0.03125)
    assert c.time_error == pytest.approx(c.forecast_time_s / 0.03125 - 1)
    d = c.to_dict()
    assert {"time_error", "energy_error", "power_error", "forecast_energy_j"} <= set(d)
    assert c.forecast_power_w == pytest.approx(c.forecast_energy_j / c.forecast_time_s)
