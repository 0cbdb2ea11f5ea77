"""VAE decoders: latents to pixels, as diffusers runs them in bf16 (NCHW tensors).

* ``kl2d`` (AutoencoderKL of SD/SDXL/SD3/FLUX): conv_in, a middle block (two ResNet blocks
  around a single-head attention over the image), then one stage per width from the lowest
  resolution up, each ``blocks_per_stage`` ResNet blocks and (but the last) a nearest x2
  upsample with a 3×3 conv; GroupNorm + SiLU + conv_out.
* ``dcae`` (SANA's DC-AE): the three low-resolution stages are EfficientViT blocks (1×1 qkv
  conv, 5×5 depthwise multi-scale aggregation, ReLU linear attention in fp32, GLUMBConv), the
  high-resolution ones residual blocks of two 3×3 convs; RMS norms; upsampling by
  interpolation and a 3×3 conv.
* ``causal3d`` (Wan, CogVideoX, HunyuanVideo): the kl2d layout with 3×3×3 causal convolutions;
  the first ``temporal_upsample_stages`` upsamples also double the frames (``t → 2t - 1``).

A 3-D convolution with a ``k``-deep temporal kernel is costed as the 2-D implicit GEMM of the
same shape (``M = frames·H·W``, ``K = c_in·k·3·3``): the input is read ``k`` times from L2.
GroupNorm is PyTorch's two launches: per-group moments (one CTA per batch·group row), then
the normalisation. Decoding the whole latent at once (no tiling) is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

from joulecast.diffusion.blocks import fp32_gemm
from joulecast.diffusion.registry import VaeSpec
from joulecast.models.graph import Emitter, numerics_for
from joulecast.workload.ir import Attention, Conv2d, Elementwise, Gemm, Op, Precision, Reduction

GROUPS = 32


@dataclass
class _Decoder:
    e: Emitter
    batch: int
    temporal: int  # temporal kernel depth (1 for 2-D)

    def conv(self, frames: int, c_in: int, c_out: int, hw: tuple[int, int], k: int = 3) -> None:
        kt = self.temporal if k == 3 else 1
        self.e.ops.append(
            Conv2d(
                batch=self.batch * frames,
                in_channels=c_in * kt,
                out_channels=c_out,
                height=hw[0],
                width=hw[1],
                kernel=k,
                padding=k // 2,
            )
        )

    def group_norm(self, frames: int, c: int, hw: tuple[int, int], *, silu: bool = True) -> None:
        n = self.batch * frames * c * hw[0] * hw[1]
        groups = min(GROUPS, c)
        self.e.ops.append(Reduction(rows=self.batch * groups, cols=n // (self.batch * groups)))
        self.e.ops.append(Elementwise(elements=n, op="other", inputs=1))
        if silu:
            self.e.ew("silu", n)

    def resnet(self, frames: int, c_in: int, c_out: int, hw: tuple[int, int]) -> None:
        self.group_norm(frames, c_in, hw)
        self.conv(frames, c_in, c_out, hw)
        self.group_norm(frames, c_out, hw)
        self.conv(frames, c_out, c_out, hw)
        if c_in != c_out:
            self.conv(frames, c_in, c_out, hw, k=1)
        self.e.ew("pointwise_add", self.batch * frames * c_out * hw[0] * hw[1])

    def attention(self, sequences: int, tokens: int, c: int, *, causal: bool = False) -> None:
        n = sequences * tokens
        self.group_norm(1, c, (n // self.batch, 1), silu=False)
        for _ in range(3):
            self.e.linear(n, c, c)
        self.e.attention(
            Attention(
                batch=sequences, heads=1, seq_q=tokens, seq_kv=tokens, head_dim=c, causal=causal
            )
        )
        self.e.linear(n, c, c)
        self.e.ew("pointwise_add", n * c)

    def upsample(self, frames: int, c: int, hw: tuple[int, int]) -> None:
        self.e.copy(self.batch * frames * c * hw[0] * hw[1] * 4)  # nearest x2


def build_vae_decoder(
    v: VaeSpec, *, batch: int, latent_frames: int, latent_hw: tuple[int, int]
) -> tuple[Op, ...]:
    """The launches of one decode of ``batch`` latents (``latent_frames`` is 1 for images)."""
    d = _Decoder(Emitter(numerics_for("bf16")), batch, 3 if v.kind == "causal3d" else 1)
    if v.kind == "dcae":
        _dcae(d, v, latent_hw)
        return tuple(d.e.ops)
    widths = list(reversed(v.channels))
    t, hw = latent_frames, latent_hw
    d.conv(t, v.latent_channels, widths[0], hw)
    d.resnet(t, widths[0], widths[0], hw)
    if v.mid_attention == "video":
        d.attention(batch, t * hw[0] * hw[1], widths[0], causal=True)
    elif v.mid_attention != "none":  # one image, or each frame
        d.attention(batch * t, hw[0] * hw[1], widths[0])
    d.resnet(t, widths[0], widths[0], hw)
    c_prev = widths[0]
    for i, c in enumerate(widths):
        for j in range(v.blocks_per_stage):
            d.resnet(t, c_prev if j == 0 else c, c, hw)
        c_prev = c
        if i < len(widths) - 1:
            if i < v.temporal_upsample_stages:
                t = 2 * t - 1
            d.upsample(t, c, hw)
            hw = (2 * hw[0], 2 * hw[1])
            d.conv(t, c, c, hw)
    d.group_norm(t, c_prev, hw)
    d.conv(t, c_prev, 3, hw)
    return tuple(d.e.ops)


def _dcae(d: _Decoder, v: VaeSpec, hw: tuple[int, int]) -> None:
    widths = list(reversed(v.channels))
    b = d.batch
    d.conv(1, v.latent_channels, widths[0], hw)
    d.e.ew("pointwise_add", b * widths[0] * hw[0] * hw[1])  # channel-repeat shortcut
    for i, c in enumerate(widths):
        if i > 0:
            d.upsample(1, widths[i - 1], (hw[0] // 2, hw[1] // 2))
            d.conv(1, widths[i - 1], c, hw)
            d.e.ew("pointwise_add", b * c * hw[0] * hw[1])  # pixel-shuffle shortcut
        for _ in range(v.blocks_per_stage):
            if i < v.attention_stages:
                _efficientvit(d, c, hw)
            else:
                _dc_resblock(d, c, hw)
        if i < len(widths) - 1:
            hw = (2 * hw[0], 2 * hw[1])
    n = b * widths[-1] * hw[0] * hw[1]
    d.e.rmsnorm(n // widths[-1], widths[-1])
    d.e.ew("relu", n)
    d.conv(1, widths[-1], 3, hw)


def _channel_rmsnorm(d: _Decoder, c: int, hw: tuple[int, int]) -> None:
    n = d.batch * c * hw[0] * hw[1]
    d.e.copy(n)  # NCHW -> NHWC
    d.e.rmsnorm(n // c, c)
    d.e.copy(n)


def _dc_resblock(d: _Decoder, c: int, hw: tuple[int, int]) -> None:
    n = d.batch * c * hw[0] * hw[1]
    d.conv(1, c, c, hw)
    d.e.ew("silu", n)
    d.conv(1, c, c, hw)
    _channel_rmsnorm(d, c, hw)
    d.e.ew("pointwise_add", n)


def _efficientvit(d: _Decoder, c: int, hw: tuple[int, int]) -> None:
    b, dim = d.batch, 32
    tokens = hw[0] * hw[1]
    n = b * c * tokens
    f32 = Precision.FP32
    d.conv(1, c, 3 * c, hw, k=1)
    d.e.ops.append(Elementwise(elements=3 * n, op="other", inputs=1))  # 5x5 depthwise
    d.e.ops.append(Gemm(m=b * tokens, n=dim, k=dim, batch=3 * c // dim))  # grouped 1x1
    d.e.copy(6 * n)  # cat(qkv, multi-scale qkv)
    heads = 2 * c // dim
    d.e.ew("relu", 4 * n)
    d.e.cast(6 * n, Precision.BF16, f32)
    d.e.copy(b * heads * (dim + 1) * tokens, f32)  # pad v
    for m, nn, k in ((dim + 1, dim, tokens), (dim + 1, tokens, dim)):
        d.e.ops.append(fp32_gemm(b * heads, m, nn, k))
    d.e.ew("unspecified_tensor", 2 * n, prec=f32)
    d.e.cast(2 * n, f32, Precision.BF16)
    d.conv(1, 2 * c, c, hw, k=1)
    _channel_rmsnorm(d, c, hw)
    d.e.ew("pointwise_add", n)
    # GLUMBConv, expand ratio 4
    d.conv(1, c, 8 * c, hw, k=1)
    d.e.ew("silu", 8 * n)
    d.e.ops.append(Elementwise(elements=8 * n, op="other", inputs=1))  # 3x3 depthwise
    d.e.ew("silu", 4 * n)
    d.e.ew("pointwise_mul", 4 * n)
    d.conv(1, 4 * c, c, hw, k=1)
    _channel_rmsnorm(d, c, hw)
    d.e.ew("pointwise_add", n)
