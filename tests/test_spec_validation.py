"""GPU spec files with inconsistent numbers are rejected with one line naming the fields."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joulecast.errors import ClockError, JoulecastError, SpecError
from joulecast.hardware.spec import GPUSpec, gpu_from_file, gpu_ids, load_gpu


def test_every_shipped_part_loads_and_its_clock_grid_ends_at_max() -> None:
    assert len(gpu_ids()) == 9
    for gpu_id in gpu_ids():
        spec = load_gpu(gpu_id)
        clocks = spec.supported_clocks_mhz()
        assert clocks[0] == spec.min_clock_mhz
        assert clocks[-1] == pytest.approx(spec.max_clock_mhz)
        assert spec.check_clock(spec.max_clock_mhz) == spec.max_clock_mhz


def _write(tmp_path: Path, body: str, base: str = "a100-pcie-40gb") -> Path:
    f = tmp_path / "part.yaml"
    f.write_text(f"base: {base}\nid: part\n{body}\n")
    return f


# Each case: an edit of a shipped part and the field names the message must contain.
BAD_SPECS = {
    "tensor below cuda-core, same precision": (
        "tensor_tflops: {fp64: 19.5, tf32: 156, bf16: 30, fp16: 312, int8: 624}",
        ["tensor_tflops.bf16", "cuda_tflops.bf16", "below CUDA-core"],
    ),
    "tensor fp8 below cuda fp32 (no fp8 CUDA cores)": (
        "tensor_tflops: {fp8: 10}",
        ["tensor_tflops.fp8", "cuda_tflops.fp32"],
    ),
    "tensor fp64 below cuda fp64": (
        "tensor_tflops: {fp64: 5, tf32: 156, bf16: 312, fp16: 312}",
        ["tensor_tflops.fp64", "cuda_tflops.fp64"],
    ),
    "narrower tensor format slower than a wider one": (
        "tensor_tflops: {tf32: 494.7, bf16: 989.4, fp16: 989.4, fp8: 500}",
        ["tensor_tflops.fp8", "tensor_tflops.bf16", "narrower"],
    ),
    "cuda fp64 above fp32": (
        "cuda_tflops: {fp64: 30, fp32: 19.5, bf16: 39, fp16: 78}",
        ["cuda_tflops.fp64", "cuda_tflops.fp32"],
    ),
    "cuda table without fp32": ("cuda_tflops: {fp16: 78}", ["cuda_tflops", "fp32"]),
    "non-positive throughput": ("cuda_tflops: {fp32: 19.5, fp64: -1}", ["cuda_tflops.fp64"]),
    "max clock below min clock": (
        "max_clock_mhz: 200",
        ["min_clock_mhz", "max_clock_mhz"],
    ),
    "max clock below base clock": (
        "max_clock_mhz: 750\nspec_clock_mhz: 750",
        ["base_clock_mhz (765)", "max_clock_mhz (750)"],
    ),
    "spec clock above max clock": ("spec_clock_mhz: 1500", ["spec_clock_mhz"]),
    "clock range not a whole number of steps": (
        "max_clock_mhz: 1400\nspec_clock_mhz: 1400",
        ["max_clock_mhz - min_clock_mhz", "clock_step_mhz"],
    ),
    "default power limit above max limit": (
        "default_power_limit_w: 300",
        ["default_power_limit_w (300)", "max_power_limit_w (250)"],
    ),
    "default power limit below min limit": (
        "default_power_limit_w: 120",
        ["min_power_limit_w (150)", "default_power_limit_w (120)"],
    ),
    "idle at or above the lowest power limit": (
        "idle_power_w: 150",
        ["idle_power_w (150)", "min_power_limit_w (150)"],
    ),
    "idle above TDP": (
        "idle_power_w: 260\nmin_power_limit_w: 270\ndefault_power_limit_w: 280\n"
        "max_power_limit_w: 300",
        ["idle_power_w (260)", "tdp_w (250)"],
    ),
    "zero memory bandwidth": ("memory_bandwidth_gb_s: 0", ["memory_bandwidth_gb_s", "at least 1"]),
    "negative memory bandwidth": ("memory_bandwidth_gb_s: -5", ["memory_bandwidth_gb_s"]),
    "infinite memory bandwidth": ("memory_bandwidth_gb_s: .inf", ["memory_bandwidth_gb_s"]),
    "NaN throughput": ("tensor_tflops: {bf16: .nan}", ["tensor_tflops.bf16", "finite"]),
    "L2 larger than DRAM": ("l2_cache_mb: 50000", ["l2_cache_mb", "memory_capacity_gb"]),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_inconsistent_spec_names_the_fields(tmp_path: Path, case: str) -> None:
    body, fields = BAD_SPECS[case]
    with pytest.raises(SpecError) as info:
        gpu_from_file(_write(tmp_path, body))
    message = str(info.value)
    assert message.startswith("part.yaml: ")
    assert "\n" not in message
    assert "Value error" not in message
    for field in fields:
        assert field in message, message


def test_scaled_variant_is_validated_too() -> None:
    a100 = load_gpu("a100-pcie-40gb")
    with pytest.raises(SpecError, match="max_power_limit_w"):
        a100.scaled(default_power_limit_w=400)
    double_bw = a100.scaled(memory_bandwidth_gb_s=2 * a100.memory_bandwidth_gb_s)
    assert isinstance(double_bw, GPUSpec)


def test_consistent_hypothetical_parts_still_load(tmp_path: Path) -> None:
    for body in (
        "memory_bandwidth_gb_s: 6704",  # H100 with 2x HBM bandwidth
        "sm_count: 198\ntensor_tflops: {bf16: 1484, fp16: 1484, fp8: 2968}",  # 1.5x SMs
    ):
        assert gpu_from_file(_write(tmp_path, body, base="h100-sxm")).id == "part"


def test_spec_error_is_a_user_error() -> None:
    assert issubclass(SpecError, JoulecastError)
    assert issubclass(ClockError, JoulecastError)


@st.composite
def _part_and_clock(draw: st.DrawFn) -> tuple[GPUSpec, float, float]:
    spec = load_gpu(draw(st.sampled_from(gpu_ids())))
    n = len(spec.supported_clocks_mhz())
    i = draw(st.integers(0, n - 1))
    frac = draw(st.floats(0.01, 0.99))
    return spec, spec.min_clock_mhz + i * spec.clock_step_mhz, frac


@given(_part_and_clock())
def test_clock_check_accepts_the_grid_and_names_range_and_step_otherwise(
    case: tuple[GPUSpec, float, float],
) -> None:
    spec, clock, frac = case
    assert spec.check_clock(clock) == clock
    valid = (
        f"valid SM clocks are {spec.min_clock_mhz:g}-{spec.max_clock_mhz:g} MHz in "
        f"{spec.clock_step_mhz:g} MHz steps"
    )
    off_grid = clock + frac * spec.clock_step_mhz
    if off_grid < spec.max_clock_mhz:
        with pytest.raises(ClockError, match="nearest") as info:
            spec.check_clock(off_grid)
        assert valid in str(info.value)
        assert f"{clock:g} or {clock + spec.clock_step_mhz:g} MHz" in str(info.value)
    for outside in (spec.min_clock_mhz - frac * 100, spec.max_clock_mhz + frac * 100, math.nan):
        with pytest.raises(ClockError) as info:
            spec.check_clock(outside)
        assert valid in str(info.value)


def test_power_limit_is_the_settable_range() -> None:
    """The command line offers [min_power_limit_w, max_power_limit_w]; the model itself can
    evaluate down to idle (check_power_cap)."""
    a100 = load_gpu("a100-pcie-40gb")
    assert a100.check_power_limit(150) == 150 and a100.check_power_limit(250) == 250
    for cap in (100.0, 251.0, math.nan):
        with pytest.raises(ClockError, match=r"outside a100-pcie-40gb's power limits: 150-250 W"):
            a100.check_power_limit(cap)
    assert a100.check_power_cap(100) == 100
