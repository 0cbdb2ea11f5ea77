"""A measurement set of a part joulecast is never fitted on (h100.csv) is reported as a forecast."""

from __future__ import annotations

from pathlib import Path

from joulecast.calibration.validate import forecast_reports, render_markdown, targets_table

ROWS = """workload,energy,time,avg_freq,temp
bertmodel_large_pbf16_b8_s128_modeprefill_freq1830_iter3000.csv,2.5,10.0,1830.0,55.0
gpt2model_gpt2_pbf16_b16_s512_modeprefill_freq1830_iter2000.csv,4.0,12.0,1830.0,58.0
gpt2model_gpt2_pbf16_b1_s128_modeprefill_freq1830_iter100.csv,0.5,8.0,1830.0,50.0
"""


def _data(tmp_path: Path, rows: str | None) -> Path:
    folder = tmp_path / "energaizer" / "measurements"
    folder.mkdir(parents=True)
    if rows is not None:
        (folder / "h100.csv").write_text(rows)
    return tmp_path


def test_h100_rows_are_forecast_and_reported(tmp_path: Path) -> None:
    reports = forecast_reports(_data(tmp_path, ROWS))
    assert len(reports) == 1
    rep = reports[0]
    assert rep.gpu == "h100-sxm"
    # The third row's window (100 x 8 ms) is shorter than 5 s: a crashed run, dropped.
    assert len(rep.preds) == 2
    assert all(p.clock_mhz == 1830 for p in rep.preds)
    assert all(p.power_w > 100 for p in rep.preds)  # at least the idle power at 1830 MHz
    targets = "\n".join(targets_table([], None, reports))
    assert "| h100-sxm forecast (never fitted) | power |" in targets
    text = render_markdown([], None, (), reports)
    assert "## Forecast: h100-sxm (`h100.csv`, never used in fitting)" in text
    assert "| bert | 1 |" in text and "| all | 2 |" in text


def test_no_forecast_set_no_section(tmp_path: Path) -> None:
    assert forecast_reports(_data(tmp_path, None)) == []
