"""Parameter counts of a pipeline's parts, from its config fields (weights and biases).

A check that the fields describe the published checkpoints: the counts match what diffusers
and transformers classes built from the same fields hold (``params_b`` in each config), within
a few per cent (positional tables, norms and small embedders are approximated).
"""

from __future__ import annotations

from joulecast.diffusion.registry import DenoiserSpec, TextEncoderSpec, VaeSpec


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _embedders(d: DenoiserSpec) -> int:
    """Patch, text and timestep embeddings and the final projection."""
    h = d.hidden
    patch = d.in_channels * d.patch * d.patch * d.patch_t
    out = d.out_channels * d.patch * d.patch * d.patch_t
    time = _linear(256, h) + _linear(h, h)
    pooled = _linear(d.pooled_dim, h) + _linear(h, h) if d.pooled_dim else 0
    return _linear(patch, h) + _linear(d.text_dim, h) + time + pooled + _linear(h, out) + 2 * h * h


def denoiser_params(d: DenoiserSpec) -> int:
    """Parameters of the denoiser."""
    h, f = d.hidden, d.ffn
    attn = 4 * _linear(h, h)
    mlp = _linear(h, f) + _linear(f, h)
    if d.family == "mmdit":
        block = 2 * (_linear(h, 6 * h) + attn + mlp)
        blocks = d.layers * block + d.dual_attention_layers * (attn + _linear(h, 3 * h))
    elif d.family in ("flux", "hunyuan_video"):
        double = 2 * (_linear(h, 6 * h) + attn + mlp)
        single = _linear(h, 3 * h) + 3 * _linear(h, h) + _linear(h, f) + _linear(h + f, h)
        refiner = d.refiner_layers * (_linear(h, 2 * h) + attn + mlp)
        blocks = d.layers * double + d.single_layers * single + refiner
    elif d.family in ("pixart", "wan"):
        blocks = d.layers * (2 * attn + mlp + 6 * h)
    elif d.family == "hunyuan_dit":
        cross = 2 * _linear(h, h) + 2 * _linear(d.text_dim, h)
        skips = (d.layers - 1 - d.layers // 2) * _linear(2 * h, h)
        blocks = d.layers * (_linear(h, h) + attn + cross + mlp) + skips
    elif d.family == "sana":
        glumb = _linear(h, 2 * f) + 2 * f * 9 + f * h
        blocks = d.layers * (2 * attn + glumb + 6 * h)
    else:  # cogvideox: shared text/video weights, adaLN from the time embedding
        temb = d.time_embed_dim or h
        blocks = d.layers * (attn + mlp + 2 * _linear(temb, 6 * h))
    return blocks + _embedders(d)


def encoder_params(t: TextEncoderSpec) -> int:
    """Parameters of a text encoder (embedding counted once)."""
    h = t.hidden
    width = t.heads * t.head_dim
    kv = (t.kv_heads or t.heads) * t.head_dim
    attn = h * (width + 2 * kv) + width * h
    mlp = (3 if t.gated else 2) * h * t.ffn
    positions = 0 if t.kind in ("t5", "llm") else t.seq * h
    return t.layers * (attn + mlp) + t.vocab * h + positions


def vae_decoder_params(v: VaeSpec) -> int:
    """Parameters of the VAE decoder's convolutions (norms and biases left out)."""
    k = 27 if v.kind == "causal3d" else 9
    widths = list(reversed(v.channels))
    total = k * v.latent_channels * widths[0] + 9 * widths[-1] * 3
    if v.kind != "dcae":
        total += 2 * 2 * k * widths[0] ** 2 + (
            4 * widths[0] ** 2 if v.mid_attention != "none" else 0
        )
    c_prev = widths[0]
    for i, c in enumerate(widths):
        for j in range(v.blocks_per_stage):
            c_in = c_prev if j == 0 else c
            if v.kind == "dcae" and i < v.attention_stages:  # EfficientViT block
                total += (
                    3 * c * c
                    + 3 * c * 25
                    + 3 * c * 32
                    + 2 * c * c
                    + 8 * c * c
                    + 8 * c * 9
                    + 4 * c * c
                )
            else:
                total += k * c_in * c + k * c * c + (c_in * c if c_in != c else 0)
        if i < len(widths) - 1:
            total += k * c * (widths[i + 1] if v.kind == "dcae" else c)
        c_prev = c if v.kind != "dcae" else widths[min(i + 1, len(widths) - 1)]
    return total
