"""The PyTorch side on the CPU: the decoder builder, a measured pass, the kernel bench.

Skipped where PyTorch is absent (it is an extra); the missing-extra error is tested everywhere.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec
import pytest

from joulecast.measure import MeasureError
from joulecast.measure.kernels import CONTEXT, GEMM, GENERATION, NORM, POINTWISE, KernelShape
from joulecast.models.registry import ModelConfig, load_model_config


def tiny(model: str, **over: object) -> ModelConfig:
    """A two-layer version of a shipped config (small widths keep the CPU fast)."""
    cfg = load_model_config(model)
    fields: dict[str, object] = {"num_hidden_layers": 2, "intermediate_size": 96, "vocab_size": 97}
    fields["hidden_size"] = cfg.heads * 8 if cfg.head_dim is None else cfg.hidden_size
    if cfg.head_dim is not None:
        fields.update(num_attention_heads=4, num_key_value_heads=2, head_dim=8, hidden_size=32)
    return msgspec.structs.replace(cfg, **(fields | over))


def test_without_pytorch_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from joulecast.measure.torch_model import build_decoder

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MeasureError, match=r"^measuring a model needs PyTorch: pip install "):
        build_decoder(load_model_config("gpt2"), device="cpu")


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        ("Qwen/Qwen3-30B-A3B-Instruct-2507", {}, "is a qwen3_moe model"),
        ("gpt2", {"attention": "flash"}, "eager or sdpa"),
        ("gpt2", {"precision": "fp8"}, "bf16, fp16 or fp32"),
    ],
)
def test_builder_refuses_what_it_does_not_cover(
    model: str, kwargs: dict[str, str], message: str
) -> None:
    from joulecast.measure.torch_model import build_decoder

    with pytest.raises(MeasureError, match=message):
        build_decoder(load_model_config(model), device="cpu", **kwargs)


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch", reason="PyTorch is not installed (joulecast[torch])")


@pytest.mark.parametrize("model", ["gpt2", "facebook/opt-1.3b", "Qwen/Qwen2-1.5B", "Qwen/Qwen3-8B"])
def test_eager_and_sdpa_agree_in_prefill_and_decode(torch: Any, model: str) -> None:
    from joulecast.measure.torch_model import build_decoder, random_cache

    cfg = tiny(model)
    outs = []
    for attention in ("eager", "sdpa"):
        torch.manual_seed(0)
        m = build_decoder(cfg, precision="fp32", device="cpu", attention=attention)
        torch.manual_seed(1)
        ids = torch.randint(0, cfg.vocab, (2, 5))
        past = random_cache(cfg, 2, 7, "fp32", "cpu")
        with torch.no_grad():
            outs.append((m(ids), m(ids[:, :1], past), m(ids[:, :3], past)))
    for eager, sdpa in zip(*outs, strict=True):
        assert eager.shape[-1] == cfg.hidden and torch.allclose(eager, sdpa, atol=1e-4)
    assert outs[0][1].shape == (2, 1, cfg.hidden) and outs[0][2].shape == (2, 3, cfg.hidden)


def test_a_measured_pass_on_the_cpu_with_a_simulated_gpu(torch: Any) -> None:
    from joulecast.measure.fake import SimulatedMeter
    from joulecast.measure.meter import RealClock
    from joulecast.measure.model_run import ModelRequest, measure_model
    from joulecast.measure.records import measurement_row

    clock = RealClock()
    meter = SimulatedMeter(clock, [([0.0], [150.0])])
    req = ModelRequest(tiny("gpt2"), batch=2, seq=16, precision="fp32")
    mm = measure_model(req, meter, device="cpu", clock=clock, warmup=2, min_window_s=0.05)
    assert mm.measurement.iterations >= 1 and mm.time_per_pass_s > 0
    assert mm.avg_power_w == pytest.approx(150.0, rel=0.05)
    row = measurement_row(mm, "h100-sxm")
    assert row["workload"].startswith("gpt2model_gpt2_pfp32_b2_s16_modeprefill_attneager_freq1410")
    assert row["torch"].startswith(torch.__version__.split("+")[0])


@pytest.mark.parametrize(
    "shape",
    [
        KernelShape(GEMM, m=3, n=16, k=32),
        KernelShape(CONTEXT, batch=1, heads=4, kv_heads=2, head_dim=8, length=16),
        KernelShape(GENERATION, batch=2, heads=4, kv_heads=4, head_dim=8, length=16),
        KernelShape(NORM, op="rmsnorm", tokens=4, hidden=32),
        KernelShape(NORM, op="layernorm", tokens=4, hidden=32),
        KernelShape(POINTWISE, op="gelu", elements=64),
    ],
)
def test_kernel_bench_runs_each_kind_on_the_cpu(torch: Any, shape: KernelShape) -> None:
    from joulecast.measure.torch_kernels import TorchKernelBench

    bench = TorchKernelBench("cpu")
    if bench.unsupported(shape) is not None:
        pytest.skip(str(bench.unsupported(shape)))
    call = bench.prepare(shape)
    out = call()
    bench.sync()
    bench.release()
    assert out is not None
    assert "fp8" in str(bench.unsupported(KernelShape(GEMM, "fp8", m=16, n=16, k=16)))
