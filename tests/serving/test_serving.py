"""Serving on 1-8 GPUs: the study's findings, the CLI contract, bad input, the data check."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from joulecast.errors import WorkloadError
from joulecast.hardware.spec import load_gpu
from joulecast.serving import serve
from joulecast.serving.comm import all_reduce_time_s
from joulecast.serving.frontier import batch_sweep, pareto_front

EXE = Path(sys.executable).parent / "joulecast"
CHAT = {"input_tokens": 350, "output_tokens": 600}


def test_energy_per_token_falls_with_batch_then_flattens() -> None:
    sweep = batch_sweep(lambda b: serve("llama-3.1-8b", "h100-sxm", batch=b, **CHAT))
    j = [r.energy_per_token_j for r in sweep]
    assert all(a > b for a, b in itertools.pairwise(j))
    assert j[0] / j[3] > 5  # batch 1 -> 8: several times less per token
    assert j[-2] / j[-1] < 1.5  # the last doubling gains little
    assert all(pareto_front(sweep))


def test_a_small_active_moe_beats_a_dense_model_of_its_size() -> None:
    # At small batch a decode step reads only the experts its tokens wake; by batch 32 top-8
    # routing wakes most of the 128 experts and the gap narrows (1.8x here).
    dense = serve("qwen3-32b", "h100-sxm", batch=8, **CHAT)
    moe = serve("qwen3-30b-a3b", "h100-sxm", batch=8, **CHAT)
    assert dense.energy_per_token_j > 2 * moe.energy_per_token_j


def test_more_gpus_at_fixed_batch_raise_energy_per_token() -> None:
    one = serve("llama-3.1-8b", "h100-sxm", batch=64, **CHAT)
    two = serve("llama-3.1-8b", "h100-sxm", batch=64, num_gpus=2, **CHAT)
    assert two.energy_per_token_j > one.energy_per_token_j
    assert two.itl_ms < one.itl_ms


def test_memory_caps_the_running_batch() -> None:
    r = serve("qwen3-32b", "h100-sxm", batch=4096, **CHAT)
    assert r.running_batch == r.max_batch < 4096
    assert any("capped" in n for n in r.notes)


def test_a_model_that_does_not_fit_says_what_would() -> None:
    with pytest.raises(WorkloadError, match=r"needs \d+ GB per GPU.*fits on 4 h100-sxm"):
        serve("llama-3.1-70b", "h100-sxm", batch=8, **CHAT)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_gpus": 3}, "does not divide the 32 attention heads"),
        ({"num_gpus": 4, "tp": 2}, "must equal tp x dp"),
        ({"num_gpus": 2, "ep": 2}, "has no experts"),
        ({"precision": "nvfp4"}, "unsupported precision"),
        ({"input_tokens": 200_000}, "exceed"),
    ],
)
def test_bad_requests_are_one_line(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"batch": 8, **CHAT, **kwargs}
    with pytest.raises(WorkloadError, match=message) as info:
        serve("llama-3.1-8b", "h100-sxm", **args)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_expert_parallelism_larger_than_the_experts_is_refused() -> None:
    with pytest.raises(WorkloadError, match="exceeds"):
        serve("mixtral-8x7b", "h100-sxm", batch=8, num_gpus=16, ep=16, tp=1, **CHAT)


def test_all_reduce_matches_the_custom_all_reduce_table() -> None:
    # aiconfigurator H100-SXM vLLM custom all-reduce, CUDA graphs (bf16): small messages cost
    # ~4.3-5.5 us; 268 MB over 2 GPUs 0.885 ms; 134 MB over 8 GPUs 0.577 ms.
    h100 = load_gpu("h100-sxm")
    assert 4e-6 <= all_reduce_time_s(8192, 2, h100) <= 6e-6
    assert all_reduce_time_s(268435456, 2, h100) == pytest.approx(0.885e-3, rel=0.25)
    assert all_reduce_time_s(134217728, 8, h100) == pytest.approx(0.577e-3, rel=0.25)


def test_cli_json_contract() -> None:
    run = subprocess.run(
        [str(EXE), "serve", "--model", "qwen3-30b-a3b", "--gpu", "h100-sxm", "--num-gpus", "2",
         "--ep", "2", "--tp", "1", "--batch", "64", "--input-tokens", "350",
         "--output-tokens", "600", "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    for key in (
        "energy_per_token_j", "energy_per_request_j", "avg_power_w", "output_throughput_tok_s",
        "itl_ms", "ttft_ms", "max_batch", "running_batch", "step",
    ):  # fmt: skip
        assert key in doc, key
    assert doc["tp"] == 2 and doc["ep"] == 2  # vLLM: -tp 2 --enable-expert-parallel


def test_cli_bad_input_is_one_line_exit_2() -> None:
    run = subprocess.run(
        [str(EXE), "serve", "--model", "llama-3.1-8b", "--num-gpus", "3", "--batch", "8",
         "--input-tokens", "350", "--output-tokens", "600"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ")


@pytest.mark.data
def test_every_v3_row_is_forecast_or_says_why(data_dir: Path) -> None:
    from joulecast.calibration.serving_report import serving_points, serving_section

    points = serving_points(data_dir)
    covered = [p for p in points if p.forecast is not None]
    assert len(points) >= 200
    assert len(covered) / len(points) >= 0.85
    assert all(p.reason for p in points if p.forecast is None)
    text = "\n".join(serving_section(data_dir))
    assert "Coverage" in text and "leave-one-model-out" in text
