"""Trace mode reproduces every EnergAIzer kernel list (GEMM shapes, FLOPs and bytes)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from joulecast.models.build import build_workload
from joulecast.models.graph import op_bytes
from joulecast.workload.energaizer import load_energaizer
from joulecast.workload.ir import Conv2d, Gemm, Op, Workload

MODELS = {
    "bertmodel_large": "bert-large-uncased",
    "gpt2model_gpt2": "gpt2",
    "optmodel_opt-1p3b": "facebook/opt-1.3b",
    "qwen2model_qwen2-1p5b": "Qwen/Qwen2-1.5B",
    "vitmodel_large": "google/vit-large-patch16-224",
    "mobilevitmodel_small": "apple/mobilevit-small",
    "resnet101_": "resnet101",
}
NAME = re.compile(r"^(?P<model>.+?)_p(?P<prec>[a-z0-9]+?)_b(?P<batch>\d+)(?:_s(?P<seq>\d+))?")


def parse_name(stem: str) -> tuple[str, str, int, int | None]:
    """(model id, precision, batch, seq) from an EnergAIzer kernel-list file name."""
    match = NAME.match(stem)
    assert match, stem
    seq = match.group("seq")
    return (
        MODELS[match.group("model")],
        match.group("prec"),
        int(match.group("batch")),
        int(seq) if seq else None,
    )


def gemm_shapes(w: Workload) -> Counter[tuple[int, int, int, int]]:
    """(batch, min(m, n), max(m, n), k) of every GEMM and implicit-GEMM convolution."""
    out: Counter[tuple[int, int, int, int]] = Counter()
    for op in w.ops:
        g = op.as_gemm() if isinstance(op, Conv2d) else op
        if isinstance(g, Gemm):
            out[(g.batch, min(g.m, g.n), max(g.m, g.n), g.k)] += 1
    return out


def canonical_ops(w: Workload) -> Counter[object]:
    """Every op, with GEMM orientation (m/n) canonicalised."""
    out: Counter[object] = Counter()
    for op in w.ops:
        key: Op | tuple[object, ...] = op
        if isinstance(op, Gemm):
            key = ("gemm", op.batch, min(op.m, op.n), max(op.m, op.n), op.k, op.precision)
        out[key] += 1
    return out


def total_bytes(w: Workload) -> float:
    return sum(op_bytes(op) for op in w.ops)


def _lists(data_dir: Path) -> list[Path]:
    folder = data_dir / "energaizer" / "workloads" / "all"
    files = sorted(folder.glob("*.json"))
    if not files:
        pytest.skip(f"no EnergAIzer kernel lists in {folder}")
    return files


def test_name_parser() -> None:
    assert parse_name("optmodel_opt-1p3b_pbf16_b8_s512_modeprefill") == (
        "facebook/opt-1.3b",
        "bf16",
        8,
        512,
    )
    assert parse_name("vitmodel_large_pbf16_b16_freq900")[2:] == (16, None)
    assert parse_name("resnet101__pbf16_b8_freq900")[0] == "resnet101"


def test_every_kernel_list_matches(data_dir: Path) -> None:
    mismatches = []
    files = _lists(data_dir)
    for path in files:
        model, prec, batch, seq = parse_name(path.stem)
        ref = load_energaizer(path)
        ours = build_workload(model, batch=batch, seq=seq, precision=prec, trace_mode=True)
        flop_delta = ours.flops / ref.flops - 1.0
        byte_delta = total_bytes(ours) / total_bytes(ref) - 1.0
        if gemm_shapes(ours) != gemm_shapes(ref):
            mismatches.append(f"{path.name}: GEMM shapes differ")
        if abs(flop_delta) > 0.02 or abs(byte_delta) > 0.02:
            mismatches.append(f"{path.name}: FLOPs {flop_delta:+.2%}, bytes {byte_delta:+.2%}")
    assert not mismatches, mismatches
    assert len(files) >= 7


def test_kernel_lists_match_op_for_op(data_dir: Path) -> None:
    """Stronger than the 2 % check: the whole op multiset is identical."""
    for path in _lists(data_dir):
        model, prec, batch, seq = parse_name(path.stem)
        ref = load_energaizer(path)
        ours = build_workload(model, batch=batch, seq=seq, precision=prec, trace_mode=True)
        assert canonical_ops(ours) == canonical_ops(ref), path.name
        assert len(ours) == len(ref), path.name


def test_comparison_can_fail(data_dir: Path) -> None:
    """A wrong shape (another batch) is detected by the same helpers."""
    path = next(p for p in _lists(data_dir) if p.name.startswith("gpt2"))
    model, prec, batch, seq = parse_name(path.stem)
    ref = load_energaizer(path)
    wrong = build_workload(model, batch=batch + 1, seq=seq, precision=prec, trace_mode=True)
    assert gemm_shapes(wrong) != gemm_shapes(ref)
    real = build_workload(model, batch=batch, seq=seq, precision=prec)
    assert canonical_ops(real) != canonical_ops(ref)  # real mode adds the untraced ops
