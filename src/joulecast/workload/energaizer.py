"""Importer for the EnergAIzer kernel-list JSON format.

The format is a JSON list of ``[params, op_type]`` pairs in execution order (see the reference
data README). Each pair becomes one IR op; unknown op types and impossible sizes are errors that
name the file, the entry and the field. Sizes are integers (integral floats such as 64.0 count)
within physical bounds: a dimension at most :data:`~joulecast.schema.MAX_DIMENSION` (2**31), a
count of elements or rows and every tensor of an op at most
:data:`~joulecast.schema.MAX_ELEMENTS` (2**48), so that no file can overflow an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from joulecast.errors import WorkloadError
from joulecast.schema import MAX_DIMENSION, MAX_ELEMENTS, brief, integral
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
from joulecast.yamlio import load_file

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
        raise WorkloadError(f"{where}: unknown precision {brief(value)}") from None


def _int(
    params: Mapping[str, Any], key: str, where: str, *, low: int = 1, high: int = MAX_DIMENSION
) -> int:
    """Field ``key``: an integer in [``low``, ``high``] (integral floats such as 64.0 are
    accepted, as JSON writers emit them). ``high`` is MAX_DIMENSION for a dimension and
    MAX_ELEMENTS for a count of elements or rows."""
    if key not in params:
        raise WorkloadError(f"{where}: missing field '{key}'")
    value = integral(params[key])
    if value is None:
        got = brief(params[key])
        raise WorkloadError(f"{where}: field '{key}' must be an integer, got {got}")
    if value < low:
        word = "positive" if low == 1 else f"at least {low}"
        raise WorkloadError(f"{where}: field '{key}' must be {word}, got {brief(value)}")
    if value > high:
        bound = "2**31" if high == MAX_DIMENSION else "2**48" if high == MAX_ELEMENTS else ""
        raise WorkloadError(
            f"{where}: field '{key}' is {_magnitude(value)}; at most {high:,}"
            + (f" ({bound})" if bound else "")
            + " is accepted"
        )
    return value


def _magnitude(value: int) -> str:
    """A large integer, short (1e+308; integers too large for a float as a power of ten)."""
    try:
        return f"{value:.6g}"
    except OverflowError:
        return f"about 1e+{int(math.log10(value))}"


def _optional_int(params: Mapping[str, Any], key: str, where: str, default: int, low: int) -> int:
    """Field ``key`` if present and not null, else ``default``."""
    return default if params.get(key) is None else _int(params, key, where, low=low)


def _check_elements(op: Op, where: str) -> Op:
    """``op`` if each tensor it touches has at most MAX_ELEMENTS elements."""
    sizes = _tensor_sizes(op)
    largest = max(sizes)
    if largest > MAX_ELEMENTS:
        raise WorkloadError(
            f"{where}: a {op.kind} tensor of {largest:.3g} elements; at most {MAX_ELEMENTS:.3g} "
            "(2**48) per tensor is accepted"
        )
    return op


def _tensor_sizes(op: Op) -> tuple[int, ...]:
    if isinstance(op, Gemm):
        return (op.batch * op.m * op.k, op.batch * op.k * op.n, op.batch * op.m * op.n)
    if isinstance(op, Conv2d):
        g = op.as_gemm()
        image = op.batch * op.in_channels * op.height * op.width
        return (image, g.batch * g.m * g.n, g.batch * g.k * g.n)
    if isinstance(op, Attention):
        return (op.batch * op.heads * max(op.seq_q, op.seq_kv) * op.head_dim,)
    if isinstance(op, Elementwise):
        return (op.elements,)
    if isinstance(op, Softmax | LayerNorm | RMSNorm):
        return (op.rows * op.cols,)
    return (0,)


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
    dim_k = _optional_int(p, "dimK", where, c * rs * rs, low=1)
    groups = max(1, round(c * rs * rs / dim_k))
    return Conv2d(
        batch=_int(p, "b", where),
        in_channels=c,
        out_channels=_int(p, "m", where),
        height=_int(p, "hw", where),
        width=_int(p, "hw", where),
        kernel=rs,
        stride=_int(p, "stride", where),
        padding=_optional_int(p, "padding", where, 0, low=0),
        groups=groups,
        precision=prec,
        tensor_core=bool(p.get("useTensorCore", True)),
    )


def _rowwise(cls: type[Softmax] | type[LayerNorm] | type[RMSNorm]) -> Callable[..., Op]:
    def build(p: Mapping[str, Any], t: list[Any], where: str) -> Op:
        prec = _prec(p.get("prec", t[1] if len(t) > 1 else "bf16"), where)
        rows = _int(p, "batch", where, high=MAX_ELEMENTS)
        return cls(rows=rows, cols=_int(p, "dim", where), precision=prec)

    return build


def _elementwise(p: Mapping[str, Any], t: list[Any], where: str) -> Op:
    name = p.get("op", "")
    if not isinstance(name, str) or name not in _ELEMENTWISE:
        raise WorkloadError(f"{where}: unknown elementwise op {brief(name)}")
    op, inputs = _ELEMENTWISE[name]
    prec = _prec(p.get("prec", "bf16"), where)
    out = None
    if name.startswith("typecast_to_"):
        out = _prec(name.removeprefix("typecast_to_"), where)
    return Elementwise(
        elements=_int(p, "dim", where, high=MAX_ELEMENTS),
        op=op,
        inputs=inputs,
        precision=prec,
        out_precision=out,
    )


def _attention(p: Mapping[str, Any], t: list[Any], where: str) -> Op:
    heads = _int(p, "num_heads", where)
    ratio = _optional_int(p, "multi_query_ratio", where, 1, low=1)
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


def parse_energaizer(data: Any, name: str = "workload", *, origin: str | None = None) -> Workload:
    """Convert decoded EnergAIzer JSON (``[params, op_type]`` pairs) into a :class:`Workload`.

    Args:
        data: the decoded JSON.
        name: the workload's name.
        origin: where the data came from (a file name), the prefix of error messages; default
            ``name``.

    Raises:
        WorkloadError: one line naming ``origin``, the entry and the field: not a list, an
            unknown op type, a missing field, or a size that is not an integer within its bound
            (MAX_DIMENSION per dimension, MAX_ELEMENTS per tensor).
    """
    origin = origin or name
    if not isinstance(data, list):
        raise WorkloadError(f"{origin}: expected a JSON list of [params, op_type] entries")
    ops: list[Op] = []
    for i, entry in enumerate(data):
        where = f"{origin} entry {i}"
        if (
            not isinstance(entry, list | tuple)
            or len(entry) != 2
            or not isinstance(entry[0], dict)
            or not isinstance(entry[1], list | tuple)
            or not entry[1]
        ):
            raise WorkloadError(f"{where}: expected [params, op_type]")
        params, op_type = entry[0], list(entry[1])
        kind = op_type[0]
        builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
        if builder is None:
            raise WorkloadError(
                f"{where}: unknown op type {brief(kind)} (known: {', '.join(sorted(_BUILDERS))})"
            )
        try:
            op = builder(params, op_type, where)
        except WorkloadError as exc:  # the IR's own checks (e.g. a kernel larger than the input)
            if str(exc).startswith(where):
                raise
            raise WorkloadError(f"{where}: {exc}") from None
        ops.append(_check_elements(op, where))
    if not ops:
        raise WorkloadError(f"{origin}: the kernel list is empty")
    return Workload(name=name, ops=tuple(ops))


def load_energaizer(path: str | Path) -> Workload:
    """Read an EnergAIzer kernel-list JSON file into a :class:`Workload`.

    Raises:
        WorkloadError: one line naming the file (and entry): missing, unreadable, not UTF-8,
            malformed JSON, or an entry that is unknown, impossible or out of bounds.
    """
    p = Path(path)
    data = load_file(p, "workload file", WorkloadError, kind="json")
    return parse_energaizer(data, name=p.stem, origin=p.name)
