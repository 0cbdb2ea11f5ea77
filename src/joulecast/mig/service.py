"""Live attribution service: poll dcgm-exporter, attribute online, serve Prometheus metrics.

Cumulative energies are kept in SQLite (:mod:`~joulecast.mig.state`) and only ever increase, so a
restart resumes the counters instead of resetting them. Nothing an exporter sends stops the
service: a failed poll (refused, timed out, HTTP error, truncated or garbled reply) is counted and
logged in one line, a sample outside :mod:`~joulecast.mig.limits` is dropped and counted, and the
energy of the gap is credited at the next good poll (:mod:`~joulecast.mig.live`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from joulecast.errors import JoulecastError, TelemetryError
from joulecast.mig.attribute import STATIC_POLICIES
from joulecast.mig.httpio import MetricsServer, ScrapeError, check_url, fetch_scrape, parse_listen
from joulecast.mig.limits import MAX_BOARD_POWER_W, MAX_INTERVAL_S, check_setting
from joulecast.mig.live import BOARD, ComponentKey, Credit, LiveGpu, LiveSettings
from joulecast.mig.readers.prometheus import read_prometheus
from joulecast.mig.state import EnergyKey, StateStore

__all__ = ["MigService", "ServiceConfig", "parse_listen"]

log = logging.getLogger("joulecast.mig.serve")

_LABELS = ["gpu_uuid", "gpu_instance_id", "profile", "component"]


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of the live service.

    Attributes:
        dcgm_url: dcgm-exporter ``/metrics`` URL.
        state_path: SQLite file for cumulative energies (its folder is created).
        interval_s: Poll period.
        idle_power_w: Known static power; estimated online when None.
        static_policy: Static-power policy.
        window_s: Trailing window of the online regression.
        refit_every: Refit the regression every this many polls.
        timeout_s: HTTP timeout of one poll.
        max_gap_s: Longest gap credited from power readings alone when no trusted energy
            counter backfills it (default: 5 intervals, at least 5 s).
        stale_after_s: A GPU's power gauges disappear when its last update is older than this
            (default: 3 intervals plus the timeout), so dashboards never show old watts as now.
    """

    dcgm_url: str
    state_path: Path
    interval_s: float = 1.0
    idle_power_w: float | None = None
    static_policy: str = "reserved"
    window_s: float = 1200.0
    refit_every: int = 30
    timeout_s: float = 5.0
    max_gap_s: float | None = None
    stale_after_s: float | None = None

    def validate(self) -> None:
        """Reject settings the service cannot run with.

        Raises:
            JoulecastError: One line naming the setting.
        """
        check_url(self.dcgm_url)
        check_setting("--interval-s", self.interval_s, positive=True, upper=MAX_INTERVAL_S)
        check_setting("--idle-power-w", self.idle_power_w, positive=False, upper=MAX_BOARD_POWER_W)
        check_setting("--timeout-s", self.timeout_s, positive=True, upper=MAX_INTERVAL_S)
        check_setting("window_s", self.window_s, positive=True, upper=1e7)
        if self.refit_every < 1:
            raise TelemetryError(f"refit_every must be >= 1, got {self.refit_every}")
        if self.static_policy not in STATIC_POLICIES:
            raise TelemetryError(
                f"unknown static policy '{self.static_policy}' "
                f"(known: {', '.join(STATIC_POLICIES)})"
            )


def _summary(rejects: Counter[str]) -> str:
    """``board_power_w not_finite: 2, gract negative: 1``."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(rejects.items()))


class MigService:
    """Polls dcgm-exporter and keeps per-instance power and cumulative energy.

    Args:
        config: Service settings.

    Raises:
        JoulecastError: On bad settings or a state file that cannot be opened or set aside.
    """

    def __init__(self, config: ServiceConfig) -> None:
        config.validate()
        self.config = config
        interval = config.interval_s
        self._settings = LiveSettings(
            interval_s=interval,
            idle_power_w=config.idle_power_w,
            static_policy=config.static_policy,
            window_s=config.window_s,
            refit_every=config.refit_every,
            max_gap_s=config.max_gap_s if config.max_gap_s is not None else max(5 * interval, 5),
        )
        self._stale_after_s = (
            config.stale_after_s
            if config.stale_after_s is not None
            else 3 * interval + config.timeout_s
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._store = StateStore(config.state_path, log)
        self.energy_j: dict[EnergyKey, float] = self._store.load()
        self._gpus: dict[str, LiveGpu] = {}
        self._power: dict[str, tuple[float, dict[ComponentKey, float]]] = {}
        self.attempts = 0
        self.polls = 0
        self.poll_errors = 0
        self.rejected: Counter[str] = Counter()
        self.unaccounted_s: defaultdict[str, float] = defaultdict(float)
        self.backfilled_j: defaultdict[str, float] = defaultdict(float)
        self.up = False
        self.last_success_s: float | None = None
        self.started_s = time.time()
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def close(self) -> None:
        """Write the counters a last time and close the state file."""
        with self._lock:
            snapshot = dict(self.energy_j)
        self._store.save(snapshot)
        self._store.close()

    def start_http(self, host: str, port: int) -> MetricsServer:
        """Serve ``/metrics`` on ``host:port`` (port 0 picks a free one) in a daemon thread.

        Raises:
            JoulecastError: When the address cannot be bound (port in use, ...).
        """
        return MetricsServer(
            self.registry, host, port, version=lambda: self.polls + self.poll_errors
        )

    def fetch(self) -> str:
        """Fetch the exporter's metrics text.

        Raises:
            ScrapeError: One line saying why there is no usable reply.
        """
        return fetch_scrape(self.config.dcgm_url, self.config.timeout_s)

    def poll_once(self, now_s: float | None = None, text: str | None = None) -> None:
        """Fetch one scrape, attribute it and add the energy since each GPU's last update.

        Samples outside the physical bounds are dropped and counted (``rejected``); a GPU left
        without board power is not updated this poll (its gap is credited at the next one).

        Args:
            now_s: Poll time (defaults to the wall clock).
            text: Exporter text (fetched from ``dcgm_url`` when None).

        Raises:
            ScrapeError: When the exporter gave no usable reply.
            TelemetryError: When the scrape holds no usable MIG data.
        """
        now = time.time() if now_s is None else now_s
        self.attempts += 1
        rejects: Counter[str] = Counter()
        try:
            body = self.fetch() if text is None else text
            tel = read_prometheus(body, scrape_time_s=now, rejects=rejects)
        except Exception as exc:
            # Every GPU missed this poll: its next update credits the gap (backfill).
            for state in self._gpus.values():
                state.missed = True
            if rejects and isinstance(exc, TelemetryError):
                raise TelemetryError(f"{exc} (left out {_summary(rejects)})") from None
            raise
        finally:
            with self._lock:
                self.rejected.update(rejects)
        if rejects:
            log.warning("poll %d: left out %s", self.attempts, _summary(rejects))
        seen = set()
        failure: Exception | None = None
        for gpu in tel.gpus:
            seen.add(gpu.gpu_uuid)
            live = self._gpus.setdefault(gpu.gpu_uuid, LiveGpu(self._settings))
            try:
                credit = live.update(gpu, now)
            except Exception as exc:  # one GPU's trouble must not cost the others their energy
                live.missed = True
                failure = failure or exc
                continue
            self._apply(gpu.gpu_uuid, credit, dict(live.power_w), now)
        for uuid, state in self._gpus.items():
            if uuid not in seen:
                state.missed = True
        with self._lock:
            snapshot = dict(self.energy_j)
            if failure is None:
                self.polls += 1
                self.up = True
                self.last_success_s = now
        self._store.save(snapshot)
        if failure is not None:
            raise failure

    def _apply(
        self, uuid: str, credit: Credit, power: dict[ComponentKey, float], now: float
    ) -> None:
        """Add one GPU's credited energy to the counters (increments are finite and >= 0)."""
        with self._lock:
            for (gi, prof, comp), inc in credit.increments_j.items():
                key = (uuid, gi, prof, comp)
                total = self.energy_j.get(key, 0.0) + inc
                if math.isfinite(total):
                    self.energy_j[key] = total
            if credit.dropped:
                # Should never happen (inputs are bounded); counted so it cannot hide.
                self.rejected["energy_increment refused"] += credit.dropped
            if credit.source == "backfill":
                self.backfilled_j[uuid] += credit.increments_j.get(BOARD, 0.0)
            self.unaccounted_s[uuid] += credit.unaccounted_s
            self._power[uuid] = (now, power)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current poll."""
        self._stop.set()

    def run(self, max_polls: int | None = None) -> int:
        """Poll every ``interval_s`` forever (or ``max_polls`` times, or until :meth:`stop`).

        Every failed poll is counted and logged in one line; none is fatal.

        Returns:
            The number of failed polls.
        """
        done = failed = 0
        while (max_polls is None or done < max_polls) and not self._stop.is_set():
            started = time.monotonic()
            done += 1
            try:
                self.poll_once()
            except Exception as exc:  # a poll must never end the service
                failed += 1
                self._poll_failed(exc)
            if max_polls is None or done < max_polls:
                self._stop.wait(max(0.0, self.config.interval_s - (time.monotonic() - started)))
        return failed

    def _poll_failed(self, exc: Exception) -> None:
        """Count a failed poll and log it in one line."""
        number = self.attempts
        with self._lock:
            self.poll_errors += 1
            self.up = False
        if isinstance(exc, ScrapeError | JoulecastError):
            log.warning("poll %d failed: %s", number, exc)
        else:
            log.error("poll %d failed: unexpected %s: %s", number, type(exc).__name__, exc)
            log.debug("traceback of poll %d", number, exc_info=exc)

    def collect(self) -> Iterator[Metric]:
        """Prometheus collector hook."""
        now = time.time()
        power = GaugeMetricFamily(
            "joulecast_mig_power_watts",
            "Attributed power per MIG instance and component (gpu-level rows have empty ids); "
            "absent while the GPU's data is stale",
            labels=_LABELS,
        )
        energy = CounterMetricFamily(
            "joulecast_mig_energy_joules",
            "Cumulative attributed energy per MIG instance and component",
            labels=_LABELS,
        )
        updated = GaugeMetricFamily(
            "joulecast_mig_gpu_last_update_timestamp_seconds",
            "Time of the GPU's last successful update",
            labels=["gpu_uuid"],
        )
        unaccounted = CounterMetricFamily(
            "joulecast_mig_unaccounted_seconds",
            "Gap time whose energy could not be credited (no trusted energy counter)",
            labels=["gpu_uuid"],
        )
        backfilled = CounterMetricFamily(
            "joulecast_mig_backfilled_energy_joules",
            "Board energy of failed polls credited from the exporter's energy counter",
            labels=["gpu_uuid"],
        )
        rejected = CounterMetricFamily(
            "joulecast_mig_samples_rejected",
            "Exporter samples dropped as outside physical bounds",
            labels=["reason"],
        )
        with self._lock:
            for uuid, (t, values) in sorted(self._power.items()):
                updated.add_metric([uuid], t)
                if now - t <= self._stale_after_s:
                    for (gi, prof, comp), val in values.items():
                        power.add_metric([uuid, gi, prof, comp], val)
            for (uuid, gi, prof, comp), val in sorted(self.energy_j.items()):
                energy.add_metric([uuid, gi, prof, comp], val)
            for uuid in sorted(self._power):
                unaccounted.add_metric([uuid], self.unaccounted_s[uuid])
                backfilled.add_metric([uuid], self.backfilled_j[uuid])
            for reason, n in sorted(self.rejected.items()):
                rejected.add_metric([reason], n)
            polls, errors, up, last = self.polls, self.poll_errors, self.up, self.last_success_s
        yield power
        yield energy
        yield updated
        yield unaccounted
        yield backfilled
        yield rejected
        yield CounterMetricFamily("joulecast_mig_polls", "Successful exporter polls", value=polls)
        yield CounterMetricFamily(
            "joulecast_mig_poll_errors", "Failed exporter polls", value=errors
        )
        yield CounterMetricFamily(
            "joulecast_mig_state_write_errors",
            "Failed writes of the state file (counters are kept in memory meanwhile)",
            value=self._store.total_errors,
        )
        yield GaugeMetricFamily(
            "joulecast_mig_up", "1 if the last exporter poll succeeded", value=float(up)
        )
        if last is not None:
            yield GaugeMetricFamily(
                "joulecast_mig_last_success_timestamp_seconds",
                "Time of the last successful exporter poll",
                value=last,
            )
        yield GaugeMetricFamily(
            "joulecast_mig_staleness_seconds",
            "Seconds since the last successful poll (since start when none yet)",
            value=now - (last if last is not None else self.started_s),
        )
