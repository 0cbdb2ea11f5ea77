"""Predictive mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import joulecast.cli.mig  # noqa: F401
from joulecast.cli.main import app
from joulecast.errors import WorkloadError
from joulecast.mig.predict import (
    PlannedLayout,
    PlannedPartition,
    load_layout,
    partition_from_estimate,
    predict,
)

DECODE = {"tensor": 0.15, "dram": 0.8, "sm": 0.55, "fp32": 0.08}
GEMM = {"tensor": 0.75, "dram": 0.35, "sm": 0.93, "fp32": 0.05}


def test_gemm_partition_draws_more_and_cap_compresses() -> None:
    layout = PlannedLayout(
        gpu="a100",
        static_w=60.0,
        tdp_w=400.0,
        partitions=(
            PlannedPartition("llm", "3g.40gb", DECODE),
            PlannedPartition("gemm", "4g.40gb", GEMM),
        ),
    )
    f = predict(layout)
    assert f.partitions[1].dynamic_power_w > f.partitions[0].dynamic_power_w > 0
    assert f.board_power_w == pytest.approx(60 + sum(p.dynamic_power_w for p in f.partitions))
    capped = predict(PlannedLayout("a100", 60.0, 400.0, layout.partitions, cap_w=150.0))
    assert capped.cap_factor < 1 and capped.board_power_w == pytest.approx(150.0)


def test_bad_activity_rejected() -> None:
    with pytest.raises(WorkloadError, match="activities"):
        predict(PlannedLayout("a", 60, 400, (PlannedPartition("x", "1g.10gb", {"tensor": 1.5}),)))


def test_from_estimate_duck_typed() -> None:
    class Est:
        time_s = 12.0

        @property
        def activity(self) -> dict[str, float]:
            return {"tensor": 0.5, "dram": 0.2, "other": 1.0}

    p = partition_from_estimate("job", "2g.20gb", Est())
    assert p.activity == {"tensor": 0.5, "dram": 0.2} and p.duration_s == 12.0


def test_cli_predict_yaml(tmp_path: Path) -> None:
    f = tmp_path / "layout.yaml"
    f.write_text(
        "gpu: a100-sxm4-80gb\nstatic_w: 60\npartitions:\n"
        "  - {name: llm, profile: 3g.40gb, duration_s: 100, activity: {tensor: 0.15, dram: 0.8}}\n"
        "  - {name: gemm, profile: 4g.40gb, activity: {tensor: 0.75, sm: 0.9}}\n"
    )
    assert load_layout(f).tdp_w > 0
    res = CliRunner().invoke(app, ["mig", "predict", "--layout", str(f), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [p["name"] for p in doc["partitions"]] == ["llm", "gemm"]
    assert doc["partitions"][0]["energy_j"] == pytest.approx(doc["partitions"][0]["power_w"] * 100)
