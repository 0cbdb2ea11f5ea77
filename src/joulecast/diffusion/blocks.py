"""Sub-graphs shared by the diffusion transformers, on one GPU's share of a pass.

A :class:`Graph` wraps the model front end's :class:`~joulecast.models.graph.Emitter` (eager
PyTorch launches in order, bf16) with the sequence-parallel layout of the pass and a record of
the collectives each GPU joins. Shapes follow diffusers' attention processors and xDiT's
sequence parallelism (USP: Ulysses all-to-all of heads inside, ring attention across):

* image/video tokens are split over the ``N = ulysses × ring`` GPUs; text tokens, where the
  model runs a text stream, are split with them when ``N`` divides their count (xDiT's
  ``split_text_embed_in_sp``) and replicated on every GPU otherwise;
* Ulysses: an all-to-all of q, k and v before the attention (each GPU then holds
  ``heads / ulysses`` heads of ``ring``'s share of the tokens) and one of the output after; the
  text part of the output, split by heads, is all-gathered;
* ring attention: ``ring`` attention launches, one per KV chunk passed around the ring (the
  send/recv of the next chunk overlaps the current launch), their partial outputs merged in
  fp32 (ring-flash-attn's ``update_out_and_lse``: eight pointwise launches);
* cross-attention to the text is local (every GPU holds all text keys and heads).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from joulecast.kernels.collective import Collective, CollectiveKind
from joulecast.models.graph import Emitter, numerics_for
from joulecast.workload.ir import Attention, Gemm, Op, Precision

BF16_BYTES = 2.0


@dataclass(frozen=True, slots=True)
class Parallel:
    """Sequence parallelism of one denoiser pass: ``ulysses × ring`` GPUs."""

    ulysses: int = 1
    ring: int = 1

    @property
    def gpus(self) -> int:
        """GPUs the pass is spread over."""
        return self.ulysses * self.ring


@dataclass(frozen=True, slots=True)
class RingStep:
    """One ring-attention step: the attention launch and the KV exchange it overlaps."""

    attention: Attention
    exchange: Collective


@dataclass
class Graph:
    """One GPU's launches of a pass, with the collectives it joins.

    Attributes:
        e: the op emitter (bf16, eager).
        par: the sequence-parallel layout.
        comms: blocking collectives (Ulysses all-to-alls, gathers), in order.
        ring: ring-attention steps whose exchange may hide behind the attention launch.
        text_tokens: text tokens of a joint-attention model (0 for cross-attention models).
    """

    par: Parallel = field(default_factory=Parallel)
    text_tokens: int = 0
    e: Emitter = field(default_factory=lambda: Emitter(numerics_for("bf16")))
    comms: list[Collective] = field(default_factory=list)
    ring: list[RingStep] = field(default_factory=list)

    @property
    def ops(self) -> tuple[Op, ...]:
        return tuple(self.e.ops)

    def local(self, tokens: int) -> int:
        """This GPU's share of ``tokens`` sequence-parallel tokens."""
        return tokens // self.par.gpus

    @property
    def split_text(self) -> bool:
        """Whether the text tokens of a joint-attention model are split over the GPUs."""
        return self.par.gpus > 1 and self.text_tokens % self.par.gpus == 0

    def local_text(self, text: int) -> int:
        """This GPU's text tokens (all of them unless they are split)."""
        return text // self.par.gpus if self.split_text else text

    # ---- small pieces ------------------------------------------------------------------
    def adaln(self, rows: int, width: int, chunks: int) -> None:
        """``linear(silu(emb))`` producing ``chunks`` modulation vectors per sample."""
        self.e.ew("silu", rows * width)
        self.e.linear(rows, width, chunks * width)

    def modulated_norm(self, tokens: int, width: int) -> None:
        """LayerNorm then ``x * (1 + scale) + shift``."""
        self.e.layernorm(tokens, width)
        self.e.ew("pointwise_mul", tokens * width)
        self.e.ew("pointwise_add", tokens * width)

    def gated_residual(self, tokens: int, width: int) -> None:
        """``x = x + gate * y``."""
        self.e.ew("pointwise_mul", tokens * width)
        self.e.ew("pointwise_add", tokens * width)

    def qk_norm(self, kind: str, tokens: int, width: int, heads: int) -> None:
        """Per-head RMSNorm or LayerNorm of queries and keys (diffusers' eager modules)."""
        for _ in range(2):
            if kind == "rms":
                self.e.rmsnorm(tokens * heads, width // heads)
            elif kind == "layer":
                self.e.layernorm(tokens * heads, width // heads)

    def rope(self, tokens: int, width: int) -> None:
        """Rotary embedding of queries and keys in fp32 (diffusers' ``apply_rotary_emb``)."""
        n = tokens * width
        f32 = Precision.FP32
        for _ in range(2):
            self.e.cast(n, Precision.BF16, f32)
            self.e.ew("pointwise_mul", n, prec=f32)
            self.e.ew("neg", n, prec=f32)
            self.e.ew("pointwise_mul", n, prec=f32)
            self.e.ew("pointwise_add", n, prec=f32)
            self.e.cast(n, f32, Precision.BF16)

    def mlp(self, tokens: int, width: int, inner: int, *, gated: bool = False) -> None:
        """Feed-forward: linear, GELU(tanh) (or GEGLU), linear."""
        self.e.linear(tokens, width, 2 * inner if gated else inner)
        self.e.ew("gelu", tokens * inner)
        if gated:
            self.e.ew("pointwise_mul", tokens * inner)
        self.e.linear(tokens, inner, width)

    # ---- attention ---------------------------------------------------------------------
    def self_attention(
        self,
        batch: int,
        heads: int,
        head_dim: int,
        tokens: int,
        text: int = 0,
        *,
        linear: bool = False,
    ) -> None:
        """Attention over ``tokens`` sequence-parallel tokens (plus ``text`` replicated joint
        tokens), with the collectives of the layout. q, k and v exist already; the output
        projection follows."""
        par = self.par
        if text and self.split_text:  # text tokens travel with the image tokens
            tokens, text = tokens + text, 0
        width = heads * head_dim
        mine = self.local(tokens)
        if par.ulysses > 1:  # q, k, v: head-major copy, all-to-all, sequence-major copy
            qkv_bytes = batch * mine * width * BF16_BYTES
            for _ in range(3):
                self.e.copy(batch * mine * width)
                self._collective(CollectiveKind.ALL_TO_ALL, qkv_bytes, par.ulysses)
                self.e.copy(batch * mine * width)
        h_local = heads // par.ulysses
        chunk = tokens // par.ring
        if linear:
            self._linear_attention(batch, h_local, head_dim, chunk)
        else:
            self._softmax_attention(batch, h_local, head_dim, chunk, text)
        if par.ulysses > 1:
            out_bytes = batch * mine * width * BF16_BYTES
            self.e.copy(batch * mine * width)
            self._collective(CollectiveKind.ALL_TO_ALL, out_bytes, par.ulysses)
            self.e.copy(batch * mine * width)
            if text:
                text_bytes = batch * text * width * BF16_BYTES
                self._collective(CollectiveKind.ALL_GATHER, text_bytes, par.ulysses)

    def cross_attention(
        self, batch: int, heads: int, head_dim: int, tokens: int, text: int
    ) -> None:
        """Local image queries against every text key (no communication)."""
        self.e.attention(
            Attention(
                batch=batch,
                heads=heads,
                seq_q=tokens,
                seq_kv=text,
                head_dim=head_dim,
                causal=False,
            )
        )

    def _softmax_attention(self, batch: int, heads: int, dim: int, chunk: int, text: int) -> None:
        queries = chunk + text
        ring = self.par.ring
        for step in range(ring):
            keys = chunk + (text if step == 0 else 0)
            op = Attention(
                batch=batch, heads=heads, seq_q=queries, seq_kv=keys, head_dim=dim, causal=False
            )
            self.e.attention(op)
            if ring > 1:
                kv_bytes = 2 * batch * chunk * heads * dim * BF16_BYTES
                if step < ring - 1:
                    self.ring.append(
                        RingStep(op, Collective(CollectiveKind.SEND_RECV, kv_bytes, 2))
                    )
                self._merge(batch * queries * heads * dim, batch * queries * heads, step)
        if ring > 1:
            self.e.cast(batch * queries * heads * dim, Precision.FP32, Precision.BF16)

    def _merge(self, out: int, rows: int, step: int) -> None:
        """ring-flash-attn's ``update_out_and_lse`` in fp32, op by op: the first step casts the
        block output; later ones cast it, ``out -= sigmoid(lse_b - lse)·(out - out_b)`` and
        ``lse -= logsigmoid(lse - lse_b)``: four launches over the output, four over the
        log-sum-exp."""
        f32 = Precision.FP32
        self.e.cast(out, Precision.BF16, f32)
        if step == 0:
            return
        for name in ("pointwise_add", "sigmoid", "pointwise_add", "sigmoid"):
            self.e.ew(name, rows, prec=f32)
        for name in ("pointwise_add", "pointwise_mul", "pointwise_add"):
            self.e.ew(name, out, prec=f32)

    def _linear_attention(self, batch: int, heads: int, dim: int, chunk: int) -> None:
        """SANA's ReLU linear attention in fp32: ``(v;1)ᵀk`` summed over the ring's chunks,
        then times q, normalised by the last row."""
        f32 = Precision.FP32
        n = batch * chunk * heads * dim
        for name in ("relu", "relu"):
            self.e.ew(name, n)
        for _ in range(3):
            self.e.cast(n, Precision.BF16, f32)
        self.e.copy(batch * chunk * heads * (dim + 1), f32)  # pad v with a row of ones
        ring = self.par.ring
        for step in range(ring):
            self.e.ops.append(fp32_gemm(batch * heads, dim + 1, dim, chunk))
            if ring > 1 and step < ring - 1:
                kv_bytes = 2 * batch * chunk * heads * dim * 4.0
                self._collective(CollectiveKind.SEND_RECV, kv_bytes, 2)
                self.e.ew("pointwise_add", batch * heads * (dim + 1) * dim, prec=f32)
        self.e.ops.append(fp32_gemm(batch * heads, dim + 1, chunk, dim))
        self.e.ew("pointwise_add", batch * heads * chunk, prec=f32)  # + eps
        self.e.ew("unspecified_tensor", n, prec=f32)  # divide by the normaliser
        self.e.cast(n, f32, Precision.BF16)

    def _collective(self, kind: CollectiveKind, size: float, group: int) -> None:
        self.comms.append(Collective(kind, size, group))

    def time_embedding(self, batch: int, width: int, extra: int = 0) -> None:
        """Sinusoidal timestep features through a two-layer MLP (``extra`` more such MLPs: a
        guidance scale, a pooled text embedding)."""
        for _ in range(1 + extra):
            self.e.ew("other", batch * 256)
            self.e.linear(batch, 256, width)
            self.e.ew("silu", batch * width)
            self.e.linear(batch, width, width)

    def patchify(self, tokens: int, in_width: int, width: int) -> None:
        """Patch embedding of this GPU's latent tokens (a strided conv = a linear on patches)."""
        self.e.copy(tokens * in_width)
        self.e.linear(tokens, in_width, width)

    def unpatchify(self, batch: int, mine: int, width: int, out_width: int) -> None:
        """Final projection to latent patches, reshaped and gathered from every GPU."""
        self.e.linear(batch * mine, width, out_width)
        self.e.copy(batch * mine * out_width)
        self.gather_output(batch, mine * self.par.gpus, out_width)

    def gather_output(self, batch: int, tokens: int, width: int) -> None:
        """All-gather of the denoiser's output latents over every GPU."""
        if self.par.gpus > 1:
            size = batch * tokens * width * BF16_BYTES
            self._collective(CollectiveKind.ALL_GATHER, size, self.par.gpus)


def fp32_gemm(batch: int, m: int, n: int, k: int) -> Op:
    """A float32 (batched) matmul: PyTorch's default runs it without TF32, on CUDA cores."""
    return Gemm(
        m=m,
        n=n,
        k=k,
        batch=batch,
        precision=Precision.FP32,
        out_precision=Precision.FP32,
        tensor_core=False,
    )
