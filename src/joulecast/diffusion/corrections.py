"""Corrections of the diffusion forecast that the kernel models do not carry, as data.

Identity values give the pure forecast. The shipped values (``corrections.yaml``) are fitted
by ``joulecast validate --diffusion`` on the ML.ENERGY H100 rows
(:mod:`joulecast.calibration.diffusion_check`, which also reports leave-one-model-out
accuracy, fitting them without the predicted model's rows).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

import msgspec

from joulecast.schema import validate
from joulecast.yamlio import load_yaml_text


class Corrections(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Diffusion-specific corrections on top of the kernel models.

    Attributes:
        attention_factor: time of the fused-attention kernels relative to the kernel model
            (FlashAttention-2 on Hopper issues Ampere-style ``mma.sync`` and does not overlap
            the softmax with it); their energy scales with it (same power, longer time).
        collective_host_s: host time per collective beyond a module-level call (the
            framework's wrappers around NCCL and ring attention's send/recv: reshapes, stream
            bookkeeping, waits).
        vae_factor: time of a VAE decode relative to the kernel models (NCHW convolutions
            through cuDNN with layout transforms, GroupNorm's two passes, video VAEs decoding
            chunk by chunk in time); the extra time is stalls, drawn at idle power (the work
            is the same).
        source: how the values were obtained.
    """

    attention_factor: Annotated[float, msgspec.Meta(ge=0.25, le=10.0)] = 1.0
    collective_host_s: Annotated[float, msgspec.Meta(ge=0.0, le=0.1)] = 0.0
    vae_factor: Annotated[float, msgspec.Meta(ge=0.25, le=100.0)] = 1.0
    source: str = "identity: the pure forecast"


IDENTITY = Corrections()


@cache
def shipped_corrections() -> Corrections:
    """The corrections shipped in ``joulecast/diffusion/corrections.yaml``."""
    text = (resources.files("joulecast.diffusion") / "corrections.yaml").read_text("utf-8")
    return validate(Corrections, load_yaml_text(text), "diffusion corrections.yaml")
