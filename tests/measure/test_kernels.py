"""The kernel collector: its plan, and its CSV read back by the kernel check's reader."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from joulecast.calibration.kernel_check import predict, read_table
from joulecast.calibration.kernel_check.tables import collected_tables
from joulecast.errors import CalibrationError
from joulecast.measure import MeasureError
from joulecast.measure.fake import FakeClock, SimulatedKernelBench, SimulatedMeter
from joulecast.measure.kernel_table import write_table
from joulecast.measure.kernels import (
    CONTEXT,
    GEMM,
    GENERATION,
    NORM,
    POINTWISE,
    Collection,
    KernelPlan,
    KernelShape,
    collect,
    default_plan,
)

SHAPES = (
    KernelShape(GEMM, "bf16", m=16, n=4096, k=4096),
    KernelShape(GEMM, "bf16", m=4096, n=4096, k=14336),
    KernelShape(GEMM, "fp8", m=512, n=8192, k=8192),
    KernelShape(CONTEXT, batch=2, heads=32, kv_heads=8, head_dim=128, length=2048),
    KernelShape(GENERATION, batch=64, heads=32, kv_heads=8, head_dim=128, length=8192),
    KernelShape(NORM, op="rmsnorm", tokens=4096, hidden=4096),
    KernelShape(POINTWISE, op="silu", elements=2**24),
)


def run(
    shapes: tuple[KernelShape, ...] = SHAPES, **kw: object
) -> tuple[Collection, SimulatedMeter]:
    clock = FakeClock()
    meter = SimulatedMeter(clock, [([0.0], [90.0])], gpu_name="NVIDIA H200",
                           permitted=bool(kw.pop("permitted", True)))  # fmt: skip
    plan = KernelPlan(shapes, window_s=0.05, sample_period_s=0.01, **kw)  # type: ignore[arg-type]
    return collect(plan, SimulatedKernelBench(clock, meter), meter, clock=clock), meter


def test_plans_fit_their_budgets() -> None:
    full, quick = default_plan(), default_plan(quick=True)
    assert full.estimated_duration_s <= 25 * 60 and quick.estimated_duration_s <= 3 * 60
    for plan in (full, quick):
        kinds = {s.kind for s in plan.shapes}
        assert kinds == {GEMM, CONTEXT, GENERATION, NORM, POINTWISE}
        assert {s.dtype for s in plan.shapes if s.kind == GEMM} == {"bf16", "fp8"}
        assert len(set(plan.shapes)) == len(plan.shapes)
    assert default_plan(clocks_mhz=(1980, 1200)).points == 2 * len(full.shapes)


def test_collected_table_reads_back_with_the_right_values(tmp_path: Path) -> None:
    collection, _ = run()
    assert len(collection.rows) == len(SHAPES) and collection.skipped == ()
    path = tmp_path / "h200-kernels.csv"
    assert write_table(path, collection, "h200") == len(SHAPES)
    tables = {t.name: t for t in collected_tables(path)}
    assert sorted(tables) == [
        "collected context_attention (h200-kernels.csv)",
        "collected gemm bfloat16 (h200-kernels.csv)",
        "collected gemm fp8 (h200-kernels.csv)",
        "collected generation_attention (h200-kernels.csv)",
    ]
    expected = {s: (SimulatedKernelBench.latency_s(s), SimulatedKernelBench.power_w(s))
                for s in SHAPES}  # fmt: skip
    for t in tables.values():
        assert t.gpu == "h200" and t.measured_on == "NVIDIA H200" and t.power
        rows = read_table(t)
        assert rows.dropped == 0 and rows.power_w is not None and rows.power_limit_w is not None
        picked = [
            s
            for s in SHAPES
            if {"gemm": GEMM, "context": CONTEXT, "generation": GENERATION}[t.kind] == s.kind
            and (t.kind != "gemm" or t.dtype == s.dtype)
        ]
        lat = np.array([expected[s][0] for s in picked])
        power = np.array([expected[s][1] for s in picked])
        np.testing.assert_allclose(rows.latency_s, lat, rtol=1e-9)
        np.testing.assert_allclose(rows.power_w, power, rtol=1e-3)  # counter in whole mJ
        np.testing.assert_allclose(rows.power_limit_w, 400.0)
        if t.kind == "gemm":
            np.testing.assert_array_equal(rows.features["m"], [s.m for s in picked])
            np.testing.assert_array_equal(rows.features["k"], [s.k for s in picked])
        else:
            np.testing.assert_array_equal(rows.features["length"], [s.length for s in picked])
            np.testing.assert_array_equal(rows.features["kv_heads"], [8] * len(picked))
        assert len(predict(rows).latency_s) == len(picked)  # the kernel check prices them
    # Norm and pointwise rows keep their own columns (the kernel check has no table kind for them).
    text = path.read_text().splitlines()
    assert any(line.startswith("norm,joulecast_torch,") and ",rmsnorm,4096,4096," in line
               for line in text)  # fmt: skip


def test_rows_carry_energy_clock_temperature_and_method() -> None:
    collection, _ = run(SHAPES[:1], clocks_mhz=(1500.0,))
    row = collection.rows[0]
    assert row.locked_clock_mhz == 1500 == row.sm_clock_mhz
    assert row.energy_j == pytest.approx(row.power_w * row.latency_s, rel=1e-9)
    assert row.temperature_c == 55 and row.method == "energy counter"
    assert row.window_s >= 0.05 and row.calls == pytest.approx(row.window_s / row.latency_s)


def test_locked_clocks_make_their_own_tables(tmp_path: Path) -> None:
    collection, meter = run(SHAPES[:2], clocks_mhz=(1980.0, 1200.0))
    assert meter.locked_mhz == {}  # restored after each clock
    write_table(tmp_path / "k.csv", collection, "h200")
    tables = collected_tables(tmp_path / "k.csv")
    assert [t.locked_clock_mhz for t in tables] == [1980.0, 1200.0]
    assert all(len(read_table(t)) == 2 for t in tables)


def test_refused_clock_locking_is_noted_and_rows_say_unlocked() -> None:
    collection, _ = run(SHAPES[:1], clocks_mhz=(1200.0,), permitted=False)
    assert collection.rows[0].locked_clock_mhz is None
    assert any("SM clock not locked at 1200 MHz: no permission" in n for n in collection.notes)


def test_unsupported_and_out_of_memory_shapes_are_skipped() -> None:
    clock = FakeClock()
    meter = SimulatedMeter(clock)

    class Small(SimulatedKernelBench):
        def unsupported(self, shape: KernelShape) -> str | None:
            return (
                "fp8 GEMMs need compute capability 8.9 or newer" if shape.dtype == "fp8" else None
            )

        def prepare(self, shape: KernelShape):  # type: ignore[no-untyped-def]
            if shape.kind == GENERATION:
                raise MeasureError("out of device memory")
            return super().prepare(shape)

    plan = KernelPlan(SHAPES, window_s=0.02, sample_period_s=0.01)
    collection = collect(plan, Small(clock, meter), meter, clock=clock)
    assert len(collection.rows) == len(SHAPES) - 2
    assert collection.skipped == (
        "gemm fp8 512x8192x8192: fp8 GEMMs need compute capability 8.9 or newer",
        "generation_attention b64 h32/8 d128 len8192: out of device memory",
    )


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(MeasureError, match="nothing written"):
        write_table(tmp_path / "x.csv", Collection((), (), (), None), "h200")
    collection, _ = run(SHAPES[-2:])
    write_table(tmp_path / "norms.csv", collection, "h200")
    with pytest.raises(CalibrationError, match="no GEMM or attention rows"):
        collected_tables(tmp_path / "norms.csv")
    collection, _ = run(SHAPES[:1])
    write_table(tmp_path / "anon.csv", collection, "")
    with pytest.raises(CalibrationError, match="no joulecast GPU id"):
        collected_tables(tmp_path / "anon.csv")
    assert collected_tables(tmp_path / "anon.csv", gpu="h100-sxm")[0].gpu == "h100-sxm"


def test_shape_labels() -> None:
    assert [s.describe() for s in SHAPES[:1] + SHAPES[3:4] + SHAPES[-1:]] == [
        "gemm bf16 16x4096x4096",
        "context_attention b2 h32/8 d128 len2048",
        "pointwise silu 16777216",
    ]
    assert replace(SHAPES[5], tokens=1).describe() == "norm rmsnorm 1x4096"
