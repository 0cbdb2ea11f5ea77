"""Live attribution service: poll dcgm-exporter, attribute online, serve Prometheus metrics.

Cumulative energies are kept in SQLite and only ever increase, so a restart resumes the counters
instead of resetting them (a Prometheus counter reset would otherwise lose billed energy).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from joulecast.errors import JoulecastError, TelemetryError
from joulecast.mig.attribute import STATIC_POLICIES, reconcile, split_static
from joulecast.mig.frame import FloatArray, GpuTelemetry
from joulecast.mig.methods import contention_shares, fit_window, model_inputs
from joulecast.mig.readers import read_prometheus


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT``; a bare port binds to loopback.

    Raises:
        JoulecastError: On a malformed address.
    """
    host, _, port = listen.rpartition(":")
    try:
        return (host or "127.0.0.1").strip("[]"), int(port)
    except ValueError:
        raise JoulecastError(f"--listen: expected HOST:PORT, got {listen!r}") from None


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of the live service.

    Attributes:
        dcgm_url: dcgm-exporter ``/metrics`` URL.
        state_path: SQLite file for cumulative energies.
        interval_s: Poll period.
        idle_power_w: Known static power; estimated online when None.
        static_policy: Static-power policy.
        window_s: Trailing window of the online regression.
        refit_every: Refit the regression every this many polls.
        timeout_s: HTTP timeout of one poll.
    """

    dcgm_url: str
    state_path: Path
    interval_s: float = 1.0
    idle_power_w: float | None = None
    static_policy: str = "reserved"
    window_s: float = 1200.0
    refit_every: int = 30
    timeout_s: float = 5.0


@dataclass
class _GpuState:
    """Mutable online state of one GPU (owned by the poll thread, read under the lock)."""

    layout: tuple[tuple[str, str], ...]
    shares: FloatArray
    times: deque[float]
    power: deque[float]
    feats: deque[FloatArray]
    beta: FloatArray | None = None
    static_w: float | None = None
    contention_w: float = 0.0
    polls: int = 0
    last_t: float | None = None
    power_w: dict[tuple[str, str, str], float] = field(default_factory=dict)


class MigService:
    """Polls dcgm-exporter and keeps per-instance power and cumulative energy.

    Args:
        config: Service settings.
    """

    def __init__(self, config: ServiceConfig) -> None:
        if config.static_policy not in STATIC_POLICIES:
            raise TelemetryError(
                f"unknown static policy '{config.static_policy}' "
                f"(known: {', '.join(STATIC_POLICIES)})"
            )
        self.config = config
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(config.state_path), check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS energy (gpu_uuid TEXT, gpu_instance_id TEXT, profile TEXT, "
            "component TEXT, energy_j REAL, PRIMARY KEY (gpu_uuid, gpu_instance_id, profile, "
            "component))"
        )
        self._db.commit()
        self.energy_j: dict[tuple[str, str, str, str], float] = {
            (r[0], r[1], r[2], r[3]): float(r[4])
            for r in self._db.execute("SELECT * FROM energy").fetchall()
        }
        self._gpus: dict[str, _GpuState] = {}
        self.polls = 0
        self.poll_errors = 0
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def close(self) -> None:
        """Flush and close the state file."""
        with self._lock:
            self._db.commit()
            self._db.close()

    def start_http(self, host: str, port: int) -> _HttpServer:
        """Serve ``/metrics`` on ``host:port`` (port 0 picks a free one) in a daemon thread."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return _HttpServer(server, thread)

    def fetch(self) -> str:
        """Fetch the exporter's metrics text."""
        with urllib.request.urlopen(self.config.dcgm_url, timeout=self.config.timeout_s) as resp:
            body: bytes = resp.read()
        return body.decode("utf-8", errors="replace")

    def poll_once(self, now_s: float | None = None, text: str | None = None) -> None:
        """Fetch one scrape, attribute it and add the energy since the previous poll.

        Args:
            now_s: Poll time (defaults to the wall clock).
            text: Exporter text (fetched from ``dcgm_url`` when None).
        """
        now = time.time() if now_s is None else now_s
        body = self.fetch() if text is None else text
        tel = read_prometheus(body, scrape_time_s=now)
        with self._lock:
            for gpu in tel.gpus:
                self._update(gpu, now)
            self.polls += 1
            self._db.executemany(
                "INSERT INTO energy VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                "energy_j = MAX(energy_j, excluded.energy_j)",
                [(*k, v) for k, v in self.energy_j.items()],
            )
            self._db.commit()

    def run(self, max_polls: int | None = None) -> None:
        """Poll forever (or ``max_polls`` times); exporter failures are counted, not fatal."""
        done = 0
        while max_polls is None or done < max_polls:
            started = time.monotonic()
            try:
                self.poll_once()
            except (OSError, JoulecastError):
                with self._lock:
                    self.poll_errors += 1
            done += 1
            if max_polls is None or done < max_polls:
                time.sleep(max(0.0, self.config.interval_s - (time.monotonic() - started)))

    def _update(self, gpu: GpuTelemetry, now: float) -> None:
        inputs = model_inputs(gpu)
        layout = tuple((i.gpu_instance_id, i.profile.name) for i in gpu.instances)
        st = self._gpus.get(gpu.gpu_uuid)
        if st is None or st.layout != layout:
            # A new layout means new tenants: the old coefficients say nothing about them.
            n_keep = max(int(self.config.window_s / max(self.config.interval_s, 1e-3)), 16)
            st = _GpuState(
                layout=layout,
                shares=inputs.compute_share,
                times=deque(maxlen=n_keep),
                power=deque(maxlen=n_keep),
                feats=deque(maxlen=n_keep),
                last_t=None if st is None else st.last_t,
            )
            self._gpus[gpu.gpu_uuid] = st
        p = float(gpu.board_power_w[-1])
        x = inputs.features[-1]
        st.times.append(now)
        st.power.append(p)
        st.feats.append(x)
        st.polls += 1
        n_cols = x.size + 1
        if st.polls % self.config.refit_every == 0 and len(st.power) >= 3 * n_cols:
            feats = np.array(st.feats)
            fit = fit_window(
                np.array(st.power),
                feats,
                idle_power_w=self.config.idle_power_w,
                shrink=0.01,
                lockstep_corr=0.97,
                traffic=feats[:, :, 1],
            )
            st.beta, st.static_w, st.contention_w = fit.beta, fit.intercept_w, fit.contention_w
        if st.beta is not None:
            weights = (x * st.beta).sum(axis=1)
            weights = weights + contention_shares(st.contention_w, x[None, :, 1])[0]
        else:
            # Until the regression has data: slice-weighted activity (L1).
            weights = inputs.compute_share * inputs.gract[-1]
        static = self.config.idle_power_w
        if static is None:
            static = st.static_w if st.static_w is not None else min(st.power)
        static = min(static, p)
        dyn, resid = reconcile(np.array([p]), np.array([static]), weights[None, :])
        stat_i, stat_u = split_static(
            self.config.static_policy,
            np.array([static]),
            gpu.present[-1:],
            inputs.active[-1:],
            inputs.compute_share,
            dyn,
        )
        dt = (
            0.0 if st.last_t is None else min(max(now - st.last_t, 0.0), 5 * self.config.interval_s)
        )
        st.last_t = now
        u = gpu.gpu_uuid
        st.power_w = {}
        for i, (gi, prof) in enumerate(layout):
            for comp, val in (("dynamic", dyn[0, i]), ("static", stat_i[0, i])):
                st.power_w[(gi, prof, comp)] = float(val)
                key = (u, gi, prof, comp)
                self.energy_j[key] = self.energy_j.get(key, 0.0) + float(val) * dt
        for comp, val in (
            ("board", p),
            ("static_unattributed", float(stat_u[0])),
            ("residual", float(resid[0])),
        ):
            st.power_w[("", "", comp)] = val
            key = (u, "", "", comp)
            # Residual can be negative; the board counter must still never go back.
            self.energy_j[key] = self.energy_j.get(key, 0.0) + max(val, 0.0) * dt

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Prometheus collector hook."""
        labels = ["gpu_uuid", "gpu_instance_id", "profile", "component"]
        power = GaugeMetricFamily(
            "joulecast_mig_power_watts",
            "Attributed power per MIG instance and component (gpu-level rows have empty ids)",
            labels=labels,
        )
        energy = CounterMetricFamily(
            "joulecast_mig_energy_joules",
            "Cumulative attributed energy per MIG instance and component",
            labels=labels,
        )
        with self._lock:
            for uuid, st in self._gpus.items():
                for (gi, prof, comp), val in st.power_w.items():
                    power.add_metric([uuid, gi, prof, comp], val)
            for (uuid, gi, prof, comp), val in sorted(self.energy_j.items()):
                energy.add_metric([uuid, gi, prof, comp], val)
            polls = CounterMetricFamily("joulecast_mig_polls", "Exporter polls", value=self.polls)
            errors = CounterMetricFamily(
                "joulecast_mig_poll_errors", "Failed exporter polls", value=self.poll_errors
            )
        yield power
        yield energy
        yield polls
        yield errors


class _HttpServer:
    """Handle on the metrics HTTP server."""

    def __init__(self, server: object, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def server_port(self) -> int:
        """Bound port."""
        return int(self._server.server_port)  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        """Stop serving."""
        self._server.shutdown()  # type: ignore[attr-defined]
        self._server.server_close()  # type: ignore[attr-defined]
