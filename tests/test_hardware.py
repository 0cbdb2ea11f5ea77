from pathlib import Path

import pytest

from joulecast.errors import ClockError, SpecError, UnknownNameError
from joulecast.hardware import gpu_from_file, gpu_ids, load_gpu
from joulecast.workload.ir import Precision

REQUIRED = {
    "a100-pcie-40gb",
    "a100-sxm4-40gb",
    "a100-sxm4-80gb",
    "a10",
    "l40s",
    "h100-sxm",
    "h100-pcie",
    "h200",
    "b200",
}


def test_every_required_gpu_loads_with_consistent_numbers() -> None:
    assert set(gpu_ids()) >= REQUIRED
    for gid in gpu_ids():
        spec = load_gpu(gid)
        assert spec.tensor_tflops[Precision.BF16] >= spec.cuda_tflops[Precision.FP32]
        assert spec.idle_power_w < spec.default_power_limit_w
        assert spec.sources, f"{gid} cites no source"


def test_peak_matches_per_sm_arithmetic() -> None:
    # 108 SMs x 4 tensor cores x 512 bf16 FLOP/clk x 1410 MHz = 312 TFLOPS
    a100 = load_gpu("a100-pcie-40gb")
    assert a100.tensor_flops_per_s(Precision.BF16, 1410) == pytest.approx(
        108 * 4 * 512 * 1.41e9, 0.01
    )
    h100 = load_gpu("h100-sxm")
    assert h100.tensor_flops_per_s(Precision.BF16, 1830) == pytest.approx(
        132 * 4 * 1024 * 1.83e9, 0.01
    )


def test_unknown_gpu_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="did you mean h100-sxm"):
        load_gpu("h100-sxn")


def test_aliases_and_case() -> None:
    assert load_gpu("H100").id == "h100-sxm"


def test_clock_and_cap_checks() -> None:
    a100 = load_gpu("a100-pcie-40gb")
    with pytest.raises(ClockError, match="210-1410 MHz in 15 MHz"):
        a100.check_clock(2000)
    with pytest.raises(ClockError, match="idle"):
        a100.check_power_cap(20)


def test_hypothetical_spec_file(tmp_path: Path) -> None:
    f = tmp_path / "h100-2xbw.yaml"
    f.write_text("base: h100-sxm\nid: h100-2xbw\nmemory_bandwidth_gb_s: 6704\n")
    spec = gpu_from_file(f)
    assert spec.memory_bandwidth_gb_s == 6704
    assert spec.sm_count == 132


def test_inconsistent_spec_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("base: a100-pcie-40gb\ntensor_tflops: {bf16: 5}\n")
    with pytest.raises(SpecError, match="below CUDA-core"):
        gpu_from_file(f)
    g = tmp_path / "broken.yaml"
    g.write_text("sm_count: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        gpu_from_file(g)
