"""Telemetry readers: quirks, errors and property tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joulecast.errors import TelemetryError
from joulecast.mig.frame import FIELD_INDEX
from joulecast.mig.limits import MAX_BOARD_POWER_W
from joulecast.mig.profiles import parse_profile
from joulecast.mig.readers import (
    LONG_CSV_HEADER,
    detect_format,
    read_dmon,
    read_long_csv,
    read_nvidia_smi,
    read_prometheus,
    read_telemetry,
)

HEADER = ",".join(LONG_CSV_HEADER)


def row(t: float, gi: str, prof: str, p: float | str, gract: float | str = 0.5) -> str:
    return f"{t},GPU-a,{gi},{prof},{p},{gract},0.5,0.3,0.2,0.4,0,0.1,0"


def test_long_csv_dedupes_board_power_and_clamps() -> None:
    text = "\n".join(
        [
            HEADER,
            row(0, "1", "3g.40gb", 200, 1.02),
            row(0, "2", "4g.40gb", 200),
            row(1, "1", "3g.40gb", 210),
            row(1, "2", "4g.40gb", 210),
        ]
    )
    tel = read_long_csv(text)
    g = tel.gpus[0]
    assert g.board_power_w.tolist() == [200.0, 210.0]  # never summed across instance rows
    assert g.activity[0, 0, FIELD_INDEX["gract"]] == 1.0
    assert any("above 1" in w for w in tel.warnings)


def test_missing_columns_are_named() -> None:
    with pytest.raises(TelemetryError, match="board_power_w"):
        read_long_csv("timestamp_s,gpu_uuid,gpu_instance_id,profile,gract\n0,a,1,1g.10gb,0.5\n")
    with pytest.raises(TelemetryError, match="gpu_instance_id, profile"):
        read_long_csv("timestamp_s,gpu_uuid,board_power_w,gract\n0,a,100,0.5\n")


def test_no_activity_column_is_an_error() -> None:
    with pytest.raises(TelemetryError, match="no activity column"):
        read_long_csv(
            "timestamp_s,gpu_uuid,gpu_instance_id,profile,board_power_w\n0,a,1,1g.10gb,9\n"
        )


def test_backwards_timestamps_are_an_error() -> None:
    text = "\n".join([HEADER, row(5, "1", "3g.40gb", 200), row(4, "1", "3g.40gb", 200)])
    with pytest.raises(TelemetryError, match="backwards at row 3"):
        read_long_csv(text)


def test_blank_power_everywhere_is_an_error() -> None:
    text = "\n".join([HEADER, row(0, "1", "3g.40gb", ""), row(1, "1", "3g.40gb", "")])
    with pytest.raises(TelemetryError, match="no board power"):
        read_long_csv(text)


def test_blanks_are_interpolated_not_zero() -> None:
    text = "\n".join(
        [
            HEADER,
            row(0, "1", "3g.40gb", 200, 0.6),
            row(1, "1", "3g.40gb", 200, ""),
            row(2, "1", "3g.40gb", 200, 0.8),
        ]
    )
    tel = read_long_csv(text)
    assert tel.gpus[0].activity[1, 0, FIELD_INDEX["gract"]] == pytest.approx(0.7)
    assert any("blank activity" in w for w in tel.warnings)


def test_instances_appearing_are_warned_and_absent() -> None:
    text = "\n".join(
        [
            HEADER,
            row(0, "1", "3g.40gb", 200),
            row(1, "1", "3g.40gb", 200),
            row(1, "2", "1g.10gb", 200),
        ]
    )
    tel = read_long_csv(text)
    assert tel.gpus[0].present.tolist() == [[True, False], [True, True]]
    assert any("present in 1 of 2" in w for w in tel.warnings)


def test_unknown_profile_is_an_error() -> None:
    with pytest.raises(TelemetryError, match="unknown MIG profile '<<<NULL>>>'"):
        read_long_csv("\n".join([HEADER, row(0, "1", "<<<NULL>>>", 200)]))


@pytest.mark.parametrize(
    ("name", "slices", "mem"),
    [("7g.79gb", 7, 1.0), ("3g.40gb", 3, 0.5), ("1g.10gb+me", 1, 0.125), ("1c.3g.40gb", 3, 0.5)],
)
def test_profiles(name: str, slices: int, mem: float) -> None:
    p = parse_profile(name)
    assert (p.compute_slices, p.memory_fraction) == (slices, mem)


def test_prometheus_scrapes_with_quirks() -> None:
    scrape = """# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).
# TYPE DCGM_FI_DEV_POWER_USAGE gauge
DCGM_FI_DEV_POWER_USAGE{{{lab},Hostname="h"}} {p}
DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{lab},Hostname="h"}} {a}
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{lab}}} {e}
"""
    lab = 'gpu="0",UUID="GPU-x",GPU_I_PROFILE="7g.79gb",GPU_I_ID="0"'
    text = scrape.format(lab=lab, p=150, a=0.5, e=1000) + scrape.format(
        lab=lab, p=170, a=0.7, e=5000
    )
    tel = read_prometheus(text, interval_s=2.0)
    g = tel.gpus[0]
    assert g.time_s.tolist() == [0.0, 2.0]
    assert g.board_power_w.tolist() == [150.0, 170.0]
    assert g.instances[0].profile.compute_slices == 7
    assert g.energy_counter_j is not None and g.energy_counter_j.tolist() == [1.0, 5.0]


def test_prometheus_without_power_is_an_error() -> None:
    text = 'DCGM_FI_PROF_GR_ENGINE_ACTIVE{UUID="GPU-x",GPU_I_PROFILE="1g.10gb",GPU_I_ID="1"} 0.5\n'
    with pytest.raises(TelemetryError, match="POWER_USAGE"):
        read_prometheus(text)


def test_dmon() -> None:
    text = """#Entity   GRACT  SMACT  POWER
ID
GPU 0      N/A    N/A    120.5
GPU-I 1    0.5    0.4    N/A
GPU-I 2    0.1    0.1    N/A
GPU 0      N/A    N/A    150.0
GPU-I 1    0.9    0.8    N/A
GPU-I 2    0.1    0.1    N/A
"""
    tel = read_dmon(text, profiles={"1": "3g.40gb", "2": "4g.40gb"})
    g = tel.gpus[0]
    assert g.board_power_w.tolist() == [120.5, 150.0]
    assert g.activity[1, 0, FIELD_INDEX["gract"]] == pytest.approx(0.9)
    with pytest.raises(TelemetryError, match="--mig-profiles"):
        read_dmon(text, profiles={"1": "3g.40gb"})


def test_nvidia_smi() -> None:
    text = (
        "timestamp, uuid, power.draw [W]\n"
        "2024/01/01 00:00:00.000, GPU-x, 100.0 W\n"
        "2024/01/01 00:00:01.000, GPU-x, 110.0 W\n"
    )
    assert detect_format(text) == "nvidia-smi"
    tel = read_nvidia_smi(text, profiles={"1": "3g.40gb", "2": "4g.40gb"})
    assert tel.gpus[0].board_power_w.tolist() == [100.0, 110.0]
    with pytest.raises(TelemetryError, match="missing required column"):
        read_nvidia_smi("timestamp, uuid\n", profiles={"1": "3g.40gb"})


cell = st.one_of(st.just(""), st.floats(min_value=0.0, max_value=1.04, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(
    n_t=st.integers(min_value=1, max_value=6),
    profiles=st.lists(st.sampled_from(["1g.10gb", "2g.20gb", "3g.40gb"]), min_size=1, max_size=2),
    cells=st.lists(cell, min_size=12 * 8, max_size=12 * 8),
    power=st.floats(min_value=30.0, max_value=700.0, allow_nan=False),
)
def test_long_csv_roundtrip_property(
    n_t: int, profiles: list[str], cells: list[object], power: float
) -> None:
    lines = [HEADER]
    k = 0
    for t in range(n_t):
        for i, prof in enumerate(profiles):
            vals = [cells[(k + j) % len(cells)] for j in range(8)]
            k += 8
            text_vals = ["" if v == "" else f"{v:.4f}" for v in vals]
            lines.append(",".join([f"{t}.0", "GPU-p", str(i), prof, f"{power:.1f}", *text_vals]))
    tel = read_long_csv("\n".join(lines))
    g = tel.gpus[0]
    assert g.time_s.size == n_t
    assert len(g.instances) == len(profiles)
    assert np.allclose(g.board_power_w, round(power, 1))
    finite = g.activity[~np.isnan(g.activity)]
    assert ((finite >= 0) & (finite <= 1)).all()


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=1, max_size=5),
    power=st.floats(min_value=0, max_value=1000, allow_nan=False),
)
def test_prometheus_parser_property(values: list[float], power: float) -> None:
    lines = []
    lab = 'UUID="GPU-q",GPU_I_ID="3",GPU_I_PROFILE="2g.20gb"'
    for v in values:
        lines.append(f"DCGM_FI_DEV_POWER_USAGE{{{lab}}} {power!r}")
        lines.append(f"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{lab}}} {v!r}")
    g = read_prometheus("\n".join(lines), interval_s=1.0).gpus[0]
    assert g.time_s.size == len(values)
    assert np.allclose(g.activity[:, 0, FIELD_INDEX["tensor_active"]], values)
    assert np.allclose(g.board_power_w, power)


def _same(a: object, b: object) -> None:
    from joulecast.mig.frame import Telemetry

    assert isinstance(a, Telemetry) and isinstance(b, Telemetry)
    assert a.warnings == b.warnings
    for ga, gb in zip(a.gpus, b.gpus, strict=True):
        assert ga.gpu_uuid == gb.gpu_uuid
        assert ga.instances == gb.instances
        assert np.array_equal(ga.time_s, gb.time_s)
        assert np.array_equal(ga.board_power_w, gb.board_power_w)
        assert np.array_equal(ga.activity, gb.activity, equal_nan=True)
        assert np.array_equal(ga.present, gb.present)


def test_crlf_bom_blank_lines_and_quotes_read_the_same() -> None:
    lines = [HEADER, row(0, "1", "3g.40gb", 200, 0.25), row(0, "2", "4g.40gb", 200)]
    lines += [row(1, "1", "3g.40gb", 210.5, 0.75), row(1, "2", "4g.40gb", 210.5)]
    plain = read_long_csv("\n".join(lines) + "\n")
    variants = [
        "\ufeff" + "\r\n".join(lines) + "\r\n",
        "\n".join([lines[0], "", *lines[1:3], "   ", *lines[3:]]) + "\n\n",
        "\n".join([lines[0], *[ln.replace("GPU-a", '"GPU-a"') for ln in lines[1:]]]),
        ("\n".join(lines) + "\n").encode(),
    ]
    for text in variants:
        _same(read_long_csv(text), plain)


def test_columns_in_any_order_with_extras_and_spaces() -> None:
    text = (
        "profile,gpu_instance_id,note,gract,timestamp_s,board_power_w,gpu_uuid\n"
        " 3g.40gb , 1 ,x,0.5,0.0,150.0, GPU-b\n"
        " 3g.40gb , 1 ,y,0.7,1.0,170.0, GPU-b\n"
    )
    g = read_long_csv(text).gpus[0]
    assert g.gpu_uuid == "GPU-b" and g.instances[0].gpu_instance_id == "1"
    assert g.instances[0].profile.name == "3g.40gb"
    assert g.activity[:, 0, FIELD_INDEX["gract"]].tolist() == [0.5, 0.7]
    assert np.isnan(g.activity[:, 0, FIELD_INDEX["tensor_active"]]).all()


def test_wrong_field_count_names_the_line() -> None:
    text = "\n".join([HEADER, row(0, "1", "3g.40gb", 200), row(1, "1", "3g.40gb", 200) + ",9"])
    with pytest.raises(TelemetryError, match="line 3 has 14 fields, header has 13"):
        read_long_csv(text)


def test_bad_number_names_line_and_column() -> None:
    text = "\n".join([HEADER, row(0, "1", "3g.40gb", 200), row(1, "1", "3g.40gb", 200, "busy")])
    with pytest.raises(TelemetryError, match="line 3, column gract: not a number: 'busy'"):
        read_long_csv(text)


@pytest.mark.parametrize("marker", ["", "N/A", "[N/A]", "nan", " - ", "<<<NULL>>>"])
def test_missing_markers_are_gaps_not_zeros(marker: str) -> None:
    text = "\n".join(
        [
            HEADER,
            row(0, "1", "3g.40gb", 200, 0.6),
            row(1, "1", "3g.40gb", 200, marker),
            row(2, "1", "3g.40gb", 200, 0.8),
        ]
    )
    tel = read_long_csv(text)
    assert tel.gpus[0].activity[1, 0, FIELD_INDEX["gract"]] == pytest.approx(0.7)
    assert tel.gpus[0].gap_samples.tolist() == [1]


def test_blank_timestamp_is_an_error_naming_the_row() -> None:
    text = "\n".join([HEADER, row(0, "1", "3g.40gb", 200), row(1, "1", "3g.40gb", 200)])
    text = text.replace("\n1,GPU-a", "\n,GPU-a")
    with pytest.raises(TelemetryError, match="blank or invalid timestamp at row 3"):
        read_long_csv(text)


def test_instances_disappearing_are_warned_and_get_no_share() -> None:
    text = "\n".join(
        [
            HEADER,
            row(0, "1", "3g.40gb", 200),
            row(0, "2", "1g.10gb", 200),
            row(1, "1", "3g.40gb", 200),
        ]
    )
    tel = read_long_csv(text)
    assert tel.gpus[0].present.tolist() == [[True, True], [True, False]]
    assert any("instance 2 (1g.10gb) present in 1 of 2" in w for w in tel.warnings)


def test_read_telemetry_detects_long_csv_from_bytes(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    f = tmp_path / "t.csv"
    f.write_bytes(("\ufeff" + "\n".join([HEADER, row(0, "1", "3g.40gb", 200)])).encode())
    tel = read_telemetry(f)
    assert tel.source_format == "long-csv" and tel.gpus[0].board_power_w.tolist() == [200.0]


decimal_text = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(repr),
    st.floats(min_value=0, max_value=MAX_BOARD_POWER_W).map(repr),
    st.decimals(min_value=-99999, max_value=99999, places=4, allow_nan=False).map(str),
    st.integers(min_value=-(10**15), max_value=10**15).map(str),
    st.sampled_from(["0", "-0.0", "1.", ".5", "007.250", "1e-3", " 2.5", "1E+2", "inf"]),
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(decimal_text, min_size=1, max_size=12))
def test_fast_number_parser_matches_float(values: list[str]) -> None:
    lines = [HEADER] + [row(k, "1", "3g.40gb", v) for k, v in enumerate(values)]
    powers = [float(v) for v in values]
    if not all(np.isfinite(powers)) or not all(0 <= p <= MAX_BOARD_POWER_W for p in powers):
        with pytest.raises(TelemetryError, match=r"not a number|board_power_w"):
            read_long_csv("\n".join(lines)).gpus[0].board_power_w.tolist()
        return
    got = read_long_csv("\n".join(lines)).gpus[0].board_power_w.tolist()
    assert got == powers  # bit-exact, as float() would read them


@settings(max_examples=40, deadline=None)
@given(
    cells=st.lists(st.one_of(cell, st.sampled_from(["N/A", " 0.25 ", "5e-1"])), min_size=16),
    power=st.floats(min_value=30.0, max_value=700.0, allow_nan=False),
)
def test_fast_path_matches_csv_module_path(cells: list[object], power: float) -> None:
    lines = [HEADER]
    for t in range(4):
        for i, prof in enumerate(("1g.10gb", "2g.20gb")):
            vals = [cells[(t * 16 + i * 8 + j) % len(cells)] for j in range(8)]
            text_vals = [v if isinstance(v, str) else f"{v:.4f}" for v in vals]
            lines.append(",".join([f"{t}.0", "GPU-p", str(i), prof, f"{power:.1f}", *text_vals]))
    fast = read_long_csv("\n".join(lines))
    quoted = read_long_csv(
        "\n".join([lines[0], *[ln.replace("GPU-p", '"GPU-p"') for ln in lines[1:]]])
    )
    _same(fast, quoted)
