"""``joulecast diffusion``: the JSON contract, the other formats, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

EXE = shutil.which("joulecast") or str(Path(sys.executable).with_name("joulecast"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "diffusion", *args], capture_output=True, text=True, timeout=120)


IMAGE = ("--model", "black-forest-labs/FLUX.1-dev", "--gpu", "h100-sxm", "--batch", "2")
IMAGE_SIZE = ("--height", "1024", "--width", "1024")


def test_image_json_contract() -> None:
    out = run(
        *IMAGE,
        *IMAGE_SIZE,
        "--num-gpus",
        "4",
        "--ulysses",
        "2",
        "--ring",
        "2",
        "--steps",
        "50",
        "--format",
        "json",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    for key in (
        "batch_latency_s",
        "avg_power_w",
        "energy_j",
        "energy_per_image_j",
        "throughput_images_per_s",
        "breakdown",
    ):
        assert key in doc
    assert "energy_per_video_j" not in doc
    assert (doc["num_gpus"], doc["ulysses"], doc["ring"]) == (4, 2, 2)
    parts = doc["breakdown"]
    assert set(parts) == {"text_encoder", "denoiser", "vae"}
    assert sum(p["energy_j"] for p in parts.values()) == doc["energy_j"]
    assert sum(p["time_s"] for p in parts.values()) == doc["batch_latency_s"]
    assert doc["energy_per_image_j"] * 2 == doc["energy_j"]
    assert doc["avg_power_w"] > 4 * 200  # summed over the four GPUs


def test_video_json_contract() -> None:
    out = run(
        "--model",
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        "--gpu",
        "h100-sxm",
        "--batch",
        "1",
        "--height",
        "480",
        "--width",
        "832",
        "--frames",
        "81",
        "--format",
        "json",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "energy_per_video_j" in doc and "throughput_videos_per_s" in doc
    assert "energy_per_image_j" not in doc
    assert doc["frames"] == 81


def test_table_and_csv() -> None:
    table = run(*IMAGE)
    assert table.returncode == 0 and "energy per image" in table.stdout
    rows = list(csv.DictReader(io.StringIO(run(*IMAGE, "--format", "csv").stdout)))
    assert len(rows) == 1 and float(rows[0]["energy_per_image_j"]) > 0
    assert "breakdown.denoiser.energy_j" in rows[0]


def test_bad_input_is_one_line() -> None:
    for args in (("--height", "1000"), ("--num-gpus", "4", "--ulysses", "3"), ("--frames", "9")):
        out = run(*IMAGE, *args)
        assert out.returncode == 2
        assert out.stderr.startswith("error:") and out.stderr.count("\n") == 1
    unknown = run("--model", "flux-devv", "--gpu", "h100-sxm")
    assert unknown.returncode == 2 and "did you mean" in unknown.stderr
