"""Per-GPU telemetry frames on a common time grid, built from long (row-per-instance) columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from joulecast.errors import TelemetryError
from joulecast.mig.limits import check_column, check_name
from joulecast.mig.profiles import MigProfile, parse_profile, total_slices_for

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Activity ratios in the order they are stored in :attr:`GpuTelemetry.activity`.
ACTIVITY_FIELDS: tuple[str, ...] = (
    "gract",
    "smact",
    "smocc",
    "tensor_active",
    "dram_active",
    "fp64_active",
    "fp32_active",
    "fp16_active",
)
FIELD_INDEX: dict[str, int] = {name: i for i, name in enumerate(ACTIVITY_FIELDS)}

# Ratios a little above 1 are a known DCGM quirk (DCGM #152); far above 1 means percent.
_RATIO_SLACK = 1.5


@dataclass(frozen=True)
class MigInstance:
    """One GPU instance of a MIG-partitioned GPU.

    Attributes:
        gpu_instance_id: NVML GPU-instance id as reported (kept as text).
        profile: Parsed profile.
    """

    gpu_instance_id: str
    profile: MigProfile


@dataclass(frozen=True, eq=False)
class GpuTelemetry:
    """Telemetry of one physical GPU on its own time grid.

    Attributes:
        gpu_uuid: GPU UUID.
        instances: Instances seen in the file, in first-seen order.
        time_s: Sample times (T,), strictly increasing.
        board_power_w: Board power (T,); gaps already interpolated (see warnings).
        activity: Per-instance ratios (T, N, F) in :data:`ACTIVITY_FIELDS` order, relative to the
            instance (DCGM convention), clamped to [0, 1]; short gaps filled, NaN where a field
            was never reported for that instance.
        present: (T, N) whether the instance existed (had a row) at that time.
        energy_counter_j: Board energy counter (T,) in J if the source had one, else None.
        gap_samples: (N,) number of samples whose activity was filled in rather than measured.
    """

    gpu_uuid: str
    instances: tuple[MigInstance, ...]
    time_s: FloatArray
    board_power_w: FloatArray
    activity: FloatArray
    present: BoolArray
    energy_counter_j: FloatArray | None = None
    gap_samples: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def total_slices(self) -> int:
        """Compute slices of the whole GPU."""
        return self.instances[0].profile.total_slices if self.instances else 7


@dataclass(frozen=True)
class Telemetry:
    """Everything read from one telemetry source.

    Attributes:
        gpus: One frame per physical GPU.
        warnings: Human-readable notes about quirks that were repaired.
        source_format: Reader that produced it.
    """

    gpus: tuple[GpuTelemetry, ...]
    warnings: tuple[str, ...]
    source_format: str


def _fill_gaps(values: FloatArray, valid: BoolArray) -> tuple[FloatArray, int]:
    """Linearly interpolate NaNs of a 1-D series over the samples where ``valid`` is true."""
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return values, 0
    v = values[idx]
    good = ~np.isnan(v)
    n_missing = int((~good).sum())
    if n_missing == 0 or not good.any():
        return values, 0 if not good.any() else n_missing
    out = values.copy()
    filled = np.interp(idx[~good], idx[good], v[good])
    out[idx[~good]] = np.clip(filled, v[good].min(), v[good].max())
    return out, n_missing


def first_seen_codes(values: Sequence[str]) -> tuple[NDArray[np.intp], list[str]]:
    """Integer code per value, numbered in order of first appearance."""
    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault(v, len(index)) for v in values), dtype=np.intp, count=len(values)
    )
    return codes, list(index)


def build_telemetry(
    *,
    time_s: FloatArray,
    gpu_uuid: Sequence[str],
    gpu_instance_id: Sequence[str],
    profile: Sequence[str],
    board_power_w: FloatArray,
    activity: Mapping[str, FloatArray],
    energy_counter_j: FloatArray | None = None,
    source_format: str,
    row_offset: int = 2,
    row_numbers: NDArray[np.intp] | None = None,
    warnings: Sequence[str] = (),
) -> Telemetry:
    """Turn long rows (one per timestamp and instance) into per-GPU frames.

    Args:
        time_s: Row timestamps in seconds.
        gpu_uuid: Row GPU UUIDs.
        gpu_instance_id: Row GPU-instance ids.
        profile: Row profile names.
        board_power_w: Row board power in W (repeated per instance row; NaN = blank).
        activity: Row activity ratios by field name (NaN = blank); absent fields are all-missing.
        energy_counter_j: Optional board energy counter in J per row.
        source_format: Name of the reader, for messages.
        row_offset: Added to a 0-based row index to name a line in error messages.
        row_numbers: File line of each row (overrides ``row_offset``).
        warnings: Warnings already raised by the reader.

    Returns:
        The telemetry.

    Raises:
        TelemetryError: On backwards timestamps, duplicate rows, no power at all, bad profiles,
            or a value outside :mod:`joulecast.mig.limits`.
    """
    n_rows = int(np.asarray(time_s).shape[0])
    gpu_code, gpu_names = first_seen_codes([str(g).strip() for g in gpu_uuid])
    keys = [
        f"{str(g).strip()}\x00{str(p).strip()}"
        for g, p in zip(gpu_instance_id, profile, strict=True)
    ]
    key_code, key_names = first_seen_codes(keys)
    inst_keys = [(k.split("\x00")[0], k.split("\x00")[1]) for k in key_names]
    return build_telemetry_coded(
        time_s=np.asarray(time_s, dtype=np.float64),
        gpu_code=gpu_code,
        gpu_names=gpu_names,
        inst_code=key_code,
        inst_keys=inst_keys,
        board_power_w=np.asarray(board_power_w, dtype=np.float64),
        activity=activity,
        energy_counter_j=energy_counter_j,
        source_format=source_format,
        row_numbers=np.arange(n_rows) + row_offset if row_numbers is None else row_numbers,
        warnings=warnings,
    )


def build_telemetry_coded(
    *,
    time_s: FloatArray,
    gpu_code: NDArray[np.intp],
    gpu_names: Sequence[str],
    inst_code: NDArray[np.intp],
    inst_keys: Sequence[tuple[str, str]],
    board_power_w: FloatArray,
    activity: Mapping[str, FloatArray],
    energy_counter_j: FloatArray | None = None,
    source_format: str,
    row_numbers: NDArray[np.intp],
    warnings: Sequence[str] = (),
) -> Telemetry:
    """Like :func:`build_telemetry`, with GPUs and instances already given as integer codes.

    Args:
        time_s: Row timestamps in seconds.
        gpu_code: Row GPU, an index into ``gpu_names`` (GPUs are reported in code order).
        gpu_names: GPU UUIDs.
        inst_code: Row instance, an index into ``inst_keys`` (instances are listed in code
            order within each GPU).
        inst_keys: ``(gpu_instance_id, profile)`` per instance code.
        board_power_w: Row board power in W (repeated per instance row; NaN = blank).
        activity: Row activity ratios by field name (NaN = blank); absent fields are all-missing.
        energy_counter_j: Optional board energy counter in J per row.
        source_format: Name of the reader, for messages.
        row_numbers: File line (or row) number of each row, for error messages.
        warnings: Warnings already raised by the reader.

    Returns:
        The telemetry.

    Raises:
        TelemetryError: On backwards timestamps, duplicate rows, no power at all, bad profiles,
            or a value outside :mod:`joulecast.mig.limits` (infinite, negative, impossible).
    """
    notes = list(warnings)
    n_rows = int(time_s.shape[0])
    if n_rows == 0:
        raise TelemetryError(f"{source_format}: no telemetry rows")
    if np.isnan(time_s).any():
        bad = int(np.flatnonzero(np.isnan(time_s))[0])
        raise TelemetryError(
            f"{source_format}: blank or invalid timestamp at row {int(row_numbers[bad])}"
        )

    def where(k: int) -> str:
        return f"{source_format}: row {int(row_numbers[k])}"

    for g, name in enumerate(gpu_names):
        check_name("GPU UUID", str(name), where(int(np.argmax(gpu_code == g))))
    for c, (gi, prof) in enumerate(inst_keys):
        row = where(int(np.argmax(inst_code == c)))
        check_name("GPU-instance id", gi, row)
        check_name("profile", prof, row)
    check_column("timestamp_s", time_s, where)
    check_column("board_power_w", board_power_w, where)
    if energy_counter_j is not None:
        check_column("energy_counter_j", energy_counter_j, where)
    act = np.full((n_rows, len(ACTIVITY_FIELDS)), np.nan)
    for name, values in activity.items():
        check_column(name, np.asarray(values, dtype=np.float64), where)
        act[:, FIELD_INDEX[name]] = values
    for j, name in enumerate(ACTIVITY_FIELDS):
        col = act[:, j]
        finite = col[~np.isnan(col)]
        if finite.size and finite.max() > _RATIO_SLACK:
            if finite.max() <= 100.0 + 1e-6:
                act[:, j] = col / 100.0
                notes.append(
                    f"{name}: values up to {finite.max():g} look like percent; divided by 100"
                )
            else:
                raise TelemetryError(
                    f"{source_format}: {name} values up to {finite.max():g}; expected ratios 0..1"
                )
    over = act > 1.0
    if over.any():
        notes.append(
            f"{int(over.sum())} activity values above 1 (max {np.nanmax(act):.3f}) clamped to 1"
        )
    np.clip(act, 0.0, 1.0, out=act)

    frames: list[GpuTelemetry] = []
    order = np.argsort(gpu_code, kind="stable")
    bounds = np.searchsorted(gpu_code[order], np.arange(len(gpu_names) + 1))
    for g, uuid in enumerate(gpu_names):
        rows = order[bounds[g] : bounds[g + 1]]
        if rows.size == 0:
            continue
        frames.append(
            _build_gpu(
                str(uuid),
                row_numbers[rows],
                time_s[rows],
                inst_code[rows],
                inst_keys,
                board_power_w[rows],
                act[rows],
                None if energy_counter_j is None else energy_counter_j[rows],
                source_format,
                notes,
            )
        )
    return Telemetry(gpus=tuple(frames), warnings=tuple(notes), source_format=source_format)


def _build_gpu(
    uuid: str,
    row_numbers: NDArray[np.intp],
    t: FloatArray,
    codes: NDArray[np.intp],
    inst_keys: Sequence[tuple[str, str]],
    power: FloatArray,
    act: FloatArray,
    energy: FloatArray | None,
    source_format: str,
    notes: list[str],
) -> GpuTelemetry:
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        k = int(back[0]) + 1
        raise TelemetryError(
            f"{source_format}: timestamps of GPU {uuid} go backwards at row "
            f"{int(row_numbers[k])} "
            f"({t[k]:g} after {t[k - 1]:g}); sort the file by time or split it at the clock reset"
        )
    times, t_idx = np.unique(t, return_inverse=True)
    # A GI id re-used with another profile is a different instance (the GPU was re-partitioned).
    used, n_idx = np.unique(codes, return_inverse=True)
    key_order = [inst_keys[int(c)] for c in used]
    total = total_slices_for(p for _, p in key_order)
    instances: list[MigInstance] = []
    for g, p in key_order:
        try:
            parsed = parse_profile(p, total)
        except TelemetryError as exc:
            raise TelemetryError(f"GPU {uuid} instance {g}: {exc}") from None
        instances.append(MigInstance(gpu_instance_id=g, profile=parsed))
    ids = [i.gpu_instance_id for i in instances]
    if len(set(ids)) != len(ids):
        notes.append(
            f"GPU {uuid}: a GPU-instance id appears with several profiles (re-partitioned)"
        )
    n_t, n_i = times.size, len(instances)
    flat = t_idx * n_i + n_idx
    counts = np.bincount(flat, minlength=n_t * n_i)
    if (counts > 1).any():
        dup = int(np.flatnonzero(counts > 1)[0])
        raise TelemetryError(
            f"{source_format}: GPU {uuid} has several rows for instance {ids[dup % n_i]} at "
            f"time {times[dup // n_i]:g}"
        )
    present = (counts > 0).reshape(n_t, n_i)
    activity = np.full((n_t, n_i, len(ACTIVITY_FIELDS)), np.nan)
    activity[t_idx, n_idx, :] = act

    # Board power is repeated on every instance row: de-duplicate, never add.
    valid = ~np.isnan(power)
    if not valid.any():
        raise TelemetryError(f"{source_format}: GPU {uuid} has no board power values")
    p_sum = np.bincount(t_idx[valid], weights=power[valid], minlength=n_t)
    p_cnt = np.bincount(t_idx[valid], minlength=n_t)
    p_max = np.full(n_t, -np.inf)
    p_min = np.full(n_t, np.inf)
    np.maximum.at(p_max, t_idx[valid], power[valid])
    np.minimum.at(p_min, t_idx[valid], power[valid])
    with np.errstate(invalid="ignore", divide="ignore"):
        board = np.where(p_cnt > 0, p_sum / np.maximum(p_cnt, 1), np.nan)
    spread = np.where(p_cnt > 1, p_max - p_min, 0.0)
    if (spread > 1.0).any():
        notes.append(
            f"GPU {uuid}: board power differs between instance rows at {int((spread > 1.0).sum())} "
            "timestamps (max spread {:.1f} W); averaged".format(float(spread.max()))
        )
    missing_p = np.isnan(board)
    if missing_p.any():
        known = board[~missing_p]
        # Clipped to the known range: np.interp between subnormal values can round below it.
        board = np.clip(np.interp(times, times[~missing_p], known), known.min(), known.max())
        notes.append(
            f"GPU {uuid}: board power missing at {int(missing_p.sum())} timestamps; interpolated"
        )

    gaps = np.zeros(n_i, dtype=np.int64)
    for i in range(n_i):
        for j in range(len(ACTIVITY_FIELDS)):
            filled, n_miss = _fill_gaps(activity[:, i, j], present[:, i])
            activity[:, i, j] = filled
            gaps[i] = max(gaps[i], n_miss)
        if gaps[i]:
            notes.append(
                f"GPU {uuid} instance {ids[i]}: {int(gaps[i])} samples with blank activity; "
                "interpolated from neighbours (not zero)"
            )
        n_present = int(present[:, i].sum())
        if n_present < n_t:
            first = times[np.argmax(present[:, i])]
            last = times[n_t - 1 - np.argmax(present[::-1, i])]
            notes.append(
                f"GPU {uuid} instance {ids[i]} ({instances[i].profile.name}) present in "
                f"{n_present} of "
                f"{n_t} samples (t={first:g}..{last:g}); absent samples get no share"
            )
    activity[~present] = 0.0

    energy_out: FloatArray | None = None
    if energy is not None and not np.isnan(energy).all():
        e_sum = np.bincount(
            t_idx[~np.isnan(energy)], weights=energy[~np.isnan(energy)], minlength=n_t
        )
        e_cnt = np.bincount(t_idx[~np.isnan(energy)], minlength=n_t)
        energy_out = np.where(e_cnt > 0, e_sum / np.maximum(e_cnt, 1), np.nan)
    return GpuTelemetry(
        gpu_uuid=uuid,
        instances=tuple(instances),
        time_s=times.astype(np.float64),
        board_power_w=board.astype(np.float64),
        activity=activity,
        present=present,
        energy_counter_j=energy_out,
        gap_samples=gaps,
    )
