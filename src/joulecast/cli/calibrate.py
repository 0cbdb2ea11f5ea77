"""``joulecast calibrate`` and ``joulecast validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    status = Console(stderr=True).status("fitting")
    status.start()
    for set_name, gpu_id in sets:
        status.update(f"fitting {gpu_id}")
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
    status.stop()
    dvfs_dir = data / "energaizer" / "config" / "dvfs"
    curves: dict[str, Any] = {}
    if not single_file and dvfs_dir.is_dir():
        curves = fit_dvfs_curves(dvfs_dir)
        target = out / "dvfs_curves.yaml"
        target.write_text(
            "# V(f) and idle(f) knots fitted by joulecast calibrate from measured tables.\n"
            + dump_yaml(curves, flow=True)
        )
        typer.echo(f"DVFS curves for {', '.join(curves)} -> {target}")
    if not single_file and (data / "aiconfigurator").is_dir():
        _write_hopper_energies(data, out, curves)


def _write_hopper_energies(data: Path, out: Path, curves: dict[str, Any]) -> None:
    """Measure the Hopper HBM and tensor energies on the H200 kernel tables (with the H200
    curve just fitted, when there is one) and write their two files."""
    from joulecast.calibration.tensor_energy import ANCHOR_GPU, fit_hopper_energies
    from joulecast.coefficients import memory, tensor
    from joulecast.dvfs import curve_from_entry
    from joulecast.hardware.spec import load_gpu

    entry = curves.get(ANCHOR_GPU)
    curve = curve_from_entry(load_gpu(ANCHOR_GPU), entry) if entry else None
    hbm, tc = fit_hopper_energies(data, curve)
    reproduce = (
        "\n# Reproduce: joulecast calibrate --measurements DATA --out "
        "src/joulecast/coefficients/data\n"
    )
    target = out / memory.FILE_NAME
    target.write_text(
        "# HBM energy per byte measured on Hopper (see joulecast/calibration/memory_energy.py)."
        + reproduce
        + hbm.to_yaml()
    )
    typer.echo(
        f"HBM energy per byte on {hbm.gpu}: {hbm.dram_pj_per_byte:g} pJ/B "
        f"({hbm.rows} rows) -> {target}"
    )
    target = out / tensor.FILE_NAME
    target.write_text(
        "# Tensor energy per FLOP measured on Hopper (see joulecast/calibration/tensor_energy.py)."
        + reproduce
        + tc.to_yaml()
    )
    typer.echo(
        f"tensor energy per FLOP on {tc.gpu}: {tc.tensor_pj_per_flop:g} pJ at V_floor "
        f"({tc.rows} rows, {tc.capped_rows} capped) -> {target}"
    )


def _hopper_sections(data: Path, served: list[Any], voltage: bool) -> list[str]:
    """The Hopper calibration beside the pure transfer, the H200 kernel power targets and,
    on request, the V(f) sensitivity of the pure forecast."""
    from joulecast.calibration import hopper, hopper_checks
    from joulecast.calibration.serving_check import serving_rows

    lines: list[str] = []
    report = hopper.hopper_report(data)
    if report is not None:
        lines += hopper.render_markdown(report, served or serving_rows(data))
    if (data / "aiconfigurator").is_dir():
        lines += hopper_checks.render_kernel_markdown(hopper_checks.kernel_power(data))
    if voltage:
        lines += hopper_checks.render_voltage_markdown(hopper_checks.voltage_sensitivity(data))
    return [*lines, ""]


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
    hopper: Annotated[
        bool,
        typer.Option(
            help="Include the Hopper calibration (H100 serving, leave one model out) and the "
            "H200 kernel power targets."
        ),
    ] = True,
    voltage_sensitivity: Annotated[
        bool,
        typer.Option(
            help="Also show the pure H100 serving forecast under other H100 V(f) curves "
            "(re-derives the Hopper energies for each: about 30 s)."
        ),
    ] = False,
    diffusion: Annotated[
        bool,
        typer.Option(
            help="Only the diffusion check: energy per image/video and latency of every "
            "ML.ENERGY diffusion row, pure, in-sample and leave-one-model-out."
        ),
    ] = False,
) -> None:
    """Accuracy on every valid measured row: in-sample, leave-one-model-out, baseline, DVFS."""
    if diffusion:
        from joulecast.calibration import diffusion_check

        report = diffusion_check.render_markdown(
            diffusion_check.diffusion_report(_data(measurements))
        )
        Console().print(Markdown(report))
        if markdown is not None:
            markdown.write_text(report)
        return
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
    if hopper:
        text += "\n" + "\n".join(_hopper_sections(data, served, voltage_sensitivity))
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
