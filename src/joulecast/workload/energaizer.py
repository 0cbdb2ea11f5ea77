"""Importer for the EnergAIzer kernel-list JSON format.

The format is a JSON list of ``[params, op_type]`` pairs in execution order (see the reference
data README). Each pair becomes one IR op; unknown op types and impossible sizes are errors that
name the entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from joulecast.errors import WorkloadError
from joulecast.workload.ir import (
    Attention,
    Conv2d,
    Elementwise,
    Gemm,
    LayerNorm,
    Op,
    Precision,
    RMSNorm,
    Softmax,
    Workload,
)

# EnergAIzer elementwise op -> (IR op, number of full-size input tensors)
_ELEMENTWISE: dict[str, tuple[str, int]] = {
    "pointwise_add": ("add", 2),
    "pointwise_mul": ("mul", 2),
    "scalar_add": ("scalar_add", 1),
    "scalar_mul": ("scalar_mul", 1),
    "typecast_to_fp32": ("cast", 1),
    "typecast_to_bf16": ("cast", 1),
    "typecast_to_fp16": ("cast", 1),
    "relu": ("relu", 1),
    "gelu": ("gelu", 1),
    "silu": ("silu", 1),
    "tanh": ("tanh", 1),
    "sigmoid": ("sigmoid", 1),
    "unspecified_tensor": ("other", 2),
    "unspecified_scalar": ("other", 1),
}


def _prec(value: Any, where: str) -> Precision:
    text = str(value).lower().replace("float32", "fp32").replace("bfloat16", "bf16")
    text = text.replace("float16", "fp16")
    try:
        return Precision(text)
    except ValueError:
        raise WorkloadError(f"{where}: unknown precision '{value}'") from None


def _int(params: Mapping[str, Any], key: str, where: str) -> int:
    if key not in params:
        raise WorkloadError(f"{where}: missing field '{key}'")
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise WorkloadError(f"{where}: field '{key}' must be an integer, got {value!r}")
    if value <= 0:
        raise WorkloadError(f"{where}: field '{key}' must be positive, got {value!r}")
    return int(value)


def _gemm(p: Mapping[str, Any], t: list[Any], where: str) -> Op:
    prec = _prec(p.get("precM", "bf16"), where)
    out = _prec(p.get("precA", prec.value), where)
    tensor = bool(p.get("useTensorCore", len(t) > 1 and t[1] == "tc"))
    m, n, k = (_int(p, key, where) for key in ("dimM", "dimN", "dimK"))
    batch = _int(p, "batch", where) if "batch" in p else 1
    return Gemm(m=m, n=n, k=k, batch=batch, precision=prec, out_precision=out, tensor_core=tensor)


def _conv(p: Mapping[str, Any], t: list[Any], where: str) -> Op:
    prec = _prec(p.get("precM", "bf16"), where)
    c, rs = _int(p, "c", where), _int(p, "rs", where)
    dim_k = _int(p, "dimK", where) if "dimK" in p else c * rs * rs
    groups = max(1, round(c * rs * rs / dim_k))
    return Conv2d(
        batch=_int(p, "b", where),
        in_channels=c,
        out_channels=_int(p, "m", where),
        height=_int(p, "hw", where),
        width=_int(p, "hw", where),
        kernel=rs,
        stride=_int(p, "stride", where),
        padding=int(p.get("padding", 0)),
        groups=groups,
        precision=prec,
        tensor_core=bool(p.get("useTensorCore", True)),
    )


def _rowwise(cls: type[Softmax] | type[LayerNorm] | type[RMSNorm]) -> Callable[..., Op]:
    def build(p: Mapping[str, Any], t: list[Any], where: str) -> Op:
        prec = _prec(p.get("prec", t[1] if len(t) > 1 else "bf16"), where)
        return cls(rows=_int(p, "batch", where), cols=_int(p, "dim", where), precision=prec)

    return build


def _elementwise(p: Mapping[str, Any], t: list[Any], where: str) -> Op:
    name = str(p.get("op", ""))
    if name not in _ELEMENTWISE:
        raise WorkloadError(f"{where}: unknown elementwise op '{name}'")
    op, inputs = _ELEMENTWISE[name]
    prec = _prec(p.get("prec", "bf16"), where)
    out = None
    if name.startswith("typecast_to_"):
        out = _prec(name.removeprefix("typecast_to_"), where)
    return Elementwise(
        elements=_int(p, "dim", where), op=op, inputs=inputs, precision=prec, out_precision=out
    )


def _attention(p: Mapping[str, Any], t: list[Any], where: str) -> Op:
    heads = _int(p, "num_heads", where)
    ratio = int(p.get("multi_query_ratio", 1) or 1)
    seq = _int(p, "seq_len", where)
    return Attention(
        batch=_int(p, "batch_size", where),
        heads=heads,
        kv_heads=max(1, heads // ratio),
        seq_q=seq,
        seq_kv=seq,
        head_dim=_int(p, "head_dim", where),
        causal=bool(p.get("causal", False)),
        precision=_prec(p.get("precM", "bf16"), where),
    )


_BUILDERS: dict[str, Callable[[Mapping[str, Any], list[Any], str], Op]] = {
    "gemm": _gemm,
    "conv2d": _conv,
    "softmax": _rowwise(Softmax),
    "layernorm": _rowwise(LayerNorm),
    "rmsnorm": _rowwise(RMSNorm),
    "elementwise": _elementwise,
    "sdpa": _attention,
    "flashattention_v2": _attention,
}


def parse_energaizer(data: Any, name: str = "workload") -> Workload:
    """Convert decoded EnergAIzer JSON (``[params, op_type]`` pairs) into a :class:`Workload`."""
    if not isinstance(data, list):
        raise WorkloadError(f"{name}: expected a JSON list of [params, op_type] entries")
    ops: list[Op] = []
    for i, entry in enumerate(data):
        where = f"{name} entry {i}"
        if (
            not isinstance(entry, list | tuple)
            or len(entry) != 2
            or not isinstance(entry[0], dict)
            or not isinstance(entry[1], list | tuple)
            or not entry[1]
        ):
            raise WorkloadError(f"{where}: expected [params, op_type]")
        params, op_type = entry[0], list(entry[1])
        kind = str(op_type[0])
        builder = _BUILDERS.get(kind)
        if builder is None:
            raise WorkloadError(
                f"{where}: unknown op type '{kind}' (known: {', '.join(sorted(_BUILDERS))})"
            )
        ops.append(builder(params, op_type, where))
    if not ops:
        raise WorkloadError(f"{name}: the kernel list is empty")
    return Workload(name=name, ops=tuple(ops))


def load_energaizer(path: str | Path) -> Workload:
    """Read an EnergAIzer kernel-list JSON file into a :class:`Workload`."""
    p = Path(path)
    if not p.is_file():
        raise WorkloadError(f"workload file not found: {p}")
    text = p.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkloadError(
            f"{p.name}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    return parse_energaizer(data, name=p.stem)
