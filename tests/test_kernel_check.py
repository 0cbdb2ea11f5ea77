"""Kernel-level accuracy report on the aiconfigurator tables (data tests skip without the data)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from joulecast.calibration import kernel_check as kc
from joulecast.coefficients import coefficients_for
from joulecast.errors import CalibrationError, DataNotFoundError
from joulecast.estimator import estimate
from joulecast.hardware import load_gpu
from joulecast.power import coefficient_vector
from joulecast.workload.ir import Attention, Copy, Elementwise, Gemm, Op, Precision, Workload

# Metrics on synthetic input


def test_error_stats_values() -> None:
    s = kc.error_stats(np.array([1.1, 0.9, 1.0, 1.5]), np.ones(4))
    assert s.n == 4
    assert s.mape == pytest.approx(17.5)
    assert s.mdape == pytest.approx(10.0)
    assert s.p90 == pytest.approx(float(np.percentile([10.0, 10.0, 0.0, 50.0], 90)))
    assert s.bias == pytest.approx(12.5)
    assert s.within10 == pytest.approx(75.0)


def test_error_stats_edge_cases() -> None:
    empty = kc.error_stats(np.array([]), np.array([]))
    assert empty.n == 0 and math.isnan(empty.mape)
    with pytest.raises(CalibrationError, match="shape mismatch"):
        kc.error_stats(np.ones(3), np.ones(2))
    with pytest.raises(CalibrationError, match="positive"):
        kc.error_stats(np.ones(2), np.array([1.0, 0.0]))


def test_nvml_sample_count_and_threshold() -> None:
    lat = np.array([10e-6, 50e-6, 0.1e-3, 0.2e-3, 1e-3, 50e-3])
    # 3,000 calls at most, 0.3 s target under 0.1 ms and 1 s above, one sample per 100 ms.
    assert kc.nvml_samples(lat).tolist() == [0, 1, 3, 6, 10, 10]
    assert kc.power_reliable(lat).tolist() == [False, False, True, True, True, True]


# Readers on synthetic files


def _write(tmp: Path, name: str, text: str) -> Path:
    d = tmp / kc.SUBDIR
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return tmp


def _table(name: str, file: str) -> kc.KernelTable:
    t = kc.table_by_name(name)
    return kc.KernelTable(t.name, file, t.kind, t.gpu, t.measured_on, t.dtype, t.power)


def test_gemm_reader_parses_and_drops_invalid(tmp_path: Path) -> None:
    csv = (
        "m,n,k,gemm_dtype,kernel_source,latency_ms\n"
        "1,4096,4096,bfloat16,x,0.02\n"
        "2048,4096,4096,bfloat16,x,0.1\n"
        "8,8,8,bfloat16,x,0\n"
    )
    base = _write(tmp_path, "g.csv", csv)
    rows = kc.read_table(_table("h100 gemm bf16", "g.csv"), base)
    assert len(rows) == 2 and rows.dropped == 1
    assert rows.ops[0] == (Gemm(1, 4096, 4096),)
    assert rows.latency_s.tolist() == pytest.approx([20e-6, 100e-6])
    assert rows.features["m"].tolist() == [1.0, 2048.0]


def test_fp8_gemm_rows_include_the_quantisation_kernel(tmp_path: Path) -> None:
    base = _write(tmp_path, "f.csv", "m,n,k,latency_ms\n16,1024,2048,0.01\n")
    rows = kc.read_table(_table("h100 gemm fp8", "f.csv"), base)
    quant, gemm = rows.ops[0]
    assert isinstance(quant, Elementwise) and quant.elements == 16 * 2048
    assert quant.out_precision is Precision.FP8
    assert gemm == Gemm(16, 1024, 2048, precision=Precision.FP8, out_precision=Precision.BF16)


def test_reader_missing_column_is_one_line_error(tmp_path: Path) -> None:
    base = _write(tmp_path, "g.csv", "m,n,latency_ms\n1,2,0.1\n")
    with pytest.raises(CalibrationError, match=r"g\.csv: missing column\(s\) k") as exc:
        kc.read_table(_table("h100 gemm bf16", "g.csv"), base)
    assert "\n" not in str(exc.value)
    base = _write(tmp_path, "p.csv", "m,n,k,latency\n1,2,3,0.1\n")
    with pytest.raises(CalibrationError, match="power, power_limit"):
        kc.read_table(_table("h200 gemm bf16", "p.csv"), base)


def test_reader_rejects_non_numbers_and_missing_files(tmp_path: Path) -> None:
    base = _write(tmp_path, "g.csv", "m,n,k,latency_ms\n1,2,3,fast\n")
    with pytest.raises(CalibrationError, match="non-number 'fast'"):
        kc.read_table(_table("h100 gemm bf16", "g.csv"), base)
    with pytest.raises(DataNotFoundError):
        kc.read_table(_table("h100 gemm bf16", "absent.csv"), base)
    with pytest.raises(CalibrationError, match="unknown kernel table"):
        kc.table_by_name("h100 gemm int4")


def test_attention_readers(tmp_path: Path) -> None:
    ctx = (
        "batch_size,isl,num_heads,num_key_value_heads,head_dim,window_size,attn_dtype,"
        "kv_cache_dtype,prefix_len,kernel_source,latency_ms\n"
        "2,1024,32,8,128,0,bfloat16,fp8,0,fa3,0.5\n"
    )
    base = _write(tmp_path, "c.csv", ctx)
    rows = kc.read_table(_table("h100 context attention", "c.csv"), base)
    write, attn = rows.ops[0]
    assert attn == Attention(2, 32, 1024, 1024, 128, kv_heads=8, precision=Precision.BF16)
    assert isinstance(write, Elementwise) and write.elements == 2 * 1024 * 8 * 128 * 2
    # H200 decode tables have no kv_len: it is isl + step.
    gen = (
        "kernel_source,batch_size,isl,num_heads,num_key_value_heads,head_dim,beam_width,"
        "attn_dtype,kv_cache_dtype,step,window_size,latency,power,power_limit\n"
        "fa,4,1,16,2,64,1,bfloat16,bfloat16,7,128,0.2,300,700\n"
    )
    base = _write(tmp_path, "d.csv", gen)
    rows = kc.read_table(_table("h200 generation attention", "d.csv"), base)
    write, attn = rows.ops[0]
    assert attn == Attention(4, 16, 1, 8, 64, kv_heads=2, window=128, paged=True)
    assert write == Copy(4 * 2 * 64 * 2)
    assert rows.power_w is not None and rows.power_w.tolist() == [300.0]
    assert kc.describe_row(rows, 0) == "b4 h16/2 d64 kv8 w128"


# Prediction


def _rows(ops: Sequence[tuple[Op, ...]], limit: float | None = None) -> kc.KernelRows:
    n = len(ops)
    return kc.KernelRows(
        table=kc.table_by_name("h200 gemm bf16"),
        ops=tuple(ops),
        latency_s=np.full(n, 1e-3),
        power_w=None,
        power_limit_w=None if limit is None else np.full(n, limit),
        features={},
        dropped=0,
    )


def test_prediction_matches_the_estimator() -> None:
    """Per-row time and power equal estimate()'s GPU-busy time and kernel power at that clock."""
    gpu = load_gpu("h200")
    ops = [(Gemm(8192, 8192, 8192),), (Gemm(1, 8192, 8192),), (Gemm(64, 64, 64),)]
    pred = kc.predict(_rows(ops), gpu)
    assert pred.gpu == "h200"
    for i, (op,) in enumerate(ops):
        est = estimate(Workload("one", (op,)), gpu, sm_clock_mhz=float(pred.clock_mhz[i]))
        assert not est.throttled
        assert pred.latency_s[i] == pytest.approx(est.gpu_busy_s, rel=1e-9)
        gap = est.time_s - est.gpu_busy_s
        kernel_power = (est.energy_j - est.idle_power_w * gap) / est.gpu_busy_s
        assert pred.power_w[i] == pytest.approx(kernel_power, rel=1e-9)
    assert pred.power_w.max() <= gpu.default_power_limit_w + 1e-9


def test_power_limit_lowers_the_clock() -> None:
    gpu = load_gpu("h200")
    ops = [(Gemm(8192, 8192, 8192),)]
    free = kc.predict(_rows(ops, limit=10_000.0), gpu)
    capped = kc.predict(_rows(ops, limit=300.0), gpu)
    assert free.clock_mhz[0] == gpu.max_clock_mhz and not free.throttled[0]
    assert capped.clock_mhz[0] < free.clock_mhz[0] and capped.throttled[0]
    assert capped.power_w[0] <= 300.0
    assert capped.latency_s[0] > free.latency_s[0]


def test_multi_kernel_rows_sum_their_kernels() -> None:
    gpu = load_gpu("h100-sxm")
    g = Gemm(256, 4096, 4096, precision=Precision.FP8)
    q = Elementwise(256 * 4096, op="cast", inputs=1, out_precision=Precision.FP8)
    big = 10_000.0
    both = kc.predict(_rows([(q, g)], limit=big), gpu)
    alone_g = kc.predict(_rows([(g,)], limit=big), gpu)
    alone_q = kc.predict(_rows([(q,)], limit=big), gpu)
    assert both.latency_s[0] == pytest.approx(alone_g.latency_s[0] + alone_q.latency_s[0])


# On the reference data (skip without it)


@pytest.mark.data
def test_every_table_parses(data_dir: Path) -> None:
    for t in kc.TABLES:
        rows = kc.read_table(t, data_dir)
        assert len(rows) > 5000, t.name
        assert rows.dropped == 0, t.name
        assert np.all(rows.latency_s > 0)
        assert (rows.power_w is not None) == t.power
        per_row = {len(r) for r in rows.ops}
        assert per_row == ({1} if t.dtype == "bf16" and t.kind == "gemm" else {2}), t.name


@pytest.mark.data
def test_report_on_a_subset(data_dir: Path) -> None:
    text = kc.kernel_report(
        data_dir, tables=["h100 gemm bf16", "h200 context attention"], max_rows=400
    )
    assert text.startswith("# Kernel-level accuracy")
    assert "| h100 gemm bf16 | h100-sxm | >= 20 us |" in text
    assert "## Power and energy on H200" in text
    assert "| h200 context attention | power | >= 0.1 ms |" in text
    assert "Subsampled: at most 400 rows per table." in text


@pytest.mark.data
def test_h200_gemm_power_is_a_forecast_within_bounds(data_dir: Path) -> None:
    """Guard: the shipped coefficients forecast H200 bf16 GEMM power (>= 0.1 ms rows, capped calls
    included) to within 10 % MAPE on a deterministic subsample (20 % when written; 7 % on all
    rows since the Hopper tensor energy was measured on capped calls: the model now holds them
    at the limit)."""
    rows = kc.subsample(kc.read_table(kc.table_by_name("h200 gemm bf16"), data_dir), 6000)
    pred = kc.predict(rows)
    assert rows.power_w is not None
    ok = kc.power_reliable(rows.latency_s)
    assert ok.sum() > 500
    assert kc.error_stats(pred.power_w[ok], rows.power_w[ok]).mape < 10.0


@pytest.mark.data
@pytest.mark.parametrize(
    ("table", "tolerance"), [("h200 gemm bf16", 0.08), ("h200 generation attention", 0.12)]
)
def test_h200_energy_per_event_at_measured_latency(
    data_dir: Path, table: str, tolerance: float
) -> None:
    """The power model alone (energy events at the measured latency) reproduces the H200 energy
    per call of settled rows (joulecast.calibration.memory_energy.power_settled), capped calls at
    the clock their latency gives: median error -4.8 % (GEMM), -9.3 % (decode attention, whose
    settled calls read more than the unsettled ones: +0.6 % over all uncapped rows when
    written)."""
    from joulecast.calibration.memory_energy import power_settled
    from joulecast.calibration.tensor_energy import solved_clocks

    rows = kc.read_table(kc.table_by_name(table), data_dir)
    sel = power_settled(rows)
    assert sel.sum() > 200
    spec = load_gpu("h200")
    coeffs = coefficients_for(spec)
    assert rows.power_w is not None and rows.power_limit_w is not None
    clock = None
    if (rows.power_w[sel] >= 0.97 * rows.power_limit_w[sel]).sum() >= 100:
        _, _, t_model = kc.events_at(rows, sel, spec, coeffs)
        clock, _, _ = solved_clocks(rows, sel, spec, t_model)
    ev, idle, _ = kc.events_at(rows, sel, spec, coeffs, clock)
    lat = rows.latency_s[sel]
    pred = ev @ coefficient_vector(coeffs.power) + idle * lat
    ratio = pred / (rows.power_w[sel] * lat)
    assert abs(float(np.median(ratio)) - 1.0) < tolerance
