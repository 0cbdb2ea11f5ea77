"""The NVML meter against a stand-in pynvml module, and on a real GPU where there is one."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from joulecast.measure import MeasureError, NoPermissionError, NotSupportedError, measure
from joulecast.measure.nvml import NvmlMeter

NOT_SUPPORTED, NO_PERMISSION = 3, 4


def fake_pynvml(
    *, energy: bool = True, permitted: bool = True, init_fails: bool = False, temp_code: int = 15
) -> Any:
    """A module with pynvml's names: error classes by code, two GPUs, bytes names."""

    class NVMLError(Exception):
        def __init__(self, value: int) -> None:
            self.value = value

        def __str__(self) -> str:
            return {3: "Not Supported", 4: "Insufficient Permissions"}.get(
                self.value, "GPU is lost"
            )

    class NVMLError_NotSupported(NVMLError):
        def __init__(self) -> None:
            super().__init__(NOT_SUPPORTED)

    class NVMLError_NoPermission(NVMLError):
        def __init__(self) -> None:
            super().__init__(NO_PERMISSION)

    state: dict[str, Any] = {"locked": {}, "limit": [300_000, 300_000], "energy": 1_000}

    def init() -> None:
        if init_fails:
            raise NVMLError(9)  # driver not loaded

    def energy_mj(h: int) -> int:
        if not energy:
            raise NVMLError_NotSupported()
        state["energy"] += 500
        return int(state["energy"])

    def guarded(fn: Any) -> Any:
        def call(*args: Any) -> Any:
            if not permitted:
                raise NVMLError_NoPermission()
            return fn(*args)

        return call

    def temperature(h: int, kind: int) -> int:
        if temp_code == NOT_SUPPORTED:
            raise NVMLError_NotSupported()
        raise NVMLError(temp_code)

    return types.SimpleNamespace(
        NVMLError=NVMLError,
        NVMLError_NotSupported=NVMLError_NotSupported,
        NVMLError_NoPermission=NVMLError_NoPermission,
        NVML_ERROR_NOT_SUPPORTED=NOT_SUPPORTED,
        NVML_ERROR_NO_PERMISSION=NO_PERMISSION,
        NVML_CLOCK_SM=1,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3",
        nvmlDeviceGetTotalEnergyConsumption=energy_mj,
        nvmlDeviceGetPowerUsage=lambda h: 250_000 + h,
        nvmlDeviceGetClockInfo=lambda h, kind: state["locked"].get(h, 1980),
        nvmlDeviceGetTemperature=temperature,
        nvmlDeviceGetPowerManagementLimit=lambda h: state["limit"][h],
        nvmlDeviceGetPowerManagementLimitConstraints=lambda h: (200_000, 700_000),
        nvmlDeviceSetPowerManagementLimit=guarded(lambda h, mw: state["limit"].__setitem__(h, mw)),
        nvmlDeviceSetGpuLockedClocks=guarded(lambda h, lo, hi: state["locked"].__setitem__(h, lo)),
        nvmlDeviceResetGpuLockedClocks=guarded(lambda h: state["locked"].pop(h, None)),
        nvmlSystemGetDriverVersion=lambda: "550.54.15",
        nvmlSystemGetCudaDriverVersion=lambda: 12040,
    )


def test_readings_and_units() -> None:
    meter = NvmlMeter(fake_pynvml())
    assert meter.device_count() == 2
    assert meter.name(0) == "NVIDIA H100 80GB HBM3"  # bytes decoded
    assert meter.energy_mj(1) == 1_500 and meter.power_mw(1) == 250_001
    assert meter.sm_clock_mhz(0) == 1980 and meter.power_limit_range_mw(0) == (200_000, 700_000)
    assert meter.driver_version() == "550.54.15" and meter.cuda_driver_version() == "12.4"
    meter.lock_sm_clock_mhz(0, 1200)
    assert meter.sm_clock_mhz(0) == 1200
    meter.reset_sm_clock(0)
    meter.close()


def test_nvml_errors_become_joulecast_errors() -> None:
    meter = NvmlMeter(fake_pynvml(energy=False, permitted=False))
    with pytest.raises(NotSupportedError, match="energy counter: not supported"):
        meter.energy_mj(0)
    with pytest.raises(NoPermissionError, match="lock the SM clock: no permission"):
        meter.lock_sm_clock_mhz(0, 1200)
    with pytest.raises(MeasureError, match="NVML could not read temperature: GPU is lost"):
        meter.temperature_c(0)
    with pytest.raises(MeasureError, match="no GPU 5"):
        meter.power_mw(5)


def test_no_driver_and_no_bindings_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        MeasureError, match=r"NVML could not start \(is an NVIDIA driver installed\?\)"
    ):
        NvmlMeter(fake_pynvml(init_fails=True))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # as if nvidia-ml-py were not installed
    with pytest.raises(MeasureError, match=r"pip install 'joulecast\[nvml\]'"):
        NvmlMeter()


def test_a_part_refusing_clock_locking_through_nvml_is_reported() -> None:
    from joulecast.measure.fake import FakeClock

    clock = FakeClock()
    meter = NvmlMeter(fake_pynvml(energy=False, permitted=False, temp_code=NOT_SUPPORTED))
    m = measure(lambda: clock.advance(0.5), meter, clock=clock, min_window_s=2, sm_clock_mhz=1200)
    g = m.gpus[0]
    assert not m.settings.sm_clock_locked and "no permission" in m.settings.notes[0]
    assert g.method == "integrated power" and g.avg_temperature_c is None
    assert g.energy_j == pytest.approx(500.0)  # 250 W over 2 s


def _real_meter() -> NvmlMeter:
    pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed (joulecast[nvml])")
    try:
        meter = NvmlMeter()
    except MeasureError as exc:
        pytest.skip(f"no NVIDIA GPU here: {exc}")
    if meter.device_count() == 0:
        pytest.skip("NVML sees no GPU")
    return meter


@pytest.mark.gpu
def test_real_gpu_counter_window() -> None:
    meter = _real_meter()
    m = measure(lambda: None, meter, gpus=(0,), warmup=0, min_window_s=1.0)
    g = m.gpus[0]
    assert g.energy_j > 0 and 5 < g.avg_power_w < 2000
    assert g.method in ("energy counter", "integrated power")
    assert m.provenance.driver and m.settings.power_limit_w
    meter.close()
