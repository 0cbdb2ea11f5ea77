"""Estimates stay bit-identical across refactors and speed-ups.

``tests/data/estimate_snapshot.json`` pins a fixed set of estimates (see
``scripts/snapshot_estimates.py``, which also regenerates it when the physics changes on purpose).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _snapshot_module() -> Any:
    path = ROOT / "scripts" / "snapshot_estimates.py"
    spec = importlib.util.spec_from_file_location("snapshot", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_estimates_match_snapshot() -> None:
    expected = json.loads((ROOT / "tests/data/estimate_snapshot.json").read_text())
    got = json.loads(json.dumps(_snapshot_module().snapshot(), sort_keys=True))
    assert len(got["estimates"]) == len(expected["estimates"])
    for g, e in zip(got["estimates"], expected["estimates"], strict=True):
        assert g == e, f"estimate changed for {e['case']}"
    assert got["sweep"] == expected["sweep"]
