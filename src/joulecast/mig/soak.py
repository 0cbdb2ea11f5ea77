"""Soak harness of the live service: a fake dcgm-exporter that injects faults, and the checks.

:class:`FakeExporter` serves a 3g+4g MIG GPU on loopback whose board power is a known function of
time, with the exact cumulative energy counter (``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION``). Chosen
at random per request it replies with a truncated body, HTTP 500, bytes that are not HTTP,
``+Inf``/negative/absurd power samples or negative activity, and it has outages (connections
closed without a reply, or no reply until the client times out). :func:`run_soak` runs a
:class:`~joulecast.mig.service.MigService` against it while a scraper reads ``/metrics`` all the
time, and reports whether any counter went down and how far the board energy is from the truth.
:func:`scrape_concurrently` is the load of many scrapers. Used by ``tests/mig/test_serve_load.py``
(seconds) and ``benchmarks/bench_mig_serve.py`` (latency figures; minutes of soak).
"""

from __future__ import annotations

import http.client
import math
import random
import re
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from joulecast.mig.service import MigService, ServiceConfig

_LABELS = 'gpu="0",UUID="GPU-soak",GPU_I_PROFILE="{p}",GPU_I_ID="{i}",Hostname="h"'
_LAYOUT = (("1", "3g.40gb", 5.0), ("2", "4g.40gb", 11.0))
_COUNTER_BASE_J = 5.0e6
#: Fault kinds and their probability per request (outages are windows in time, see below).
FAULTS: dict[str, float] = {
    "truncated": 0.03,
    "truncated_no_length": 0.03,
    "http_500": 0.03,
    "not_http": 0.03,
    "inf_power": 0.03,
    "negative_power": 0.03,
    "absurd_power": 0.02,
    "negative_activity": 0.03,
}
_USABLE = ("ok", "negative_activity")


def board_power_w(t: float) -> float:
    """True board power at ``t`` seconds after the exporter started."""
    waves = (1.0 + math.sin(2 * math.pi * t / p + k) for k, (_, _, p) in enumerate(_LAYOUT))
    return 90.0 + 60.0 * sum(waves)


def board_energy_j(t: float) -> float:
    """Exact integral of :func:`board_power_w` from 0 to ``t``."""
    e = 90.0 * t
    for k, (_, _, p) in enumerate(_LAYOUT):
        w = 2 * math.pi / p
        e += 60.0 * (t - (math.cos(w * t + k) - math.cos(k)) / w)
    return e


@dataclass
class FakeExporter:
    """A fake dcgm-exporter on 127.0.0.1 (never another address).

    Attributes:
        faults: Whether to inject faults.
        always: Reply with this kind every time (``ok`` or a fault; overrides ``faults``).
        with_counter: Whether to publish the energy counter.
        seed: Seed of the fault choice.
        outage_every_s: Start an outage this often (0: never).
        outage_s: Length of each outage.
        timeout_s: How long a hanging reply keeps the client waiting (its timeout).
        served: ``(time_s, kind)`` of every request, in order.
    """

    faults: bool = True
    always: str | None = None
    with_counter: bool = True
    seed: int = 0
    outage_every_s: float = 8.0
    outage_s: float = 3.0
    timeout_s: float = 0.3
    served: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.t0 = time.time()
        self.url = ""

    def start(self) -> str:
        """Start serving; returns the ``/metrics`` URL (also kept in :attr:`url`)."""
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                exporter._reply(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/metrics"
        return self.url

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def text(self, t: float, kind: str = "ok") -> str:
        """The exposition text at ``t`` seconds, with the sample fault ``kind`` applied."""
        power = {"inf_power": "+Inf", "negative_power": "-300", "absurd_power": "1e20"}.get(
            kind, f"{board_power_w(t):.3f}"
        )
        counter_mj = round((_COUNTER_BASE_J + board_energy_j(t)) * 1000.0)
        lines = []
        for k, (gi, prof, period) in enumerate(_LAYOUT):
            lab = _LABELS.format(p=prof, i=gi)
            act = 0.5 * (1.0 + math.sin(2 * math.pi * t / period + k))
            shown = "-0.5" if kind == "negative_activity" and k == 0 else f"{act:.4f}"
            lines.append(f"DCGM_FI_DEV_POWER_USAGE{{{lab}}} {power}")
            if self.with_counter:
                lines.append(f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{lab}}} {counter_mj}")
            lines += [
                f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{lab}}} {shown}",
                f"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{lab}}} {act * 0.6:.4f}",
                f"DCGM_FI_PROF_DRAM_ACTIVE{{{lab}}} {act * 0.3:.4f}",
            ]
        return "\n".join(lines) + "\n"

    def truth_j(self) -> float:
        """True board energy between the first and the last reply the service could use."""
        used = [t for t, kind in self.served if kind in _USABLE]
        return board_energy_j(used[-1]) - board_energy_j(used[0]) if len(used) > 1 else 0.0

    def _kind(self, t: float) -> str:
        if self.always is not None:
            return self.always
        if not self.faults:
            return "ok"
        every = self.outage_every_s
        if every > 0 and t % every >= every - self.outage_s:
            return "outage_hang" if int(t // every) % 2 else "outage_drop"
        x = self._rng.random()
        for kind, p in FAULTS.items():
            if x < p:
                return kind
            x -= p
        return "ok"

    def _reply(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            t = time.time() - self.t0
            kind = self._kind(t)
            self.served.append((t, kind))
        body = self.text(t, kind).encode()
        if kind == "outage_hang":
            time.sleep(self.timeout_s + 0.1)
            h.close_connection = True
            return
        if kind == "outage_drop":
            h.close_connection = True
            return
        if kind == "not_http":
            h.wfile.write(b"\x00\xff\xfe this is not HTTP\r\n\r\n")
            h.close_connection = True
            return
        if kind == "http_500":
            h.send_error(500, "internal error")
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/plain; version=0.0.4")
        if kind == "truncated_no_length":
            h.end_headers()
            cut = body.index(b"\n", len(body) // 2) - 3
            h.wfile.write(body[:cut])
            h.close_connection = True
            return
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: len(body) // 2] if kind == "truncated" else body)
        if kind == "truncated":
            h.close_connection = True


@dataclass(frozen=True)
class SoakResult:
    """Outcome of :func:`run_soak`.

    Attributes:
        duration_s: Wall time of the run.
        polls: Successful polls.
        poll_errors: Failed polls.
        rejected: Samples dropped as outside physical bounds.
        scrapes: ``/metrics`` reads by the watcher.
        scrape_errors: ``/metrics`` reads that failed (must be 0).
        decreases: Counter decreases the watcher saw (must be empty).
        non_finite: Non-finite values the watcher saw (must be 0).
        board_j: Board energy counted by the service.
        truth_j: True board energy over the same span.
        faults: Replies per fault kind.
        state_matches: Whether the SQLite file holds the final counters.
    """

    duration_s: float
    polls: int
    poll_errors: int
    rejected: int
    scrapes: int
    scrape_errors: int
    decreases: list[str]
    non_finite: int
    board_j: float
    truth_j: float
    faults: dict[str, int]
    state_matches: bool

    @property
    def error_pct(self) -> float:
        """Board energy error against the truth in percent."""
        return 100.0 * (self.board_j - self.truth_j) / self.truth_j if self.truth_j else math.inf


def scrape_concurrently(
    port: int, scrapers: int, requests: int, start_at: float | None = None
) -> list[float]:
    """``scrapers`` threads each read ``/metrics`` on 127.0.0.1 ``requests`` times.

    Every request opens a new connection, as most scrapers do.

    Args:
        port: The service's port.
        scrapers: Concurrent threads (they start together).
        requests: Requests per thread.
        start_at: Wall-clock time to start at (to line up several processes).

    Returns:
        Seconds per request; -1.0 for a request that failed or did not return the metrics.
    """
    out: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(scrapers)

    def scraper() -> None:
        barrier.wait(timeout=60)
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
        for _ in range(requests):
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/metrics")
                resp = conn.getresponse()
                ok = resp.status == 200 and b"joulecast_mig_up" in resp.read()
                conn.close()
            except OSError:
                ok = False
            with lock:
                out.append(time.perf_counter() - t0 if ok else -1.0)

    threads = [threading.Thread(target=scraper, daemon=True) for _ in range(scrapers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    return out


_SAMPLE = re.compile(r"^(joulecast_mig_energy_joules_total\{[^}]*\}) (\S+)$", re.M)


def run_soak(duration_s: float, *, interval_s: float = 0.05, seed: int = 0) -> SoakResult:
    """Run the service against a faulty fake exporter for ``duration_s`` seconds.

    The state file is deleted at one third of the run and overwritten with garbage at two
    thirds; the service must carry on and end with a state file holding its counters.
    """
    exporter = FakeExporter(seed=seed)
    url = exporter.start()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "new" / "state.sqlite"
        svc = MigService(
            ServiceConfig(dcgm_url=url, state_path=state, interval_s=interval_s, timeout_s=0.3)
        )
        server = svc.start_http("127.0.0.1", 0)
        seen: dict[str, float] = {}
        decreases: list[str] = []
        counts = {"scrapes": 0, "scrape_errors": 0, "non_finite": 0}
        done = threading.Event()

        def watch() -> None:
            metrics = f"http://127.0.0.1:{server.server_port}/metrics"
            while not done.wait(0.02):
                try:
                    text = urllib.request.urlopen(metrics, timeout=5).read().decode()
                except OSError:
                    counts["scrape_errors"] += 1
                    continue
                counts["scrapes"] += 1
                for key, value in _SAMPLE.findall(text):
                    v = float(value)
                    counts["non_finite"] += not math.isfinite(v)
                    if v < seen.get(key, 0.0):
                        decreases.append(f"{key}: {seen[key]} -> {v}")
                    seen[key] = max(v, seen.get(key, 0.0))

        def break_state() -> None:
            if done.wait(duration_s / 3):
                return
            state.unlink(missing_ok=True)
            if done.wait(duration_s / 3):
                return
            state.write_bytes(b"this is not a database" * 100)

        threads = [threading.Thread(target=f, daemon=True) for f in (watch, break_state)]
        for th in threads:
            th.start()
        start = time.monotonic()
        timer = threading.Timer(duration_s, svc.stop)
        timer.start()
        try:
            svc.run()
        finally:
            timer.cancel()
            done.set()
            for th in threads:
                th.join(timeout=10)
            server.shutdown()
            svc.close()
            exporter.stop()
        elapsed = time.monotonic() - start
        reread = MigService(ServiceConfig(dcgm_url=url, state_path=state, interval_s=1.0))
        state_matches = all(
            math.isclose(reread.energy_j.get(k, -1.0), v, rel_tol=1e-12)
            for k, v in svc.energy_j.items()
        )
        reread.close()
    kinds: dict[str, int] = {}
    for _, kind in exporter.served:
        kinds[kind] = kinds.get(kind, 0) + 1
    board = sum(v for k, v in svc.energy_j.items() if k[3] == "board")
    return SoakResult(
        duration_s=elapsed,
        polls=svc.polls,
        poll_errors=svc.poll_errors,
        rejected=sum(svc.rejected.values()),
        scrapes=counts["scrapes"],
        scrape_errors=counts["scrape_errors"],
        decreases=decreases,
        non_finite=counts["non_finite"],
        board_j=board,
        truth_j=exporter.truth_j(),
        faults=kinds,
        state_matches=state_matches,
    )
