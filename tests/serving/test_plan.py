"""`joulecast plan`: the least-energy deployment within limits, consistent with `serve`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from joulecast.errors import WorkloadError
from joulecast.serving import serve
from joulecast.serving.plan import plan

EXE = Path(sys.executable).parent / "joulecast"


@pytest.fixture(scope="module")
def result() -> object:
    return plan("llama-3.1-8b", 350, 600, max_itl_ms=30, gpus=["h100-sxm", "b200"], max_gpus=2)


def test_the_choice_is_the_least_energy_feasible_point(result: object) -> None:
    from joulecast.serving.plan import PlanResult

    assert isinstance(result, PlanResult)
    assert result.best.itl_ms <= 30
    assert all(c.energy_per_token_j >= result.best.energy_per_token_j for c in result.candidates)
    assert all(c.itl_ms <= 30 for c in result.candidates)
    assert len(result.evaluated) > len(result.candidates)


def test_the_choice_equals_serve_at_that_configuration(result: object) -> None:
    from joulecast.serving.plan import PlanResult

    assert isinstance(result, PlanResult)
    b = result.best
    again = serve(
        "llama-3.1-8b", b.gpu, batch=b.batch, input_tokens=350, output_tokens=600,
        num_gpus=b.num_gpus, tp=b.tp, ep=b.ep if b.ep > 1 else None, sm_clock_mhz=b.sm_clock_mhz,
    )  # fmt: skip
    assert again.energy_per_token_j == b.energy_per_token_j
    assert again.itl_ms == b.itl_ms


def test_a_power_budget_is_respected() -> None:
    r = plan("llama-3.1-8b", 350, 600, gpus=["h100-sxm"], max_gpus=4, power_budget_w=500)
    assert all(c.avg_power_w <= 500 for c in r.candidates)


def test_impossible_limits_name_the_fastest_reachable() -> None:
    with pytest.raises(WorkloadError, match="the fastest reaches ITL"):
        plan("llama-3.1-8b", 350, 600, max_itl_ms=0.1, gpus=["h100-sxm"], max_gpus=1)


def test_cli_json_contract() -> None:
    run = subprocess.run(
        [str(EXE), "plan", "--model", "llama-3.1-8b", "--input-tokens", "350",
         "--output-tokens", "600", "--max-itl-ms", "30", "--gpus", "h100-sxm", "--max-gpus", "2",
         "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    keys = (
        "gpu", "num_gpus", "tp", "ep", "dp", "batch", "sm_clock_mhz", "power_cap_w",
        "energy_per_token_j", "itl_ms", "ttft_ms", "output_throughput_tok_s", "avg_power_w",
    )  # fmt: skip
    for entry in (doc["best"], *doc["candidates"]):
        assert all(k in entry for k in keys)
