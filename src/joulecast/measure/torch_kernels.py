"""The PyTorch :class:`~joulecast.measure.kernels.KernelBench`: one call per kernel shape.

What one call runs (the kernel check prices the same ops,
:mod:`joulecast.calibration.kernel_check.calls`):

* GEMM bf16: ``F.linear(x, w)``, ``x`` (m, k), ``w`` (n, k); fp8: quantise the bf16 activation
  (one cast) and ``torch._scaled_mm`` with bf16 output (needs compute capability 8.9+).
* Attention: the new tokens' K and V written into the cache (two copies, as vLLM's
  ``reshape_and_cache``), then ``F.scaled_dot_product_attention`` (causal for prefill, one query
  token over the whole cache for decode), GQA without expanding K/V where PyTorch supports it.
* Norms: ``F.rms_norm`` / ``F.layer_norm`` over (tokens, hidden); pointwise: ``add``, ``mul``
  (two inputs), ``silu``, ``gelu`` (one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from joulecast.measure.kernels import CONTEXT, GEMM, GENERATION, NORM, KernelShape
from joulecast.measure.meter import MeasureError
from joulecast.measure.torch_model import import_torch


class TorchKernelBench:
    """Kernel calls in PyTorch on ``device`` (``cuda`` in practice; ``cpu`` runs for tests)."""

    def __init__(self, device: str = "cuda") -> None:
        self._torch = torch = import_torch()
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise MeasureError("no CUDA device visible to PyTorch (check CUDA_VISIBLE_DEVICES)")
        self._device = device
        self._held: list[Any] = []

    def version(self) -> str:
        """PyTorch version and its CUDA build."""
        t = self._torch
        cuda = getattr(t.version, "cuda", None)
        return f"{t.__version__} (CUDA {cuda})" if cuda else str(t.__version__)

    def unsupported(self, shape: KernelShape) -> str | None:
        """fp8 GEMMs need compute capability 8.9+ and ``torch._scaled_mm``; GQA attention
        PyTorch 2.5+, RMSNorm 2.4+."""
        t = self._torch
        version = tuple(int(p) for p in str(t.__version__).split("+")[0].split(".")[:2])
        gqa = shape.kind in (CONTEXT, GENERATION) and shape.kv_heads != shape.heads
        if gqa and version < (2, 5):
            return "GQA attention needs PyTorch 2.5 or newer (enable_gqa)"
        if shape.kind == NORM and shape.op == "rmsnorm" and version < (2, 4):
            return "RMSNorm needs PyTorch 2.4 or newer (F.rms_norm)"
        if shape.kind == GEMM and shape.dtype == "fp8":
            if not hasattr(t, "_scaled_mm") or not self._device.startswith("cuda"):
                return "fp8 GEMMs need torch._scaled_mm on a CUDA device"
            if tuple(t.cuda.get_device_capability()) < (8, 9):
                return "fp8 GEMMs need compute capability 8.9 or newer"
            if shape.k % 16 or shape.n % 16:
                return "fp8 GEMMs need k and n divisible by 16"
        return None

    def _rand(self, *shape: int) -> Any:
        t = self._torch
        x = t.randn(*shape, dtype=t.bfloat16, device=self._device)
        self._held.append(x)
        return x

    def prepare(self, shape: KernelShape) -> Callable[[], object]:
        """Allocate the operands of ``shape`` and return one call.

        Raises:
            MeasureError: the operands do not fit the device's memory.
        """
        t = self._torch
        try:
            return self._prepare(shape)
        except t.OutOfMemoryError:
            self.release()
            raise MeasureError("out of device memory") from None

    def _prepare(self, s: KernelShape) -> Callable[[], object]:
        t = self._torch
        F = t.nn.functional
        if s.kind == GEMM:
            x, w = self._rand(s.m, s.k), self._rand(s.n, s.k)
            if s.dtype == "bf16":
                return lambda: F.linear(x, w)
            wq = w.to(t.float8_e4m3fn)
            one = t.ones((), dtype=t.float32, device=self._device)
            self._held += [wq, one]
            return lambda: t._scaled_mm(
                x.to(t.float8_e4m3fn), wq.t(), scale_a=one, scale_b=one, out_dtype=t.bfloat16
            )
        if s.kind in (CONTEXT, GENERATION):
            new = s.length if s.kind == CONTEXT else 1
            q = self._rand(s.batch, s.heads, new, s.head_dim)
            k_new, v_new = (self._rand(s.batch, s.kv_heads, new, s.head_dim) for _ in range(2))
            k_cache, v_cache = (self._rand(s.batch, s.kv_heads, s.length, s.head_dim) for _ in "kv")
            gqa = {"enable_gqa": True} if s.kv_heads != s.heads else {}

            def attend() -> object:
                k_cache[:, :, -new:].copy_(k_new)
                v_cache[:, :, -new:].copy_(v_new)
                return F.scaled_dot_product_attention(
                    q, k_cache, v_cache, is_causal=s.kind == CONTEXT, **gqa
                )

            return attend
        if s.kind == NORM:
            x, weight = self._rand(s.tokens, s.hidden), self._rand(s.hidden)
            if s.op == "rmsnorm":
                return lambda: F.rms_norm(x, (s.hidden,), weight)
            return lambda: F.layer_norm(x, (s.hidden,), weight)
        a, b = self._rand(s.elements), self._rand(s.elements)
        ops: dict[str, Callable[[], object]] = {
            "add": lambda: a + b,
            "mul": lambda: a * b,
            "silu": lambda: F.silu(a),
            "gelu": lambda: F.gelu(a),
        }
        if s.op not in ops:
            raise MeasureError(f"unknown pointwise op '{s.op}' (known: {', '.join(ops)})")
        return ops[s.op]

    def sync(self) -> None:
        """``torch.cuda.synchronize`` on a CUDA device."""
        if self._device.startswith("cuda"):
            self._torch.cuda.synchronize()

    def release(self) -> None:
        """Drop the operands and return cached memory to the device."""
        self._held.clear()
        if self._device.startswith("cuda"):
            self._torch.cuda.empty_cache()
