"""Hopper HBM energy per byte (measured on H200 kernels) and the H100 serving cross-check."""
# The tensor energy and the H100 V(f) are tested in test_hopper.py.

from __future__ import annotations

from pathlib import Path

import pytest

from joulecast.calibration.tensor_energy import fit_hopper_energies
from joulecast.coefficients.memory import shipped_memory_energy
from joulecast.coefficients.tensor import shipped_tensor_energy
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
def test_fit_reproduces_the_shipped_values(data_dir: Path) -> None:
    """The HBM and tensor energies are measured together (each with the other taken off)."""
    memory, tensor = fit_hopper_energies(data_dir)
    shipped = shipped_memory_energy()
    shipped_tc = shipped_tensor_energy()
    assert shipped is not None and shipped_tc is not None
    assert memory.dram_pj_per_byte == pytest.approx(shipped.dram_pj_per_byte, abs=0.01)
    assert tensor.tensor_pj_per_flop == pytest.approx(shipped_tc.tensor_pj_per_flop, abs=1e-4)
    assert memory.rows >= 100 and tensor.rows >= 1000
    assert memory.p25_pj_per_byte <= memory.dram_pj_per_byte <= memory.p75_pj_per_byte
    # Settled rows only: the quartiles sit within 10 % of the median (the low group of calls
    # measured right after a short one, 295-381 W, is gone).
    assert memory.p75_pj_per_byte - memory.p25_pj_per_byte < 0.2 * memory.dram_pj_per_byte


@pytest.mark.data
def test_serving_cross_check(data_dir: Path) -> None:
    """ML.ENERGY H100 serving is never fitted; guard the current levels against regressions:
    step time at batch <= 32 within 8 % MAPE, power bias between -12 and 0 % (-17.4 % before
    the Hopper tensor energy, V(f) and settled H200 rows; -8.7 % after)."""
    from joulecast.calibration.serving_check import render_markdown, serving_rows, summary

    rows = serving_rows(data_dir)
    assert len(rows) >= 30
    small = [r for r in rows if r.batch <= 32]
    (step_mape, _, _), _ = summary(small)
    assert step_mape <= 8.0
    _, (_, power_bias, _) = summary(rows)
    assert -12.0 <= power_bias <= 0.0
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
