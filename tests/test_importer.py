import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joulecast.errors import WorkloadError
from joulecast.workload.energaizer import load_energaizer, parse_energaizer
from joulecast.workload.ir import Gemm

dims = st.integers(min_value=1, max_value=1 << 16)


@given(st.lists(st.tuples(dims, dims, dims, st.integers(1, 64)), min_size=1, max_size=20))
def test_gemm_entries_round_trip(shapes: list[tuple[int, int, int, int]]) -> None:
    data = [
        [
            {
                "batch": b,
                "dimM": m,
                "dimN": n,
                "dimK": k,
                "precM": "bf16",
                "precA": "bf16",
                "useTensorCore": True,
            },
            ["gemm", "tc", "bf16_bf16"],
        ]
        for m, n, k, b in shapes
    ]
    w = parse_energaizer(data)
    assert len(w) == len(shapes)
    for op, (m, n, k, b) in zip(w.ops, shapes, strict=True):
        assert isinstance(op, Gemm)
        assert (op.m, op.n, op.k, op.batch) == (m, n, k, b)


@given(st.integers(max_value=0))
def test_non_positive_sizes_are_rejected(bad: int) -> None:
    entry = [{"batch": 1, "dim": bad, "prec": "bf16"}, ["softmax", "bf16"]]
    with pytest.raises(WorkloadError, match="must be positive"):
        parse_energaizer([entry])


@given(
    st.text(min_size=1, max_size=30).filter(
        lambda s: (
            s
            not in {
                "gemm",
                "conv2d",
                "softmax",
                "layernorm",
                "rmsnorm",
                "elementwise",
                "sdpa",
                "flashattention_v2",
            }
        )
    )
)
def test_unknown_op_type_is_named(kind: str) -> None:
    with pytest.raises(WorkloadError, match="unknown op type"):
        parse_energaizer([[{"dim": 4}, [kind]]])


def test_truncated_json_says_where(tmp_path: Path) -> None:
    f = tmp_path / "cut.json"
    f.write_text('[[{"dim": 4, "op": "relu", "prec": "bf16"}, ["elementwise"]], [{"dim"')
    with pytest.raises(WorkloadError, match="line 1, column"):
        load_energaizer(f)


def test_shape_errors() -> None:
    with pytest.raises(WorkloadError, match="expected a JSON list"):
        parse_energaizer({"a": 1})
    with pytest.raises(WorkloadError, match="empty"):
        parse_energaizer([])
    with pytest.raises(WorkloadError, match="unknown elementwise op"):
        parse_energaizer([[{"dim": 4, "op": "frobnicate", "prec": "bf16"}, ["elementwise"]]])


def test_every_shipped_kernel_list_imports(data_dir: Path) -> None:
    files = sorted((data_dir / "energaizer" / "workloads").glob("*/*.json"))
    assert len(files) >= 90
    for f in files:
        w = load_energaizer(f)
        assert len(w) == len(json.loads(f.read_text()))
