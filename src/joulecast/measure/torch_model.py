"""A dense decoder in PyTorch with random weights, built from a joulecast model config.

``joulecast measure --model`` runs the model the way the reference measurements were taken
(data README, section 1): the base model (no LM head), random weights, ``torch.no_grad()``,
eager PyTorch with Hugging Face's eager attention (``q @ kᵀ``, fp32 softmax, ``@ v``) or SDPA,
Hugging Face's RMSNorm (fp32 variance) and rotary embedding. A decode step attends to a random KV
cache of ``context`` tokens (concatenated each step, as HF's dynamic cache does) without growing
it, so every measured step is the same.

Families: the dense decoders gpt2, opt, llama, qwen2, qwen3 and mistral. PyTorch (extra
``joulecast[torch]``) is imported lazily; without it the error names the extra.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

from joulecast.measure.meter import MeasureError
from joulecast.models.registry import ModelConfig

TORCH_FAMILIES = ("gpt2", "opt", "llama", "qwen2", "qwen3", "mistral")
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
_LEARNED_POSITIONS = ("gpt2", "opt")


def import_torch() -> Any:
    """``torch``, or a one-line error naming the extra."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise MeasureError(
            "measuring a model needs PyTorch: pip install 'joulecast[torch]'"
        ) from None


def torch_dtype(precision: str) -> Any:
    """The torch dtype of ``bf16``/``fp16``/``fp32``.

    Raises:
        MeasureError: another precision (fp8 models are not built in PyTorch here).
    """
    if precision not in TORCH_DTYPES:
        raise MeasureError(
            f"measure --model runs bf16, fp16 or fp32 (got '{precision}'); "
            "fp8 GEMMs are measured by `joulecast measure kernels`"
        )
    return getattr(import_torch(), TORCH_DTYPES[precision])


def build_decoder(
    cfg: ModelConfig, *, precision: str = "bf16", device: str = "cuda", attention: str = "eager"
) -> Any:
    """The base decoder of ``cfg`` as a ``torch.nn.Module`` with random weights, in eval mode.

    ``module(ids, past)`` runs one pass: ``ids`` (batch, new tokens) token ids, ``past`` a list
    of per-layer ``(k, v)`` tensors of shape (batch, kv heads, context, head dim), or ``None``.

    Raises:
        MeasureError: a family the builder does not cover, an unknown attention back end, or no
            PyTorch.
    """
    if cfg.family not in TORCH_FAMILIES:
        raise MeasureError(
            f"the PyTorch builder covers dense decoders ({', '.join(TORCH_FAMILIES)}); "
            f"{cfg.id} is a {cfg.family} model"
        )
    if attention not in ("eager", "sdpa"):
        raise MeasureError(f"measure --model runs eager or sdpa attention, not '{attention}'")
    dtype = torch_dtype(precision)
    torch = import_torch()
    with torch.device(device):
        model = _decoder_class(torch)(cfg, attention == "sdpa")
    return model.to(dtype=dtype).eval()


def random_cache(cfg: ModelConfig, batch: int, context: int, precision: str, device: str) -> Any:
    """A random KV cache of ``context`` tokens per sequence (one ``(k, v)`` per layer)."""
    torch = import_torch()
    shape = (batch, cfg.kv_heads, context, cfg.dim_head)
    dtype = torch_dtype(precision)
    return [
        (
            torch.randn(shape, dtype=dtype, device=device),
            torch.randn(shape, dtype=dtype, device=device),
        )
        for _ in range(cfg.layers)
    ]


def _decoder_class(torch: Any) -> Any:
    nn, F = torch.nn, torch.nn.functional
    module: Any = nn.Module

    class RMSNorm(module):  # type: ignore[misc]
        def __init__(self, width: int, eps: float = 1e-6) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(width))
            self.eps = eps

        def forward(self, x: Any) -> Any:
            dtype = x.dtype
            h = x.float()
            h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
            return self.weight * h.to(dtype)

    def rotate_half(x: Any) -> Any:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    class Attention(module):  # type: ignore[misc]
        def __init__(self, cfg: ModelConfig, sdpa: bool) -> None:
            super().__init__()
            self.heads, self.kv_heads, self.head_dim = cfg.heads, cfg.kv_heads, cfg.dim_head
            learned = cfg.family in _LEARNED_POSITIONS
            qkv_bias = cfg.attention_bias or learned
            self.q = nn.Linear(cfg.hidden, self.heads * self.head_dim, bias=qkv_bias)
            self.k = nn.Linear(cfg.hidden, self.kv_heads * self.head_dim, bias=qkv_bias)
            self.v = nn.Linear(cfg.hidden, self.kv_heads * self.head_dim, bias=qkv_bias)
            self.o = nn.Linear(self.heads * self.head_dim, cfg.hidden, bias=learned)
            self.qk_norm = cfg.qk_norm
            if cfg.qk_norm:
                self.q_norm, self.k_norm = RMSNorm(self.head_dim), RMSNorm(self.head_dim)
            self.rope, self.sdpa = not learned, sdpa

        def forward(self, x: Any, past: Any, pos: Any) -> Any:
            b, s, _ = x.shape
            q = self.q(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
            k = self.k(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
            v = self.v(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
            if self.qk_norm:
                q, k = self.q_norm(q), self.k_norm(k)
            if self.rope:
                half = torch.arange(0, self.head_dim, 2, device=x.device) / self.head_dim
                freqs = pos[:, None].float() / (10000.0**half)[None, :]
                emb = torch.cat((freqs, freqs), dim=-1)
                cos, sin = emb.cos().to(q.dtype), emb.sin().to(q.dtype)
                q = q * cos + rotate_half(q) * sin
                k = k * cos + rotate_half(k) * sin
            if past is not None:
                k = torch.cat((past[0], k), dim=2)
                v = torch.cat((past[1], v), dim=2)
            if self.kv_heads != self.heads:
                rep = self.heads // self.kv_heads
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            total = k.shape[2]
            mask = None
            if s > 1:
                upper = torch.ones(s, total, dtype=torch.bool, device=x.device).triu(total - s + 1)
                mask = torch.zeros(s, total, dtype=q.dtype, device=x.device)
                mask = mask.masked_fill(upper, float("-inf"))
            if self.sdpa:
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            else:
                scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
                if mask is not None:
                    scores = scores + mask
                out = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype) @ v
            return self.o(out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))

    class Mlp(module):  # type: ignore[misc]
        def __init__(self, cfg: ModelConfig) -> None:
            super().__init__()
            self.gated = cfg.family not in _LEARNED_POSITIONS
            bias = not self.gated
            self.up = nn.Linear(cfg.hidden, cfg.ffn, bias=bias)
            self.down = nn.Linear(cfg.ffn, cfg.hidden, bias=bias)
            if self.gated:
                self.gate = nn.Linear(cfg.hidden, cfg.ffn, bias=False)
            self.act_name = cfg.hidden_act

        def act(self, x: Any) -> Any:
            if self.act_name == "relu":
                return F.relu(x)
            if self.act_name.startswith("gelu"):  # gelu_new / gelu_pytorch_tanh: tanh form
                return F.gelu(x, approximate="none" if self.act_name == "gelu" else "tanh")
            return F.silu(x)

        def forward(self, x: Any) -> Any:
            if self.gated:
                return self.down(self.act(self.gate(x)) * self.up(x))
            return self.down(self.act(self.up(x)))

    class Block(module):  # type: ignore[misc]
        def __init__(self, cfg: ModelConfig, sdpa: bool) -> None:
            super().__init__()
            norm = nn.LayerNorm if cfg.family in _LEARNED_POSITIONS else RMSNorm
            self.norm1, self.norm2 = norm(cfg.hidden), norm(cfg.hidden)
            self.attn, self.mlp = Attention(cfg, sdpa), Mlp(cfg)

        def forward(self, x: Any, past: Any, pos: Any) -> Any:
            x = x + self.attn(self.norm1(x), past, pos)
            return x + self.mlp(self.norm2(x))

    class Decoder(module):  # type: ignore[misc]
        def __init__(self, cfg: ModelConfig, sdpa: bool) -> None:
            super().__init__()
            self.embed = nn.Embedding(cfg.vocab, cfg.hidden)
            self.learned = learned = cfg.family in _LEARNED_POSITIONS
            if learned:
                self.positions = nn.Embedding(cfg.max_position_embeddings or 2048, cfg.hidden)
            self.blocks = nn.ModuleList(Block(cfg, sdpa) for _ in range(cfg.layers))
            self.norm = nn.LayerNorm(cfg.hidden) if learned else RMSNorm(cfg.hidden)

        def forward(self, ids: Any, past: Any = None) -> Any:
            start = 0 if past is None else past[0][0].shape[2]
            pos = torch.arange(start, start + ids.shape[1], device=ids.device)
            x = self.embed(ids)
            if self.learned:
                # GPT-2 and OPT run beyond their table in the reference runs: wrap (same cost).
                x = x + self.positions(pos % self.positions.num_embeddings)
            for i, block in enumerate(self.blocks):
                x = block(x, None if past is None else past[i], pos)
            return self.norm(x)

    return Decoder
