"""Shared fixtures: small synthetic runs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from joulecast.mig.synth import SCENARIOS, SynthRun, generate


@pytest.fixture(scope="session")
def small_run() -> SynthRun:
    """A 30-minute 4g+3g run under a power cap."""
    return generate(replace(SCENARIOS["tune-4g3g-cap"], duration_s=1800), seed=5)


@pytest.fixture(scope="session")
def mixed_run() -> SynthRun:
    """A 40-minute 3g+2g+1g+1g run with mixed workloads."""
    return generate(replace(SCENARIOS["tune-3g2g1g1g"], duration_s=2400), seed=6)
