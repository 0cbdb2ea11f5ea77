"""Workload regimes: change points in each instance's activity mix."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from joulecast.mig.frame import FloatArray
from joulecast.mig.methods.base import ModelInputs


def detect_regimes(
    inputs: ModelInputs,
    *,
    min_busy: int,
    min_shift: float,
    max_regimes: int,
    chunk: int = 30,
) -> NDArray[np.intp]:
    """Label each sample of each instance with a workload regime (change points in the mix).

    The signature of a busy sample is its L1-normalised (tensor, DRAM, FP, SM) mix, which does
    not change with the load level. Busy samples are summarised in chunks of ``chunk`` by their
    median (short prefill bursts drop out), and binary segmentation splits the chunk series where
    the mean mix shifts by at least ``min_shift`` (L1) with ``min_busy`` busy samples on each
    side. Idle samples inherit the regime of the previous busy sample.

    Returns:
        (T, N) regime index per sample and instance (0 .. regimes-1, in time order).
    """
    feats = inputs.features
    n_t, n_i = feats.shape[:2]
    labels = np.zeros((n_t, n_i), dtype=np.intp)
    min_chunks = max(min_busy // chunk, 1)
    for i in range(n_i):
        busy = np.flatnonzero(inputs.active[:, i])
        n_chunks = busy.size // chunk
        if n_chunks < 2 * min_chunks or max_regimes < 2:
            continue
        mix = feats[busy[: n_chunks * chunk], i, :4]
        norm = mix.sum(axis=1, keepdims=True)
        mix = np.divide(mix, norm, out=np.zeros_like(mix), where=norm > 0)
        sig = np.median(mix.reshape(n_chunks, chunk, 4), axis=1)
        cuts = _segment(sig, min_chunks, min_shift, max_regimes)
        if not cuts:
            continue
        # Regime boundaries in time: at the first busy sample of each new segment.
        bounds = busy[np.array(cuts) * chunk]
        labels[:, i] = np.searchsorted(bounds, np.arange(n_t), side="right")
    return labels


def _segment(sig: FloatArray, min_len: int, min_shift: float, max_parts: int) -> list[int]:
    """Binary segmentation of a (M, F) series; returns sorted cut indices."""
    cuts: list[int] = []
    pending = [(0, sig.shape[0])]
    while pending and len(cuts) + 1 < max_parts:
        best: tuple[float, int, int, int] | None = None
        for a, b in pending:
            n = b - a
            if n < 2 * min_len:
                continue
            cs = np.cumsum(sig[a:b], axis=0)
            total = cs[-1]
            k = np.arange(min_len, n - min_len + 1)
            left = cs[k - 1] / k[:, None]
            right = (total - cs[k - 1]) / (n - k)[:, None]
            gain = (k * (n - k) / n) * ((left - right) ** 2).sum(axis=1)
            j = int(np.argmax(gain))
            shift = float(np.abs(left[j] - right[j]).sum())
            if shift >= min_shift and (best is None or gain[j] > best[0]):
                best = (float(gain[j]), a, b, a + int(k[j]))
        if best is None:
            break
        _, a, b, cut = best
        cuts.append(cut)
        pending.remove((a, b))
        pending.extend([(a, cut), (cut, b)])
    return sorted(cuts)
