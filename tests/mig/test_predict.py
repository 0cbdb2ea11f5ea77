"""Predictive mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import joulecast.cli.mig  # noqa: F401
from joulecast.cli.main import app
from joulecast.errors import JoulecastError, WorkloadError
from joulecast.estimator import estimate
from joulecast.hardware.spec import load_gpu
from joulecast.mig.predict import (
    ACTIVITY_KEYS,
    PlannedLayout,
    PlannedPartition,
    estimate_partition,
    load_layout,
    partition_from_estimate,
    partition_spec,
    predict,
)
from joulecast.models.build import build_workload

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


LLAMA_DECODE = {
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "batch": 32,
    "phase": "decode",
    "context": 1024,
}


def test_partition_spec_cuts_compute_and_memory() -> None:
    gpu = load_gpu("a100-sxm4-80gb")
    part = partition_spec(gpu, "3g.40gb")
    assert part.sm_count == round(gpu.sm_count * 3 / 7)
    assert part.memory_bandwidth_gb_s == pytest.approx(gpu.memory_bandwidth_gb_s / 2)
    assert part.memory_capacity_gb == pytest.approx(40.0)
    assert part.max_clock_mhz == gpu.max_clock_mhz


def test_workload_partition_uses_the_core_estimator() -> None:
    """A small decoder at decode phase: activity is the estimator's on the partition."""
    spec = {"model": "Qwen/Qwen2-1.5B", "batch": 16, "phase": "decode", "context": 512}
    p = estimate_partition("chat", "1g.10gb", spec, "a100-sxm4-80gb", duration_s=600.0)
    wl = build_workload("Qwen/Qwen2-1.5B", batch=16, phase="decode", context=512)
    part_spec = partition_spec(load_gpu("a100-sxm4-80gb"), "1g.10gb")
    expected = estimate(wl, part_spec, detail=False).activity
    assert p.duration_s == 600.0 and p.profile == "1g.10gb"
    assert set(p.activity) == set(ACTIVITY_KEYS)
    for k, v in p.activity.items():
        assert v == pytest.approx(expected[k])
    # Decode is memory-bound: DRAM busier than the tensor cores.
    assert p.activity["dram"] > 2 * p.activity["tensor"]
    # On the whole GPU the same step leaves the memory system less busy.
    whole = estimate(wl, "a100-sxm4-80gb", detail=False).activity
    assert p.activity["dram"] > whole["dram"]


def test_issue_example_llama_decode_3g_plus_gemm_4g(tmp_path: Path) -> None:
    f = tmp_path / "layout.json"
    f.write_text(
        json.dumps(
            {
                "gpu": "a100-sxm4-80gb",
                "static_w": 60,
                "partitions": [
                    {"name": "llm", "profile": "3g.40gb", "workload": LLAMA_DECODE},
                    {"name": "gemm", "profile": "4g.40gb", "activity": GEMM},
                ],
            }
        )
    )
    layout = load_layout(f)
    assert layout.partitions[0].activity["dram"] > 0.3
    fc = predict(layout)
    llm, gemm = fc.partitions
    assert gemm.dynamic_power_w > llm.dynamic_power_w > 10.0
    assert fc.board_power_w == pytest.approx(60 + llm.dynamic_power_w + gemm.dynamic_power_w)
    assert llm.energy_j == pytest.approx(llm.power_w * 3600.0)


def test_cli_predict_with_workload(tmp_path: Path) -> None:
    f = tmp_path / "layout.yaml"
    f.write_text(
        "gpu: a100-sxm4-80gb\nstatic_w: 60\npartitions:\n"
        "  - name: llm\n    profile: 3g.40gb\n    duration_s: 100\n"
        "    workload: {model: meta-llama/Llama-3.1-8B-Instruct, batch: 32, phase: decode, "
        "context: 1024}\n"
        "  - {name: gemm, profile: 4g.40gb, activity: {tensor: 0.75, sm: 0.9}}\n"
    )
    res = CliRunner().invoke(app, ["mig", "predict", "--layout", str(f), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    llm = doc["partitions"][0]
    assert llm["name"] == "llm" and llm["dynamic_power_w"] > 0
    assert llm["energy_j"] == pytest.approx(llm["power_w"] * 100)


def test_cli_workload_that_does_not_fit_is_one_line_error(tmp_path: Path) -> None:
    f = tmp_path / "layout.yaml"
    f.write_text(
        "gpu: a100-sxm4-80gb\npartitions:\n"
        "  - {name: big, profile: 1g.10gb, workload: {model: meta-llama/Llama-3.1-8B-Instruct, "
        "batch: 64, phase: decode, context: 4096}}\n"
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "joulecast"), "mig", "predict", "--layout", str(f)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: partition big: the workload needs") and "1g.10gb" in last


def test_bad_workload_descriptions() -> None:
    with pytest.raises(WorkloadError, match="needs 'model' and 'batch'"):
        estimate_partition("x", "3g.40gb", {"model": "gpt2"}, "a100-sxm4-80gb")
    with pytest.raises(WorkloadError, match="needs 'model' and 'batch'"):
        estimate_partition("x", "3g.40gb", {"model": "gpt2", "batch": 1, "bs": 2}, "a100")
    with pytest.raises(WorkloadError, match="phase must be prefill or decode"):
        estimate_partition(
            "x", "3g.40gb", {"model": "gpt2", "batch": 1, "phase": "train"}, "a100-sxm4-80gb"
        )
    with pytest.raises(JoulecastError, match="unknown model"):
        estimate_partition("x", "3g.40gb", {"model": "no-such-model", "batch": 1}, "a100")
