"""Online attribution of one GPU, poll by poll: the live service's model and energy ledger.

Each successful poll gives per-component power (dynamic and static per instance; board,
unattributed static and residual per GPU). The energy of the interval since the GPU's previous
update is measured the way the batch engine does it (:mod:`joulecast.mig.attribute`): the board
energy counter's difference when it agrees with integrated power, else the trapezoid of the power
readings; it is then split among the components in proportion to their trapezoid energies, so
the components add up to the board energy in every interval.

Across failed polls (exporter outages, rejected samples) the counter, when it agreed with power
on the last normal interval, backfills the whole gap. Without a trusted counter only the first
``max_gap_s`` of a gap is credited from the two power readings around it; the rest is reported
as unaccounted time, never guessed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from joulecast.mig.attribute import reconcile, split_static
from joulecast.mig.frame import FloatArray, GpuTelemetry
from joulecast.mig.limits import MAX_BOARD_POWER_W
from joulecast.mig.methods import contention_shares, fit_window, model_inputs

#: (gpu_instance_id, profile, component); GPU-level rows have empty id and profile.
ComponentKey = tuple[str, str, str]
BOARD: ComponentKey = ("", "", "board")
RESIDUAL: ComponentKey = ("", "", "residual")

# Same rule as the batch engine: a counter step this far from integrated power is not energy.
_COUNTER_TOLERANCE = 0.5
_COUNTER_SLACK_J = 5.0


@dataclass(frozen=True)
class LiveSettings:
    """Settings of the online model and ledger.

    Attributes:
        interval_s: Poll period.
        idle_power_w: Known static power; estimated online when None.
        static_policy: Static-power policy.
        window_s: Trailing window of the online regression.
        refit_every: Refit the regression every this many updates.
        max_gap_s: Longest gap credited from power readings alone (no trusted counter).
    """

    interval_s: float = 1.0
    idle_power_w: float | None = None
    static_policy: str = "reserved"
    window_s: float = 1200.0
    refit_every: int = 30
    max_gap_s: float = 5.0


@dataclass(frozen=True)
class Credit:
    """Energy credited by one update.

    Attributes:
        increments_j: Energy per component (all finite and >= 0; the board row is the total).
        source: ``first`` (nothing to credit yet), ``counter``, ``power`` or ``backfill``
            (counter across failed polls), ``capped`` (power across a gap, partly credited).
        unaccounted_s: Gap time that could not be credited.
        dropped: Component increments refused (not finite or negative; should stay 0).
    """

    increments_j: dict[ComponentKey, float]
    source: str
    unaccounted_s: float = 0.0
    dropped: int = 0


@dataclass
class LiveGpu:
    """Online model and energy ledger of one GPU (owned by the poll thread).

    Args:
        settings: Model and ledger settings.
    """

    settings: LiveSettings
    layout: tuple[tuple[str, str], ...] = ()
    times: deque[float] = field(default_factory=deque)
    power: deque[float] = field(default_factory=deque)
    feats: deque[FloatArray] = field(default_factory=deque)
    beta: FloatArray | None = None
    static_w: float | None = None
    contention_w: float = 0.0
    updates: int = 0
    fit_failures: int = 0
    missed: bool = False
    counter_trusted: bool = False
    last_t: float | None = None
    last_board_w: float = 0.0
    last_counter_j: float | None = None
    power_w: dict[ComponentKey, float] = field(default_factory=dict)

    def update(self, gpu: GpuTelemetry, now: float) -> Credit:
        """Attribute the newest sample of ``gpu`` and credit the energy since the last update.

        Args:
            gpu: One scrape of this GPU (its last sample is used).
            now: Poll time in seconds.

        Returns:
            The energy credited per component.
        """
        previous = self.power_w
        same_layout = self._model(gpu, now)
        counter = None
        if gpu.energy_counter_j is not None and not math.isnan(gpu.energy_counter_j[-1]):
            counter = float(gpu.energy_counter_j[-1])
        credit = self._credit(previous if same_layout else {}, counter, now)
        self.last_t, self.last_counter_j, self.missed = now, counter, False
        self.last_board_w = self.power_w[BOARD]
        return credit

    def _model(self, gpu: GpuTelemetry, now: float) -> bool:
        """Per-component power of the newest sample; False when the layout changed."""
        cfg = self.settings
        inputs = model_inputs(gpu)
        layout = tuple((i.gpu_instance_id, i.profile.name) for i in gpu.instances)
        same = layout == self.layout
        if not same:
            # A new layout means new tenants: the old coefficients say nothing about them.
            n_keep = max(int(cfg.window_s / max(cfg.interval_s, 1e-3)), 16)
            self.layout, self.beta, self.static_w, self.contention_w = layout, None, None, 0.0
            self.times, self.power = deque(maxlen=n_keep), deque(maxlen=n_keep)
            self.feats = deque(maxlen=n_keep)
        p = float(gpu.board_power_w[-1])
        x = inputs.features[-1]
        self.times.append(now)
        self.power.append(p)
        self.feats.append(x)
        self.updates += 1
        if self.updates % cfg.refit_every == 0 and len(self.power) >= 3 * (x.size + 1):
            self._refit()
        if self.beta is not None:
            weights = (x * self.beta).sum(axis=1)
            weights = weights + contention_shares(self.contention_w, x[None, :, 1])[0]
        else:
            # Until the regression has data: slice-weighted activity (L1).
            weights = inputs.compute_share * inputs.gract[-1]
        static = cfg.idle_power_w
        if static is None:
            static = self.static_w if self.static_w is not None else min(self.power)
        static = min(max(static, 0.0), p)
        dyn, resid = reconcile(np.array([p]), np.array([static]), weights[None, :])
        stat_i, stat_u = split_static(
            cfg.static_policy,
            np.array([static]),
            gpu.present[-1:],
            inputs.active[-1:],
            inputs.compute_share,
            dyn,
        )
        out: dict[ComponentKey, float] = {}
        for i, (gi, prof) in enumerate(layout):
            out[(gi, prof, "dynamic")] = float(dyn[0, i])
            out[(gi, prof, "static")] = float(stat_i[0, i])
        out[BOARD] = p
        out[("", "", "static_unattributed")] = float(stat_u[0])
        out[RESIDUAL] = float(resid[0])
        self.power_w = out
        return same

    def _refit(self) -> None:
        """Refit the trailing-window regression; a failed fit keeps the previous coefficients."""
        feats = np.array(self.feats)
        try:
            fit = fit_window(
                np.array(self.power),
                feats,
                idle_power_w=self.settings.idle_power_w,
                shrink=0.01,
                lockstep_corr=0.97,
                traffic=feats[:, :, 1],
            )
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            self.fit_failures += 1
            return
        if np.isfinite(fit.beta).all() and math.isfinite(fit.intercept_w):
            self.beta, self.static_w = fit.beta, max(fit.intercept_w, 0.0)
            self.contention_w = max(fit.contention_w, 0.0)

    def _credit(
        self, previous: dict[ComponentKey, float], counter: float | None, now: float
    ) -> Credit:
        """Measure the interval's board energy and split it among the components."""
        cur = self.power_w
        if self.last_t is None or now <= self.last_t:
            return Credit({k: 0.0 for k in cur}, "first")
        dt = now - self.last_t
        trap = 0.5 * (self.last_board_w + cur[BOARD]) * dt
        de = None
        if counter is not None and self.last_counter_j is not None:
            de = counter - self.last_counter_j
        chosen: tuple[float, str] | None = None
        if not self.missed:
            tolerance = _COUNTER_TOLERANCE * max(trap, 1.0) + _COUNTER_SLACK_J
            self.counter_trusted = de is not None and de >= 0 and abs(de - trap) <= tolerance
            if self.counter_trusted and de is not None:
                chosen = (de, "counter")
        elif (
            self.counter_trusted
            and de is not None
            and 0.0 <= de <= MAX_BOARD_POWER_W * dt + _COUNTER_SLACK_J
        ):
            chosen = (de, "backfill")
        unaccounted = 0.0
        if chosen is None:
            credited = min(dt, self.settings.max_gap_s)
            unaccounted = dt - credited
            chosen = (trap * credited / dt, "capped" if unaccounted > 0 else "power")
        energy, source = chosen
        parts = {k: 0.5 * (previous.get(k, v) + v) for k, v in cur.items() if k != BOARD}
        total = sum(parts.values())
        if total > 0.0:
            inc = {k: v * energy / total for k, v in parts.items()}
        else:
            inc = {k: 0.0 for k in parts}
            inc[RESIDUAL] = energy
        inc[BOARD] = energy
        clean = {k: v for k, v in inc.items() if math.isfinite(v) and v >= 0.0}
        # Rounding can leave a residual of -1e-13 W: that is zero energy, not a refusal.
        dropped = sum(1 for v in inc.values() if not (math.isfinite(v) and v >= -1e-6))
        return Credit(clean, source, unaccounted, dropped)
