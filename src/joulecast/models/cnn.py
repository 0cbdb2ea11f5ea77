"""Convolutional models: torchvision ResNet-101 and HF MobileViT-small.

Eager inference launches a BatchNorm kernel after every convolution (cuDNN does not fold it in
eager mode), pooling as reductions and residual adds; the EnergAIzer tracer recorded none of
these, and recorded depthwise convolutions as dense ones (its ``dimK`` ignores ``groups``): trace
mode reproduces that, real mode uses ``groups = channels``.
"""

from __future__ import annotations

from joulecast.models.graph import EagerStyle, Emitter, attention_core
from joulecast.models.params import make_divisible
from joulecast.models.registry import ModelConfig


def _bn(e: Emitter, elements: int) -> None:
    """Inference BatchNorm: one per-channel scale-and-shift kernel (not traced)."""
    e.ew("other", elements, missed=True)


def build_resnet(cfg: ModelConfig, e: Emitter, batch: int, image_size: int) -> None:
    """torchvision ResNet (v1.5: stride on the 3x3 conv) with its classifier."""
    assert cfg.depths is not None and cfg.hidden_sizes is not None
    assert cfg.embedding_size is not None
    stem = cfg.embedding_size
    hw = e.conv(batch, cfg.num_channels, stem, image_size, 7, stride=2, padding=3)
    _bn(e, batch * stem * hw * hw)
    e.ew("relu", batch * stem * hw * hw)
    pooled = (hw + 2 - 3) // 2 + 1
    e.reduction(batch * stem * pooled * pooled, 4)  # max-pool 3x3 s2 (about 4 reads/output)
    hw = pooled
    c_in = stem
    for stage, (depth, c_out) in enumerate(zip(cfg.depths, cfg.hidden_sizes, strict=True)):
        width = c_out // 4
        for block in range(depth):
            stride = 2 if (block == 0 and stage > 0) else 1
            o1 = e.conv(batch, c_in, width, hw, 1)
            _bn(e, batch * width * o1 * o1)
            e.ew("relu", batch * width * o1 * o1)
            o2 = e.conv(batch, width, width, hw, 3, stride=stride, padding=1)
            _bn(e, batch * width * o2 * o2)
            e.ew("relu", batch * width * o2 * o2)
            o3 = e.conv(batch, width, c_out, o2, 1)
            n_out = batch * c_out * o3 * o3
            _bn(e, n_out)
            if block == 0:
                e.conv(batch, c_in, c_out, hw, 1, stride=stride)
                _bn(e, n_out)
            e.ew("pointwise_add", n_out, missed=True)
            e.ew("relu", n_out)
            c_in, hw = c_out, o3
    e.reduction(batch * c_in, hw * hw)  # adaptive average pool
    e.linear(batch, c_in, cfg.num_labels)


def _conv_layer(
    e: Emitter,
    batch: int,
    c_in: int,
    c_out: int,
    hw: int,
    k: int,
    *,
    stride: int = 1,
    groups: int = 1,
    norm: bool = True,
    act: bool = True,
) -> int:
    """MobileViTConvLayer: conv (+ BatchNorm) (+ SiLU)."""
    dense = e.trace  # the tracer costed grouped convs as dense ones
    out = e.conv(
        batch,
        c_in,
        c_out,
        hw,
        k,
        stride=stride,
        padding=(k - 1) // 2,
        groups=1 if dense else groups,
    )
    n = batch * c_out * out * out
    if norm:
        _bn(e, n)
    if act:
        e.ew("silu", n)
    return out


def _inverted_residual(
    e: Emitter, cfg: ModelConfig, batch: int, c_in: int, c_out: int, hw: int, stride: int
) -> int:
    mid = make_divisible(round(c_in * cfg.expand_ratio))
    _conv_layer(e, batch, c_in, mid, hw, 1)
    out = _conv_layer(e, batch, mid, mid, hw, 3, stride=stride, groups=mid)
    _conv_layer(e, batch, mid, c_out, out, 1, act=False)
    if stride == 1 and c_in == c_out:
        e.ew("pointwise_add", batch * c_out * out * out)
    return out


def build_mobilevit(
    cfg: ModelConfig, e: Emitter, batch: int, image_size: int, backend: str
) -> None:
    """MobileViTModel forward (stem, MobileNet stages, three MobileViT blocks, 1x1 expansion,
    global average pool)."""
    assert cfg.neck_hidden_sizes is not None and cfg.hidden_sizes is not None
    assert cfg.transformer_depths is not None and cfg.patch_size is not None
    neck = cfg.neck_hidden_sizes
    k = cfg.conv_kernel_size
    hw = _conv_layer(e, batch, cfg.num_channels, neck[0], image_size, 3, stride=2)
    hw = _inverted_residual(e, cfg, batch, neck[0], neck[1], hw, 1)
    hw = _inverted_residual(e, cfg, batch, neck[1], neck[2], hw, 2)
    for _ in range(2):
        hw = _inverted_residual(e, cfg, batch, neck[2], neck[2], hw, 1)
    area = cfg.patch_size**2
    heads = cfg.heads
    for stage, (hidden, depth) in enumerate(
        zip(cfg.hidden_sizes, cfg.transformer_depths, strict=True)
    ):
        c_in, c_out = neck[2 + stage], neck[3 + stage]
        hw = _inverted_residual(e, cfg, batch, c_in, c_out, hw, 2)
        _conv_layer(e, batch, c_out, c_out, hw, k)
        _conv_layer(e, batch, c_out, hidden, hw, 1, norm=False, act=False)
        patches = (hw // cfg.patch_size) ** 2
        seqs = batch * area
        t = seqs * patches
        e.copy(t * hidden)  # unfold: reshape + transpose copies
        e.copy(t * hidden)
        ffn = int(hidden * cfg.mlp_ratio)
        style = EagerStyle(pre=("unspecified_scalar",), repeat_kv=False)
        for _ in range(depth):
            e.layernorm(t, hidden)
            for _ in range(3):
                e.linear(t, hidden, hidden)
            attention_core(
                e,
                backend=backend,
                batch=seqs,
                seq_q=patches,
                seq_kv=patches,
                heads=heads,
                kv_heads=heads,
                head_dim=hidden // heads,
                causal=False,
                style=style,
            )
            e.linear(t, hidden, hidden)
            e.ew("pointwise_add", t * hidden)
            e.layernorm(t, hidden)
            e.linear(t, hidden, ffn)
            e.ew("silu", t * ffn)
            e.linear(t, ffn, hidden)
            e.ew("pointwise_add", t * hidden)
        e.layernorm(t, hidden)
        e.copy(t * hidden)  # fold
        e.copy(t * hidden)
        _conv_layer(e, batch, hidden, c_out, hw, 1)
        e.copy(2 * batch * c_out * hw * hw)  # cat(residual, features)
        _conv_layer(e, batch, 2 * c_out, c_out, hw, k)
    _conv_layer(e, batch, neck[5], neck[6], hw, 1)
    e.reduction(batch * neck[6], hw * hw)  # pooler: mean over H, W
