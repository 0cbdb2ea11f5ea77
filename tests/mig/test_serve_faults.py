"""`mig serve` under faults: every reproducer of issue 18 as a test (loopback only).

The fake exporter is :class:`joulecast.mig.soak.FakeExporter` with one fault kind forced.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from joulecast.errors import JoulecastError, TelemetryError
from joulecast.mig.httpio import ScrapeError, fetch_scrape
from joulecast.mig.service import MigService, ServiceConfig
from joulecast.mig.soak import FakeExporter, board_energy_j

from .test_reader_faults import run_cli


@pytest.fixture()
def exporter() -> Iterator[FakeExporter]:
    fake = FakeExporter(always="ok", timeout_s=0.2)
    fake.start()
    yield fake
    fake.stop()


def service(url: str, tmp_path: Path, **kw: float) -> MigService:
    return MigService(ServiceConfig(dcgm_url=url, state_path=tmp_path / "state.sqlite", **kw))


def counters(svc: MigService) -> dict[tuple[str, str, str, str], float]:
    return dict(svc.energy_j)


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncated", "reply truncated"),
        ("truncated_no_length", "does not end in a newline"),
        ("not_http", "not an HTTP reply"),
        ("http_500", "HTTP 500"),
        ("outage_drop", "closed the connection without a reply"),
        ("outage_hang", "no reply from"),
    ],
)
def test_bad_replies_are_failed_polls_logged_once_each(
    exporter: FakeExporter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    message: str,
) -> None:
    """Issue 18: a truncated body or a non-HTTP reply crashed `mig serve` (exit 1, traceback)."""
    exporter.always = kind
    svc = service(exporter.url, tmp_path, interval_s=0.01, timeout_s=0.2)
    with caplog.at_level(logging.WARNING, logger="joulecast.mig.serve"):
        assert svc.run(max_polls=3) == 3
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 3 and all(message in m for m in failed), failed
    assert svc.poll_errors == 3 and not svc.up
    svc.close()


def test_fetch_rejects_oversized_replies(exporter: FakeExporter) -> None:
    with pytest.raises(ScrapeError, match="over 100"):
        fetch_scrape(exporter.url, 1.0, max_bytes=100)


@pytest.mark.parametrize("kind", ["inf_power", "negative_power", "absurd_power"])
def test_bad_power_samples_never_reach_counters(
    exporter: FakeExporter, tmp_path: Path, kind: str
) -> None:
    """Issue 18: one +Inf sample poisoned the counters (NULL in SQLite, no restart); -300 W made
    them decrease."""
    svc = service(exporter.url, tmp_path, interval_s=0.01)
    svc.run(max_polls=3)
    before = counters(svc)
    exporter.always = kind
    assert svc.run(max_polls=3) == 3
    assert sum(n for r, n in svc.rejected.items() if r.startswith("board_power_w")) >= 3
    after = counters(svc)
    assert after == before
    exporter.always = "ok"
    svc.run(max_polls=3)
    final = counters(svc)
    assert all(math.isfinite(v) and v >= before.get(k, 0.0) for k, v in final.items())
    svc.close()
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM energy WHERE energy_j IS NULL").fetchone() == (0,)
    restarted = service(exporter.url, tmp_path)
    assert restarted.energy_j == pytest.approx(final)
    restarted.close()


def test_null_energy_in_state_file_does_not_stop_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18: after a NaN reached SQLite (stored as NULL) every restart failed."""
    state = tmp_path / "state.sqlite"
    with sqlite3.connect(state) as db:
        db.execute(
            "CREATE TABLE energy (gpu_uuid TEXT, gpu_instance_id TEXT, profile TEXT, component "
            "TEXT, energy_j REAL, PRIMARY KEY (gpu_uuid, gpu_instance_id, profile, component))"
        )
        db.execute("INSERT INTO energy VALUES ('G', '1', '3g.40gb', 'dynamic', NULL)")
        db.execute("INSERT INTO energy VALUES ('G', '1', '3g.40gb', 'static', 12.5)")
    with caplog.at_level(logging.WARNING, logger="joulecast.mig.serve"):
        svc = service("http://127.0.0.1:9/metrics", tmp_path)
    assert svc.energy_j == {("G", "1", "3g.40gb", "static"): 12.5}
    assert any("without a usable energy" in r.getMessage() for r in caplog.records)
    assert list(tmp_path.glob("state.sqlite.bad-rows-*"))
    svc.energy_j[("G", "1", "3g.40gb", "dynamic")] = 3.0
    svc.close()
    with sqlite3.connect(state) as db:
        got = db.execute("SELECT energy_j FROM energy WHERE component = 'dynamic'").fetchone()
    assert got == (3.0,)


def test_corrupted_state_file_is_moved_aside_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18: a corrupted SQLite file crashed `mig serve`."""
    (tmp_path / "state.sqlite").write_bytes(b"not a database at all" * 50)
    with caplog.at_level(logging.WARNING, logger="joulecast.mig.serve"):
        svc = service("http://127.0.0.1:9/metrics", tmp_path)
    aside = list(tmp_path.glob("state.sqlite.unusable-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"not a database")
    assert any("moved to" in r.getMessage() for r in caplog.records)
    assert svc.energy_j == {}
    svc.close()


def test_deleted_or_corrupted_state_file_while_running_is_written_again(
    exporter: FakeExporter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18: a state file deleted (or corrupted) under a running `mig serve` crashed it."""
    state = tmp_path / "state.sqlite"
    svc = service(exporter.url, tmp_path, interval_s=0.01)
    svc.run(max_polls=2)
    with caplog.at_level(logging.WARNING, logger="joulecast.mig.serve"):
        state.unlink()
        assert svc.run(max_polls=3) == 0
        assert state.exists()
        state.write_bytes(b"garbage" * 500)
        assert svc.run(max_polls=3) == 0
    assert list(tmp_path.glob("state.sqlite.unusable-*"))
    assert any("cannot save" in r.getMessage() for r in caplog.records)
    svc.close()
    reread = service(exporter.url, tmp_path)
    assert reread.energy_j == pytest.approx(svc.energy_j)
    reread.close()


def test_state_in_missing_folder_is_created(tmp_path: Path) -> None:
    """Issue 18: a state path in a missing folder crashed `mig serve`."""
    svc = MigService(
        ServiceConfig(dcgm_url="http://127.0.0.1:9/", state_path=tmp_path / "a" / "b" / "s.db")
    )
    svc.close()
    assert (tmp_path / "a" / "b" / "s.db").is_file()
    with pytest.raises(JoulecastError, match="is a folder"):
        MigService(ServiceConfig(dcgm_url="http://127.0.0.1:9/", state_path=tmp_path))


def _truth_run(svc: MigService, exporter: FakeExporter, outage: tuple[float, float]) -> float:
    """Poll every 0.1 s of exporter time for 8 s with an outage; returns the true energy."""
    used = []
    for k in range(81):
        t = k / 10
        if outage[0] <= t < outage[1]:
            with pytest.raises(TelemetryError):
                svc.poll_once(now_s=1000.0 + t, text="<html>proxy error</html>\n")
        else:
            svc.poll_once(now_s=1000.0 + t, text=exporter.text(t))
            used.append(t)
    return board_energy_j(used[-1]) - board_energy_j(used[0])


def test_outage_energy_is_backfilled_from_the_energy_counter(tmp_path: Path) -> None:
    """Issue 18: energy during failed polls was never credited (-24 to -29 % over 4 s outages)."""
    exporter = FakeExporter(always="ok")
    svc = service("http://127.0.0.1:9/", tmp_path, interval_s=0.1)
    truth = _truth_run(svc, exporter, (2.0, 6.0))
    board = svc.energy_j[("GPU-soak", "", "", "board")]
    assert board == pytest.approx(truth, rel=1e-6)
    assert svc.backfilled_j["GPU-soak"] > 0.4 * truth
    parts = sum(v for k, v in svc.energy_j.items() if k[3] != "board")
    assert parts == pytest.approx(board, rel=1e-9)
    svc.close()


def test_without_a_counter_a_long_gap_is_reported_not_guessed(tmp_path: Path) -> None:
    exporter = FakeExporter(always="ok", with_counter=False)
    svc = service("http://127.0.0.1:9/", tmp_path, interval_s=0.1, max_gap_s=1.0)
    truth = _truth_run(svc, exporter, (2.0, 6.0))
    board = svc.energy_j[("GPU-soak", "", "", "board")]
    assert svc.unaccounted_s["GPU-soak"] == pytest.approx(3.1, abs=0.01)
    assert board < truth
    svc.close()


def test_up_last_success_and_staleness_gauges(exporter: FakeExporter, tmp_path: Path) -> None:
    """Issue 18: no staleness signal; gauges kept their last value."""
    svc = service(exporter.url, tmp_path, interval_s=0.01, stale_after_s=0.3)
    server = svc.start_http("127.0.0.1", 0)
    try:
        svc.run(max_polls=2)
        text = scrape(server.server_port)
        assert "joulecast_mig_up 1.0" in text
        assert "joulecast_mig_last_success_timestamp_seconds" in text
        assert "joulecast_mig_power_watts{" in text
        exporter.always = "http_500"
        svc.run(max_polls=1)
        time.sleep(0.4)
        text = scrape(server.server_port)
        assert "joulecast_mig_up 0.0" in text
        assert "joulecast_mig_power_watts{" not in text  # stale watts are not shown as now
        assert "joulecast_mig_energy_joules_total{" in text  # counters stay
        stale = next(ln for ln in text.splitlines() if ln.startswith("joulecast_mig_staleness"))
        assert float(stale.split()[-1]) >= 0.4
    finally:
        server.shutdown()
        svc.close()


def test_unreachable_exporter_logs_every_poll_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18: an unreachable exporter gave no log line and exit 0."""
    with caplog.at_level(logging.WARNING, logger="joulecast.mig.serve"):
        code, err = run_cli(
            capsys,
            "mig", "serve", "--dcgm-url", "http://127.0.0.1:9/metrics", "--listen", "127.0.0.1:0",
            "--state", str(tmp_path / "s.sqlite"), "--max-polls", "3", "--interval-s", "0.01",
        )  # fmt: skip
    assert code == 1
    failed = [r.getMessage() for r in caplog.records if "failed: cannot reach" in r.getMessage()]
    assert len(failed) == 3
    assert err.strip().splitlines()[-1] == "error: 3 of 3 polls failed"


def test_good_max_polls_run_exits_0(
    exporter: FakeExporter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli(
        capsys,
        "mig", "serve", "--dcgm-url", exporter.url, "--listen", "127.0.0.1:0",
        "--state", str(tmp_path / "s.sqlite"), "--max-polls", "2", "--interval-s", "0.01",
    )  # fmt: skip
    assert code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dcgm-url", "foo"], "error: --dcgm-url: expected http://HOST:PORT/metrics"),
        (["--dcgm-url", "http://127.0.0.1:99999/"], "error: --dcgm-url 'http://127.0.0.1:99999/'"),
        (["--interval-s", "0"], "error: --interval-s must be > 0"),
        (["--listen", "nohost:x"], "error: --listen: expected HOST:PORT"),
        (["--state", "."], "error: --state . is a folder"),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Issue 18: a bad URL crashed `mig serve` with a traceback."""
    base = {"--dcgm-url": "http://127.0.0.1:9/", "--state": str(tmp_path / "s.sqlite")}
    base |= {"--listen": "127.0.0.1:0", "--max-polls": "1"}
    base |= dict(zip(args[::2], args[1::2], strict=True))
    code, err = run_cli(capsys, "mig", "serve", *[x for kv in base.items() for x in kv])
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(message), err


def test_port_in_use_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18: a port in use crashed `mig serve` with a traceback."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = run_cli(
            capsys,
            "mig", "serve", "--dcgm-url", "http://127.0.0.1:9/", "--listen", f"127.0.0.1:{port}",
            "--state", str(tmp_path / "s.sqlite"), "--max-polls", "1",
        )  # fmt: skip
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: --listen 127.0.0.1:{port}: cannot listen (address already in use)"
    ]


def test_lumpy_energy_counter_is_not_counted_twice(tmp_path: Path) -> None:
    """An exporter that refreshes its counter every 3 s (polled every 0.1 s) is not trusted."""
    exporter = FakeExporter(always="ok")
    svc = service("http://127.0.0.1:9/", tmp_path, interval_s=0.1)
    used = []
    for k in range(121):
        t = k / 10
        if 5.0 <= t < 7.0:
            with pytest.raises(TelemetryError):
                svc.poll_once(now_s=1000.0 + t, text="not metrics\n")
            continue
        stale = round((5.0e6 + board_energy_j(3.0 * (t // 3.0))) * 1000)
        text = re.sub(r"(ENERGY_CONSUMPTION\{[^}]*\}) \d+", rf"\g<1> {stale}", exporter.text(t))
        svc.poll_once(now_s=1000.0 + t, text=text)
        used.append(t)
    truth = board_energy_j(used[-1]) - board_energy_j(used[0])
    board = svc.energy_j[("GPU-soak", "", "", "board")]
    assert board == pytest.approx(truth, rel=0.02)
    assert svc.backfilled_j["GPU-soak"] == 0.0
    svc.close()
