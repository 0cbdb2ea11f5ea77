"""Shared fixtures: a fake clock and simulated GPUs (no GPU, nothing sleeps)."""

from __future__ import annotations

import pytest

from joulecast.measure.fake import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_s=100.0)


def tick_work(clock: FakeClock, seconds: float = 0.25):  # type: ignore[no-untyped-def]
    """One iteration of fake work: lets ``seconds`` pass on the fake clock."""
    return lambda: clock.advance(seconds)
