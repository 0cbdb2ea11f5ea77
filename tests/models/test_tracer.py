"""The optional PyTorch tracer (skipped when torch is not installed)."""

from __future__ import annotations

from typing import Any

import pytest

from joulecast.workload.ir import (
    Attention,
    Conv2d,
    Copy,
    Elementwise,
    Embedding,
    Gemm,
    LayerNorm,
    Precision,
    Reduction,
    Softmax,
)

torch = pytest.importorskip("torch", reason="PyTorch not installed (extra joulecast[torch])")
nn = torch.nn

from joulecast.workload.tracer import trace_module  # noqa: E402


class TinyLM(nn.Module):  # type: ignore[misc]
    """Embedding, one pre-LN block with eager attention and an MLP, and an LM head."""

    def __init__(self, vocab: int = 100, hidden: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Embedding(vocab, hidden)
        self.ln = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.up = nn.Linear(hidden, 4 * hidden)
        self.down = nn.Linear(4 * hidden, hidden)
        self.head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, ids: Any) -> Any:
        x = self.embed(ids)
        b, s, h = x.shape
        q, k, v = self.qkv(self.ln(x)).split(h, dim=-1)
        q, k, v = (t.view(b, s, self.heads, h // self.heads).transpose(1, 2) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (h // self.heads) ** 0.5
        attn = torch.matmul(torch.softmax(scores, dim=-1), v)
        x = x + self.out(attn.transpose(1, 2).contiguous().view(b, s, h))
        x = x + self.down(torch.nn.functional.gelu(self.up(x)))
        return self.head(x)


def test_tiny_lm() -> None:
    w = trace_module(TinyLM(), torch.zeros(2, 16, dtype=torch.long), dtype=torch.bfloat16)
    tokens = 2 * 16
    linears = [g for g in w.ops if isinstance(g, Gemm) and g.batch == 1]
    assert sorted((g.m, g.n, g.k) for g in linears) == sorted(
        [
            (tokens, 192, 64),
            (tokens, 64, 64),
            (tokens, 256, 64),
            (tokens, 64, 256),
            (tokens, 100, 64),
        ]
    )
    assert all(g.precision is Precision.BF16 and g.tensor_core for g in linears)
    bmms = sorted((g.batch, g.m, g.n, g.k) for g in w.ops if isinstance(g, Gemm) and g.batch > 1)
    assert bmms == [(8, 16, 16, 16), (8, 16, 16, 16)]
    assert [type(op) for op in w.ops].count(Embedding) == 1
    assert any(isinstance(op, Softmax) and op.cols == 16 and op.rows == 8 * 16 for op in w.ops)
    assert any(isinstance(op, LayerNorm) and op.cols == 64 for op in w.ops)
    assert any(isinstance(op, Copy) for op in w.ops)  # contiguous()
    assert any(isinstance(op, Elementwise) and op.op == "gelu" for op in w.ops)
    expected = 2 * tokens * (64 * 192 + 64 * 64 + 2 * 64 * 256 + 64 * 100) + 2 * 2 * 8 * 16**3
    assert w.flops == expected


def test_cnn_and_sdpa_fp32() -> None:
    class Net(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)

        def forward(self, x: Any) -> Any:
            y = torch.relu(self.dw(self.conv(x)))
            q = y.flatten(2).transpose(1, 2).unsqueeze(1)  # (b, 1, 64, 8)
            a = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
            return a.mean(dim=-1)

    w = trace_module(Net(), torch.zeros(2, 3, 16, 16))
    convs = [op for op in w.ops if isinstance(op, Conv2d)]
    assert [(c.in_channels, c.out_channels, c.height, c.stride, c.groups) for c in convs] == [
        (3, 8, 16, 2, 1),
        (8, 8, 8, 1, 8),
    ]
    assert all(c.precision is Precision.TF32 for c in convs)
    fused = [op for op in w.ops if isinstance(op, Attention)]
    if fused:  # fused SDPA kernel on this backend
        assert fused[0].seq_q == 64 and fused[0].causal
    else:  # math fallback: two fp32 bmms on CUDA cores
        bmms = [g for g in w.ops if isinstance(g, Gemm)]
        assert len(bmms) == 2 and not any(g.tensor_core for g in bmms)
    assert any(isinstance(op, Reduction) for op in w.ops)


def test_no_op_module_is_an_error() -> None:
    from joulecast.errors import JoulecastError

    with pytest.raises(JoulecastError, match="no operator"):
        trace_module(nn.Identity(), torch.zeros(4))
