"""Live service end to end against a fake dcgm-exporter on loopback."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from joulecast.mig.service import MigService, ServiceConfig, parse_listen

LABELS = 'gpu="0",UUID="GPU-f",GPU_I_PROFILE="{p}",GPU_I_ID="{i}",Hostname="h"'


class FakeExporter(BaseHTTPRequestHandler):
    """Serves a 3g+4g scrape whose activity changes on every request."""

    count = 0

    def do_GET(self) -> None:
        k = FakeExporter.count
        FakeExporter.count += 1
        a1 = 0.9 if k % 2 else 0.2
        a2 = 0.5
        power = 80 + 150 * a1 * 3 / 7 + 150 * a2 * 4 / 7
        lines = []
        for i, p, a in (("1", "3g.40gb", a1), ("2", "4g.40gb", a2)):
            lab = LABELS.format(p=p, i=i)
            lines.append(f"DCGM_FI_DEV_POWER_USAGE{{{lab}}} {power:.1f}")
            lines.append(f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{lab}}} {a}")
            lines.append(f"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{lab}}} {a * 0.6}")
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeExporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("joulecast_mig_energy_joules_total{"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_serve_end_to_end_and_restart(exporter: str, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    cfg = ServiceConfig(dcgm_url=exporter, state_path=state, interval_s=0.01, refit_every=2)
    svc = MigService(cfg)
    server = svc.start_http("127.0.0.1", 0)
    svc.run(max_polls=6)
    first = _scrape(server.server_port)
    server.shutdown()
    svc.close()
    assert svc.polls == 6 and svc.poll_errors == 0
    dyn1 = [v for k, v in first.items() if 'gpu_instance_id="1"' in k and "dynamic" in k]
    assert dyn1 and dyn1[0] > 0
    board = next(v for k, v in first.items() if 'component="board"' in k)
    parts = sum(v for k, v in first.items() if 'component="board"' not in k and "residual" not in k)
    assert parts == pytest.approx(board, rel=0.05)

    # Restart on the same state: counters resume and never go backwards.
    svc2 = MigService(cfg)
    server2 = svc2.start_http("127.0.0.1", 0)
    restored = _scrape(server2.server_port)
    for k, v in first.items():
        assert restored[k] == pytest.approx(v)
    svc2.run(max_polls=3)
    later = _scrape(server2.server_port)
    server2.shutdown()
    svc2.close()
    for k, v in first.items():
        assert later[k] >= v


def test_exporter_down_is_counted_not_fatal(tmp_path: Path) -> None:
    cfg = ServiceConfig(
        dcgm_url="http://127.0.0.1:9/metrics",
        state_path=tmp_path / "s.sqlite",
        interval_s=0.01,
        timeout_s=0.5,
    )
    svc = MigService(cfg)
    assert svc.run(max_polls=2) == 2
    assert svc.poll_errors == 2
    svc.close()


def test_parse_listen() -> None:
    assert parse_listen("9477") == ("127.0.0.1", 9477)
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_listen("[::1]:9477") == ("::1", 9477)
