import csv
import io
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
    r = run("gpus", "--format", "json")
    assert r.returncode == 0
    assert {g["id"] for g in json.loads(r.stdout)["gpus"]} >= {"a10", "h100-sxm", "b200"}


@pytest.mark.parametrize("command", ["gpus", "models"])
def test_deprecated_json_flag_still_works_with_a_warning(command: str) -> None:
    old, new = run(command, "--json"), run(command, "--format", "json")
    assert old.returncode == 0 and old.stdout == new.stdout
    assert old.stderr.strip() == "warning: --json is deprecated; use --format json"
    assert "--json" not in run(command, "--help").stdout


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["estimate", "--example", "--format", "json"], "time_ms"),
        (["sweep", "--example", "--clocks", "900", "--format", "json"], "points"),
        (["gpus", "--format", "json"], "gpus"),
        (["models", "--format", "json"], "models"),
    ],
)
def test_every_json_output_has_a_schema_version(args: list[str], key: str) -> None:
    r = run(*args)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert next(iter(doc)) == "schema_version" and doc["schema_version"] == 1
    assert key in doc


@pytest.mark.parametrize("command", ["gpus", "models"])
def test_csv_lists(command: str) -> None:
    r = run(command, "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows and rows[0]["id"]
    assert len({len(row) for row in rows}) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "h100-sxn"], "did you mean h100-sxm"),
        (["--gpu", "a100-pcie-40gb", "--sm-clock", "3000"], "valid SM clocks are 210-1410"),
        (["--gpu", "a100-pcie-40gb", "--power-cap", "10"], "outside a100-pcie-40gb's power"),
        (["--batch", "3000000000", "--model", "gpt2"], "not in the range 1<=x<=2147483648"),
        (["--sm-clock", "nan"], "cannot run at nan MHz"),
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


# ---- reproducers: answers that were silently wrong ------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["estimate", "--example", "--power-cap", "100"],
        ["sweep", "--example", "--power-caps", "100,200", "--clocks", "900"],
    ],
)
def test_power_cap_below_the_parts_minimum_limit_is_refused(args: list[str]) -> None:
    """A 100 W cap on an A100-PCIe (limits 150-250 W) was accepted and modelled."""
    r = run(*args, "--gpu", "a100-pcie-40gb")
    assert r.returncode == 2
    assert r.stderr == (
        "error: power cap 100 W is outside a100-pcie-40gb's power limits: 150-250 W "
        "(min_power_limit_w to max_power_limit_w)\n"
    )


def test_precision_auto_refuses_mxfp4_checkpoints() -> None:
    """--precision auto ran gpt-oss's mxfp4 experts as bf16 without a word."""
    base = [
        "estimate",
        "--model",
        "gpt-oss-20b",
        "--batch",
        "1",
        "--seq",
        "64",
        "--gpu",
        "h100-sxm",
    ]
    r = run(*base, "--precision", "auto", "--format", "json")
    assert r.returncode == 2 and r.stdout == ""
    assert "ships mxfp4 weights" in r.stderr and "--precision bf16" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert run(*base, "--precision", "bf16", "--format", "json").returncode == 0


def test_seq_in_decode_is_new_tokens_per_sequence_and_says_so() -> None:
    """--phase decode --seq 64 models 64 new tokens per sequence: the documented meaning."""
    import typer

    import joulecast.cli.estimate  # noqa: F401  (registers the command)
    from joulecast.cli.main import app

    command = typer.main.get_command(app).commands["estimate"]  # type: ignore[attr-defined]
    (seq,) = [p for p in command.params if p.name == "seq"]
    assert "decode: new tokens per sequence in the step, default 1" in seq.help
    base = ["estimate", "--model", "gpt2", "--phase", "decode", "--context", "256", "--batch", "2"]
    one, many = run(*base, "--format", "json"), run(*base, "--seq", "64", "--format", "json")
    assert json.loads(one.stdout)["tokens"] == 2
    assert json.loads(many.stdout)["tokens"] == 2 * 64


@pytest.mark.parametrize("kind", ["--workload", "--gpu-spec", "--model-config"])
def test_non_utf8_files_are_one_line_errors(tmp_path: Path, kind: str) -> None:
    f = tmp_path / ("x.yaml" if kind == "--gpu-spec" else "x.json")
    f.write_bytes(b"\xff\xfe{}")
    extra = ["--batch", "1", "--seq", "8"] if kind == "--model-config" else []
    args = ["--example"] if kind == "--gpu-spec" else []
    r = run("estimate", kind, str(f), *args, *extra)
    assert r.returncode == 2
    assert "x." in r.stderr and "not UTF-8 text (byte 0)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
