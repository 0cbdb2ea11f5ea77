"""Every file parser, any file on disk: missing, a folder, a FIFO, not UTF-8, deeply nested or
arbitrary bytes give one line naming the file (never a traceback, never a hang)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import FUZZ, one_line
from joulecast.errors import JoulecastError, SpecError, WorkloadError
from joulecast.hardware.spec import gpu_from_file
from joulecast.models.registry import model_config_from_file, model_config_from_hf_json
from joulecast.workload.energaizer import load_energaizer

# parser, its error, what its messages call the file, a file name it reads
LOADERS: dict[str, tuple[Callable[[Path], Any], type[JoulecastError], str, str]] = {
    "workload": (load_energaizer, WorkloadError, "workload file", "w.json"),
    "gpu-spec": (gpu_from_file, SpecError, "GPU spec file", "part.yaml"),
    "gpu-spec-json": (gpu_from_file, SpecError, "GPU spec file", "part.json"),
    "hf-config": (model_config_from_hf_json, SpecError, "model config", "config.json"),
    "model-yaml": (model_config_from_file, SpecError, "model config", "m.yaml"),
}
PARSERS = pytest.mark.parametrize("parser", list(LOADERS))


@PARSERS
def test_non_utf8_files_are_one_line_errors(tmp_path: Path, parser: str) -> None:
    load, error, what, name = LOADERS[parser]
    f = tmp_path / name
    f.write_bytes(b"\xff\xfe{}")
    with pytest.raises(error) as info:
        load(f)
    assert str(info.value) == f"{what} {name}: not UTF-8 text (byte 0)"


@PARSERS
def test_folders_missing_and_special_files_are_one_line_errors(tmp_path: Path, parser: str) -> None:
    load, error, what, name = LOADERS[parser]
    with pytest.raises(error, match=f"^{what} .* is a folder, not a file$"):
        load(tmp_path)
    with pytest.raises(error, match=f"^{what} not found: "):
        load(tmp_path / name)
    fifo = tmp_path / f"fifo-{name}"
    os.mkfifo(fifo)
    with pytest.raises(error, match=r"is not a regular file$"):
        load(fifo)  # would block forever if read


@PARSERS
def test_deeply_nested_files_are_one_line_errors(tmp_path: Path, parser: str) -> None:
    load, error, _, name = LOADERS[parser]
    f = tmp_path / name
    f.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(error) as info:
        load(f)
    assert one_line(info.value) and name in str(info.value)


@FUZZ
@given(parser=st.sampled_from(list(LOADERS)), raw=st.binary(max_size=300))
def test_any_bytes_are_parsed_or_one_line_errors(tmp_path: Path, parser: str, raw: bytes) -> None:
    load, _, _, name = LOADERS[parser]
    f = tmp_path / name
    f.write_bytes(raw)
    try:
        load(f)
    except JoulecastError as exc:
        assert one_line(exc) and name in str(exc), str(exc)
