"""Hopper HBM energy per byte (measured on H200 kernels) and the H100 serving cross-check."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulecast.calibration.memory_energy import fit_memory_energy
from joulecast.coefficients.memory import shipped_memory_energy
from joulecast.coefficients.transfer import (
    anchored_dram_pj_per_byte,
    coefficients_for_gpu,
    physics_coefficients,
)
from joulecast.hardware.spec import load_gpu


def test_shipped_value_is_used_for_hopper_hbm_parts_only() -> None:
    measured = shipped_memory_energy()
    assert measured is not None and measured.technology == "HBM3e"
    h200 = coefficients_for_gpu(load_gpu("h200"))
    assert h200.power.dram_pj_per_byte == pytest.approx(measured.dram_pj_per_byte)
    # HBM3 costs more per bit than HBM3e: the H100 value is scaled up by 3.0 / 2.8.
    h100 = coefficients_for_gpu(load_gpu("h100-sxm"))
    assert h100.power.dram_pj_per_byte == pytest.approx(measured.dram_pj_per_byte * 3.0 / 2.8)
    # Ampere and GDDR parts keep the A100 fit scaled by pJ/bit.
    for gpu in ("a100-sxm4-80gb", "l40s"):
        spec = load_gpu(gpu)
        assert anchored_dram_pj_per_byte(spec) is None
        assert coefficients_for_gpu(spec) == physics_coefficients(spec)


def test_hopper_stream_energy_exceeds_the_pj_per_bit_scaling() -> None:
    spec = load_gpu("h100-sxm")
    assert (
        coefficients_for_gpu(spec).power.dram_pj_per_byte
        > 1.5 * physics_coefficients(spec).power.dram_pj_per_byte
    )


@pytest.mark.data
def test_fit_reproduces_the_shipped_value(data_dir: Path) -> None:
    fitted = fit_memory_energy(data_dir)
    shipped = shipped_memory_energy()
    assert shipped is not None
    assert fitted.dram_pj_per_byte == pytest.approx(shipped.dram_pj_per_byte, abs=0.01)
    assert fitted.rows >= 100
    assert fitted.p25_pj_per_byte <= fitted.dram_pj_per_byte <= fitted.p75_pj_per_byte


@pytest.mark.data
def test_serving_cross_check(data_dir: Path) -> None:
    """ML.ENERGY H100 serving is never fitted; guard the current levels against regressions:
    step time at batch <= 32 within 8 % MAPE, power bias no worse than -25 %."""
    from joulecast.calibration.serving_check import render_markdown, serving_rows, summary

    rows = serving_rows(data_dir)
    assert len(rows) >= 30
    small = [r for r in rows if r.batch <= 32]
    (step_mape, _, _), _ = summary(small)
    assert step_mape <= 8.0
    _, (_, power_bias, _) = summary(rows)
    assert -25.0 <= power_bias <= 0.0
    text = "\n".join(render_markdown(rows))
    assert "H100 serving cross-check" in text


def test_serving_rows_without_the_table(tmp_path: Path) -> None:
    from joulecast.calibration.serving_check import render_markdown, serving_rows

    assert serving_rows(tmp_path) == []
    assert render_markdown([]) == []


def test_serving_table_errors_are_one_line(tmp_path: Path) -> None:
    from joulecast.calibration.serving_check import serving_rows
    from joulecast.errors import CalibrationError

    table = tmp_path / "mlenergy" / "v3"
    table.mkdir(parents=True)
    (table / "llm.csv").write_text("task,model_id\nlm-arena-chat,x\n")
    with pytest.raises(CalibrationError, match="missing column"):
        serving_rows(tmp_path)
    header = (
        "task,model_id,architecture,weight_precision,gpu_model,num_gpus,avg_batch_size,"
        "avg_output_len,avg_power_watts,output_throughput_tokens_per_sec,energy_per_token_joules\n"
    )
    (table / "llm.csv").write_text(
        header + "lm-arena-chat,gpt2,Dense Transformer,bfloat16,H100,1,eight,300,400,900,0.4\n"
    )
    with pytest.raises(CalibrationError, match="line 2: a value is not a number"):
        serving_rows(tmp_path)
