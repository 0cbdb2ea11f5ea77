"""Property tests of every MIG reader on hostile input: a clean result or one TelemetryError line.

Whatever the bytes, a reader either returns telemetry that satisfies the physical bounds
(finite, non-negative, below :mod:`joulecast.mig.limits`; times increasing; ratios in 0..1)
or raises :class:`TelemetryError` with a one-line message; any other exception is a bug.

``make test`` runs ``JOULECAST_FUZZ_EXAMPLES`` (default 200) examples per property; raise it for a
longer opt-in run, e.g. ``JOULECAST_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest
tests/mig/test_reader_properties.py``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joulecast.errors import TelemetryError
from joulecast.mig.attribute import attribute
from joulecast.mig.frame import Telemetry
from joulecast.mig.limits import MAX_BOARD_POWER_W, MAX_ENERGY_COUNTER_J, MAX_TIMESTAMP_S
from joulecast.mig.readers import (
    LONG_CSV_HEADER,
    detect_format,
    read_dmon,
    read_long_csv,
    read_nvidia_smi,
    read_prometheus,
    read_telemetry,
)

EXAMPLES = int(os.environ.get("JOULECAST_FUZZ_EXAMPLES", "200"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILES = {"1": "3g.40gb", "2": "4g.40gb"}

number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1000, max_value=3000),
    st.integers(min_value=-(10**20), max_value=10**20),
).map(repr)
garbage = st.text(max_size=12)
hostile = st.one_of(
    number,
    garbage,
    st.sampled_from(
        ["", "N/A", "[N/A]", "nan", "-", "<<<NULL>>>", "+Inf", "-Inf", "1e20", "-300", "\r", '"']
    ),
)
good_profile = st.sampled_from(["1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "1c.3g.40gb"])
profile = st.one_of(good_profile, good_profile, good_profile, garbage)
ratio = st.floats(min_value=0, max_value=1.04).map(lambda v: f"{v:.4f}")
power = st.floats(min_value=0, max_value=900).map(lambda v: f"{v:.1f}")


def mutate(draw: st.DrawFn, rows: list[list[str]]) -> list[list[str]]:
    """Valid rows with a few faults: a hostile cell, a lost, repeated or garbage line."""
    rows = [list(r) for r in rows]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        k = draw(st.integers(min_value=0, max_value=len(rows) - 1))
        kind = draw(st.sampled_from(["cell", "cell", "drop", "repeat", "garbage"]))
        if kind == "cell" and rows[k]:
            j = draw(st.integers(min_value=0, max_value=len(rows[k]) - 1))
            rows[k][j] = draw(hostile)
        elif kind == "drop" and len(rows) > 1:
            del rows[k]
        elif kind == "repeat":
            rows.insert(k, rows[k])
        elif kind == "garbage":
            rows.insert(k, [draw(garbage)])
    return rows


def joined(draw: st.DrawFn, rows: list[list[str]], sep: str, line_end: str = "\n") -> str:
    """Rows as text, sometimes cut short at a random byte."""
    text = line_end.join(sep.join(r) for r in rows) + line_end
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        text = text[: draw(st.integers(min_value=len(text) // 2, max_value=len(text)))]
    return text


def assert_one_line(exc: TelemetryError) -> None:
    """The CLI prints the message as one ``error:`` line."""
    msg = str(exc)
    assert msg and "\n" not in msg and "\r" not in msg and len(msg) < 400, repr(msg)


def assert_sane(tel: Telemetry) -> None:
    """Every number a reader hands on is physically possible."""
    for g in tel.gpus:
        t = g.time_s
        assert np.isfinite(t).all() and (t >= 0).all() and (t <= MAX_TIMESTAMP_S).all()
        assert (np.diff(t) > 0).all()
        p = g.board_power_w
        assert np.isfinite(p).all() and (p >= 0).all() and (p <= MAX_BOARD_POWER_W).all()
        a = g.activity[~np.isnan(g.activity)]
        assert ((a >= 0) & (a <= 1)).all()
        if g.energy_counter_j is not None:
            e = g.energy_counter_j[~np.isnan(g.energy_counter_j)]
            assert ((e >= 0) & (e <= MAX_ENERGY_COUNTER_J)).all()
    if all(g.time_s.size >= 2 for g in tel.gpus):
        # Attribution of clean telemetry: finite, non-negative tenant energy, nothing lost.
        result = attribute(tel, method="activity")
        for g in result.gpus:
            assert np.isfinite(g.energy_j) and g.energy_j >= 0
            for inst in g.instances:
                assert inst.dynamic_energy_j >= 0 and inst.static_energy_j >= 0
            assert abs(g.conservation_error_j) <= 1e-6 * max(g.energy_j, 1.0)


def check(read: Callable[[], Telemetry]) -> None:
    """Run a reader: a sane result or one TelemetryError line, nothing else."""
    try:
        tel = read()
    except TelemetryError as exc:
        assert_one_line(exc)
        return
    assert_sane(tel)


@st.composite
def long_csv_text(draw: st.DrawFn) -> str:
    profiles = draw(st.lists(profile, min_size=1, max_size=3))
    header = list(LONG_CSV_HEADER)
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        header.remove(draw(st.sampled_from(header)))
    rows = [header]
    for t in range(draw(st.integers(min_value=1, max_value=5))):
        p = draw(power)
        for i, prof in enumerate(profiles):
            values = [
                f"{t}.0",
                "GPU-a",
                str(i + 1),
                prof,
                p,
                *draw(st.lists(ratio, min_size=8, max_size=8)),
            ]
            rows.append([v for c, v in zip(LONG_CSV_HEADER, values, strict=True) if c in header])
    rows = mutate(draw, rows)
    if draw(st.booleans()):
        rows = [['"' + f.replace('"', '""') + '"' for f in r] for r in rows]
    return joined(draw, rows, ",", draw(st.sampled_from(["\n"] * 4 + ["\r\n", "\r"])))


@fuzz
@given(text=long_csv_text())
def test_long_csv_property(text: str) -> None:
    check(lambda: read_long_csv(text))
    check(lambda: read_long_csv(text.encode("utf-8")))


@fuzz
@given(data=st.binary(max_size=300))
def test_long_csv_bytes_property(data: bytes) -> None:
    header = ",".join(LONG_CSV_HEADER).encode()
    check(lambda: read_long_csv(header + b"\n" + data))


prom_name = st.sampled_from(
    [
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "DCGM_FI_DEV_GPU_TEMP",
    ]
)


@st.composite
def prometheus_text(draw: st.DrawFn) -> str:
    profiles = draw(st.lists(profile.filter(lambda p: '"' not in p), min_size=1, max_size=2))
    names = draw(st.sets(prom_name, max_size=3))
    names |= {"DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"}
    timed = draw(st.booleans())
    rows: list[list[str]] = [["# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W)."]]
    for k in range(draw(st.integers(min_value=1, max_value=4))):
        p, e = draw(power), str(1_000_000 + 1000 * k)
        for i, prof in enumerate(profiles):
            lab = f'{{gpu="0",UUID="GPU-x",GPU_I_ID="{i + 1}",GPU_I_PROFILE="{prof}"}}'
            for name in sorted(names):
                value = {"DCGM_FI_DEV_POWER_USAGE": p, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": e}
                row = [name + lab, value.get(name) or draw(ratio)]
                rows.append([*row, str(1_700_000_000_000 + 1000 * k)] if timed else row)
    return joined(draw, mutate(draw, rows), " ")


@fuzz
@given(
    text=prometheus_text(),
    interval_s=st.one_of(st.none(), st.floats(min_value=0.001, max_value=60)),
)
def test_prometheus_text_property(text: str, interval_s: float | None) -> None:
    check(lambda: read_prometheus(text, interval_s=interval_s))
    # Stream mode (the live service): bad samples are counted, never raised or passed on.
    rejects: Counter[str] = Counter()
    check(lambda: read_prometheus(text, scrape_time_s=1.7e9, rejects=rejects))


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def query_range_json(draw: st.DrawFn) -> str:
    result: list[object] = []
    names = {"DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"}
    for name in sorted(names | draw(st.sets(prom_name, max_size=3))):
        for gi, prof in enumerate(draw(st.lists(profile, min_size=1, max_size=2))):
            values: list[object] = [
                [1.7e9 + k, draw(power if "POWER" in name else ratio)] for k in range(3)
            ]
            if draw(st.integers(min_value=0, max_value=3)) == 0:
                values[draw(st.integers(min_value=0, max_value=2))] = draw(
                    st.one_of(st.tuples(number, hostile).map(list), json_value)
                )
            metric = {"__name__": name, "UUID": "GPU-j", "GPU_I_ID": str(gi), "GPU_I_PROFILE": prof}
            result.append({"metric": metric, "values": values})
    doc: object = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        doc = {"data": {"result": draw(json_value)}}
    return json.dumps(doc)


@fuzz
@given(text=query_range_json())
def test_prometheus_query_range_property(text: str) -> None:
    check(lambda: read_prometheus(text))


@st.composite
def dmon_text(draw: st.DrawFn) -> str:
    rows = [["#Entity", "GRACT", "SMACT", "POWER"], ["ID"]]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        rows.append(["GPU", "0", "N/A", "N/A", draw(power)])
        for gi in PROFILES:
            rows.append(["GPU-I", gi, draw(ratio), draw(ratio), "N/A"])
    return joined(draw, mutate(draw, rows), " ")


@fuzz
@given(text=dmon_text(), interval_s=st.floats(min_value=0.01, max_value=10))
def test_dmon_property(text: str, interval_s: float) -> None:
    check(lambda: read_dmon(text, profiles=PROFILES, interval_s=interval_s))


@st.composite
def nvidia_smi_text(draw: st.DrawFn) -> str:
    rows = [["timestamp", " uuid", " power.draw [W]"]]
    for k in range(draw(st.integers(min_value=1, max_value=5))):
        rows.append([f"2024/01/01 00:00:0{k}.000", " GPU-s", f" {draw(power)} W"])
    return joined(draw, mutate(draw, rows), ",")


@fuzz
@given(text=nvidia_smi_text())
def test_nvidia_smi_property(text: str) -> None:
    check(lambda: read_nvidia_smi(text, profiles=PROFILES))


@fuzz
@given(
    data=st.binary(max_size=200),
    head=st.sampled_from([b"", b"timestamp_s,board_power_w\n", b"DCGM_FI_DEV_POWER_USAGE 1\n"]),
    fmt=st.sampled_from(["auto", "long-csv", "prometheus", "dmon", "nvidia-smi"]),
)
def test_read_telemetry_any_file_property(
    tmp_path_factory: object, data: bytes, head: bytes, fmt: str
) -> None:
    import pytest

    assert isinstance(tmp_path_factory, pytest.TempPathFactory)
    f = Path(tmp_path_factory.mktemp("fuzz")) / "t.txt"
    f.write_bytes(head + data)
    check(lambda: read_telemetry(f, fmt, profiles=PROFILES, interval_s=1.0))  # type: ignore[arg-type]
    try:
        detect_format((head + data).decode("utf-8", errors="replace"))
    except TelemetryError as exc:
        assert_one_line(exc)
