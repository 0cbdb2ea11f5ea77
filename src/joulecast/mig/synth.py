"""Synthetic MIG telemetry with a known per-instance power truth.

The truth is deliberately *not* the online model's functional form: per-class saturating and
super-linear terms, a hidden per-job power factor invisible to the metrics, memory-system
contention power that depends on all partitions together, temperature-dependent leakage, a soft
power cap that compresses every partition, and a lagging, averaging, noisy, quantised sensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from joulecast.mig.frame import ACTIVITY_FIELDS, FloatArray
from joulecast.mig.profiles import parse_profile

WORKLOAD_CLASSES: tuple[str, ...] = ("gemm", "decode", "fp32", "copy", "idle")

# Typical per-instance ratios while busy (DCGM convention: relative to the instance).
_CLASS_ACTIVITY: dict[str, dict[str, float]] = {
    "gemm": {"gract": 0.98, "smact": 0.93, "smocc": 0.45, "tensor_active": 0.72,
             "dram_active": 0.35, "fp64_active": 0.0, "fp32_active": 0.05, "fp16_active": 0.03},
    "decode": {"gract": 0.92, "smact": 0.55, "smocc": 0.25, "tensor_active": 0.14,
               "dram_active": 0.82, "fp64_active": 0.0, "fp32_active": 0.08, "fp16_active": 0.05},
    "prefill": {"gract": 0.99, "smact": 0.9, "smocc": 0.5, "tensor_active": 0.65,
                "dram_active": 0.35, "fp64_active": 0.0, "fp32_active": 0.06, "fp16_active": 0.04},
    "fp32": {"gract": 0.97, "smact": 0.9, "smocc": 0.6, "tensor_active": 0.0,
             "dram_active": 0.25, "fp64_active": 0.0, "fp32_active": 0.7, "fp16_active": 0.0},
    "copy": {"gract": 0.45, "smact": 0.12, "smocc": 0.05, "tensor_active": 0.0,
             "dram_active": 0.6, "fp64_active": 0.0, "fp32_active": 0.02, "fp16_active": 0.0},
}  # fmt: skip
# Hidden per-class power factor range (data-dependent switching the metrics cannot see).
_HIDDEN: dict[str, tuple[float, float]] = {
    "gemm": (1.0, 1.3),
    "decode": (0.8, 1.0),
    "prefill": (0.8, 1.0),
    "fp32": (0.9, 1.15),
    "copy": (0.7, 0.9),
}


@dataclass(frozen=True)
class SynthInstance:
    """One instance of a synthetic scenario.

    Attributes:
        profile: MIG profile.
        workloads: Workload classes in order; the instance switches class at equal intervals.
        lockstep_with: Index of an earlier instance whose activity this one copies (replicas).
        mean_on_s: Mean busy-burst length.
        mean_off_s: Mean idle gap length.
        active_from_s: Instance created at this time (absent before).
        active_until_s: Instance destroyed at this time (absent after); None = never.
    """

    profile: str
    workloads: tuple[str, ...]
    lockstep_with: int | None = None
    mean_on_s: float = 240.0
    mean_off_s: float = 90.0
    active_from_s: float = 0.0
    active_until_s: float | None = None


@dataclass(frozen=True)
class Scenario:
    """A synthetic GPU run.

    Attributes:
        name: Scenario name.
        instances: Instances of the layout.
        duration_s: Length in seconds (sampled at 1 Hz).
        static_w: Board power with MIG on and all instances idle, at the reference temperature.
        cap_w: Board power cap; all partitions are compressed above about 90 % of it.
        scale_w: Watts per unit of whole-GPU activity scale (about TDP - static).
        noise_w: Sensor noise standard deviation.
        sensor_tau_s: Sensor averaging time constant.
        lag_s: Sensor delay in whole seconds.
        blank_fraction: Fraction of activity cells written blank.
        gpu_uuid: GPU UUID.
    """

    name: str
    instances: tuple[SynthInstance, ...]
    duration_s: int = 7200
    static_w: float = 62.0
    cap_w: float = 400.0
    scale_w: float = 330.0
    noise_w: float = 3.0
    sensor_tau_s: float = 0.8
    lag_s: int = 1
    blank_fraction: float = 0.003
    gpu_uuid: str = "GPU-5e7a0000-0000-4000-8000-000000000001"


@dataclass(frozen=True, eq=False)
class SynthRun:
    """A generated run and its truth.

    Attributes:
        scenario: The scenario.
        time_s: (T,) sample times.
        board_power_w: (T,) sensor reading (what telemetry shows).
        activity: (T, N, F) per-instance ratios as reported (may exceed 1 slightly; NaN = blank).
        present: (T, N) instance exists.
        true_dynamic_w: (T, N) true per-instance dynamic power.
        true_static_w: (T,) true static power (with leakage drift).
        instance_ids: GPU-instance ids as written.
        profiles: Profile names as written.
    """

    scenario: Scenario
    time_s: FloatArray
    board_power_w: FloatArray
    activity: FloatArray
    present: NDArray[np.bool_]
    true_dynamic_w: FloatArray
    true_static_w: FloatArray
    instance_ids: tuple[str, ...]
    profiles: tuple[str, ...]
    meta: dict[str, float] = field(default_factory=dict)

    def true_dynamic_energy_j(self) -> FloatArray:
        """(N,) true dynamic energy per instance (trapezoid on the 1 Hz grid)."""
        dt = np.diff(self.time_s)[:, None]
        return np.asarray((0.5 * (self.true_dynamic_w[1:] + self.true_dynamic_w[:-1]) * dt).sum(0))

    def to_long_csv(self) -> str:
        """Render as joulecast long CSV (one row per timestamp and present instance).

        Times and power have one decimal, activity ratios four; blank cells are written empty.
        The text is assembled as fixed-width byte rows (NUL-padded, NULs dropped at the end), which
        keeps a day of 7 instances to about a second.
        """
        from joulecast.mig.readers import LONG_CSV_HEADER

        t_idx, i_idx = np.nonzero(self.present)
        n = t_idx.size
        act = self.activity[t_idx, i_idx, :]
        uuid = self.scenario.gpu_uuid
        middles = [
            f",{uuid},{g},{p},".encode()
            for g, p in zip(self.instance_ids, self.profiles, strict=True)
        ]
        mid_w = max(len(m) for m in middles)
        mid_table = np.zeros((len(middles), mid_w), dtype=np.uint8)
        for k, m in enumerate(middles):
            mid_table[k, : len(m)] = np.frombuffer(m, dtype=np.uint8)
        parts = [
            _fixed_decimal(self.time_s[t_idx], 1),
            mid_table[i_idx],
            _fixed_decimal(self.board_power_w[t_idx], 1),
        ]
        for j in range(act.shape[1]):
            parts.append(np.full((n, 1), ord(","), dtype=np.uint8))
            parts.append(_fixed_decimal(act[:, j], 4))
        parts.append(np.full((n, 1), ord("\n"), dtype=np.uint8))
        body = np.concatenate(parts, axis=1).tobytes().replace(b"\x00", b"")
        return ",".join(LONG_CSV_HEADER) + "\n" + body.decode("ascii")

    def truth_dict(self) -> dict[str, object]:
        """Truth as a JSON-ready dict (per-instance dynamic energy, static energy)."""
        e = self.true_dynamic_energy_j()
        dt = np.diff(self.time_s)
        static_j = float((0.5 * (self.true_static_w[1:] + self.true_static_w[:-1]) * dt).sum())
        return {
            "scenario": self.scenario.name,
            "gpu_uuid": self.scenario.gpu_uuid,
            "static_energy_j": static_j,
            "instances": [
                {"gpu_instance_id": g, "profile": p, "dynamic_energy_j": float(e[i])}
                for i, (g, p) in enumerate(zip(self.instance_ids, self.profiles, strict=True))
            ],
        }


def _fixed_decimal(x: FloatArray, decimals: int) -> NDArray[np.uint8]:
    """Decimal text of non-negative values as right-aligned, NUL-padded bytes (NaN: all NUL).

    Args:
        x: (n,) values (NaN for a blank cell).
        decimals: Digits after the decimal point.

    Returns:
        (n, width) ASCII bytes; strip the NULs to get the text.

    Raises:
        ValueError: On negative or non-finite non-NaN values.
    """
    blank = np.isnan(x)
    v = np.where(blank, 0.0, x)
    if (v < 0).any() or not np.isfinite(v).all():
        raise ValueError("only non-negative finite values can be written")
    scaled = np.round(v * 10.0**decimals).astype(np.int64)
    int_digits = max(len(str(int(scaled.max()) // 10**decimals)) if scaled.size else 1, 1)
    width = int_digits + (decimals + 1 if decimals else 0)
    out = np.zeros((x.size, width), dtype=np.uint8)
    col = width - 1
    for _ in range(decimals):
        out[:, col] = 48 + scaled % 10
        scaled //= 10
        col -= 1
    if decimals:
        out[:, col] = 46
        col -= 1
    first = True
    while col >= 0:
        out[:, col] = np.where(first | (scaled > 0), 48 + scaled % 10, 0)
        scaled //= 10
        col -= 1
        first = False
    out[blank] = 0
    return out


def _bursts(rng: np.random.Generator, n: int, mean_on: float, mean_off: float) -> NDArray[np.bool_]:
    """On/off mask with geometric burst lengths, starting in a random state."""
    out = np.zeros(n, dtype=bool)
    t = 0
    on = bool(rng.random() < mean_on / (mean_on + mean_off))
    while t < n:
        length = int(rng.geometric(1.0 / (mean_on if on else mean_off)))
        out[t : t + length] = on
        t += length
        on = not on
    return out


def _class_power(cls: str, x: FloatArray, s: float, m: float, scale: float) -> FloatArray:
    """True dynamic power of one instance from its ratios (saturating / super-linear terms)."""
    ix = {f: i for i, f in enumerate(ACTIVITY_FIELDS)}
    tensor, dram = x[:, ix["tensor_active"]], x[:, ix["dram_active"]]
    fp32, fp16, fp64 = x[:, ix["fp32_active"]], x[:, ix["fp16_active"]], x[:, ix["fp64_active"]]
    smact, smocc = x[:, ix["smact"]], x[:, ix["smocc"]]
    k = scale / 330.0
    compute = (
        250.0 * tensor**0.75 * (0.85 + 0.3 * smocc)
        + 170.0 * fp32**0.9
        + 110.0 * fp16
        + 230.0 * fp64**0.85
        + 55.0 * smact**1.4
    )
    memory = 150.0 * dram**1.25 * (1.0 - 0.2 * dram)
    return k * (s * compute + m * memory)


def generate(scenario: Scenario, seed: int) -> SynthRun:
    """Generate a run of a scenario.

    Args:
        scenario: What to simulate.
        seed: Random seed.

    Returns:
        Telemetry as the sensors would show it plus the truth.
    """
    rng = np.random.default_rng(seed)
    n = int(scenario.duration_s)
    t = np.arange(n, dtype=np.float64)
    n_i = len(scenario.instances)
    n_f = len(ACTIVITY_FIELDS)
    profiles = [parse_profile(i.profile) for i in scenario.instances]
    act = np.zeros((n, n_i, n_f))
    present = np.zeros((n, n_i), dtype=bool)
    raw_dyn = np.zeros((n, n_i))
    hidden_of: dict[int, dict[str, float]] = {}
    for i, spec in enumerate(scenario.instances):
        end = spec.active_until_s if spec.active_until_s is not None else float(n)
        present[:, i] = (t >= spec.active_from_s) & (t < end)
        if spec.lockstep_with is not None:
            j = spec.lockstep_with
            # Replicas: same schedule and activity, a little independent jitter.
            act[:, i] = np.clip(act[:, j] * (1 + rng.normal(0, 0.01, (n, n_f))), 0, None)
            cls_series = [spec.workloads[0]] * n
        else:
            on = _bursts(rng, n, spec.mean_on_s, spec.mean_off_s)
            seg = np.minimum((t * len(spec.workloads) / n).astype(int), len(spec.workloads) - 1)
            cls_series = [spec.workloads[k] for k in seg]
            # Per-job level: each busy burst draws its own intensity; levels drift slowly.
            starts = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(int)])) == 1)
            level = np.ones(n)
            for s0 in starts:
                level[s0:] = rng.uniform(0.7, 1.05)
            drift = 1.0 + 0.05 * np.sin(2 * np.pi * t / rng.uniform(600, 2400) + rng.uniform(0, 6))
            base = np.zeros((n, n_f))
            cls_arr = np.array(cls_series)
            # First-seen order, not set order: set order follows the per-process string hash
            # seed, which would change the random draws (and the data) from run to run.
            for cls in dict.fromkeys(cls_series):
                if cls == "idle":
                    continue
                mask = (cls_arr == cls) & on
                vec = np.array([_CLASS_ACTIVITY[cls][f] for f in ACTIVITY_FIELDS])
                base[mask] = vec
                if cls == "decode":
                    # Prefill bursts: compute-heavy seconds inside decode service.
                    burst = _bursts(rng, n, 4.0, 40.0) & mask
                    base[burst] = np.array([_CLASS_ACTIVITY["prefill"][f] for f in ACTIVITY_FIELDS])
            gr = ACTIVITY_FIELDS.index("gract")
            scale = (level * drift)[:, None]
            noisy = base * scale * (1.0 + rng.normal(0.0, 0.04, (n, n_f)))
            noisy[:, gr] = base[:, gr] * (1.0 + rng.normal(0.0, 0.01, n))
            act[:, i] = np.clip(noisy, 0.0, None)
        x = np.clip(act[:, i], 0.0, 1.0)
        p = np.zeros(n)
        cls_arr = np.array(cls_series)
        for cls in dict.fromkeys(cls_series):
            if cls == "idle":
                continue
            mask = cls_arr == cls
            lo, hi = _HIDDEN[cls]
            if spec.lockstep_with is not None and cls in hidden_of.get(spec.lockstep_with, {}):
                # A replica runs the same job on the same kind of data: same hidden factor.
                hidden = hidden_of[spec.lockstep_with][cls] * rng.uniform(0.98, 1.02)
            else:
                hidden = rng.uniform(lo, hi)
            hidden_of.setdefault(i, {})[cls] = hidden
            p[mask] = hidden * _class_power(
                cls,
                x[mask],
                profiles[i].compute_fraction,
                profiles[i].memory_fraction,
                scenario.scale_w,
            )
        raw_dyn[:, i] = p
    act[~present] = 0.0
    raw_dyn[~present] = 0.0

    # Memory-system contention: crossbar/L2 power grows with the square of total DRAM traffic and
    # is shared in proportion to each instance's traffic, so no per-instance model sees it alone.
    mem = np.array([p.memory_fraction for p in profiles])
    traffic = np.clip(act[:, :, ACTIVITY_FIELDS.index("dram_active")], 0, 1) * mem
    total_traffic = traffic.sum(axis=1)
    contention = 70.0 * (scenario.scale_w / 330.0) * total_traffic**2
    share = np.divide(
        traffic,
        total_traffic[:, None],
        out=np.zeros_like(traffic),
        where=total_traffic[:, None] > 0,
    )
    dyn = raw_dyn + contention[:, None] * share

    # Soft power cap: DVFS lowers every partition's power by the same factor.
    budget = scenario.cap_w - scenario.static_w
    d = dyn.sum(axis=1)
    knee = 0.85 * budget
    compressed = np.where(
        d > knee, knee + (budget - knee) * np.tanh((d - knee) / (budget - knee)), d
    )
    factor = np.divide(compressed, d, out=np.ones_like(d), where=d > 0)
    dyn = dyn * factor[:, None]

    # Leakage rises with temperature, which follows board power with a slow time constant.
    tot = dyn.sum(axis=1)
    temp = np.empty(n)
    a = 1.0 - np.exp(-1.0 / 240.0)
    acc = 0.0
    for k in range(n):
        acc += a * (tot[k] - acc)
        temp[k] = acc
    static = scenario.static_w + 0.015 * temp
    true_board = static + dyn.sum(axis=1)

    # Sensor: first-order averaging, delay, Gaussian noise, 0.1 W resolution.
    alpha = 1.0 - np.exp(-1.0 / max(scenario.sensor_tau_s, 1e-6))
    sensed = np.empty(n)
    acc = true_board[0]
    for k in range(n):
        acc += alpha * (true_board[k] - acc)
        sensed[k] = acc
    if scenario.lag_s:
        sensed = np.concatenate([np.full(scenario.lag_s, sensed[0]), sensed[: -scenario.lag_s]])
    sensed = np.round(sensed + rng.normal(0.0, scenario.noise_w, n), 1)

    reported = act.copy()
    blank = rng.random(reported.shape) < scenario.blank_fraction
    reported[blank & present[:, :, None]] = np.nan
    ids = tuple(str(k + 1) for k in range(n_i))
    # dcgm-exporter quirk: the 80 GB full-GPU profile shows up as 7g.79gb.
    names = tuple("7g.79gb" if s.profile == "7g.80gb" else s.profile for s in scenario.instances)
    return SynthRun(
        scenario=scenario,
        time_s=t,
        board_power_w=sensed,
        activity=reported,
        present=present,
        true_dynamic_w=dyn,
        true_static_w=static,
        instance_ids=ids,
        profiles=names,
        meta={"cap_compressed_fraction": float((factor < 0.999).mean())},
    )


def _i(profile: str, *workloads: str, **kw: object) -> SynthInstance:
    return SynthInstance(profile=profile, workloads=tuple(workloads), **kw)  # type: ignore[arg-type]


#: Scenarios used to choose the online method's settings (never for the reported numbers).
TUNING_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "tune-3g2g1g1g",
        (
            _i("3g.40gb", "gemm"),
            _i("2g.20gb", "decode"),
            _i("1g.10gb", "decode"),
            _i("1g.10gb", "fp32"),
        ),
    ),
    Scenario("tune-4g3g-cap", (_i("4g.40gb", "gemm"), _i("3g.40gb", "decode")), cap_w=300.0),
    Scenario(
        "tune-lockstep",
        (_i("3g.40gb", "fp32"), _i("2g.20gb", "decode"), _i("2g.20gb", "decode", lockstep_with=1)),
    ),
    Scenario(
        "tune-7x1g-switch",
        (
            _i("1g.10gb", "decode", "copy"),
            _i("1g.10gb", "gemm"),
            _i("1g.10gb", "copy", "fp32"),
            _i("1g.10gb", "decode"),
            _i("1g.10gb", "fp32", "gemm"),
            _i("1g.10gb", "copy"),
            _i("1g.10gb", "gemm", "decode"),
        ),
    ),
    Scenario(
        "tune-3g2g2g-appear-noisy",
        (
            _i("3g.40gb", "gemm", "copy"),
            _i("2g.20gb", "decode", active_until_s=4800.0),
            _i("2g.20gb", "fp32", "decode", active_from_s=1200.0),
        ),
        noise_w=4.0,
        lag_s=2,
    ),
    Scenario(
        "tune-h100-3g2g2g",
        (
            _i("3g.40gb", "decode", "gemm"),
            _i("2g.20gb", "gemm"),
            _i("2g.20gb", "copy", "decode"),
        ),
        static_w=95.0,
        cap_w=700.0,
        scale_w=560.0,
        sensor_tau_s=1.0,
    ),
)

#: Seeds of the tuning runs (disjoint from :data:`REPORT_SEEDS`).
TUNING_SEEDS: tuple[int, ...] = (11, 12, 13, 14, 15, 16)

#: Seeds of the held-out report (never used to choose settings).
REPORT_SEEDS: tuple[int, ...] = (101, 102, 103)

#: Held-out scenarios for the benchmark report.
REPORT_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "mixed-7x1g",
        (
            _i("1g.10gb", "gemm"),
            _i("1g.10gb", "decode"),
            _i("1g.10gb", "fp32"),
            _i("1g.10gb", "copy", "decode"),
            _i("1g.10gb", "decode"),
            _i("1g.10gb", "gemm", "fp32"),
            _i("1g.10gb", "decode", "gemm"),
        ),
    ),
    Scenario(
        "decode3g-gemm4g-capped",
        (_i("3g.40gb", "decode", mean_on_s=600.0, mean_off_s=60.0), _i("4g.40gb", "gemm")),
        cap_w=330.0,
        static_w=70.0,
    ),
    Scenario(
        "lockstep-2g2g-fp32-switch",
        (
            _i("2g.20gb", "gemm"),
            _i("2g.20gb", "gemm", lockstep_with=0),
            _i("3g.40gb", "fp32", "decode"),
        ),
    ),
    Scenario(
        "appearing-copies-3g2g1g1g",
        (
            _i("3g.40gb", "decode"),
            _i("2g.20gb", "copy", "gemm"),
            _i("1g.10gb", "gemm", active_from_s=1800.0),
            _i("1g.10gb", "fp32", active_until_s=5400.0),
        ),
        noise_w=4.0,
        lag_s=2,
    ),
    Scenario(
        "h100-4g2g1g-heavy",
        (_i("4g.40gb", "gemm", "decode"), _i("2g.20gb", "decode"), _i("1g.10gb", "gemm")),
        static_w=95.0,
        cap_w=700.0,
        scale_w=560.0,
        sensor_tau_s=1.0,
    ),
)

#: A 7-instance day used for the throughput benchmark.
DAY_SCENARIO = Scenario(
    "day-7x1g",
    tuple(_i("1g.10gb", w) for w in ("gemm", "decode", "fp32", "copy", "decode", "gemm", "fp32")),
    duration_s=86400,
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (*TUNING_SCENARIOS, *REPORT_SCENARIOS, DAY_SCENARIO)
}
