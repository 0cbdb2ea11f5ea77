"""``joulecast.sweep`` and ``joulecast sweep``: points, optima, power caps, outputs, bad input."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joulecast.cli.main import main
from joulecast.cli.sweep import MAX_CLOCKS, parse_clocks, parse_power_caps
from joulecast.dvfs import regulated_power_w
from joulecast.errors import ClockError, JoulecastError
from joulecast.estimator import estimate
from joulecast.hardware.spec import load_gpu
from joulecast.sweeper import SweepError, SweepPoint, sweep
from joulecast.workload.example import example_workload

A100 = "a100-pcie-40gb"
COLUMNS = [
    "workload",
    "gpu",
    "requested_clock_mhz",
    "power_cap_w",
    "sm_clock_mhz",
    "time_ms",
    "avg_power_w",
    "energy_j",
    "edp_j_s",
    "throttled",
    "energy_optimal",
    "fastest_within_budget",
]
# Big enough that the A100-PCIe's 250 W default limit throttles it near the top clock.
HEAVY = example_workload(batch=32, seq=512)
LIGHT = example_workload(batch=1, seq=128)


def _groups(points: list[SweepPoint]) -> dict[tuple[str, str, float], list[SweepPoint]]:
    out: dict[tuple[str, str, float], list[SweepPoint]] = defaultdict(list)
    for p in points:
        out[(p.workload, p.gpu, p.power_cap_w)].append(p)
    return out


# ---- API ---------------------------------------------------------------------------------------
def test_points_match_estimate_at_the_same_clock_and_cap() -> None:
    clocks, caps = [510.0, 900.0, 1200.0, 1410.0], [120.0, 200.0, 250.0]
    points = sweep([HEAVY], [A100], clocks_mhz=clocks, power_caps_w=caps)
    assert len(points) == len(clocks) * len(caps)
    assert {(p.requested_clock_mhz, p.power_cap_w) for p in points} == {
        (f, c) for f in clocks for c in caps
    }
    for p in points:
        e = estimate(
            HEAVY, A100, sm_clock_mhz=p.requested_clock_mhz, power_cap_w=p.power_cap_w, detail=False
        )
        assert p.sm_clock_mhz == e.sm_clock_mhz
        assert p.throttled == e.throttled
        assert p.time_ms == pytest.approx(e.time_ms, rel=1e-9)
        assert p.energy_j == pytest.approx(e.energy_j, rel=1e-9)
        assert p.avg_power_w == pytest.approx(e.avg_power_w, rel=1e-9)
        assert p.edp_j_s == pytest.approx(p.energy_j * p.time_ms / 1e3, rel=1e-12)


@pytest.mark.parametrize("max_slowdown", [1.0, 1.05, 1.1, 1.5, math.inf])
def test_exactly_one_of_each_optimum_per_workload_gpu_and_cap(max_slowdown: float) -> None:
    points = sweep(
        [HEAVY, LIGHT],
        [A100, "h100-sxm"],
        power_caps_w=[200.0, 250.0],
        max_slowdown=max_slowdown,
    )
    groups = _groups(points)
    assert len(groups) == 2 * 2 * 2
    for group in groups.values():
        e_opt = [p for p in group if p.energy_optimal]
        best = [p for p in group if p.fastest_within_budget]
        assert len(e_opt) == 1 and len(best) == 1
        fastest = min(p.time_ms for p in group)
        # The energy optimum is the minimum of the group.
        assert e_opt[0].energy_j == min(p.energy_j for p in group)
        # The budget point respects the budget and is the cheapest point that does.
        assert best[0].time_ms <= fastest * max_slowdown
        within = [p for p in group if p.time_ms <= fastest * max_slowdown]
        assert best[0].energy_j == min(p.energy_j for p in within)
        if max_slowdown == 1.0:
            assert best[0].time_ms == fastest
        if max_slowdown == math.inf:
            assert best[0].energy_j == e_opt[0].energy_j


def test_the_budget_point_trades_energy_for_speed() -> None:
    unbounded = sweep([HEAVY], [A100], max_slowdown=math.inf)
    e_opt = next(p for p in unbounded if p.energy_optimal)
    fastest = min(p.time_ms for p in unbounded)
    ratio = e_opt.time_ms / fastest
    # A compute-heavy pass is cheapest below the top clock (V² energy), so the optimum is slower.
    assert ratio > 1.05
    budget = 1 + (ratio - 1) / 2
    points = sweep([HEAVY], [A100], max_slowdown=budget)
    assert next(p for p in points if p.energy_optimal).energy_j == e_opt.energy_j
    best = next(p for p in points if p.fastest_within_budget)
    assert best.time_ms <= budget * fastest < e_opt.time_ms
    assert best.energy_j > e_opt.energy_j
    assert best.requested_clock_mhz > e_opt.requested_clock_mhz


def test_power_cap_lowers_clock_and_power() -> None:
    by_cap = {
        p.power_cap_w: p
        for p in sweep([HEAVY], [A100], clocks_mhz=[1410], power_caps_w=[140.0, 170.0, 200.0])
    }
    low, mid, high = by_cap[140.0], by_cap[170.0], by_cap[200.0]
    for p in (low, mid, high):
        assert p.avg_power_w <= p.power_cap_w
        assert p.throttled and p.sm_clock_mhz < p.requested_clock_mhz
    assert low.sm_clock_mhz < mid.sm_clock_mhz < high.sm_clock_mhz
    assert low.avg_power_w < mid.avg_power_w < high.avg_power_w
    assert low.time_ms > mid.time_ms > high.time_ms
    # The throttled clock is the highest whose power fits: one step up does not fit.
    step = load_gpu(A100).clock_step_mhz
    (above,) = sweep([HEAVY], [A100], clocks_mhz=[mid.sm_clock_mhz + step], power_caps_w=[250])
    assert not above.throttled and above.avg_power_w > regulated_power_w(170.0)


def test_caps_that_do_not_bind_change_nothing() -> None:
    light = sweep([LIGHT], [A100], clocks_mhz=[900, 1410], power_caps_w=[200.0, 250.0])
    a, b = (p for p in light if p.power_cap_w == 200.0), (p for p in light if p.power_cap_w == 250)
    for p, q in zip(a, b, strict=True):
        assert not p.throttled and p.sm_clock_mhz == p.requested_clock_mhz
        assert (p.time_ms, p.energy_j) == (q.time_ms, q.energy_j)


def test_defaults_every_supported_clock_and_the_default_limit() -> None:
    spec = load_gpu("a10")
    points = sweep([LIGHT], ["a10"])
    assert [p.requested_clock_mhz for p in points] == spec.supported_clocks_mhz()
    assert {p.power_cap_w for p in points} == {spec.default_power_limit_w}


def test_clocks_and_caps_are_sorted_and_distinct() -> None:
    points = sweep([LIGHT], [A100], clocks_mhz=[1410, 900, 900.0], power_caps_w=[250, 200, 250])
    assert [(p.power_cap_w, p.requested_clock_mhz) for p in points] == [
        (200, 900),
        (200, 1410),
        (250, 900),
        (250, 1410),
    ]


def test_hypothetical_part_by_spec_file(tmp_path: Path) -> None:
    f = tmp_path / "h100-2xbw.yaml"
    f.write_text("base: h100-sxm\nid: h100-2xbw\nmemory_bandwidth_gb_s: 6704\n")
    points = sweep([HEAVY], [str(f), "h100-sxm"], clocks_mhz=[1500])
    faster, base = points
    assert faster.gpu == "h100-2xbw" and base.gpu == "h100-sxm"
    assert faster.time_ms < base.time_ms


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_slowdown": 0.99}, SweepError, "at least 1"),
        ({"max_slowdown": math.nan}, SweepError, "at least 1"),
        ({"clocks_mhz": []}, SweepError, "nothing to sweep"),
        ({"power_caps_w": []}, SweepError, "nothing to sweep"),
        ({"clocks_mhz": [1000]}, ClockError, "210-1410 MHz in 15 MHz steps (nearest: 990 or 1005"),
        ({"clocks_mhz": [2000]}, ClockError, "valid SM clocks are 210-1410 MHz in 15 MHz steps"),
        ({"power_caps_w": [20]}, ClockError, "must exceed the idle power"),
        ({"power_caps_w": [300]}, ClockError, "at most 250 W"),
        ({"power_caps_w": [60]}, ClockError, "even at the lowest clock"),
    ],
)
def test_bad_sweeps_raise_user_errors(
    kwargs: dict[str, object], error: type[JoulecastError], message: str
) -> None:
    with pytest.raises(error) as info:
        sweep([HEAVY], [A100], **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert isinstance(info.value, JoulecastError)


def test_nothing_to_sweep() -> None:
    with pytest.raises(SweepError, match="no workload"):
        sweep([], [A100])
    with pytest.raises(SweepError, match="no GPU"):
        sweep([LIGHT], [])


# ---- clock and cap parsing ---------------------------------------------------------------------
def test_parse_clocks_examples() -> None:
    assert parse_clocks("510:1410:300") == [510, 810, 1110, 1410]
    assert parse_clocks("510:1400:300") == [510, 810, 1110]
    assert parse_clocks(" 1410, 900 ,510:600:45,900") == [510, 555, 600, 900, 1410]
    assert parse_clocks("900:960", default_step_mhz=15) == [900, 915, 930, 945, 960]
    assert parse_clocks("100:100.3:0.1") == [100.0, 100.1, 100.2, 100.3]
    assert parse_power_caps("250, 150W,200 w,150") == [150, 200, 250]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--clocks is empty"),
        ("900,,1200", "empty item"),
        ("fast", "'fast' is not a number"),
        ("900:1000", "needs a step"),
        ("900:1000:0", "step must be positive"),
        ("900:1000:-15", "step must be positive"),
        ("1000:900:15", "STOP is below START"),
        ("1:2:3:4", "START:STOP:STEP"),
        ("nan", "not a finite number"),
        ("0:1e9:1", "more than 100,000"),
    ],
)
def test_parse_clocks_errors(text: str, message: str) -> None:
    with pytest.raises(SweepError, match=message.replace("(", r"\(")):
        parse_clocks(text)


@pytest.mark.parametrize("text", ["", "150,,200", "lots", "inf"])
def test_parse_power_caps_errors(text: str) -> None:
    with pytest.raises(SweepError):
        parse_power_caps(text)


@given(st.integers(0, 3000), st.integers(0, 3000), st.integers(1, 400))
def test_parse_clocks_range_matches_python_range(start: int, length: int, step: int) -> None:
    stop = start + length
    assert parse_clocks(f"{start}:{stop}:{step}") == [
        float(v) for v in range(start, stop + 1, step)
    ]


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=30), st.integers(1, 60))
def test_parse_clocks_list_and_range_union(values: list[int], step: int) -> None:
    text = ",".join(str(v) for v in values) + f",100:400:{step}"
    expected = sorted({float(v) for v in values} | {float(v) for v in range(100, 401, step)})
    assert parse_clocks(text) == expected


@given(st.text(alphabet="0123456789.:,- e", max_size=25))
def test_parse_clocks_never_fails_unexpectedly(text: str) -> None:
    try:
        out = parse_clocks(text, default_step_mhz=15)
    except SweepError:
        return
    assert out and out == sorted(set(out))
    assert all(math.isfinite(v) for v in out)
    assert len(out) <= MAX_CLOCKS


# ---- CLI ---------------------------------------------------------------------------------------
def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["joulecast", "sweep", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0 if code is None else 1), out.out, out.err


def test_cli_csv(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(
        monkeypatch,
        capsys,
        "--model",
        "gpt2",
        "--batch",
        "32",
        "--seq",
        "512",
        "--clocks",
        "810:1410:150",
        "--power-caps",
        "200,250",
        "--format",
        "csv",
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == COLUMNS
    assert len(rows) == 5 * 2
    assert {r["requested_clock_mhz"] for r in rows} == {
        "810.0",
        "960.0",
        "1110.0",
        "1260.0",
        "1410.0",
    }
    for cap in ("200.0", "250.0"):
        group = [r for r in rows if r["power_cap_w"] == cap]
        assert sum(r["energy_optimal"] == "True" for r in group) == 1
        assert sum(r["fastest_within_budget"] == "True" for r in group) == 1


def test_cli_json_two_gpus(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        monkeypatch,
        capsys,
        "--model",
        "gpt2",
        "--batch",
        "8",
        "--seq",
        "128",
        "--gpu",
        A100,
        "--gpu",
        "h100-sxm",
        "--clocks",
        "900,1200",
        "--max-slowdown",
        "1.2",
        "--format",
        "json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema_version"] == 1
    data = doc["points"]
    assert [list(d) for d in data] == [COLUMNS] * 4
    assert [d["gpu"] for d in data] == [A100, A100, "h100-sxm", "h100-sxm"]
    assert all(d["workload"].startswith("gpt2") for d in data)
    for gpu in (A100, "h100-sxm"):
        assert sum(d["energy_optimal"] for d in data if d["gpu"] == gpu) == 1


def test_cli_table_marks_the_optima(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        monkeypatch,
        capsys,
        "--model",
        "llama-3.1-8b",
        "--batch",
        "8",
        "--seq",
        "512",
        "--clocks",
        "510:1410:90",
    )
    assert code == 0, err
    assert "on a100-pcie-40gb" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [float(r[0]) for r in rows] == [510.0 + 90.0 * i for i in range(11)]
    starred = [r for r in rows if "★" in r]
    diamond = [r for r in rows if "◆" in r]
    assert len(starred) == 1 and len(diamond) == 1
    energy = [float(r[5]) for r in rows]
    assert float(starred[0][5]) == min(energy)
    assert rows[-1][7] == "yes"  # 1410 MHz is throttled by the 250 W default limit
    assert float(rows[-1][2]) < 1410


def test_cli_hypothetical_gpu_spec(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "a100-1.5x-sm.yaml"
    f.write_text(
        "base: a100-pcie-40gb\nid: a100-1.5x-sm\nsm_count: 162\n"
        "tensor_tflops: {bf16: 468, fp16: 468}\n"
    )
    code, out, err = _cli(
        monkeypatch, capsys, "--example", "--gpu-spec", str(f), "--clocks", "900", "--format", "csv"
    )
    assert code == 0, err
    assert out.splitlines()[1].split(",")[1] == "a100-1.5x-sm"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clocks", "1000"], "valid SM clocks are 210-1410 MHz in 15 MHz steps"),
        (["--clocks", "3000"], "cannot run at 3000 MHz"),
        (["--clocks", ""], "nothing to sweep"),
        (["--clocks", "1410:900:15"], "STOP is below START"),
        (["--power-caps", "10"], "outside a100-pcie-40gb's power limits: 150-250 W"),
        (["--power-caps", "200,500"], "power cap 500 W is outside"),
        (["--power-caps", ""], "nothing to sweep"),
        (["--max-slowdown", "0.9"], "--max-slowdown must be at least 1"),
        (["--gpu", "h100-sxn"], "did you mean h100-sxm"),
        (["--plot", "out.txt"], "give an image file name"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, _, err = _cli(monkeypatch, capsys, "--example", *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_cli_inconsistent_spec_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("base: a100-pcie-40gb\ndefault_power_limit_w: 400\n")
    code, _, err = _cli(monkeypatch, capsys, "--example", "--gpu-spec", str(f))
    assert code == 2
    assert err.strip() == (
        "error: bad.yaml: power limits must satisfy min_power_limit_w (150) <= "
        "default_power_limit_w (400) <= max_power_limit_w (250)"
    )


def test_cli_plot_is_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs the optional matplotlib extra")
    png = tmp_path / "sweep.png"
    code, _, err = _cli(
        monkeypatch,
        capsys,
        "--example",
        "--gpu",
        "a100-sxm4-40gb",
        "--gpu",
        "a10",
        "--clocks",
        "510:1410:90",
        "--power-caps",
        "140,150",
        "--format",
        "csv",
        "--plot",
        str(png),
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_cli_plot_without_matplotlib(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = _cli(monkeypatch, capsys, "--example", "--plot", str(tmp_path / "x.png"))
    assert code == 2
    assert err.strip() == "error: --plot needs matplotlib (pip install 'joulecast[plot]')"
    assert out == ""


def test_installed_command_reports_bad_clock_in_one_line() -> None:
    exe = shutil.which("joulecast") or str(Path(sys.executable).with_name("joulecast"))
    r = subprocess.run(
        [exe, "sweep", "--example", "--clocks", "1000"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "error: a100-pcie-40gb cannot run at 1000 MHz: valid SM clocks are 210-1410 MHz in "
        "15 MHz steps (nearest: 990 or 1005 MHz)"
    )


def test_throttled_estimate_settles_at_the_limiter_set_point() -> None:
    """A capped pass runs at the highest clock whose power fits the regulated set-point."""
    from joulecast.estimator import estimate

    est = estimate(HEAVY, A100, sm_clock_mhz=1410, power_cap_w=170.0)
    assert est.throttled
    assert est.avg_power_w <= regulated_power_w(170.0) < 170.0
    step = load_gpu(A100).clock_step_mhz
    above = estimate(HEAVY, A100, sm_clock_mhz=est.sm_clock_mhz + step, power_cap_w=250.0)
    assert above.avg_power_w > regulated_power_w(170.0)


def test_cuda_graphs_remove_host_dispatch_time() -> None:
    """A graph-replayed decode step is faster than eager and never slower than its kernels."""
    from joulecast.estimator import estimate
    from joulecast.models.build import build_workload

    wl = build_workload("gpt2", batch=4, seq=1, phase="decode", context=256)
    eager = estimate(wl, A100)
    graph = estimate(wl, A100, cuda_graphs=True)
    assert graph.time_s < eager.time_s
    assert graph.time_s >= graph.gpu_busy_s
    assert graph.tokens == eager.tokens == 4
    assert graph.energy_per_token_j == pytest.approx(graph.energy_j / 4)
    swept = sweep([wl], [A100], clocks_mhz=[1410], cuda_graphs=True)
    assert swept[0].time_ms == pytest.approx(graph.time_ms)


def test_tokens_per_pass() -> None:
    """Prefill processes batch × prompt tokens; vision passes have no token count."""
    from joulecast.models.build import build_workload
    from joulecast.workload.ir import Elementwise, Workload

    assert build_workload("gpt2", batch=2, seq=128).tokens == 256
    assert build_workload("resnet101", batch=8).tokens is None
    with pytest.raises(JoulecastError, match="tokens must be positive"):
        Workload("w", (Elementwise(elements=4),), tokens=0)
