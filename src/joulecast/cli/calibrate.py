"""``joulecast calibrate`` and ``joulecast validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import Progress

from joulecast.cli.main import app
from joulecast.datapaths import require_data_dir
from joulecast.errors import CalibrationError
from joulecast.yamlio import dump_yaml


def _data(measurements: Path | None) -> Path:
    if measurements is None:
        return require_data_dir()
    if not measurements.is_dir():
        raise CalibrationError(f"measurement folder not found: {measurements}")
    return measurements


@app.command("calibrate")
def calibrate_command(
    out: Annotated[Path, typer.Option(help="Output folder (one YAML per GPU) or a .yaml file.")],
    measurements: Annotated[
        Path | None,
        typer.Option(help="Reference data folder (default: $JOULECAST_DATA or ../shared/data)."),
    ] = None,
    gpu: Annotated[str | None, typer.Option(help="Only this GPU (a100-pcie-40gb or a10).")] = None,
) -> None:
    """Fit the time and power coefficients (and DVFS curves) from measurements."""
    # Imported here: scipy's optimisers would otherwise slow every joulecast command's start.
    import msgspec

    from joulecast.calibration.data import training_rows
    from joulecast.calibration.dvfs_fit import fit_dvfs_curves
    from joulecast.calibration.fit import Calibration
    from joulecast.calibration.validate import GPU_SETS
    from joulecast.coefficients.host import default_host_id
    from joulecast.hardware.spec import load_gpu

    data = _data(measurements)
    sets = [(s, g) for s, g in GPU_SETS if gpu is None or g == gpu]
    if not sets:
        raise CalibrationError(f"no measurement set for GPU '{gpu}'")
    single_file = out.suffix in (".yaml", ".yml")
    if single_file and len(sets) != 1:
        raise CalibrationError("--out FILE.yaml needs --gpu; give a folder to write every GPU")
    if not single_file:
        out.mkdir(parents=True, exist_ok=True)
    for set_name, gpu_id in sets:
        rows = training_rows(data, set_name)
        spec = load_gpu(gpu_id)
        cal = Calibration(spec, host_id=default_host_id(gpu_id, spec.form_factor)).fit(rows)
        assert cal.coefficients_ is not None and cal.host_ is not None
        target = out if single_file else out / f"{gpu_id}.yaml"
        header = (
            f"# joulecast coefficients for {gpu_id}: {cal.n_parameters} fitted parameters.\n"
            f"# Reproduce: joulecast calibrate --measurements DATA --gpu {gpu_id} --out FILE\n"
        )
        target.write_text(header + cal.coefficients_.to_yaml())
        typer.echo(f"{gpu_id}: fitted on {len(rows)} rows -> {target}")
        if not single_file:
            host = msgspec.structs.replace(
                cal.host_,
                description=f"the EnergAIzer artifact's {spec.name} machine, eager PyTorch "
                "(its CPU is not published)",
            )
            host_file = out / "hosts" / f"{host.id}.yaml"
            host_file.parent.mkdir(exist_ok=True)
            host_file.write_text(
                f"# joulecast host fitted by joulecast calibrate beside the {gpu_id} coefficients."
                "\n# Reproduce: joulecast calibrate --measurements DATA --out "
                "src/joulecast/coefficients/data\n" + dump_yaml(host.to_dict())
            )
            typer.echo(f"{gpu_id} measurement host -> {host_file}")
    dvfs_dir = data / "energaizer" / "config" / "dvfs"
    if not single_file and dvfs_dir.is_dir():
        curves = fit_dvfs_curves(dvfs_dir)
        target = out / "dvfs_curves.yaml"
        target.write_text(
            "# V(f) and idle(f) knots fitted by joulecast calibrate from measured tables.\n"
            + dump_yaml(curves, flow=True)
        )
        typer.echo(f"DVFS curves for {', '.join(curves)} -> {target}")
    if not single_file and (data / "aiconfigurator").is_dir():
        from joulecast.calibration.memory_energy import fit_memory_energy
        from joulecast.coefficients.memory import FILE_NAME

        energy = fit_memory_energy(data)
        target = out / FILE_NAME
        target.write_text(
            "# HBM energy per byte measured on Hopper (see joulecast/calibration/memory_energy.py)."
            "\n# Reproduce: joulecast calibrate --measurements DATA --out "
            "src/joulecast/coefficients/data\n" + energy.to_yaml()
        )
        typer.echo(
            f"HBM energy per byte on {energy.gpu}: {energy.dram_pj_per_byte:g} pJ/B "
            f"({energy.rows} rows) -> {target}"
        )


@app.command("validate")
def validate_command(
    measurements: Annotated[
        Path | None,
        typer.Option(help="Reference data folder (default: $JOULECAST_DATA or ../shared/data)."),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the tables to this Markdown file.")
    ] = None,
    plot_file: Annotated[
        Path | None, typer.Option("--plot", help="Predicted-vs-measured scatter (PNG).")
    ] = None,
    dvfs: Annotated[bool, typer.Option(help="Include the DVFS section.")] = True,
    serving: Annotated[
        bool,
        typer.Option(help="Include the serving checks: every ML.ENERGY v3 LLM row, 1-8 GPUs."),
    ] = True,
) -> None:
    """Accuracy on every valid measured row: in-sample, leave-one-model-out, baseline, DVFS."""
    from joulecast.calibration.serving_check import serving_rows
    from joulecast.calibration.validate import (
        GPU_SETS,
        dvfs_report,
        forecast_reports,
        gpu_report,
        plot,
        render_markdown,
    )

    data = _data(measurements)
    reports = []
    with Progress(transient=True) as progress:
        task = progress.add_task(
            "fitting and predicting", total=len(GPU_SETS) + int(dvfs) + int(serving)
        )
        for set_name, gpu_id in GPU_SETS:
            reports.append(gpu_report(data, set_name, gpu_id))
            progress.advance(task)
        dv = dvfs_report(data) if dvfs else None
        progress.advance(task)
        served = serving_rows(data) if serving else []
        forecasts = forecast_reports(data)
        progress.advance(task)
    text = render_markdown(reports, dv, served, forecasts)
    if serving:
        from joulecast.calibration.serving_report import serving_section

        text += "\n" + "\n".join(serving_section(data))
    Console().print(Markdown(text))
    if markdown is not None:
        markdown.write_text(
            "# Accuracy\n\nGenerated by `joulecast validate --markdown docs/accuracy.md`; "
            "do not edit by hand.\n\n" + text
        )
    if plot_file is not None:
        plot(reports, plot_file)
        typer.echo(f"plot written to {plot_file}")
