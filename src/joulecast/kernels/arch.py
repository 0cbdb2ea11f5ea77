"""Micro-architectural constants per GPU generation that datasheets do not list.

Values are per SM per clock; they set tile efficiency and L2 throughput in the kernel models.
Sources: NVIDIA architecture whitepapers (shared-memory bandwidth 128 B/clk/SM since Volta) and
published microbenchmarks of L2 bandwidth (A100 ~5 KB/clk, H100 ~7 KB/clk across the chip).
"""

from __future__ import annotations

from dataclasses import dataclass

from joulecast.errors import SpecError
from joulecast.hardware.spec import Architecture, GPUSpec


@dataclass(frozen=True, slots=True)
class ArchParams:
    """Per-generation constants used by the tiling models.

    ``operand_multicast`` is how many CTAs of a thread-block cluster share one L2 read of an
    operand panel (TMA multicast on Hopper, 2-CTA MMA on Blackwell). ``stream_k`` says whether
    cuBLAS's GEMMs use persistent kernels with a stream-K tile scheduler (sm90 and later: the
    main-loop iterations of all tiles are shared evenly by the SMs) rather than grid-launched
    tiles in waves with split-K (Ampere, Ada).
    """

    smem_bytes_per_clk_sm: float
    l2_bytes_per_clk: float
    operand_reload_factor: float
    max_ctas_per_sm: int
    operand_multicast: float
    tiles: tuple[tuple[int, int], ...]
    stream_k: bool = False


_ARCH: dict[Architecture, ArchParams] = {
    # Ampere mma.sync: warps stage operands smem -> registers, each warp tile re-reads its slice.
    Architecture.AMPERE: ArchParams(
        128.0, 5120.0, 2.0, 2, 1.0, ((128, 256), (128, 128), (64, 128), (64, 64))
    ),
    Architecture.ADA: ArchParams(
        128.0, 5120.0, 2.0, 2, 1.0, ((128, 256), (128, 128), (64, 128), (64, 64))
    ),
    # Hopper/Blackwell wgmma read operands straight from shared memory: less reload traffic.
    Architecture.HOPPER: ArchParams(
        128.0, 7168.0, 1.0, 1, 1.5, ((128, 256), (128, 128), (64, 128), (64, 64)), stream_k=True
    ),
    Architecture.BLACKWELL: ArchParams(
        256.0,
        10240.0,
        1.0,
        1,
        2.0,
        ((256, 256), (128, 256), (128, 128), (64, 128), (64, 64)),
        stream_k=True,
    ),
}


def arch_params(gpu: GPUSpec) -> ArchParams:
    """Constants for ``gpu``'s generation.

    Raises:
        SpecError: a generation without constants (never silently another generation's).
    """
    try:
        return _ARCH[gpu.architecture]
    except KeyError:
        known = ", ".join(a.value for a in _ARCH)
        raise SpecError(
            f"{gpu.id}: no kernel constants for architecture '{gpu.architecture}' (known: {known})"
        ) from None
