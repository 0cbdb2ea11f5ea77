"""Coefficients for GPUs without their own calibration, transferred by physics.

Time coefficients (pipe efficiencies, latencies) carry over from the nearest calibrated part of the
same generation, or the reference part otherwise. Energies per event are scaled by physics (see
docs/hardware.md): DRAM energy per byte by memory technology, core energies per FLOP / per byte /
per SM-cycle by process node and generation, with the GPU's own idle curve. On Hopper and
Blackwell the DRAM energy per byte and the tensor energy per FLOP are anchored to measurements
on Hopper kernels instead (:mod:`joulecast.coefficients.memory`,
:mod:`joulecast.coefficients.tensor`).
"""

from __future__ import annotations

from functools import cache

import msgspec

from joulecast.coefficients.params import GpuCoefficients, shipped_coefficients
from joulecast.hardware.spec import Architecture, GPUSpec, MemoryTechnology, load_gpu

REFERENCE_GPU = "a100-pcie-40gb"

# Interface + array energy per byte moved off-chip, relative to HBM2 (published pJ/bit figures:
# HBM2 ~3.9, HBM2e ~3.5, HBM3 ~3.0, HBM3e ~2.8, GDDR6 ~7.5, GDDR6X ~7.25, GDDR7 ~6.5).
DRAM_PJ_PER_BIT = {
    MemoryTechnology.HBM2: 3.9,
    MemoryTechnology.HBM2E: 3.5,
    MemoryTechnology.HBM3: 3.0,
    MemoryTechnology.HBM3E: 2.8,
    MemoryTechnology.GDDR6: 7.5,
    MemoryTechnology.GDDR6X: 7.25,
    MemoryTechnology.GDDR7: 6.5,
}


def node_energy_factor(src: GPUSpec, dst: GPUSpec) -> float:
    """Core energy per operation of ``dst`` relative to ``src`` from the process node
    (switched capacitance ~ feature size; Dennard-style CV² at equal voltage)."""
    return dst.process_node_nm / src.process_node_nm


def tensor_width_factor(src: GPUSpec, dst: GPUSpec) -> float:
    """Tensor energy per FLOP of ``dst`` relative to ``src`` from the tensor datapath width:
    an MMA's operand delivery costs about the same per instruction, so FLOPs per clock per SM
    divide it. The two calibrated parts bear it out (A10, half the A100's width: 1.9x the A100's
    fitted energy per FLOP), and so do the H200 kernel tables (docs/hardware.md)."""
    return src.tensor_flops_per_clk_per_sm() / dst.tensor_flops_per_clk_per_sm()


# Parts whose on-chip memory path is Hopper-class: their DRAM energy per byte comes from the
# Hopper measurement (memory_energy.py), not from the A100's scaled by pJ/bit alone, and their
# tensor energy per FLOP from the Hopper measurement (tensor_energy.py).
HBM_ANCHORED_ARCHITECTURES = (Architecture.HOPPER, Architecture.BLACKWELL)


def reference_clock_mhz(coeffs: GpuCoefficients, src: GPUSpec, dst: GPUSpec) -> float:
    """Clock whose supply voltage the transferred energies refer to.

    The source's energies are quoted at its reference clock (the A100-PCIe's 900 MHz, on its
    voltage floor), so the destination's are quoted on its floor too: its minimum clock on
    Hopper and Blackwell (the H100's inferred V(f) leaves its floor at about 1,140 MHz, below
    the source clock scaled by the maximum clocks, 1,264 MHz). On the generic curve both clocks
    sit on the floor, so only a part with a shipped curve is affected; elsewhere the scaled
    clock is kept.
    """
    if dst.architecture in HBM_ANCHORED_ARCHITECTURES:
        return float(dst.min_clock_mhz)
    return coeffs.ref_clock_mhz * dst.max_clock_mhz / src.max_clock_mhz


def transfer(coeffs: GpuCoefficients, src: GPUSpec, dst: GPUSpec) -> GpuCoefficients:
    """Map ``src``'s calibrated coefficients onto ``dst`` by physics."""
    node = node_energy_factor(src, dst)
    width = tensor_width_factor(src, dst)
    dram = DRAM_PJ_PER_BIT[dst.memory_technology] / DRAM_PJ_PER_BIT[src.memory_technology]
    p = coeffs.power
    power = msgspec.structs.replace(
        p,
        tensor_pj_per_flop=p.tensor_pj_per_flop * node * width,
        cuda_pj_per_flop=p.cuda_pj_per_flop * node,
        l2_pj_per_byte=p.l2_pj_per_byte * node,
        element_pj=p.element_pj * node,
        sm_pj_per_cycle=p.sm_pj_per_cycle * node,
        busy_w=p.busy_w * dst.sm_count / src.sm_count,
        dram_pj_per_byte=p.dram_pj_per_byte * dram,
        idle_offset_w=0.0,
    )
    return GpuCoefficients(
        gpu=dst.id,
        ref_clock_mhz=reference_clock_mhz(coeffs, src, dst),
        origin=f"transferred from {src.id} ({coeffs.origin})",
        fitted_on=[],
        time=coeffs.time,
        power=power,
    )


def anchored_dram_pj_per_byte(gpu: GPUSpec) -> float | None:
    """DRAM energy per byte of ``gpu`` from the shipped Hopper measurement, where it applies.

    The measured value (HBM3e on the H200) is scaled to the part's HBM generation by pJ/bit.
    ``None`` for parts outside :data:`HBM_ANCHORED_ARCHITECTURES`, non-HBM parts, or when no
    measurement ships.
    """
    from joulecast.coefficients.memory import shipped_memory_energy

    if gpu.architecture not in HBM_ANCHORED_ARCHITECTURES:
        return None
    if not str(gpu.memory_technology).startswith("HBM"):
        return None
    measured = shipped_memory_energy()
    if measured is None:
        return None
    ratio = (
        DRAM_PJ_PER_BIT[gpu.memory_technology]
        / DRAM_PJ_PER_BIT[MemoryTechnology(measured.technology)]
    )
    return measured.dram_pj_per_byte * ratio


def anchored_tensor_pj_per_flop(gpu: GPUSpec) -> float | None:
    """bf16 tensor energy per FLOP of ``gpu`` (at its floor voltage) from the shipped Hopper
    measurement, where it applies.

    The measured value (H200) is carried to the part by process node
    (:func:`node_energy_factor`) and by the tensor datapath width ratio to the power the
    measurement itself implies (``width_exponent``, below the width rule's 1): both factors are
    1 on Hopper parts, so only Blackwell is scaled. ``None`` outside
    :data:`HBM_ANCHORED_ARCHITECTURES` or when no measurement ships.
    """
    from joulecast.coefficients.tensor import shipped_tensor_energy

    if gpu.architecture not in HBM_ANCHORED_ARCHITECTURES:
        return None
    measured = shipped_tensor_energy()
    if measured is None:
        return None
    src = load_gpu(measured.gpu)
    width = float(tensor_width_factor(src, gpu) ** measured.width_exponent)
    return measured.tensor_pj_per_flop * node_energy_factor(src, gpu) * width


def coefficients_for_gpu(gpu: GPUSpec) -> GpuCoefficients:
    """Shipped coefficients of ``gpu`` if calibrated, else physics-transferred ones."""
    own = shipped_coefficients(gpu.id)
    if own is not None and load_gpu(gpu.id) == gpu:
        return own
    return _transferred(gpu)


@cache
def physics_coefficients(gpu: GPUSpec) -> GpuCoefficients:
    """The reference part's coefficients transferred to ``gpu`` by :func:`transfer` alone
    (no measured Hopper memory or tensor energy)."""
    src_coeffs = shipped_coefficients(REFERENCE_GPU)
    if src_coeffs is None:
        return GpuCoefficients(gpu=gpu.id, ref_clock_mhz=gpu.max_clock_mhz)
    return transfer(src_coeffs, load_gpu(REFERENCE_GPU), gpu)


@cache
def _transferred(gpu: GPUSpec) -> GpuCoefficients:
    coeffs = physics_coefficients(gpu)
    power = coeffs.power
    origin = coeffs.origin
    dram = anchored_dram_pj_per_byte(gpu)
    if dram is not None:
        power = msgspec.structs.replace(power, dram_pj_per_byte=dram)
        origin += "; HBM energy per byte measured on H200 kernels"
    tensor = anchored_tensor_pj_per_flop(gpu)
    if tensor is not None:
        power = msgspec.structs.replace(power, tensor_pj_per_flop=tensor)
        origin += "; tensor energy per FLOP measured on H200 kernels"
    if power is coeffs.power:
        return coeffs
    return msgspec.structs.replace(coeffs, power=power, origin=origin)
