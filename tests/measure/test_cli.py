"""``joulecast measure``: the fake-GPU paths end to end, output contracts and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from joulecast.cli import measure as cli_measure
from joulecast.cli.main import COMMANDS, app
from joulecast.errors import JoulecastError
from joulecast.measure import MeasureError
from joulecast.measure.meter import parse_gpu_indices

EXE = shutil.which("joulecast") or str(Path(sys.executable).with_name("joulecast"))
runner = CliRunner()


def joulecast(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=60)


def test_summary_is_the_command_docstring() -> None:
    assert cli_measure.measure_command.__doc__ is not None
    assert COMMANDS["measure"] == ("measure", cli_measure.measure_command.__doc__.splitlines()[0])


def test_command_on_a_fake_gpu_json_contract() -> None:
    res = runner.invoke(
        app,
        ["measure", "--fake", "counter", "--min-window-s", "0.05", "--format", "json",
         "--", sys.executable, "-c", "pass"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["command"].endswith("-c pass") and doc["iterations"] >= 1
    assert doc["window_s"] >= 0.05 and doc["energy_j"] > 0
    (gpu,) = doc["gpus"]
    assert gpu["method"] == "energy counter" and gpu["name"].startswith("NVIDIA H100")
    assert doc["energy_j"] == pytest.approx(doc["avg_power_w"] * doc["window_s"])
    assert {"date", "driver", "cuda", "torch", "joulecast"} <= set(doc["provenance"])


def test_fallback_and_refused_clock_are_said_in_the_table(tmp_path: Path) -> None:
    png = tmp_path / "timeline.png"
    res = runner.invoke(
        app,
        ["measure", "--fake", "no-counter", "--min-window-s", "0.05", "--sample-period-s",
         "0.01", "--plot", str(png), "--", "true"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "[integrated power]" in res.stdout
    assert "note: GPU 0: no energy counter; energy integrated from sampled power" in res.stdout
    assert png.stat().st_size > 10_000
    res = runner.invoke(
        app,
        ["measure", "--fake", "no-permission", "--sm-clock", "1200", "--min-window-s", "0.02",
         "--format", "csv", "--", "true"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    header, row = res.stdout.splitlines()
    assert "gpu.method" in header and "settings.sm_clock_locked" in header
    assert "SM clock not locked at 1200 MHz: no permission" in row


def test_kernels_then_check_on_a_fake_gpu(tmp_path: Path) -> None:
    out = tmp_path / "kernels.csv"
    res = runner.invoke(
        app,
        ["measure", "kernels", "--quick", "--fake", "counter", "--window-s", "0.002",
         "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "68 kernel rows written" in res.stdout
    res = runner.invoke(app, ["measure", "check", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    tables = json.loads(res.stdout)["tables"]
    assert [t["rows"] for t in tables] == [24, 24, 4, 4]
    assert all(t["gpu"] == "h200" and "energy_mape_pct" in t for t in tables)


def test_kernels_help_states_the_plan() -> None:
    res = runner.invoke(app, ["measure", "kernels", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    assert "Default plan: 794 shapes" in text and "--quick: 68 shapes" in text and "min" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["measure"], "give a command after --"),
        (["measure", "--", "true"], "pip install 'joulecast[nvml]'"),
        (
            ["measure", "--fake", "counter", "--model", "gpt2", "--batch", "1", "--seq", "8"],
            "pip install 'joulecast[torch]'",
        ),
        (["measure", "--fake", "bogus", "--", "true"], "--fake takes counter"),
        (["measure", "--fake", "counter", "--gpus", "1-0", "--", "true"], "runs backwards"),
        (["measure", "--fake", "counter", "--power-limit", "5000", "--", "true"], "outside"),
        (["measure", "--fake", "counter", "--compare", "--", "true"], "apply to --model"),
        (["measure", "--fake", "counter", "--min-window-s", "0.01", "--", "false"], "status 1"),
        (["measure", "check", "/no/such/table.csv"], "kernel table not found"),
    ],
)
def test_mistakes_are_one_line_errors(args: list[str], message: str) -> None:
    if "joulecast[torch]" in message and _has("torch"):
        pytest.skip("PyTorch is installed here")
    if "joulecast[nvml]" in message and _has("pynvml"):
        pytest.skip("nvidia-ml-py is installed here")
    res = runner.invoke(app, args)
    assert isinstance(res.exception, JoulecastError), res.output
    assert message in str(res.exception) and "\n" not in str(res.exception)


def test_the_command_line_prints_one_line_and_exits_2() -> None:
    for args, message in (
        (["measure"], "give a command after --"),
        (["measure", "--fake", "counter", "--min-window-s", "0.01", "--", "false"], "status 1"),
    ):
        r = joulecast(*args)
        assert r.returncode == 2, r.stdout + r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], r.stderr


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@given(st.lists(st.integers(0, 64), min_size=1, max_size=8, unique=True))
def test_gpu_indices_round_trip(indices: list[int]) -> None:
    assert parse_gpu_indices(",".join(map(str, indices))) == tuple(indices)


@given(st.integers(0, 30), st.integers(0, 30))
def test_gpu_index_ranges(first: int, span: int) -> None:
    text = f"{first}-{first + span}"
    assert parse_gpu_indices(text) == tuple(range(first, first + span + 1))


@given(st.text(alphabet="0123456789,- x", max_size=8))
def test_gpu_indices_parse_or_fail_in_one_line(text: str) -> None:
    try:
        out = parse_gpu_indices(text)
    except MeasureError as exc:
        assert "\n" not in str(exc)
    else:
        assert out and len(set(out)) == len(out) and all(i >= 0 for i in out)
