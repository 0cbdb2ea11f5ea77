"""Pass times of many measured rows at once, bit for bit equal to the per-row timeline.

The calibration's least-squares residual evaluates the time model on every training row
thousands of times. :class:`StackedPasses` lays the rows out once so that one evaluation is a few
whole-array operations instead of a Python loop over rows, and gives exactly the floats of
:func:`joulecast.timeline.kernel_times` followed by :func:`joulecast.timeline.pass_times`:

* kernel times are element-wise, so each distinct (kernel, clock) pair is computed once, with the
  same operations in the same order as ``kernel_times``;
* rows whose op sequences issue the same host work (the same model) form a group; the group's
  op sequences are the columns of one matrix, last op first, so one ``numpy.cumsum`` down the
  columns adds each row's kernel times in the order ``pass_times`` adds them, and the host issue
  times are one cumulative sum shared by the group.

:meth:`StackedPasses.kernel_times` restates ``timeline.kernel_times`` operation for operation: a
change to the time model must be made in both (``tests/test_calibration_stacked.py`` compares
them bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from joulecast.coefficients.host import Host
from joulecast.coefficients.params import TimeParams
from joulecast.kernels.arch import arch_params
from joulecast.timeline import BANDWIDTH_SATURATION_SM_FRACTION, CompiledWorkload

_KERNEL_KEYS = ("math_cycles", "sm_fraction", "dram_bytes", "l2_bytes", "launches")
# Kernel-time results kept (a Jacobian steps each of the 4 kernel parameters, then returns to the
# centre for the host parameters).
_CACHED_SUFFIXES = 5


@dataclass(frozen=True)
class _Group:
    rows: NDArray[np.intp]  # stacked row of each column of ``inverse``
    kernels_reversed: NDArray[np.intp]  # (n_ops, n_distinct): kernel ids, last op first
    inverse: NDArray[np.intp]  # column of ``kernels_reversed`` holding each row
    module_call: NDArray[np.intp]  # (n_ops,): 1 where the host issues a module-level op


@dataclass
class _GroupBuilder:
    module_call: NDArray[np.intp]
    rows: list[int] = field(default_factory=list)
    inverse: list[int] = field(default_factory=list)
    columns: dict[bytes, int] = field(default_factory=dict)
    sequences: list[NDArray[np.intp]] = field(default_factory=list)

    def add(self, row: int, kernels_reversed: NDArray[np.intp]) -> None:
        column = self.columns.setdefault(kernels_reversed.tobytes(), len(self.sequences))
        if column == len(self.sequences):
            self.sequences.append(kernels_reversed)
        self.rows.append(row)
        self.inverse.append(column)

    def build(self) -> _Group:
        return _Group(
            rows=np.array(self.rows, dtype=np.intp),
            kernels_reversed=np.stack(self.sequences, axis=1),
            inverse=np.array(self.inverse, dtype=np.intp),
            module_call=self.module_call,
        )


class StackedPasses:
    """Rows of one GPU, each a compiled workload at one clock, evaluated together.

    Args:
        workloads: the compiled workloads (all on the same GPU).
        clocks_mhz: the clock of each row.
    """

    def __init__(self, workloads: Sequence[CompiledWorkload], clocks_mhz: Sequence[float]) -> None:
        if not workloads:
            raise ValueError("no rows to stack")
        gpu = workloads[0].gpu
        if any(cw.gpu != gpu for cw in workloads):
            raise ValueError("stacked rows must share one GPU")
        self.gpu = gpu
        self.n_rows = len(workloads)
        # Distinct kernels over all rows: identical inputs give identical kernel times.
        index: dict[tuple[object, ...], int] = {}
        # Rows by host sequence, and within a group the distinct kernel sequences (last op first).
        groups: dict[bytes, _GroupBuilder] = {}
        for i, (cw, clock) in enumerate(zip(workloads, clocks_mhz, strict=True)):
            cols = [cw.gemm_like.tolist()] + [getattr(cw, k).tolist() for k in _KERNEL_KEYS]
            keys = [(*vals, float(clock)) for vals in zip(*cols, strict=True)]
            ids = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.intp)
            host = cw.module_call[cw.order].astype(np.intp)
            groups.setdefault(host.tobytes(), _GroupBuilder(host)).add(i, ids[cw.order][::-1])
        self._groups = [g.build() for g in groups.values()]
        table = np.array(list(index), dtype=np.float64)  # (n_kernels, 7)
        self._gemm_like = table[:, 0].astype(bool)
        self._math_cycles = table[:, 1]
        self._dram_bytes = table[:, 3]
        self._launches = table[:, 5]
        self._f_hz = table[:, 6] * 1e6
        self._bw_share = np.minimum(1.0, table[:, 2] / BANDWIDTH_SATURATION_SM_FRACTION)
        self._t_l2 = table[:, 4] / (arch_params(gpu).l2_bytes_per_clk * self._f_hz)
        self._suffix_cache: dict[tuple[float, ...], list[NDArray[np.float64]]] = {}

    def kernel_times(self, params: TimeParams) -> NDArray[np.float64]:
        """GPU time (s) of one launch of each distinct kernel (as :func:`timeline.kernel_times`)."""
        eta = np.where(self._gemm_like, params.eta_tensor, params.eta_cuda)
        t_math = self._math_cycles / (self._f_hz * eta)
        bw = self.gpu.memory_bandwidth_b_s * params.eta_dram * self._bw_share
        t_dram = self._dram_bytes / bw
        p = params.overlap_p
        body = (t_math**p + t_dram**p + self._t_l2**p) ** (1.0 / p)
        lat = params.kernel_latency_cycles * self._launches / self._f_hz
        return np.asarray(lat + body, dtype=np.float64)

    def _suffixes(self, params: TimeParams) -> list[NDArray[np.float64]]:
        # GPU time from each op to the end of the pass, last op first. The last few results are
        # kept: a finite-difference step in a host parameter leaves the kernel times unchanged.
        key = (
            params.eta_tensor,
            params.eta_cuda,
            params.eta_dram,
            params.overlap_p,
            params.kernel_latency_cycles,
        )
        hit = self._suffix_cache.pop(key, None)
        if hit is None:
            t = self.kernel_times(params)
            hit = [np.cumsum(t.take(g.kernels_reversed), axis=0) for g in self._groups]
            if len(self._suffix_cache) >= _CACHED_SUFFIXES:
                del self._suffix_cache[next(iter(self._suffix_cache))]
        self._suffix_cache[key] = hit  # most recently used last
        return hit

    def time_s(self, params: TimeParams, host: Host) -> NDArray[np.float64]:
        """Synchronised pass time of every row (as :func:`timeline.pass_times`), shape (n_rows,)."""
        out = np.empty(self.n_rows)
        per_op = np.array([host.host_op_s, host.host_module_op_s])
        for g, suffix in zip(self._groups, self._suffixes(params), strict=True):
            issue = host.pass_overhead_s / 2 + np.cumsum(per_op[g.module_call])
            gpu_end = np.max(issue[::-1, None] + suffix, axis=0)
            host_end = issue[-1] + host.pass_overhead_s / 2
            out[g.rows] = np.maximum(gpu_end, host_end)[g.inverse]
        return out
