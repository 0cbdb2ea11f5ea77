"""Collective communication between GPUs: all-to-all, all-gather, reduce-scatter, all-reduce
(ring or tree) and point-to-point send/recv, timed as NCCL runs them.

One collective of a ``size``-byte buffer on ``n`` GPUs takes

``t = α + α_hop·hops + wire / (B·η) · (1 + h / (wire + h))``

* ``α`` is the part's ``interconnect_latency_us`` (launch, handshake), ``α_hop`` the extra
  latency of each sequential step of the algorithm (``hops``: ``n-1`` for a ring all-gather,
  reduce-scatter or all-to-all, ``2(n-1)`` for a ring all-reduce, ``2·log2 n`` for a tree);
* ``wire`` is what each GPU sends, in nccl-tests' bus-bandwidth convention: ``(n-1)/n·size``
  for all-gather, reduce-scatter and all-to-all (``size`` is the whole gathered buffer, or
  every rank's send buffer), ``2(n-1)/n·size`` for all-reduce, ``size`` for send/recv;
* ``B`` is the part's ``interconnect_bandwidth_gb_s`` (per GPU and direction), ``η`` the
  fraction NCCL reaches on large messages, and ``h`` the message size below which its
  low-latency protocols run at about half that rate.

``α_hop``, ``η`` and ``h`` are NCCL's, not a part's: fitted once on the aiconfigurator H100-SXM
NCCL table (``aiconfigurator/h100_sxm_nccl_nccl_perf.csv``: all_gather, alltoall,
reduce_scatter and all_reduce on 2, 4 and 8 GPUs, 512 B to 512 MB, NCCL 2.23-2.29; log-time
least squares), with the H100's latency 6.3 µs going to its spec file. Across the table's
1,854 rows the mean absolute error is 11.5 % (``tests/diffusion/test_collective.py``).
NCCL's NVLink-SHARP all-reduce on 8 NVSwitch GPUs is not modelled: large 8-GPU all-reduces
are predicted up to 50 % slow.

Energy: what the links carry, at the part's ``interconnect_pj_per_bit``; the GPUs' own power
while they wait is the caller's (idle power, see ``docs/diffusion.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from joulecast.errors import WorkloadError
from joulecast.hardware.spec import GPUSpec

#: Extra latency per sequential step of a ring or tree (s); fitted on the NCCL table.
HOP_LATENCY_S = 0.67e-6
#: Fraction of the link bandwidth NCCL reaches on large messages; fitted on the NCCL table.
LINK_EFFICIENCY = 0.68
#: Wire bytes below which NCCL's low-latency protocols halve the rate; fitted on the table.
HALF_RATE_BYTES = 10.0e6


class CollectiveKind(StrEnum):
    """Collectives NCCL offers (and the one point-to-point exchange ring attention uses)."""

    ALL_TO_ALL = "all_to_all"
    ALL_GATHER = "all_gather"
    REDUCE_SCATTER = "reduce_scatter"
    ALL_REDUCE = "all_reduce"
    SEND_RECV = "send_recv"


class Algorithm(StrEnum):
    """All-reduce algorithm: ring (NCCL's choice inside one NVLink/NVSwitch server), tree
    (double binary tree: ``2·log2 n`` latency steps, NCCL's choice across servers), or auto
    (the faster of the two)."""

    RING = "ring"
    TREE = "tree"
    AUTO = "auto"


@dataclass(frozen=True, slots=True)
class Collective:
    """One collective call of one GPU.

    Attributes:
        kind: which collective.
        size_bytes: buffer size in nccl-tests' convention (see the module docstring).
        group: GPUs taking part (2 for a send/recv pair).
    """

    kind: CollectiveKind
    size_bytes: float
    group: int

    def __post_init__(self) -> None:
        if self.group < 1 or self.size_bytes < 0:
            raise WorkloadError(
                f"collective {self.kind}: group must be >= 1 and size >= 0 "
                f"(got {self.group}, {self.size_bytes:g})"
            )

    @property
    def wire_bytes(self) -> float:
        """Bytes each GPU sends over its link."""
        n, size = self.group, self.size_bytes
        if n == 1:
            return 0.0
        if self.kind is CollectiveKind.SEND_RECV:
            return size
        share = (n - 1) / n * size
        return 2.0 * share if self.kind is CollectiveKind.ALL_REDUCE else share


def _hops(kind: CollectiveKind, n: int, algorithm: Algorithm) -> float:
    if kind is CollectiveKind.SEND_RECV:
        return 1.0
    if kind is CollectiveKind.ALL_REDUCE:
        return 2.0 * math.log2(n) if algorithm is Algorithm.TREE else 2.0 * (n - 1)
    return float(n - 1)


def collective_time_s(
    op: Collective, gpu: GPUSpec, *, algorithm: Algorithm = Algorithm.RING
) -> float:
    """Time of ``op`` on ``gpu``'s interconnect (0 for a group of one GPU or an empty buffer).

    Args:
        op: the collective.
        gpu: the part (its interconnect fields).
        algorithm: all-reduce algorithm (default ring, as NCCL runs it inside one server);
            ignored by the other collectives.
    """
    if op.group <= 1 or op.size_bytes <= 0:
        return 0.0
    wire = op.wire_bytes
    rate = gpu.interconnect_bandwidth_gb_s * 1e9 * LINK_EFFICIENCY
    body = wire / rate * (1.0 + HALF_RATE_BYTES / (wire + HALF_RATE_BYTES))
    base = gpu.interconnect_latency_us * 1e-6
    algorithms = (Algorithm.RING, Algorithm.TREE) if algorithm is Algorithm.AUTO else (algorithm,)
    return min(base + HOP_LATENCY_S * _hops(op.kind, op.group, a) + body for a in algorithms)


def collective_energy_j(op: Collective, gpu: GPUSpec) -> float:
    """Link energy of ``op`` for one GPU: the bits it sends (and, symmetrically, receives)."""
    return op.wire_bytes * 8.0 * gpu.interconnect_pj_per_bit * 1e-12
