"""The timeline sampler (fake and real clocks), replayed traces and their parser."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from joulecast.measure import COUNTER, INTEGRATED, MeasureError, measure
from joulecast.measure.fake import (
    FakeClock,
    ReplayMeter,
    SimulatedMeter,
    TraceSample,
    format_trace,
    parse_trace,
)
from joulecast.measure.meter import RealClock
from joulecast.measure.sampler import Sampler, Timeline

from .conftest import tick_work


def test_fake_clock_runs_ticks_at_their_own_times() -> None:
    clock, seen = FakeClock(), []
    ticker = clock.every(0.1, lambda: seen.append(round(clock.now_s(), 9)))
    clock.advance(0.35)
    assert seen == [0.0, 0.1, 0.2, 0.3] and clock.now_s() == pytest.approx(0.35)
    ticker.stop()
    clock.advance(1.0)
    assert len(seen) == 4
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_sampler_reads_every_gpu_on_the_fake_clock(clock: FakeClock) -> None:
    meter = SimulatedMeter(clock, [([100.0, 101.0], [0.0, 100.0]), ([0.0], [50.0])])
    sampler = Sampler(meter, (0, 1), clock, period_s=0.25)
    sampler.start()
    clock.advance(1.0)
    first, second = sampler.stop()
    assert first.time_s.tolist() == pytest.approx([100, 100.25, 100.5, 100.75, 101, 101])
    assert first.power_w.tolist() == pytest.approx([0, 25, 50, 75, 100, 100])
    assert second.power_w.tolist() == pytest.approx([50] * 6)
    assert first.energy_j(100.0, 101.0) == pytest.approx(50.0)
    assert first.energy_j(100.1, 100.6) == pytest.approx(0.5 * (10 + 60) / 2)


def test_real_clock_samples_in_a_background_thread() -> None:
    clock = RealClock()
    meter = SimulatedMeter(clock, [([0.0], [200.0])])
    m = measure(lambda: time.sleep(0.005), meter, clock=clock, min_window_s=0.05,
                sample_period_s=0.005, warmup=0)  # fmt: skip
    assert m.gpus[0].samples >= 3
    assert m.gpus[0].energy_j == pytest.approx(200.0 * m.window_s, rel=0.05)


def test_an_error_in_the_sampling_thread_reaches_the_caller() -> None:
    class Broken(SimulatedMeter):
        def temperature_c(self, index: int) -> int:
            raise MeasureError("NVML could not read temperature: GPU is lost")

    clock = RealClock()
    sampler = Sampler(Broken(clock), (0,), clock, period_s=0.001)
    sampler.start()
    with pytest.raises(MeasureError, match="GPU is lost"):
        sampler.stop()


def test_unreadable_fields_are_none_in_summaries_not_zero() -> None:
    nan = math.nan
    t = np.array([0.0, 1.0, 2.0])
    tl = Timeline(0, t, np.array([100.0, nan, 100.0]), np.full(3, nan), np.array([50.0, 60, 55]))
    assert tl.mean(tl.sm_clock_mhz, 0, 2) is None
    assert tl.maximum(tl.temperature_c, 0, 2) == 60
    assert tl.energy_j(0.0, 2.0) == pytest.approx(200.0)  # the NaN sample is skipped
    one = Timeline(0, t[:1], np.array([100.0]), t[:1], t[:1])
    with pytest.raises(MeasureError, match="only 1 readable power sample"):
        one.energy_j(0.0, 1.0)


def _trace(energy: bool) -> list[TraceSample]:
    """Two recorded seconds: 200 W for 0.5 s then 400 W, sampled every 1/16 s, counter in mJ."""
    out = []
    for i in range(33):
        t = i * 0.0625
        p = 200.0 if t < 0.5 else 400.0
        e = round(1000 * (200 * min(t, 0.5) + 400 * max(t - 0.5, 0))) if energy else None
        out.append(TraceSample(t, 0, p, e, 1755.0, 60.0 + t))
    return out


@pytest.mark.parametrize("energy", [True, False])
def test_replayed_trace(energy: bool) -> None:
    clock = FakeClock()
    meter = ReplayMeter(clock, parse_trace(format_trace(_trace(energy))), name="NVIDIA H100")
    m = measure(tick_work(clock, 0.125), meter, clock=clock, warmup=2, min_window_s=1.0)
    g = m.gpus[0]
    assert m.start_s == 0.25 and m.window_s == 1.0
    assert g.method == (COUNTER if energy else INTEGRATED)
    # 0.25 s at 200 W and 0.75 s at 400 W; integrating held samples smears the step.
    assert g.energy_j == pytest.approx(350.0, abs=0.0 if energy else 25.0)
    assert g.avg_sm_clock_mhz == 1755 and g.name == "NVIDIA H100"
    assert g.max_temperature_c == 61


finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
maybe = st.none() | finite


@st.composite
def traces(draw: st.DrawFn) -> list[TraceSample]:
    gpus = draw(st.integers(1, 3))
    out = []
    for g in range(gpus):
        times = sorted(draw(st.lists(finite, min_size=1, max_size=6)))
        for t in times:
            energy = draw(st.none() | st.integers(0, 10**12))
            out.append(TraceSample(t, g, draw(maybe), energy, draw(maybe), draw(maybe)))
    return out


@given(traces())
def test_trace_round_trip(samples: list[TraceSample]) -> None:
    assert list(parse_trace(format_trace(samples))) == samples


@given(st.text(alphabet="abc-x!", min_size=1, max_size=5))
def test_trace_rejects_a_non_number_in_one_line(bad: str) -> None:
    text = f"time_s,gpu,power_w,energy_mj,sm_clock_mhz,temperature_c\n0,0,{bad},,,\n"
    with pytest.raises(MeasureError) as info:
        parse_trace(text)
    assert "\n" not in str(info.value) and "line 2" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time_s,gpu\n0,0\n", "missing column"),
        ("time_s,gpu,power_w,energy_mj,sm_clock_mhz,temperature_c\n", "no samples"),
        ("time_s,gpu,power_w,energy_mj,sm_clock_mhz,temperature_c\n1,0,1,,,\n0,0,1,,,\n", "back"),
        ("time_s,gpu,power_w,energy_mj,sm_clock_mhz,temperature_c\n0,0.5,1,,,\n", "integer gpu"),
        ("time_s,gpu,power_w,energy_mj,sm_clock_mhz,temperature_c\n0,0,-1,,,\n", ">= 0"),
        ("time_s,gpu,power_w,energy_mj,sm_clock_mhz,temperature_c\n0,0,inf,,,\n", "finite"),
    ],
)
def test_trace_errors(text: str, message: str) -> None:
    with pytest.raises(MeasureError, match=message):
        parse_trace(text)


def test_replay_needs_gpus_numbered_from_zero() -> None:
    samples = [TraceSample(0.0, 1, 100.0, None, None, None)]
    with pytest.raises(MeasureError, match="numbered"):
        ReplayMeter(FakeClock(), samples)
