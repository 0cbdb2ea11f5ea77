import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXE = shutil.which("joulecast") or str(Path(sys.executable).with_name("joulecast"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


def test_estimate_example_json_contract() -> None:
    r = run(
        "estimate", "--example", "--gpu", "a100-pcie-40gb", "--sm-clock", "900", "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in ("time_ms", "energy_j", "avg_power_w", "sm_clock_mhz", "breakdown", "top_kernels"):
        assert key in d
    assert d["sm_clock_mhz"] == 900
    assert d["energy_j"] == pytest.approx(d["avg_power_w"] * d["time_ms"] / 1e3, rel=1e-6)


def test_table_and_csv_formats() -> None:
    t = run("estimate", "--example", "--gpu", "h100-sxm")
    assert t.returncode == 0 and "average power" in t.stdout
    c = run("estimate", "--example", "--gpu", "a10", "--format", "csv")
    assert c.returncode == 0 and c.stdout.splitlines()[0].startswith("workload,gpu,time_ms")


def test_gpus_lists_parts() -> None:
    r = run("gpus", "--json")
    assert r.returncode == 0
    assert {g["id"] for g in json.loads(r.stdout)} >= {"a10", "h100-sxm", "b200"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "h100-sxn"], "did you mean h100-sxm"),
        (["--gpu", "a100-pcie-40gb", "--sm-clock", "3000"], "valid SM clocks are 210-1410"),
        (["--gpu", "a100-pcie-40gb", "--power-cap", "10"], "must exceed the idle power"),
    ],
)
def test_bad_input_is_one_line_error(args: list[str], message: str) -> None:
    r = run("estimate", "--example", *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[[{"dim": 4', "malformed JSON at line 1"),
        ('[[{"dim": 4}, ["warp_drive"]]]', "unknown op type 'warp_drive'"),
        ('[[{"batch": 1, "dim": -3, "prec": "bf16"}, ["softmax", "bf16"]]]', "must be positive"),
    ],
)
def test_bad_workload_files(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "w.json"
    f.write_text(content)
    r = run("estimate", "--workload", str(f), "--gpu", "a10")
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_missing_workload_file() -> None:
    r = run("estimate", "--workload", "nope.json", "--gpu", "a10")
    assert r.returncode == 2 and "not found" in r.stderr


def test_mixed_serving_step_from_the_cli() -> None:
    base = ["estimate", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "64"]
    base += ["--context", "600", "--gpu", "h100-sxm", "--cuda-graphs", "--format", "json"]
    plain = run(*base)
    mixed = run(*base, "--prefill-tokens", "350")
    assert plain.returncode == 0 and mixed.returncode == 0, mixed.stderr
    p, m = json.loads(plain.stdout), json.loads(mixed.stdout)
    assert m["time_ms"] > p["time_ms"] and m["energy_j"] > p["energy_j"]
    bad = run("estimate", "--model", "gpt2", "--batch", "2", "--seq", "64", "--prefill-tokens", "8")
    assert bad.returncode == 2 and "need phase decode" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_precision_auto_uses_the_checkpoint_format() -> None:
    base = ["estimate", "--model", "qwen3-8b", "--batch", "1", "--seq", "256", "--gpu", "h100-sxm"]
    auto = run(*base, "--precision", "auto", "--format", "json")
    bf16 = run(*base, "--precision", "bf16", "--format", "json")
    assert auto.returncode == 0 and bf16.returncode == 0, auto.stderr
    assert json.loads(auto.stdout)["workload"] == json.loads(bf16.stdout)["workload"]
    bad = run(*base, "--precision", "int3")
    assert bad.returncode == 2 and "unsupported precision 'int3'" in bad.stderr
