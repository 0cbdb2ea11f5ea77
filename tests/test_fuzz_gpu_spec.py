"""Fuzzing GPU spec files: any file gives a bounded, usable part or one SpecError.

``JOULECAST_FUZZ_EXAMPLES`` raises the number of examples per test (default 300).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from fuzzing import FUZZ, one_line
from joulecast.errors import ClockError, JoulecastError, SpecError
from joulecast.estimator import estimate
from joulecast.hardware.spec import (
    MAX_SUPPORTED_CLOCKS,
    GPUSpec,
    gpu_from_file,
    gpu_ids,
    load_gpu,
)
from joulecast.workload.energaizer import parse_energaizer
from joulecast.workload.example import example_workload

WORKLOAD = example_workload()
FIELDS = sorted(load_gpu("a100-pcie-40gb").to_dict())
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-3, max_value=1e4),
    st.integers(min_value=-(2**40), max_value=2**70),
    st.sampled_from([0, -1, 1e-300, 1e308, 1.98e12, 1e5, 1e6, 1e6 + 1, 65, 0.001]),
)
values = st.one_of(
    numbers,
    st.booleans(),
    st.none(),
    st.text(max_size=10),
    st.sampled_from(["ampere", "HOPPER", "blackwell", "HBM3", "GDDR6", "SXM"]),
    st.lists(st.one_of(numbers, st.text(max_size=4)), max_size=3),
    st.dictionaries(st.sampled_from(["bf16", "fp16", "fp32", "fp8", "fp64", "x"]), numbers),
)


def check_part(spec: GPUSpec) -> None:
    """An accepted part has a bounded clock grid, checks clocks and caps with ClockErrors, and
    gives finite estimates (or a ClockError)."""
    clocks = spec.supported_clocks_mhz()
    assert 1 <= len(clocks) <= MAX_SUPPORTED_CLOCKS
    assert all(math.isfinite(c) for c in clocks)
    for clock in (clocks[0], clocks[-1], spec.max_clock_mhz * 2, math.nan):
        try:
            spec.check_clock(clock)
        except ClockError as exc:
            assert one_line(exc)
    try:
        est = estimate(WORKLOAD, spec)
    except ClockError as exc:  # e.g. a default limit too low for the pass on a slower part
        assert one_line(exc)
        return
    for value in (est.time_ms, est.energy_j, est.avg_power_w):
        assert math.isfinite(value) and value > 0, est


def load_or_error(path: Path) -> None:
    try:
        spec = gpu_from_file(path)
    except JoulecastError as exc:
        event("rejected")
        assert one_line(exc), str(exc)
    else:
        event("accepted")
        check_part(spec)


@FUZZ
@given(
    base=st.sampled_from(gpu_ids()),
    changes=st.dictionaries(st.sampled_from(FIELDS), values, max_size=3),
)
def test_edited_parts_load_or_are_one_line_errors(
    tmp_path: Path, base: str, changes: dict[str, Any]
) -> None:
    f = tmp_path / "part.yaml"
    f.write_text(yaml.safe_dump({"base": base, **changes}))
    load_or_error(f)


@FUZZ
@given(
    base=st.sampled_from(gpu_ids()),
    scale=st.dictionaries(
        st.sampled_from([f for f in FIELDS if f.endswith(("_mhz", "_w", "_gb", "_s", "_mb"))]),
        st.one_of(
            st.floats(min_value=0.5, max_value=2.0), st.floats(min_value=1e-6, max_value=1e6)
        ),
        max_size=3,
    ),
)
def test_scaled_parts_load_or_are_one_line_errors(
    tmp_path: Path, base: str, scale: dict[str, float]
) -> None:
    """Plausible hypothetical parts: some figures of a shipped one scaled up or down."""
    data = load_gpu(base).to_dict()
    data.update({k: data[k] * v for k, v in scale.items() if data.get(k) is not None})
    f = tmp_path / "part.yaml"
    f.write_text(yaml.safe_dump(data))
    load_or_error(f)


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS)))
def test_any_mapping_loads_or_is_one_line_error(tmp_path: Path, data: dict[str, Any]) -> None:
    f = tmp_path / "part.yaml"
    f.write_text(yaml.safe_dump(data))
    load_or_error(f)


# ---- the reproducers found by fuzzing ------------------------------------------------------
def _write(tmp_path: Path, body: str, base: str = "a100-pcie-40gb") -> Path:
    f = tmp_path / "part.yaml"
    f.write_text(f"base: {base}\n{body}\n")
    return f


def test_absurd_max_clock_is_refused_at_once(tmp_path: Path) -> None:
    """max_clock_mhz: 1.98e12 made a grid of 1e11 clocks: a hang, now a one-line error."""
    with pytest.raises(SpecError, match=r"max_clock_mhz: must be at most 100,000"):
        gpu_from_file(_write(tmp_path, "max_clock_mhz: 1.98e12"))


def test_clock_grid_is_bounded(tmp_path: Path) -> None:
    f = _write(tmp_path, "clock_step_mhz: 0.001")
    with pytest.raises(SpecError) as info:
        gpu_from_file(f)
    assert "1,200,001 clocks; at most 10,000 are supported" in str(info.value)
    step = (1410 - 210) / (MAX_SUPPORTED_CLOCKS - 1)
    assert len(gpu_from_file(_write(tmp_path, f"clock_step_mhz: {step!r}")).supported_clocks_mhz())


def test_tiny_clock_step_does_not_overflow(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="at most 10,000 are supported"):
        gpu_from_file(_write(tmp_path, "clock_step_mhz: 5e-324"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sm_count: 1000000000000000000000", "sm_count: must be at most 100,000"),
        ("memory_bandwidth_gb_s: 1e308", "memory_bandwidth_gb_s: must be at most 1,000,000"),
        ("tensor_tflops: {bf16: 1e300}", "tensor_tflops.bf16 must lie within [0.001, 1,000,000]"),
        ("memory_bandwidth_gb_s: 1.6e-250", "memory_bandwidth_gb_s: must be at least 1"),
        ("tdp_w: 1.0e+9", "tdp_w: must be at most 1,000,000"),
        ("tensor_tflops: {}", "tensor_tflops needs at least one entry"),
        ("sources: [[1]]", "sources[0]: Expected `str`, got `array`"),
    ],
)
def test_sizes_beyond_physical_bounds_name_the_bound(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(SpecError) as info:
        gpu_from_file(_write(tmp_path, body))
    assert message in str(info.value)


def test_yaml_alias_bomb_is_quick(tmp_path: Path) -> None:
    """A few lines of YAML aliases expand to billions of paths: validation visits each node
    once."""
    lines = ["a0: &a0 [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(lines) + "\nbase: a100-pcie-40gb\nsources: *a8\n")
    with pytest.raises(SpecError):
        gpu_from_file(f)


WEAKEST = {
    "max_clock_mhz": 1.0,
    "base_clock_mhz": 1.0,
    "min_clock_mhz": 1.0,
    "clock_step_mhz": 1.0,
    "spec_clock_mhz": 1.0,
    "sm_count": 1,
    "tensor_tflops": {"bf16": 1e-3},
    "cuda_tflops": {"fp32": 1e-3},
    "memory_bandwidth_gb_s": 1.0,
    "memory_capacity_gb": 0.02,
    "l2_cache_mb": 0.01,
    "shared_memory_per_sm_kb": 0.01,
    "process_node_nm": 0.1,
    "idle_power_w": 1.0,
    "min_power_limit_w": 2.0,
    "default_power_limit_w": 1e6,
    "max_power_limit_w": 1e6,
    "tdp_w": 1e6,
}
STRONGEST = {
    "max_clock_mhz": 1e5,
    "base_clock_mhz": 1e5,
    "spec_clock_mhz": 1e5,
    "min_clock_mhz": 1e5 - 9_999 * 10,
    "clock_step_mhz": 10.0,
    "sm_count": 100_000,
    "tensor_tflops": {"bf16": 1e6, "fp8": 1e6},
    "cuda_tflops": {"fp32": 1e6},
    "memory_bandwidth_gb_s": 1e6,
    "memory_capacity_gb": 1e6,
    "l2_cache_mb": 1e6,
    "shared_memory_per_sm_kb": 1e6,
    "process_node_nm": 1e4,
    "default_power_limit_w": 1e6,
    "max_power_limit_w": 1e6,
    "tdp_w": 1e6,
}
LARGEST = [
    [{"dimM": 2**24, "dimN": 2**24, "dimK": 2**24}, ["gemm"]],
    [{"dimM": 2**31, "dimN": 1, "dimK": 2**17, "batch": 1}, ["gemm"]],
    [{"dim": 2**48, "op": "gelu"}, ["elementwise"]],
    [{"batch": 2**17, "dim": 2**31}, ["softmax", "fp32"]],
    [{"num_heads": 1, "seq_len": 2**31, "head_dim": 2**17, "batch_size": 1}, ["sdpa"]],
    [{"b": 1, "c": 2**16, "m": 2**16, "hw": 2**16, "rs": 1, "stride": 1}, ["conv2d"]],
    [{"dim": 1, "op": "relu"}, ["elementwise"]],
]


@pytest.mark.parametrize("extreme", [WEAKEST, STRONGEST], ids=["weakest", "strongest"])
def test_extreme_parts_on_the_largest_ops_give_finite_estimates(
    tmp_path: Path, extreme: dict[str, Any]
) -> None:
    """Every bound at once: the weakest and the strongest accepted part, each accepted op at
    its largest size (and the smallest): times, energies and powers stay finite."""
    f = tmp_path / "extreme.yaml"
    f.write_text(yaml.safe_dump({"base": "h100-sxm", **extreme}))
    spec = gpu_from_file(f)
    workload = parse_energaizer(LARGEST)
    est = estimate(workload, spec)
    for value in (est.time_ms, est.energy_j, est.avg_power_w):
        assert math.isfinite(value) and value > 0, est
    for row in est.breakdown:
        assert math.isfinite(row.time_ms) and math.isfinite(row.energy_j)
