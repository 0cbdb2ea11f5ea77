"""Collective communication of a tensor-parallel replica: one all-reduce per sub-layer.

A ring all-reduce of ``B`` bytes over ``n`` GPUs moves ``2(n-1)/n · B`` bytes through each GPU's
link; vLLM's custom all-reduce (CUDA graphs, NVLink) has a fixed cost of about 5 µs. Time is
``latency + 2(n-1)/n · B / (link bandwidth × efficiency)``.

Link bandwidth per GPU and direction is the GPU spec's ``interconnect_bandwidth_gb_s`` (the
vendors' datasheets: NVLink 3/4/5 300/450/900 GB/s, PCIe Gen4/Gen5 x16 32/64 GB/s).
Efficiency 0.75 and latency 5 µs come from aiconfigurator's H100-SXM
vLLM custom all-reduce table (CUDA-graph rows: 4.3-5.5 µs for small messages; 303-406 GB/s of
450 at 128-268 MB), checked by a test, not from the serving rows. While a GPU waits on a
collective it draws its idle power (the NVLink energy, ~1 pJ/bit published for NVLink 4, is
below a watt at these volumes and is left out).
"""

from __future__ import annotations

from joulecast.hardware.spec import GPUSpec

ALLREDUCE_LATENCY_S = 5e-6
LINK_EFFICIENCY = 0.75


def link_bandwidth_b_s(gpu: GPUSpec) -> float:
    """Per-direction bandwidth of the link a GPU's collectives use, in bytes/s (the spec's
    ``interconnect_bandwidth_gb_s``)."""
    return gpu.interconnect_bandwidth_gb_s * 1e9


def all_reduce_time_s(message_bytes: float, num_gpus: int, gpu: GPUSpec) -> float:
    """Time of one all-reduce of ``message_bytes`` over ``num_gpus`` GPUs (0 for one GPU)."""
    if num_gpus <= 1 or message_bytes <= 0:
        return 0.0
    moved = 2.0 * (num_gpus - 1) / num_gpus * message_bytes
    return ALLREDUCE_LATENCY_S + moved / (link_bandwidth_b_s(gpu) * LINK_EFFICIENCY)
