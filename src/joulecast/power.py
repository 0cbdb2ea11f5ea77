"""Power model: idle(f) plus energy per event times event count.

``E_pass = idle(f)·T + (V/V_ref)²·[busy_w·t_busy + e_sm·SM-cycles + e_tc·tensor FLOPs
+ e_fp·CUDA FLOPs + e_l2·L2 bytes + e_el·elements] + e_dram·DRAM bytes``; average power is
``E_pass / T``. ``elements`` counts the elements pointwise and row-wise kernels process: each
costs address arithmetic, a load, a store and register traffic whatever its math, while
``e_fp`` prices the math itself (a GELU's erf, a softmax's exp).
Every coefficient is non-negative; they are fitted by :mod:`joulecast.calibration.fit`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from joulecast.coefficients.params import PowerParams, TimeParams
from joulecast.kernels.cost import OpClass
from joulecast.timeline import CompiledWorkload, kernel_times

# Column order of the feature matrix; the fit returns coefficients in this order.
FEATURES = (
    "busy_w",
    "sm_pj_per_cycle",
    "tensor_pj_per_flop",
    "cuda_pj_per_flop",
    "l2_pj_per_byte",
    "dram_pj_per_byte",
    "element_pj",
)
# Feature units -> coefficient units (W·s, pJ per event).
_UNIT = np.array([1.0, 1e-12, 1e-12, 1e-12, 1e-12, 1e-12, 1e-12])


def event_matrix(
    cw: CompiledWorkload,
    t_unique: NDArray[np.float64],
    clock_mhz: NDArray[np.float64],
    v2: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Per-launch events of each unique op: shape (n_unique, n_clocks, n_features), scaled to J
    per unit coefficient (so ``events @ coeffs`` is joules)."""
    f_hz = clock_mhz[None, :] * 1e6
    n_u, n_c = t_unique.shape
    ev = np.empty((n_u, n_c, len(FEATURES)))
    ev[..., 0] = t_unique * v2
    ev[..., 1] = (cw.sm_fraction[:, None] * cw.gpu.sm_count) * f_hz * t_unique * v2
    ffma_gemm = cw.gemm_like & ~cw.tensor_math
    mma = np.where(ffma_gemm, cw.cuda_flops, cw.tensor_flops)
    # A fused attention kernel's online softmax runs on CUDA cores and the exp unit with operands
    # in registers: FFMA-class energy, charged through the tensor coefficient like a CUDA-core
    # GEMM's FLOPs. The fitted CUDA-FLOP coefficient stands mostly for the data movement of
    # pointwise kernels (tens of pJ per FLOP) and would bill the softmax as if it streamed memory.
    attn = cw.op_class == int(OpClass.ATTENTION)
    simt = cw.cuda_flops + 4.0 * cw.xu_ops
    soft = np.where(attn, simt, 0.0)
    ev[..., 2] = (mma * cw.tensor_energy_scale + cw.ffma_vs_tensor * soft)[:, None] * v2
    ev[..., 3] = np.where(ffma_gemm | attn, 0.0, simt)[:, None] * v2
    ev[..., 4] = cw.l2_bytes[:, None] * v2
    ev[..., 5] = cw.dram_bytes[:, None]
    ev[..., 6] = cw.elements[:, None] * v2
    return np.asarray(ev * _UNIT, dtype=np.float64)


def pass_events(
    cw: CompiledWorkload,
    params: TimeParams,
    clock_mhz: NDArray[np.float64],
    v2: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Events of one whole pass at one clock (shape ``(n_features,)``, J per unit coefficient),
    with the time-proportional ones taken over the time model's kernel times."""
    t_unique = kernel_times(cw, params, clock_mhz)
    per_launch = event_matrix(cw, t_unique, clock_mhz, v2)[:, 0, :]
    return np.asarray((cw.count[:, None] * per_launch).sum(axis=0), dtype=np.float64)


def coefficient_vector(params: PowerParams) -> NDArray[np.float64]:
    """The power coefficients in :data:`FEATURES` order."""
    return np.array([getattr(params, name) for name in FEATURES], dtype=np.float64)
