"""measure(): the energy counter, the integrated-power fallback, windows, warm-up, settings."""

from __future__ import annotations

import pytest

from joulecast.errors import ClockError
from joulecast.measure import COUNTER, INTEGRATED, MeasureError, measure
from joulecast.measure.fake import FakeClock, SimulatedMeter
from joulecast.measure.meter import NotSupportedError

from .conftest import tick_work

# A ramp: 100 W at t=100 s to 300 W at t=110 s, then flat.
RAMP = ([100.0, 110.0], [100.0, 300.0])


def ramp_energy_j(t0: float, t1: float) -> float:
    """Exact integral of RAMP over [t0, t1] inside the ramp."""
    p = lambda t: 100.0 + 20.0 * (t - 100.0)  # noqa: E731
    return (t1 - t0) * (p(t0) + p(t1)) / 2.0


def test_energy_counter_is_the_integral_of_the_power_profile(clock: FakeClock) -> None:
    meter = SimulatedMeter(clock, [RAMP])
    m = measure(tick_work(clock), meter, clock=clock, warmup=2, min_window_s=5.0)
    g = m.gpus[0]
    assert g.method == COUNTER == "energy counter"
    assert m.start_s == pytest.approx(100.5)  # after two 0.25 s warm-up iterations
    assert m.window_s == pytest.approx(5.0) and m.iterations == 20
    assert g.energy_j == pytest.approx(ramp_energy_j(100.5, 105.5), abs=2e-3)  # counter in mJ
    assert g.avg_power_w == pytest.approx(g.energy_j / 5.0)
    assert m.time_per_iteration_s == pytest.approx(0.25)
    assert m.energy_per_iteration_j == pytest.approx(g.energy_j / 20)
    assert g.avg_sm_clock_mhz == 1410 and g.avg_temperature_c == 55
    assert 51 <= g.samples <= 52  # every 0.1 s over 5 s, and one more when stopped
    assert m.notes == ()


def test_no_energy_counter_integrates_sampled_power_and_says_so(clock: FakeClock) -> None:
    meter = SimulatedMeter(clock, [RAMP], energy_counter=False)
    m = measure(tick_work(clock), meter, clock=clock, warmup=0, min_window_s=5.0)
    g = m.gpus[0]
    assert g.method == INTEGRATED == "integrated power"
    # Linear power: trapezoids through exact samples are exact.
    assert g.energy_j == pytest.approx(ramp_energy_j(100.0, 105.0), rel=1e-9)
    assert any("no energy counter" in n for n in m.notes)
    assert m.to_dict()["gpus"][0]["method"] == "integrated power"


def test_counter_that_does_not_advance_falls_back(clock: FakeClock) -> None:
    class Stuck(SimulatedMeter):
        def energy_mj(self, index: int) -> int:
            return 42

    m = measure(tick_work(clock), Stuck(clock, [RAMP]), clock=clock, warmup=0, min_window_s=1.0)
    assert m.gpus[0].method == INTEGRATED
    assert any("did not advance" in n for n in m.notes)


def test_nothing_readable_is_an_error_never_zero(clock: FakeClock) -> None:
    class Blind(SimulatedMeter):
        def power_mw(self, index: int) -> int:
            raise NotSupportedError("read power: not supported")

    meter = Blind(clock, [RAMP], energy_counter=False)
    with pytest.raises(MeasureError, match="no energy counter and only 0 readable power"):
        measure(tick_work(clock), meter, clock=clock, warmup=0, min_window_s=1.0)


def test_zero_power_is_an_error(clock: FakeClock) -> None:
    meter = SimulatedMeter(clock, [([0.0], [0.0])], energy_counter=False)
    with pytest.raises(MeasureError, match="no energy could be read"):
        measure(tick_work(clock), meter, clock=clock, warmup=0, min_window_s=1.0)


def test_each_gpu_is_measured_on_its_own(clock: FakeClock) -> None:
    meter = SimulatedMeter(clock, [([0.0], [100.0]), ([0.0], [250.0]), ([0.0], [50.0])])
    m = measure(tick_work(clock, 0.5), meter, clock=clock, gpus=(0, 1), min_window_s=2.0)
    assert [g.index for g in m.gpus] == [0, 1]
    assert [g.energy_j for g in m.gpus] == pytest.approx([200.0, 500.0], abs=2e-3)
    assert m.energy_j == pytest.approx(700.0, abs=4e-3)
    assert m.avg_power_w == pytest.approx(350.0, rel=1e-5)


def test_min_iterations_and_sync_after_each(clock: FakeClock) -> None:
    synced: list[float] = []
    meter = SimulatedMeter(clock)
    m = measure(
        tick_work(clock, 2.0),
        meter,
        clock=clock,
        warmup=3,
        min_window_s=0.1,
        min_iterations=4,
        sync=lambda: synced.append(clock.now_s()),
    )
    assert m.iterations == 4 and len(synced) == 3 + 4
    assert m.window_s == pytest.approx(8.0)


def test_clock_lock_and_power_limit_are_set_then_restored(clock: FakeClock) -> None:
    meter = SimulatedMeter(clock)
    m = measure(
        tick_work(clock), meter, clock=clock, min_window_s=1.0, sm_clock_mhz=990, power_limit_w=250
    )
    s = m.settings
    assert s.sm_clock_locked and s.requested_sm_clock_mhz == 990 and s.power_limit_w == 250
    assert m.gpus[0].avg_sm_clock_mhz == 990
    assert meter.calls == ["lock 0 990", "set_power_limit 0 250000", "reset 0",
                           "set_power_limit 0 400000"]  # fmt: skip
    assert meter.sm_clock_mhz(0) == 1410 and meter.power_limit_mw(0) == 400_000


def test_a_part_that_refuses_clock_locking_is_reported_not_crashed(clock: FakeClock) -> None:
    meter = SimulatedMeter(clock, permitted=False)
    m = measure(
        tick_work(clock), meter, clock=clock, min_window_s=1.0, sm_clock_mhz=990, power_limit_w=250
    )
    s = m.settings
    assert not s.sm_clock_locked and s.power_limit_w == 400  # the default stayed in force
    assert len(s.notes) == 2 and all("no permission" in n for n in s.notes)
    assert "SM clock not locked at 990 MHz" in s.notes[0]
    assert m.gpus[0].avg_sm_clock_mhz == 1410 and m.gpus[0].method == COUNTER
    assert "reset 0" not in meter.calls  # nothing was locked, nothing to undo


def test_settings_are_restored_when_the_work_fails(clock: FakeClock) -> None:
    meter = SimulatedMeter(clock)

    def boom() -> None:
        raise MeasureError("the command exited with status 1: false")

    with pytest.raises(MeasureError, match="status 1"):
        measure(boom, meter, clock=clock, sm_clock_mhz=990)
    assert meter.locked_mhz == {}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"power_limit_w": 900}, ClockError, r"outside GPU 0's range \[100, 400\] W"),
        ({"sm_clock_mhz": -5}, ClockError, "must be > 0"),
        ({"gpus": (3,)}, MeasureError, "no GPU 3"),
        ({"gpus": ()}, MeasureError, "no GPU to measure"),
        ({"warmup": -1}, MeasureError, "warm-up"),
        ({"min_window_s": 0}, MeasureError, "minimum window"),
        ({"sample_period_s": 0}, MeasureError, "sample period"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    clock: FakeClock, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    meter = SimulatedMeter(clock)
    with pytest.raises(error, match=message) as info:
        measure(tick_work(clock), meter, clock=clock, **{"min_window_s": 1.0, **kwargs})  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert meter.locked_mhz == {}


def test_provenance_is_recorded(clock: FakeClock) -> None:
    m = measure(tick_work(clock), SimulatedMeter(clock), clock=clock, min_window_s=0.5)
    p = m.provenance.as_dict()
    assert p["driver"] == "0.0-simulated" and p["cuda"] == "12.4"
    assert p["gpu_name"] == "Simulated GPU" and p["date"].endswith("+00:00")
    assert set(p) == {"date", "gpu_name", "driver", "cuda", "torch", "joulecast", "python"}


def test_a_command_is_a_unit_of_work() -> None:
    from joulecast.measure.core import command_work
    from joulecast.measure.meter import RealClock

    clock = RealClock()
    m = measure(command_work(["true"]), SimulatedMeter(clock), clock=clock, min_window_s=0.01)
    assert m.iterations >= 1 and m.window_s >= 0.01
    with pytest.raises(MeasureError, match="command not found: /no/such/cmd"):
        command_work(["/no/such/cmd"])()
    with pytest.raises(MeasureError, match="exited with status 1"):
        command_work(["false"])()
    with pytest.raises(MeasureError, match="no command"):
        command_work([])
