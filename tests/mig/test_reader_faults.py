"""MIG telemetry readers on bad input: every reproducer of issue 18 as a test.

Each one used to end in a traceback or, worse, in a silently wrong number (exit 0); now it is one
``error:`` line and exit 2 (or, for the live service's stream, a counted skip).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

import joulecast.cli.mig  # noqa: F401  (registers the sub-app)
from joulecast.cli.main import main
from joulecast.errors import TelemetryError
from joulecast.mig.readers import (
    LONG_CSV_HEADER,
    read_long_csv,
    read_nvidia_smi,
    read_prometheus,
    read_telemetry,
)

HEADER = ",".join(LONG_CSV_HEADER)
LAB = 'UUID="GPU-x",GPU_I_PROFILE="7g.80gb",GPU_I_ID="0"'


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``joulecast ARGS`` in this process; returns (exit status, stderr)."""
    old = sys.argv
    sys.argv = ["joulecast", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    return code, capsys.readouterr().err


def row(t: float, power: str = "200", gract: str = "0.5", prof: str = "3g.40gb") -> str:
    return f"{t},GPU-a,1,{prof},{power},{gract},0.5,0.3,0.2,0.4,0,0.1,0"


def attribute_error(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> str:
    """`mig attribute` must exit 2 with exactly one line on stderr, no traceback."""
    code, err = run_cli(capsys, "mig", "attribute", "--telemetry", str(path), *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_non_utf8_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "t.csv"
    f.write_bytes(
        f"{HEADER}\n{row(0)}\n".encode() + b"1,GPU-\xff,1,3g.40gb,200,0.5,0,0,0,0,0,0,0\n"
    )
    assert "not UTF-8 text (line 3" in attribute_error(capsys, f)
    f.write_bytes("\ufeff".encode("utf-16") + HEADER.encode("utf-16-le"))
    assert "UTF-16" in attribute_error(capsys, f)
    with pytest.raises(TelemetryError, match="not UTF-8"):
        read_long_csv(f"{HEADER}\n".encode() + b"\xc3(")


def test_short_nvidia_smi_row_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "smi.csv"
    f.write_text("timestamp, power.draw [W]\n1.0, 100 W\n2.0\n")
    msg = attribute_error(capsys, f, "--mig-profiles", "1=3g.40gb")
    assert msg == "error: nvidia-smi: line 3 has 1 fields, expected 2"


def test_bare_carriage_return_in_long_csv_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "t.csv"
    bad = row(1, prof="3g.4\r0gb")
    f.write_bytes(f"{HEADER}\n{row(0)}\n{bad}\n".encode())
    assert "line 3: carriage return (CR) inside a row" in attribute_error(capsys, f)


def test_directory_or_missing_file_as_telemetry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "is a folder, not a file" in attribute_error(capsys, tmp_path)
    assert "telemetry file not found" in attribute_error(capsys, tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("power", "problem"),
    [("-300", "is negative"), ("1e20", "is above 2000 W"), ("1e308", "is above 2000 W")],
)
def test_impossible_board_power_in_long_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], power: str, problem: str
) -> None:
    """Negative power gave negative tenant energy; 1e20 W billions of joules (exit 0)."""
    f = tmp_path / "t.csv"
    f.write_text("\n".join([HEADER, row(0), row(1, power), row(2)]) + "\n")
    assert f"row 3: board_power_w {float(power):g} {problem}" in attribute_error(capsys, f)


@pytest.mark.parametrize(
    ("value", "problem"), [("+Inf", "not finite"), ("1e20", "above"), ("-300", "negative")]
)
def test_impossible_power_in_prometheus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, problem: str
) -> None:
    """+Inf W gave NaN energies; 1e20 W billions of joules (exit 0)."""

    def scrape(p: object) -> str:
        return f"DCGM_FI_DEV_POWER_USAGE{{{LAB}}} {p}\nDCGM_FI_PROF_GR_ENGINE_ACTIVE{{{LAB}}} 0.5\n"

    f = tmp_path / "m.prom"
    f.write_text(scrape(200) + scrape(value) + scrape(200))
    msg = attribute_error(capsys, f, "--interval-s", "1")
    assert "line 3: DCGM_FI_DEV_POWER_USAGE board_power_w" in msg and problem in msg
    # The live service drops such samples instead, and counts them.
    rejects: Counter[str] = Counter()
    with pytest.raises(TelemetryError, match="no GPU with a usable board power"):
        read_prometheus(scrape(value), scrape_time_s=0.0, rejects=rejects)
    assert sum(rejects.values()) == 2


def test_minus_inf_timestamp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "smi.csv"
    f.write_text("timestamp, power.draw [W]\n-inf, 100 W\n2.0, 100 W\n")
    msg = attribute_error(capsys, f, "--mig-profiles", "1=3g.40gb")
    assert "timestamp_s -inf is not finite" in msg
    with pytest.raises(TelemetryError, match=r"timestamp_s 1.7e\+12 is above"):
        read_nvidia_smi("timestamp, power.draw\n1.7e12, 100\n", profiles={"1": "3g.40gb"})


def test_idle_power_above_board_power(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--idle-power-w 5000 on a 200 W board gave 353 % shares and a -17 MJ residual."""
    f = tmp_path / "t.csv"
    f.write_text("\n".join([HEADER, row(0), row(1, "210"), row(2)]) + "\n")
    msg = attribute_error(capsys, f, "--idle-power-w", "300")
    assert "--idle-power-w 300 W is above the highest measured board power" in msg
    assert "(210.0 W)" in msg
    assert "at most 2000" in attribute_error(capsys, f, "--idle-power-w", "5000")
    assert "must be >= 0" in attribute_error(capsys, f, "--idle-power-w", "nan")


def test_interval_zero_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--interval-s 0 was silently ignored."""
    f = tmp_path / "t.dmon"
    f.write_text("#Entity GRACT POWER\nGPU 0 N/A 100\nGPU-I 1 0.5 N/A\n")
    msg = attribute_error(capsys, f, "--interval-s", "0", "--mig-profiles", "1=3g.40gb")
    assert msg == "error: --interval-s must be > 0 and at most 86400, got 0"


def test_prometheus_without_timestamps_needs_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scrapes without timestamps were assumed 30 s apart (a 1 s capture came out 30x high)."""
    scrape = f"DCGM_FI_DEV_POWER_USAGE{{{LAB}}} 200\nDCGM_FI_PROF_GR_ENGINE_ACTIVE{{{LAB}}} 0.5\n"
    f = tmp_path / "m.prom"
    f.write_text(scrape * 3)
    msg = attribute_error(capsys, f)
    assert msg == (
        "error: prometheus: 3 scrapes without sample timestamps; pass --interval-s "
        "(the scrape period)"
    )
    tel = read_telemetry(f, interval_s=1.0)
    assert tel.gpus[0].time_s.tolist() == [0.0, 1.0, 2.0]


def test_negative_activity_is_an_error_not_clamped() -> None:
    with pytest.raises(TelemetryError, match=r"row 3: gract -0\.5 is negative"):
        read_long_csv("\n".join([HEADER, row(0), row(1, gract="-0.5")]))


def test_control_characters_in_names_are_one_line() -> None:
    text = "\n".join([HEADER, row(0).replace("GPU-a", '"GPU\na"')])
    with pytest.raises(TelemetryError, match="GPU UUID 'GPU\\\\na' is not a plain name"):
        read_long_csv(text)


FUZZ_SUBNORMAL = (
    '{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"__name__": '
    '"DCGM_FI_DEV_POWER_USAGE", "UUID": "GPU-j", "GPU_I_ID": "0", "GPU_I_PROFILE": "1g.10gb"}, '
    '"values": [["0.0", "2.225073858507203e-309"], [1700000001.0, "0.0"], [1700000002.0, "0.0"]]}, '
    '{"metric": {"__name__": "DCGM_FI_DEV_POWER_USAGE", "UUID": "GPU-j", "GPU_I_ID": "1", '
    '"GPU_I_PROFILE": "1g.10gb"}, "values": [["1.0", "0.0"], [1700000001.0, "0.0"], '
    '[1700000002.0, "0.0"]]}, {"metric": {"__name__": "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "UUID": '
    '"GPU-j", "GPU_I_ID": "0", "GPU_I_PROFILE": "1g.10gb"}, "values": [["0.0", "0.0"], '
    '[1700000001.0, "0.0000"], [1700000002.0, "0.0000"]]}, {"metric": {"__name__": '
    '"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "UUID": "GPU-j", "GPU_I_ID": "0", "GPU_I_PROFILE": '
    '"1g.10gb"}, "values": [[1700000000.0, "0.0000"], [1700000001.0, "0.0000"], '
    '[1700000002.0, "0.0000"]]}]}}'
)


def test_interpolating_subnormal_power_never_goes_negative() -> None:
    """Found by a 10,000-example fuzz run: np.interp between a subnormal power and zero
    rounded to -3e-315 W."""
    from tests.mig.test_reader_properties import check

    from joulecast.mig.readers import read_prometheus

    check(lambda: read_prometheus(FUZZ_SUBNORMAL))
