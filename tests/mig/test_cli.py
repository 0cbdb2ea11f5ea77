"""CLI contract: JSON shape, CSV, errors exit 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import joulecast.cli.mig  # noqa: F401  (registers the sub-app)
from joulecast.cli.main import app
from joulecast.mig.synth import SynthRun

runner = CliRunner()


def test_attribute_json_contract(small_run: SynthRun, tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(small_run.to_long_csv())
    res = runner.invoke(app, ["mig", "attribute", "--telemetry", str(f), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    g = doc["gpus"][0]
    for key in ("gpu_uuid", "energy_j", "static_energy_j", "dynamic_energy_j", "residual_j"):
        assert key in g
    for inst in g["instances"]:
        assert set(inst) >= {
            "gpu_instance_id",
            "profile",
            "dynamic_energy_j",
            "static_energy_j",
            "energy_j",
        }
    total = g["static_energy_j"] + g["dynamic_energy_j"] + g["residual_j"]
    assert total == pytest.approx(g["energy_j"], rel=0.005)


def test_attribute_csv_and_plot(small_run: SynthRun, tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(small_run.to_long_csv())
    png = tmp_path / "p.png"
    res = runner.invoke(
        app,
        [
            "mig",
            "attribute",
            "--telemetry",
            str(f),
            "--format",
            "csv",
            "--method",
            "slice",
            "--static-policy",
            "unattributed",
            "--plot",
            str(png),
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].startswith("gpu_uuid,gpu_instance_id,profile")
    assert png.stat().st_size > 1000


def test_synth_writes_truth(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    res = runner.invoke(
        app, ["mig", "synth", "--out", str(out), "--duration-s", "60", "--seed", "3"]
    )
    assert res.exit_code == 0, res.output
    assert out.read_text().startswith("timestamp_s,gpu_uuid")
    assert json.loads(out.with_suffix(".truth.json").read_text())["instances"]


def test_missing_column_exits_2_with_one_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("timestamp_s,gpu_uuid,gpu_instance_id,profile,gract\n0,a,1,1g.10gb,0.5\n")
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "joulecast"),
            "mig",
            "attribute",
            "--telemetry",
            str(f),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines()[-1]
        == "error: long-csv: missing required column(s): board_power_w"
    )
    assert "Traceback" not in proc.stderr


def test_benchmark_csv_is_csv() -> None:
    res = runner.invoke(app, ["mig", "benchmark", "--set", "held-out", "--format", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("method,median_abs_error_pct")
    assert not any(line.startswith("|") for line in lines)
