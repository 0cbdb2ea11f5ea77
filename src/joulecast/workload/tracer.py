"""Trace any ``torch.nn.Module`` into the IR on the meta device (no weights, no GPU).

Needs the optional extra ``joulecast[torch]``; torch is imported lazily, so the rest of joulecast
works without it. The module is moved to the ``meta`` device (tensors have shapes and dtypes but no
storage) and run once under a ``TorchDispatchMode`` that sees every ATen op after decomposition
of composite ops (``linear`` becomes ``mm``/``addmm``, ``matmul`` becomes ``bmm``):

* ``mm``/``addmm``/``bmm``/``baddbmm`` -> :class:`Gemm` (fp32 on CUDA cores, as PyTorch's default);
* ``convolution`` -> :class:`Conv2d` (fp32 as TF32, cuDNN's default);
* fused SDPA kernels -> :class:`Attention`; ``_softmax`` -> :class:`Softmax`;
* ``native_layer_norm`` -> :class:`LayerNorm`; ``rms_norm`` -> :class:`RMSNorm`;
* ``embedding``/``index_select``/``gather`` -> :class:`Embedding`/:class:`Copy`;
* ``clone``/``copy_``/``cat``/``stack`` -> :class:`Copy`; dtype changes -> cast;
* reductions (``mean``, ``sum``, ``amax``, ``var``, ``topk``...) -> :class:`Reduction`;
* every other op tagged pointwise -> :class:`Elementwise`. View ops launch nothing.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from joulecast.errors import JoulecastError, WorkloadError
from joulecast.workload.ir import (
    Attention,
    Conv2d,
    Copy,
    Elementwise,
    Embedding,
    Gemm,
    LayerNorm,
    Op,
    Precision,
    Reduction,
    RMSNorm,
    Softmax,
    Workload,
)


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise JoulecastError(
            "tracing a PyTorch module needs PyTorch: pip install 'joulecast[torch]'"
        ) from None


_DTYPES = {
    "torch.float32": Precision.FP32,
    "torch.float64": Precision.FP64,
    "torch.bfloat16": Precision.BF16,
    "torch.float16": Precision.FP16,
    "torch.float8_e4m3fn": Precision.FP8,
    "torch.float8_e5m2": Precision.FP8,
    "torch.int8": Precision.INT8,
}

_POINTWISE_NAMES = {
    "add": "add",
    "sub": "add",
    "rsub": "add",
    "mul": "mul",
    "div": "mul",
    "relu": "relu",
    "gelu": "gelu",
    "silu": "silu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "exp": "exp",
    "rsqrt": "rsqrt",
    "pow": "pow",
    "neg": "neg",
    "where": "where",
}

_GEMMS = {"mm", "addmm", "bmm", "baddbmm"}
_COPIES = {
    "clone",
    "copy_",
    "copy",
    "cat",
    "stack",
    "index_select",
    "gather",
    "index",
    "scatter",
    "scatter_add",
    "index_add",
    "index_copy",
    "repeat",
    "constant_pad_nd",
    "masked_fill",
    "roll",
    "flip",
}
_REDUCTIONS = {
    "mean",
    "sum",
    "amax",
    "amin",
    "max",
    "min",
    "var",
    "var_mean",
    "std",
    "prod",
    "argmax",
    "argmin",
    "topk",
    "sort",
    "cumsum",
    "logsumexp",
    "norm",
    "linalg_vector_norm",
    "max_pool2d_with_indices",
    "avg_pool2d",
    "_adaptive_avg_pool2d",
    "adaptive_avg_pool2d",
}
_ATTENTION = {
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_flash_attention_forward",
    "_efficient_attention_forward",
}


def _prec(tensor: Any) -> Precision:
    return _DTYPES.get(str(tensor.dtype), Precision.FP32)


def _numel(tensor: Any) -> int:
    return int(math.prod(int(s) for s in tensor.shape))


def _tensors(values: Any, torch: Any) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, list | tuple):
            out.extend(_tensors(v, torch))
    return out


def _convert(
    func: Any, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any, torch: Any
) -> list[Op]:
    name = str(func.overloadpacket.__name__).removesuffix("_")
    if name == "copy" and str(func.overloadpacket.__name__) == "copy_":
        name = "copy_"
    base = name.rstrip("_") if name != "copy_" else name
    ins = _tensors(args, torch) + _tensors(kwargs.values(), torch)
    outs = _tensors([out], torch) if not isinstance(out, torch.Tensor) else [out]
    if not outs:
        return []
    y = outs[0]
    if base in _GEMMS:
        a, b = (ins[1], ins[2]) if base in ("addmm", "baddbmm") else (ins[0], ins[1])
        prec = _prec(a)
        if base in ("bmm", "baddbmm"):
            batch, m, k = (int(s) for s in a.shape)
            n = int(b.shape[-1])
        else:
            batch, (m, k), n = 1, (int(s) for s in a.shape), int(b.shape[-1])
        if min(batch, m, n, k) <= 0:
            return []
        return [
            Gemm(
                m=m,
                n=n,
                k=k,
                batch=batch,
                precision=prec,
                out_precision=_prec(y),
                tensor_core=prec is not Precision.FP32,
            )
        ]
    if base == "convolution":
        x, w = ins[0], ins[1]
        if x.dim() != 4:
            raise WorkloadError(f"tracer: only 2-D convolutions are supported, got {x.dim()}-D")
        stride, padding = args[3], args[4]
        groups = int(args[8])
        prec = _prec(x)
        conv_prec = Precision.TF32 if prec is Precision.FP32 else prec
        return [
            Conv2d(
                batch=int(x.shape[0]),
                in_channels=int(x.shape[1]),
                out_channels=int(w.shape[0]),
                height=int(x.shape[2]),
                width=int(x.shape[3]),
                kernel=int(w.shape[2]),
                stride=int(stride[0]),
                padding=int(padding[0]),
                groups=groups,
                precision=conv_prec,
            )
        ]
    if base in _ATTENTION:
        q, k, v = ins[0], ins[1], ins[2]
        causal = bool(
            kwargs.get(
                "is_causal", args[4] if len(args) > 4 and isinstance(args[4], bool) else False
            )
        )
        return [
            Attention(
                batch=int(q.shape[0]),
                heads=int(q.shape[1]),
                seq_q=int(q.shape[2]),
                seq_kv=int(k.shape[2]),
                head_dim=int(q.shape[3]),
                kv_heads=int(k.shape[1]),
                head_dim_v=int(v.shape[3]),
                causal=causal,
                precision=_prec(q),
            )
        ]
    if base in ("_softmax", "softmax", "_log_softmax", "log_softmax"):
        cols = int(y.shape[-1]) if y.dim() else 1
        return [Softmax(rows=max(1, _numel(y) // max(1, cols)), cols=cols, precision=_prec(y))]
    if base in ("native_layer_norm", "layer_norm"):
        x = ins[0]
        w = ins[1] if len(ins) > 1 else None
        cols = _numel(w) if w is not None else int(x.shape[-1])
        return [LayerNorm(rows=max(1, _numel(x) // cols), cols=cols, precision=_prec(x))]
    if base in ("rms_norm", "_fused_rms_norm"):
        x = ins[0]
        cols = int(x.shape[-1])
        return [RMSNorm(rows=max(1, _numel(x) // cols), cols=cols, precision=_prec(x))]
    if base == "embedding":
        weight, idx = ins[0], ins[1]
        return [Embedding(rows=_numel(idx), width=int(weight.shape[-1]), precision=_prec(weight))]
    if base == "_to_copy" or (base == "copy_" and ins and _prec(ins[0]) is not _prec(ins[-1])):
        src = ins[-1] if base == "copy_" else ins[0]
        if _numel(y) == 0:
            return []
        if _prec(src) is _prec(y):
            return [Copy(elements=_numel(y), precision=_prec(y))]
        return [
            Elementwise(
                elements=_numel(y),
                op="cast",
                inputs=1,
                precision=_prec(src),
                out_precision=_prec(y),
            )
        ]
    if base in _COPIES:
        return [Copy(elements=_numel(y), precision=_prec(y))] if _numel(y) else []
    if base in _REDUCTIONS:
        src = ins[0] if ins else y
        rows = max(1, _numel(y))
        return [Reduction(rows=rows, cols=max(1, _numel(src) // rows), precision=_prec(src))]
    tags = getattr(func, "tags", ())
    if torch.Tag.pointwise in tags and _numel(y) > 0:
        n = _numel(y)
        full = sum(1 for t in ins if _numel(t) == n)
        op = _POINTWISE_NAMES.get(base, "other")
        if op in ("add", "mul") and full < 2:
            op = "scalar_" + op
        return [Elementwise(elements=n, op=op, inputs=max(1, full), precision=_prec(y))]
    return []  # views, metadata and factory ops launch no kernel we cost


def trace_module(
    module: Any,
    *inputs: Any,
    name: str = "traced",
    dtype: Any = None,
    forward: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> Workload:
    """Run ``module`` once on the meta device and return the kernels it launches.

    Args:
        module: a ``torch.nn.Module`` (its parameters are moved to the meta device; the
            original module is not modified when it already lives on meta).
        *inputs: example inputs (tensors are moved to meta; floating tensors cast to ``dtype``).
        name: workload name.
        dtype: optional ``torch.dtype`` for parameters and floating inputs (e.g. bfloat16).
        forward: call this instead of ``module(*inputs, **kwargs)`` (e.g. ``model.generate``).
        **kwargs: keyword inputs of the forward call.

    Returns:
        The recorded operator list.

    Raises:
        JoulecastError: torch is not installed, or the module launched no costed op.
    """
    torch = _torch()
    dispatch = importlib.import_module("torch.utils._python_dispatch")
    meta = torch.device("meta")
    module = module.to(device=meta)
    if dtype is not None:
        module = module.to(dtype=dtype)

    def to_meta(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            value = value.to(device=meta)
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype=dtype)
            return value
        if isinstance(value, list | tuple):
            return type(value)(to_meta(v) for v in value)
        return value

    args = [to_meta(v) for v in inputs]
    kw = {k: to_meta(v) for k, v in kwargs.items()}
    ops: list[Op] = []

    mode_base: Any = dispatch.TorchDispatchMode

    class _Recorder(mode_base):  # type: ignore[misc]
        def __torch_dispatch__(self, func: Any, types: Any, a: Any = (), k: Any = None) -> Any:
            k = k or {}
            out = func(*a, **k)
            ops.extend(_convert(func, a, k, out, torch))
            return out

    call = forward or module
    with torch.no_grad(), _Recorder():
        call(*args, **kw)
    if not ops:
        raise JoulecastError(f"{name}: the module launched no operator joulecast can cost")
    return Workload(name=name, ops=tuple(ops))
