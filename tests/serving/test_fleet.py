"""`joulecast fleet`: a mixed-integer placement within inventory and budget, and its baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulecast.errors import WorkloadError
from joulecast.serving.fleet import ModelDemand, load_fleet_spec, solve_fleet

DEMANDS = [
    ModelDemand("llama-3.1-8b", 20, 350, 600, max_itl_ms=30),
    ModelDemand("qwen3-14b", 5, 350, 600, max_itl_ms=30),
]


def test_assignment_meets_demand_inventory_and_beats_the_baseline() -> None:
    inventory = {"h100-sxm": 8}
    r = solve_fleet(DEMANDS, inventory, power_budget_w=6000)
    for d in DEMANDS:
        served = sum(
            p.replicas * p.deployment.output_throughput_tok_s
            for p in r.placements
            if p.model == d.model
        )
        assert served >= d.tokens_per_s * (1 - 1e-9)
        assert all(p.deployment.itl_ms <= 30 for p in r.placements)
    assert sum(p.gpus for p in r.placements) <= 8
    assert r.power_w <= 6000
    assert r.power_w <= r.baseline_power_w


def test_an_inventory_too_small_says_by_how_much() -> None:
    with pytest.raises(WorkloadError, match="cannot carry the demand"):
        solve_fleet([ModelDemand("llama-3.1-8b", 500, 350, 600, max_itl_ms=30)], {"h100-sxm": 1})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("gpus: {h100-sxm: -1}\nmodels: [{model: gpt2}]", "'gpus' must map"),
        ("gpus: {h100-sxm: 2}\nmodels: []", "non-empty list"),
        ("gpus: {h100-sxm: 2}\nmodels: [{model: gpt2}]", "missing or bad"),
        (
            "gpus: {h100-sxm: 2}\npower_budget_w: -5\nmodels: [{model: gpt2, requests_per_s: 1, "
            "input_tokens: 10, output_tokens: 10}]",
            "power_budget_w",
        ),
    ],
)
def test_bad_specs_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text(body)
    with pytest.raises(WorkloadError, match=message) as info:
        load_fleet_spec(f)
    assert "\n" not in str(info.value)
