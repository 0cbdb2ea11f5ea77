"""``joulecast measure --model``: one model pass measured as the reference data were measured,
and joulecast's forecast of the same pass beside it.

The protocol follows the EnergAIzer runs (data README, section 1): random weights,
``torch.no_grad()``, eager PyTorch, the base model (no LM head), the clock locked where
permitted, 10 warm-up passes, then back-to-back passes with ``torch.cuda.synchronize()`` after
each until the window is long enough (default 5 s; the reference used about 30 s), while the
power, clock and temperature are sampled. Energy comes from the NVML counter where the part has
one (the reference integrated 10 ms power samples instead; docs/measure.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from joulecast.errors import ClockError
from joulecast.hardware.spec import GPUSpec
from joulecast.measure.core import Measurement, measure
from joulecast.measure.meter import Clock, GpuMeter, MeasureError
from joulecast.measure.torch_model import build_decoder, import_torch, random_cache
from joulecast.models.registry import ModelConfig
from joulecast.workload.ir import Workload

REFERENCE_WARMUP = 10


@dataclass(frozen=True)
class ModelRequest:
    """One pass to measure: a shipped model, its shape and numerics.

    Attributes:
        model: model id or alias (``joulecast models``), or a config.
        batch: sequences per pass.
        seq: prefill: prompt tokens; decode: new tokens per sequence (default 1).
        phase: ``prefill`` or ``decode``.
        context: decode: tokens already in the KV cache.
        precision: ``bf16``, ``fp16`` or ``fp32``.
        attention: ``eager`` (as the reference runs) or ``sdpa``.
    """

    model: str | ModelConfig
    batch: int
    seq: int | None = None
    phase: str = "prefill"
    context: int | None = None
    precision: str = "bf16"
    attention: str = "eager"

    def workload(self) -> Workload:
        """The same pass as joulecast builds it (base model, no LM head).

        Raises:
            WorkloadError: an impossible request (one line).
        """
        from joulecast.models.build import build_workload

        return build_workload(
            self.model,
            batch=self.batch,
            seq=self.seq,
            phase="decode" if self.phase == "decode" else "prefill",
            context=self.context,
            precision=self.precision,
            attention="sdpa" if self.attention == "sdpa" else "eager",
            lm_head=False,
        )


@dataclass(frozen=True)
class ModelMeasurement:
    """A measured pass: the request and the window's measurement."""

    request: ModelRequest
    measurement: Measurement

    @property
    def time_per_pass_s(self) -> float:
        """Synchronised wall time per pass."""
        return self.measurement.time_per_iteration_s

    @property
    def energy_per_pass_j(self) -> float:
        """Energy per pass of the measured GPU(s)."""
        return self.measurement.energy_per_iteration_j

    @property
    def avg_power_w(self) -> float:
        """Average power over the window."""
        return self.measurement.avg_power_w


def measure_model(
    request: ModelRequest,
    meter: GpuMeter,
    *,
    device: str = "cuda",
    gpus: Sequence[int] | None = None,
    clock: Clock | None = None,
    warmup: int = REFERENCE_WARMUP,
    min_window_s: float = 5.0,
    sample_period_s: float = 0.1,
    sm_clock_mhz: float | None = None,
    power_limit_w: float | None = None,
) -> ModelMeasurement:
    """Build the model with random weights and measure passes back to back.

    Raises:
        WorkloadError: an impossible request.
        MeasureError: no PyTorch, no CUDA device, out of memory, or nothing readable.
    """
    from joulecast.models.build import resolve_request

    req = resolve_request(
        request.model,
        batch=request.batch,
        seq=request.seq,
        phase=request.phase,
        context=request.context,
        precision=request.precision,
        attention=request.attention,
        lm_head=False,
    )
    torch = import_torch()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MeasureError("no CUDA device visible to PyTorch (check CUDA_VISIBLE_DEVICES)")
    try:
        model = build_decoder(
            req.cfg, precision=request.precision, device=device, attention=request.attention
        )
        ids = torch.randint(0, req.cfg.vocab, (req.batch, req.seq), device=device)
        past = (
            random_cache(req.cfg, req.batch, req.past, request.precision, device)
            if req.past
            else None
        )
        sync: Callable[[], object] | None = (
            torch.cuda.synchronize if device.startswith("cuda") else None
        )
        with torch.no_grad():
            result = measure(
                lambda: model(ids, past),
                meter,
                gpus=gpus,
                clock=clock,
                warmup=warmup,
                min_window_s=min_window_s,
                sample_period_s=sample_period_s,
                sync=sync,
                sm_clock_mhz=sm_clock_mhz,
                power_limit_w=power_limit_w,
            )
    except torch.cuda.OutOfMemoryError:
        raise MeasureError(
            f"{req.cfg.id} b{req.batch} does not fit this GPU's memory; lower the batch or sequence"
        ) from None
    return ModelMeasurement(request, result)


@dataclass(frozen=True)
class Comparison:
    """Measurement and forecast of one pass, side by side (errors: forecast / measured - 1)."""

    gpu: str
    forecast_clock_mhz: float
    measured_time_s: float
    forecast_time_s: float
    measured_energy_j: float
    forecast_energy_j: float
    measured_power_w: float
    forecast_power_w: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: both sides, relative errors and notes."""
        return {
            **{k: v for k, v in asdict(self).items() if k != "notes"},
            "time_error": self.time_error,
            "energy_error": self.energy_error,
            "power_error": self.power_error,
            "notes": list(self.notes),
        }

    @property
    def time_error(self) -> float:
        """Relative error of the forecast time."""
        return self.forecast_time_s / self.measured_time_s - 1.0

    @property
    def energy_error(self) -> float:
        """Relative error of the forecast energy."""
        return self.forecast_energy_j / self.measured_energy_j - 1.0

    @property
    def power_error(self) -> float:
        """Relative error of the forecast average power."""
        return self.forecast_power_w / self.measured_power_w - 1.0


def compare_pass(mm: ModelMeasurement, gpu: str | GPUSpec) -> Comparison:
    """joulecast's forecast of the measured pass on ``gpu``, at the clock it ran at (the locked
    clock, else the part's default) and the power limit in force."""
    from joulecast.estimator import estimate

    s = mm.measurement.settings
    clock = s.requested_sm_clock_mhz if s.sm_clock_locked else None
    notes: list[str] = []
    workload = mm.request.workload()
    try:
        est = estimate(workload, gpu, sm_clock_mhz=clock, power_cap_w=s.power_limit_w)
    except ClockError as exc:
        if s.power_limit_w is None:
            raise
        notes.append(f"forecast at the spec's default power limit: {exc}")
        est = estimate(workload, gpu, sm_clock_mhz=clock)
    return Comparison(
        gpu=est.gpu,
        forecast_clock_mhz=est.sm_clock_mhz,
        measured_time_s=mm.time_per_pass_s,
        forecast_time_s=est.time_s,
        measured_energy_j=mm.energy_per_pass_j,
        forecast_energy_j=est.energy_j,
        measured_power_w=mm.avg_power_w,
        forecast_power_w=est.avg_power_w,
        notes=tuple(notes),
    )
