"""Fuzzing the EnergAIzer kernel-list parser: any file gives a workload or one WorkloadError.

Each example is bounded (sizes are bounded, so nothing can hang). ``JOULECAST_FUZZ_EXAMPLES``
raises the number of examples per test (default 300), e.g. to 10,000 for a long run.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from fuzzing import FUZZ, one_line
from joulecast.errors import WorkloadError
from joulecast.estimator import estimate
from joulecast.schema import MAX_DIMENSION, MAX_ELEMENTS
from joulecast.workload.energaizer import load_energaizer, parse_energaizer
from joulecast.workload.ir import Conv2d, Gemm, Workload

OP_TYPES = ["gemm", "conv2d", "softmax", "layernorm", "rmsnorm", "elementwise", "sdpa"]
OP_TYPES += ["flashattention_v2", "warp_drive", ""]
KEYS = [
    "dimM",
    "dimN",
    "dimK",
    "batch",
    "precM",
    "precA",
    "useTensorCore",
    "b",
    "c",
    "m",
    "hw",
    "rs",
    "stride",
    "padding",
    "dim",
    "prec",
    "op",
    "num_heads",
    "multi_query_ratio",
    "seq_len",
    "head_dim",
    "batch_size",
    "causal",
]
# Sizes users and fuzzers actually write: small, at the bounds, beyond them, and not integers.
nasty_numbers = st.one_of(
    st.integers(min_value=1, max_value=4096),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, MAX_DIMENSION, MAX_DIMENSION + 1, MAX_ELEMENTS, MAX_ELEMENTS + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([64.0, 1e308, -0.0, 0.5, math.nan, math.inf]),
)
nasty_values = st.one_of(
    nasty_numbers,
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["bf16", "fp16", "fp32", "fp8", "float16", "relu", "pointwise_add", "tc"]),
    st.lists(st.integers(-4, 64), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
entries = st.tuples(
    st.dictionaries(st.sampled_from(KEYS), nasty_values, max_size=10),
    st.lists(st.one_of(st.sampled_from(OP_TYPES), nasty_values), min_size=0, max_size=3),
).map(list)
# Well-formed entries whose sizes are mostly plausible, sometimes at or beyond the bounds.
sizes = st.one_of(
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=1, max_value=4096),
    st.integers(min_value=1, max_value=2**20),
    st.sampled_from([MAX_DIMENSION, 2**24, 2**16, 7.0]),
    st.integers(min_value=1, max_value=16),
    st.integers(min_value=1, max_value=512),
    st.integers(min_value=1, max_value=8),
    nasty_numbers,
)
precisions = st.sampled_from(["bf16", "fp16", "fp32", "fp8", "float32", "tf32", "int3"])
_REQUIRED = {
    "gemm": ("dimM", "dimN", "dimK"),
    "conv2d": ("b", "c", "m", "hw", "rs", "stride"),
    "softmax": ("batch", "dim"),
    "layernorm": ("batch", "dim"),
    "rmsnorm": ("batch", "dim"),
    "elementwise": ("dim",),
    "sdpa": ("num_heads", "seq_len", "head_dim", "batch_size"),
    "flashattention_v2": ("num_heads", "seq_len", "head_dim", "batch_size"),
}
_OPTIONAL = {
    "batch": sizes,
    "padding": st.integers(0, 4),
    "multi_query_ratio": st.integers(1, 8),
    "precM": precisions,
    "prec": precisions,
    "op": st.sampled_from(["relu", "gelu", "pointwise_add", "typecast_to_fp32", "nope"]),
    "causal": st.booleans(),
    "useTensorCore": st.booleans(),
}


@st.composite
def plausible_entries(draw: st.DrawFn) -> list[Any]:
    kind = draw(st.sampled_from(sorted(_REQUIRED)))
    params = {key: draw(sizes) for key in _REQUIRED[kind]}
    optional = draw(st.lists(st.sampled_from(sorted(_OPTIONAL)), max_size=3, unique=True))
    params.update({key: draw(_OPTIONAL[key]) for key in optional if key not in params})
    return [params, [kind]]


documents = st.one_of(
    st.lists(plausible_entries(), min_size=1, max_size=6),
    st.lists(entries, max_size=6),
    st.lists(st.one_of(entries, nasty_values), max_size=4),
    nasty_values,
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def check_workload(w: Workload) -> None:
    """A parsed workload's sizes are positive ints within the bounds, and its estimate is
    finite (no NaN reaches an estimate)."""
    for op in w.ops:
        for f in fields(op):
            value = getattr(op, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            assert isinstance(value, int), (op, f.name)
            assert 0 <= value <= MAX_ELEMENTS, (op, f.name)
            if f.name != "padding":
                assert value > 0, (op, f.name)
        if isinstance(op, Gemm | Conv2d):
            assert math.isfinite(op.flops)
    est = estimate(w, "h100-sxm")
    assert all(math.isfinite(v) and v >= 0 for v in (est.time_ms, est.energy_j, est.avg_power_w))


def parse_or_error(data: Any) -> None:
    try:
        w = parse_energaizer(data, name="fuzz")
    except WorkloadError as exc:
        event("rejected")
        assert one_line(exc)
    else:
        event("parsed")
        check_workload(w)


@FUZZ
@given(documents)
def test_any_decoded_document_parses_or_is_one_line_error(data: Any) -> None:
    parse_or_error(data)


@FUZZ
@given(st.lists(plausible_entries(), min_size=1, max_size=6))
def test_plausible_kernel_lists_parse_or_are_one_line_errors(data: Any) -> None:
    parse_or_error(data)


@FUZZ
@given(json_values)
def test_any_json_value_parses_or_is_one_line_error(data: Any) -> None:
    parse_or_error(data)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200), documents.map(lambda d: json.dumps(d).encode())))
def test_any_file_loads_or_is_one_line_error(tmp_path: Path, raw: bytes) -> None:
    f = tmp_path / "w.json"
    f.write_bytes(raw)
    try:
        w = load_energaizer(f)
    except WorkloadError as exc:
        assert one_line(exc) and "w.json" in str(exc)
    else:
        check_workload(w)


# ---- the reproducers found by fuzzing ------------------------------------------------------
def _softmax(**params: Any) -> list[Any]:
    return [[{"batch": 4, "dim": 64, **params}, ["softmax", "bf16"]]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "field 'dim' must be an integer, got nan"),
        (math.inf, "field 'dim' must be an integer, got inf"),
        (1e308, "field 'dim' is 1e+308; at most 2,147,483,648 (2**31)"),
        ([64], "field 'dim' must be an integer, got [64]"),
        (True, "field 'dim' must be an integer, got True"),
        (64.5, "field 'dim' must be an integer, got 64.5"),
    ],
)
def test_energaizer_sizes_nan_huge_or_list_are_rejected(value: Any, message: str) -> None:
    with pytest.raises(WorkloadError) as info:
        parse_energaizer(_softmax(dim=value), name="w")
    assert str(info.value) == f"w entry 0: {message}" + (
        " is accepted" if "at most" in message else ""
    )


def test_energaizer_integral_floats_are_sizes() -> None:
    w = parse_energaizer(_softmax(dim=64.0))
    assert isinstance(w.ops[0].cols, int) and w.ops[0].cols == 64  # type: ignore[union-attr]


def test_energaizer_tensor_bound_names_the_bound() -> None:
    gemm = {"dimM": 2**30, "dimN": 2**30, "dimK": 2**30}
    with pytest.raises(WorkloadError, match=r"at most 2.81e\+14 \(2\*\*48\) per tensor"):
        parse_energaizer([[gemm, ["gemm"]]])


def test_energaizer_optional_fields_are_checked_too() -> None:
    conv = {"b": 1, "c": 3, "m": 8, "hw": 32, "rs": 3, "stride": 1}
    with pytest.raises(WorkloadError, match="field 'padding' must be at least 0"):
        parse_energaizer([[{**conv, "padding": -1}, ["conv2d"]]])
    with pytest.raises(WorkloadError, match="field 'padding' must be an integer"):
        parse_energaizer([[{**conv, "padding": "same"}, ["conv2d"]]])
    attention = {"num_heads": 8, "seq_len": 16, "head_dim": 64, "batch_size": 1}
    with pytest.raises(WorkloadError, match="field 'multi_query_ratio' must be positive"):
        parse_energaizer([[{**attention, "multi_query_ratio": 0}, ["sdpa"]]])


def test_energaizer_unknown_op_quotes_are_short() -> None:
    with pytest.raises(WorkloadError) as info:
        parse_energaizer([[{}, ["x" * 10_000]]])
    assert len(str(info.value)) < 300


def test_ir_errors_name_the_file_and_entry() -> None:
    conv = {"b": 1, "c": 3, "m": 8, "hw": 4, "rs": 7, "stride": 1}
    with pytest.raises(WorkloadError) as info:
        parse_energaizer([[conv, ["conv2d"]]], name="w", origin="w.json")
    assert str(info.value) == "w.json entry 0: conv2d: kernel larger than the padded input"
