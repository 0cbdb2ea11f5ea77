"""One denoiser pass on one GPU, per family, as diffusers (and xDiT) launch it in eager bf16.

``tokens`` are the image or video tokens of the whole batch element (split over the GPUs),
``text`` the text tokens the denoiser attends to (replicated on every GPU). Families:

* ``mmdit`` (SD3/SD3.5): text and image streams with their own weights, joint attention;
  SD3.5-medium's first blocks add an image-only attention. The last block has no text output.
* ``flux`` / ``hunyuan_video``: double-stream joint blocks (with RoPE), then single-stream
  blocks over the concatenated tokens (q, k, v and the MLP's input projection side by side, one
  output projection); HunyuanVideo first refines the text tokens with two small blocks.
* ``pixart``: adaLN-single DiT, self-attention, cross-attention to T5, GELU MLP.
* ``hunyuan_dit``: DiT with LayerNorm q/k, 2-D RoPE, cross-attention, long skips in the second
  half (concat, linear, LayerNorm).
* ``sana``: ReLU linear self-attention (fp32), softmax cross-attention, GLUMBConv feed-forward
  (1×1 conv, depthwise 3×3, gated, 1×1 conv) on the NCHW image.
* ``wan``: fp32 LayerNorms and residuals, RMS q/k norm, 3-D RoPE, cross-attention to umT5.
* ``cogvideox``: text and video tokens concatenated through shared weights (expert adaLN).
"""

from __future__ import annotations

from collections.abc import Callable

from joulecast.diffusion.blocks import Graph, Parallel
from joulecast.diffusion.registry import DenoiserSpec
from joulecast.workload.ir import Conv2d, Elementwise, LayerNorm, Precision


def build_denoiser(
    d: DenoiserSpec, *, batch: int, tokens: int, text: int, grid: tuple[int, int], par: Parallel
) -> Graph:
    """One denoiser pass of ``batch`` samples on one of ``par.gpus`` GPUs.

    Args:
        d: the denoiser.
        batch: samples in the pass (classifier-free guidance already applied).
        tokens: image/video tokens per sample (all GPUs together).
        text: text tokens per sample.
        grid: latent (rows, columns) of one frame in tokens (SANA's convolutions).
        par: the sequence-parallel layout.
    """
    joint = d.family in ("mmdit", "flux", "hunyuan_video", "cogvideox")
    g = Graph(par, text if joint else 0)
    _BUILDERS[d.family](g, d, batch, tokens, text, grid)
    return g


def _embed(g: Graph, d: DenoiserSpec, batch: int, tokens: int, text: int, extra: int = 0) -> int:
    """Patch, text and timestep embeddings; returns this GPU's tokens per sample."""
    mine = g.local(tokens)
    g.patchify(batch * mine, d.in_channels * d.patch * d.patch * d.patch_t, d.hidden)
    g.e.linear(batch * g.local_text(text), d.text_dim, d.hidden)
    g.time_embedding(batch, d.hidden, extra)
    return mine


def _finish(g: Graph, d: DenoiserSpec, batch: int, mine: int) -> None:
    h = d.hidden
    g.adaln(batch, h, 2)
    g.modulated_norm(batch * mine, h)
    g.unpatchify(batch, mine, h, d.out_channels * d.patch * d.patch * d.patch_t)


def _joint_block(
    g: Graph, d: DenoiserSpec, b: int, tokens: int, text: int, *, last: bool, dual: bool, rope: bool
) -> None:
    """MMDiT / FLUX double-stream block: separate weights for image and text tokens."""
    h, mine = d.hidden, g.local(tokens)
    n_img, n_txt = b * mine, b * g.local_text(text)
    g.adaln(b, h, 9 if dual else 6)
    g.modulated_norm(n_img, h)
    if dual:
        g.e.ew("pointwise_mul", n_img * h)
        g.e.ew("pointwise_add", n_img * h)
    g.adaln(b, h, 2 if last else 6)
    g.modulated_norm(n_txt, h)
    for n in (n_img, n_txt):
        for _ in range(3):
            g.e.linear(n, h, h)
        g.qk_norm(d.qk_norm, n, h, d.heads)
    if rope:
        g.rope(n_img + n_txt, h)
    for _ in range(3):
        g.e.copy((n_img + n_txt) * h)  # cat(text, image)
    g.self_attention(b, d.heads, d.head_dim, tokens, text)
    g.e.linear(n_img, h, h)
    if not last:
        g.e.linear(n_txt, h, h)
    g.gated_residual(n_img, h)
    if dual:
        for _ in range(3):
            g.e.linear(n_img, h, h)
        g.qk_norm(d.qk_norm, n_img, h, d.heads)
        g.self_attention(b, d.heads, d.head_dim, tokens)
        g.e.linear(n_img, h, h)
        g.gated_residual(n_img, h)
    streams = (n_img,) if last else (n_img, n_txt)
    for n in streams:
        if n != n_img:
            g.gated_residual(n, h)
        g.modulated_norm(n, h)
        g.mlp(n, h, d.ffn)
        g.gated_residual(n, h)


def _single_block(g: Graph, d: DenoiserSpec, b: int, tokens: int, text: int) -> None:
    """FLUX / HunyuanVideo single-stream block over text and image tokens together."""
    h = d.hidden
    n = b * (g.local(tokens) + g.local_text(text))
    g.adaln(b, h, 3)
    g.modulated_norm(n, h)
    g.e.linear(n, h, d.ffn)
    g.e.ew("gelu", n * d.ffn)
    for _ in range(3):
        g.e.linear(n, h, h)
    g.qk_norm(d.qk_norm, n, h, d.heads)
    g.rope(n, h)
    g.self_attention(b, d.heads, d.head_dim, tokens, text)
    g.e.copy(n * (h + d.ffn))  # cat(attention, mlp)
    g.e.linear(n, h + d.ffn, h)
    g.gated_residual(n, h)


def _mmdit(
    g: Graph, d: DenoiserSpec, b: int, tokens: int, text: int, grid: tuple[int, int]
) -> None:
    mine = _embed(g, d, b, tokens, text, extra=1)
    for i in range(d.layers):
        last = i == d.layers - 1
        _joint_block(g, d, b, tokens, text, last=last, dual=i < d.dual_attention_layers, rope=False)
    _finish(g, d, b, mine)


def _flux(g: Graph, d: DenoiserSpec, b: int, tokens: int, text: int, grid: tuple[int, int]) -> None:
    mine = _embed(g, d, b, tokens, text, extra=2)
    if d.refiner_layers:  # HunyuanVideo's token refiner on the text tokens
        n = b * text
        for _ in range(d.refiner_layers):
            g.adaln(b, d.hidden, 2)
            g.e.layernorm(n, d.hidden)
            for _ in range(3):
                g.e.linear(n, d.hidden, d.hidden)
            g.cross_attention(b, d.heads, d.head_dim, text, text)
            g.e.linear(n, d.hidden, d.hidden)
            g.gated_residual(n, d.hidden)
            g.e.layernorm(n, d.hidden)
            g.mlp(n, d.hidden, d.ffn)
            g.gated_residual(n, d.hidden)
    for _ in range(d.layers):
        _joint_block(g, d, b, tokens, text, last=False, dual=False, rope=True)
    for _ in range(d.single_layers):
        _single_block(g, d, b, tokens, text)
    _finish(g, d, b, mine)


def _cross(g: Graph, d: DenoiserSpec, b: int, mine: int, text: int, kv_width: int) -> None:
    """Cross-attention of this GPU's image tokens to every text token."""
    h = d.hidden
    heads = d.cross_heads or d.heads
    head_dim = d.cross_head_dim or d.head_dim
    g.e.linear(b * mine, h, h)
    g.e.linear(b * text, kv_width, h)
    g.e.linear(b * text, kv_width, h)
    for n in (b * mine, b * text):
        if d.qk_norm == "rms":  # across heads (Wan, SANA)
            g.e.rmsnorm(n, h)
        elif d.qk_norm == "layer":  # per head (HunyuanDiT)
            g.e.layernorm(n * heads, head_dim)
    g.cross_attention(b, heads, head_dim, mine, text)
    g.e.linear(b * mine, h, h)
    g.e.ew("pointwise_add", b * mine * h)


def _pixart(
    g: Graph, d: DenoiserSpec, b: int, tokens: int, text: int, grid: tuple[int, int]
) -> None:
    h = d.hidden
    mine = g.local(tokens)
    g.patchify(b * mine, d.in_channels * d.patch * d.patch, h)
    g.e.linear(b * text, d.text_dim, h)  # caption projection
    g.e.ew("gelu", b * text * h)
    g.e.linear(b * text, h, h)
    g.time_embedding(b, h)
    g.adaln(b, h, 6)  # adaLN-single, shared by the blocks
    n = b * mine
    for _ in range(d.layers):
        g.e.ew("pointwise_add", b * 6 * h)  # table + embedding
        g.modulated_norm(n, h)
        for _ in range(3):
            g.e.linear(n, h, h)
        g.self_attention(b, d.heads, d.head_dim, tokens)
        g.e.linear(n, h, h)
        g.gated_residual(n, h)
        _cross(g, d, b, mine, text, h)
        g.modulated_norm(n, h)
        g.mlp(n, h, d.ffn)
        g.gated_residual(n, h)
    g.modulated_norm(n, h)
    g.unpatchify(b, mine, h, d.out_channels * d.patch * d.patch)


def _hunyuan_dit(
    g: Graph, d: DenoiserSpec, b: int, tokens: int, text: int, grid: tuple[int, int]
) -> None:
    h = d.hidden
    mine = g.local(tokens)
    n = b * mine
    g.patchify(n, d.in_channels * d.patch * d.patch, h)
    t5 = 256  # mT5 tokens projected to the CLIP width, concatenated after the 77 CLIP tokens
    g.e.linear(b * t5, 2048, 4 * 2048)
    g.e.ew("silu", b * t5 * 4 * 2048)
    g.e.linear(b * t5, 4 * 2048, d.text_dim)
    g.e.copy(b * text * d.text_dim)
    g.time_embedding(b, h, extra=1)
    for i in range(d.layers):
        if i > d.layers // 2:  # long skip from the mirrored block of the first half
            g.e.copy(n * 2 * h)
            g.e.linear(n, 2 * h, h)
            g.e.layernorm(n, h)
        g.e.ew("silu", b * h)
        g.e.linear(b, h, h)
        g.e.layernorm(n, h)
        g.e.ew("pointwise_add", n * h)
        for _ in range(3):
            g.e.linear(n, h, h)
        g.qk_norm("layer", mine * b, h, d.heads)
        g.rope(n, h)
        g.self_attention(b, d.heads, d.head_dim, tokens)
        g.e.linear(n, h, h)
        g.e.ew("pointwise_add", n * h)
        g.e.layernorm(n, h)
        _cross(g, d, b, mine, text, d.text_dim)
        g.e.layernorm(n, h)
        g.mlp(n, h, d.ffn)
        g.e.ew("pointwise_add", n * h)
    g.modulated_norm(n, h)
    g.unpatchify(b, mine, h, d.out_channels * d.patch * d.patch)


def _sana(g: Graph, d: DenoiserSpec, b: int, tokens: int, text: int, grid: tuple[int, int]) -> None:
    h, inner = d.hidden, d.ffn
    mine = g.local(tokens)
    n = b * mine
    rows, cols = max(1, grid[0] // g.par.gpus), grid[1]
    g.patchify(n, d.in_channels * d.patch * d.patch, h)
    g.e.linear(b * text, d.text_dim, h)  # caption projection and norm
    g.e.ew("gelu", b * text * h)
    g.e.linear(b * text, h, h)
    g.e.rmsnorm(b * text, h)
    g.time_embedding(b, h)
    g.adaln(b, h, 6)
    for _ in range(d.layers):
        g.e.ew("pointwise_add", b * 6 * h)
        g.modulated_norm(n, h)
        for _ in range(3):
            g.e.linear(n, h, h)
        g.e.rmsnorm(n, h)
        g.e.rmsnorm(n, h)
        g.self_attention(b, d.heads, d.head_dim, tokens, linear=True)
        g.e.linear(n, h, h)
        g.gated_residual(n, h)
        _cross(g, d, b, mine, text, h)
        g.modulated_norm(n, h)
        g.e.copy(n * h)  # tokens -> NCHW
        _conv1x1(g, b, h, 2 * inner, rows, cols)
        g.e.ew("silu", n * 2 * inner)
        g.e.ops.append(  # depthwise 3x3: one streaming pass over the 2·inner channels
            Elementwise(elements=n * 2 * inner, op="other", inputs=1, precision=Precision.BF16)
        )
        g.e.ew("silu", n * inner)
        g.e.ew("pointwise_mul", n * inner)
        _conv1x1(g, b, inner, h, rows, cols)
        g.e.copy(n * h)  # NCHW -> tokens
        g.gated_residual(n, h)
    g.modulated_norm(n, h)
    g.unpatchify(b, mine, h, d.out_channels * d.patch * d.patch)


def _conv1x1(g: Graph, batch: int, c_in: int, c_out: int, rows: int, cols: int) -> None:
    g.e.ops.append(
        Conv2d(batch=batch, in_channels=c_in, out_channels=c_out, height=rows, width=cols, kernel=1)
    )


def _wan(g: Graph, d: DenoiserSpec, b: int, tokens: int, text: int, grid: tuple[int, int]) -> None:
    h = d.hidden
    mine = g.local(tokens)
    n = b * mine
    f32, bf16 = Precision.FP32, Precision.BF16
    g.patchify(n, d.in_channels * d.patch * d.patch * d.patch_t, h)
    g.e.linear(b * text, d.text_dim, h)
    g.e.ew("gelu", b * text * h)
    g.e.linear(b * text, h, h)
    g.time_embedding(b, h)
    g.adaln(b, h, 6)

    def fp32_norm(modulated: bool) -> None:
        g.e.cast(n * h, bf16, f32)
        g.e.ops.append(LayerNorm(rows=n, cols=h, precision=f32))
        if modulated:
            g.e.ew("pointwise_mul", n * h, prec=f32)
            g.e.ew("pointwise_add", n * h, prec=f32)
        g.e.cast(n * h, f32, bf16)

    def fp32_residual() -> None:
        g.e.cast(n * h, bf16, f32)
        g.e.ew("pointwise_mul", n * h, prec=f32)
        g.e.ew("pointwise_add", n * h, prec=f32)
        g.e.cast(n * h, f32, bf16)

    for _ in range(d.layers):
        g.e.ew("pointwise_add", b * 6 * h, prec=f32)
        fp32_norm(True)
        for _ in range(3):
            g.e.linear(n, h, h)
        g.e.rmsnorm(n, h)
        g.e.rmsnorm(n, h)
        g.rope(n, h)
        g.self_attention(b, d.heads, d.head_dim, tokens)
        g.e.linear(n, h, h)
        fp32_residual()
        fp32_norm(False)
        _cross(g, d, b, mine, text, h)
        fp32_norm(True)
        g.mlp(n, h, d.ffn)
        fp32_residual()
    fp32_norm(True)
    g.unpatchify(b, mine, h, d.out_channels * d.patch * d.patch * d.patch_t)


def _cogvideox(
    g: Graph, d: DenoiserSpec, b: int, tokens: int, text: int, grid: tuple[int, int]
) -> None:
    h = d.hidden
    temb = d.time_embed_dim or h
    mine = g.local(tokens)
    n_vid, n_txt = b * mine, b * g.local_text(text)
    n = n_vid + n_txt
    g.patchify(n_vid, d.in_channels * d.patch * d.patch * d.patch_t, h)
    g.e.linear(n_txt, d.text_dim, h)
    g.e.copy(n * h)  # cat(text, video)
    g.e.ew("pointwise_add", n_vid * h)  # positions
    g.time_embedding(b, temb)
    for _ in range(d.layers):
        for half in ("attention", "feed-forward"):
            g.e.ew("silu", b * temb)
            g.e.linear(b, temb, 6 * h)
            g.modulated_norm(n_vid, h)
            g.modulated_norm(n_txt, h)
            g.e.copy(n * h)  # cat(text, video)
            if half == "attention":
                for _ in range(3):
                    g.e.linear(n, h, h)
                g.qk_norm("layer", n, h, d.heads)
                if d.rope:
                    g.rope(n_vid, h)
                g.self_attention(b, d.heads, d.head_dim, tokens, text)
                g.e.linear(n, h, h)
            else:
                g.mlp(n, h, d.ffn)
            g.gated_residual(n_vid, h)
            g.gated_residual(n_txt, h)
    g.e.layernorm(n, h)
    g.e.ew("silu", b * temb)
    g.e.linear(b, temb, 2 * h)
    g.modulated_norm(n_vid, h)
    g.unpatchify(b, mine, h, d.out_channels * d.patch * d.patch * d.patch_t)


_Builder = Callable[[Graph, DenoiserSpec, int, int, int, tuple[int, int]], None]
_BUILDERS: dict[str, _Builder] = {
    "mmdit": _mmdit,
    "flux": _flux,
    "hunyuan_video": _flux,
    "pixart": _pixart,
    "hunyuan_dit": _hunyuan_dit,
    "sana": _sana,
    "wan": _wan,
    "cogvideox": _cogvideox,
}
