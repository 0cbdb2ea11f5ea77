"""The host as its own part: shipped hosts, host files, defaults, and `joulecast host fit`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from joulecast.coefficients.host import Host, default_host_id, host_from_file, load_host
from joulecast.errors import SpecError, UnknownNameError
from joulecast.estimator import estimate
from joulecast.hostfit import HostFitError, fit_host
from joulecast.models.build import build_workload

EXE = Path(sys.executable).parent / "joulecast"
LAUNCH_BOUND = build_workload("gpt2", batch=1, seq=128)


def test_calibrated_parts_sit_in_their_measurement_hosts() -> None:
    assert default_host_id("a10", "PCIe") == "energaizer-a10-workstation"
    assert default_host_id("a100-pcie-40gb", "PCIe") == "energaizer-a100-workstation"
    # No SXM server host is measured: the documented default is the A100 workstation.
    assert default_host_id("h100-sxm", "SXM5") == "energaizer-a100-workstation"
    assert estimate(LAUNCH_BOUND, "a10").host == "energaizer-a10-workstation"


def test_unknown_host_fails_loudly() -> None:
    with pytest.raises(UnknownNameError, match="unknown host 'dgx'"):
        load_host("dgx")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("host_op_s: -1e-5\nhost_module_op_s: 3e-5\npass_overhead_s: 1e-3", "host_op_s"),
        ("host_op_s: 1e-5\npass_overhead_s: 1e-3", "host_module_op_s"),
        ("host_op_s: .nan\nhost_module_op_s: 3e-5\npass_overhead_s: 1e-3", "host_op_s"),
    ],
)
def test_bad_host_file_is_one_line_naming_the_field(tmp_path: Path, body: str, field: str) -> None:
    f = tmp_path / "h.yaml"
    f.write_text(f"description: test\n{body}\n")
    with pytest.raises(SpecError) as info:
        host_from_file(f)
    assert field in str(info.value)
    assert "\n" not in str(info.value)


def test_a_faster_host_shortens_a_launch_bound_pass_only() -> None:
    base = load_host("energaizer-a100-workstation")
    fast = base.scaled(2.0, "fast", "test")
    slow_t = estimate(LAUNCH_BOUND, "a100-pcie-40gb", host=base).time_s
    fast_t = estimate(LAUNCH_BOUND, "a100-pcie-40gb", host=fast).time_s
    assert fast_t == pytest.approx(slow_t / 2, rel=0.05)
    big = build_workload("gpt2", batch=32, seq=1024)
    assert estimate(big, "a100-pcie-40gb", host=fast).time_s == pytest.approx(
        estimate(big, "a100-pcie-40gb", host=base).time_s, rel=0.05
    )


def test_cuda_graphs_remove_the_per_op_host_cost() -> None:
    host = Host(id="h", description="", host_op_s=1e-3, host_module_op_s=1e-3, pass_overhead_s=0)
    eager = estimate(LAUNCH_BOUND, "h100-sxm", host=host).time_s
    graph = estimate(LAUNCH_BOUND, "h100-sxm", host=host, cuda_graphs=True).time_s
    assert eager > 0.1 and graph < 0.01


@pytest.mark.parametrize("ratio", [0.6, 1.0, 1.7])
def test_host_fit_recovers_the_speed_of_a_launch_bound_pass(ratio: float) -> None:
    forecast = estimate(LAUNCH_BOUND, "h100-sxm", sm_clock_mhz=1500).time_s
    fit = fit_host(LAUNCH_BOUND, "h100-sxm", forecast * ratio, sm_clock_mhz=1500)
    assert fit.warning is None
    assert fit.host_share > 0.9
    assert fit.speed_factor == pytest.approx(1 / ratio, rel=0.02)
    again = estimate(LAUNCH_BOUND, "h100-sxm", sm_clock_mhz=1500, host=fit.host).time_s
    assert again == pytest.approx(forecast * ratio, rel=1e-6)


def test_host_fit_refuses_a_measurement_faster_than_the_gpu() -> None:
    with pytest.raises(HostFitError, match="faster than the GPU alone"):
        fit_host(LAUNCH_BOUND, "h100-sxm", 1e-5)


def test_host_fit_warns_on_a_gpu_bound_pass() -> None:
    big = build_workload("gpt2", batch=32, seq=1024)
    t = estimate(big, "a100-pcie-40gb").time_s
    assert fit_host(big, "a100-pcie-40gb", t * 1.01).warning is not None


def test_host_fit_cli_writes_a_host_the_estimate_reads(tmp_path: Path) -> None:
    out = tmp_path / "mine.yaml"
    common = ["--model", "gpt2", "--batch", "1", "--seq", "128", "--gpu", "h100-sxm"]
    run = subprocess.run(
        [str(EXE), "host", "fit", *common, "--measured-ms", "6.5", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert host_from_file(out).speed_factor > 0
    est = subprocess.run(
        [str(EXE), "estimate", *common, "--host", str(out), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert est.returncode == 0, est.stderr
    assert json.loads(est.stdout)["time_ms"] == pytest.approx(6.5, rel=1e-6)
    bad = subprocess.run(
        [str(EXE), "host", "fit", *common, "--measured-ms", "0.01", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "faster than the GPU alone" in bad.stderr
