"""``joulecast mig``: per-tenant power attribution on MIG-partitioned GPUs."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from joulecast.cli.main import app
from joulecast.cli.options import FormatOpt, OutputFormat
from joulecast.errors import TelemetryError

mig_app = typer.Typer(
    help="Split measured board power among MIG instances (per-tenant energy).",
    no_args_is_help=True,
)
app.add_typer(mig_app, name="mig")


class InputFormatOpt(StrEnum):
    """Telemetry formats."""

    auto = "auto"
    long_csv = "long-csv"
    prometheus = "prometheus"
    dmon = "dmon"
    nvidia_smi = "nvidia-smi"


@mig_app.command("attribute")
def attribute_command(
    telemetry: Annotated[Path, typer.Option("--telemetry", help="Telemetry file.")],
    input_format: Annotated[
        InputFormatOpt, typer.Option("--input-format", help="Telemetry format.")
    ] = InputFormatOpt.auto,
    idle_power_w: Annotated[
        float | None, typer.Option("--idle-power-w", help="Known static power in W.")
    ] = None,
    static_policy: Annotated[
        str,
        typer.Option(
            "--static-policy", help="reserved | active-only | proportional | unattributed"
        ),
    ] = "reserved",
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="online | slice | kepler | ceems | activity | prototype | offline | online-raw",
        ),
    ] = "online",
    output_format: FormatOpt = OutputFormat.TABLE,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write stacked per-instance power to a PNG.")
    ] = None,
    mig_profiles: Annotated[
        str | None,
        typer.Option("--mig-profiles", help="Layout for dmon/nvidia-smi input: ID=PROFILE,..."),
    ] = None,
    interval_s: Annotated[
        float | None,
        typer.Option("--interval-s", help="Sample period for inputs without timestamps."),
    ] = None,
) -> None:
    """Attribute a GPU's measured energy to its MIG instances."""
    from joulecast.mig.attribute import attribute
    from joulecast.mig.limits import MAX_BOARD_POWER_W, check_setting
    from joulecast.mig.readers import parse_profiles_option, read_telemetry

    check_setting("--idle-power-w", idle_power_w, positive=False, upper=MAX_BOARD_POWER_W)
    tel = read_telemetry(
        telemetry,
        input_format.value,
        profiles=parse_profiles_option(mig_profiles),
        interval_s=interval_s,
    )
    # nvidia-smi has no per-instance activity under MIG: only the slice split is meaningful.
    tel_method = "slice" if tel.source_format == "nvidia-smi" else method
    result = attribute(
        tel, method=tel_method, static_policy=static_policy, idle_power_w=idle_power_w
    )
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    if plot is not None:
        from joulecast.mig.plot import plot_power

        plot_power(result, plot)
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif output_format is OutputFormat.CSV:
        typer.echo("gpu_uuid,gpu_instance_id,profile,dynamic_energy_j,static_energy_j,energy_j")
        for g in result.gpus:
            for i in g.instances:
                typer.echo(
                    f"{g.gpu_uuid},{i.gpu_instance_id},{i.profile},{i.dynamic_energy_j:.3f},"
                    f"{i.static_energy_j:.3f},{i.energy_j:.3f}"
                )
            typer.echo(
                f"{g.gpu_uuid},(static unattributed),,0,{g.static_unattributed_j:.3f},"
                f"{g.static_unattributed_j:.3f}"
            )
            typer.echo(f"{g.gpu_uuid},(residual),,{g.residual_j:.3f},0,{g.residual_j:.3f}")
    else:
        console = Console()
        for g in result.gpus:
            table = Table(
                title=(
                    f"{g.gpu_uuid}: {g.energy_j / 1000:.2f} kJ measured, method {result.method}, "
                    f"static {result.static_policy} ({g.diagnostics.get('static_source')})"
                )
            )
            for col in ("instance", "profile", "dynamic kJ", "static kJ", "total kJ", "share %"):
                table.add_column(col, justify="left" if col in ("instance", "profile") else "right")
            for i in g.instances:
                table.add_row(
                    i.gpu_instance_id,
                    i.profile,
                    f"{i.dynamic_energy_j / 1000:.3f}",
                    f"{i.static_energy_j / 1000:.3f}",
                    f"{i.energy_j / 1000:.3f}",
                    f"{100 * i.energy_j / g.energy_j:.1f}",
                )
            table.add_row("static (GPU)", "", "", f"{g.static_unattributed_j / 1000:.3f}", "", "")
            table.add_row("residual", "", f"{g.residual_j / 1000:.3f}", "", "", "")
            console.print(table)


@mig_app.command("synth")
def synth_command(
    out: Annotated[Path, typer.Option("--out", help="Long CSV to write.")],
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario name.")] = "tune-3g2g1g1g",
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the synthetic day.")] = 0,
    duration_s: Annotated[
        int | None, typer.Option("--duration-s", help="Override the scenario length.")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Truth JSON (default: OUT with .truth.json).")
    ] = None,
) -> None:
    """Write a synthetic telemetry file and its per-instance truth."""
    from dataclasses import replace

    from joulecast.errors import UnknownNameError
    from joulecast.mig.synth import SCENARIOS, generate

    if scenario not in SCENARIOS:
        raise UnknownNameError("scenario", scenario, SCENARIOS)
    sc = SCENARIOS[scenario]
    if duration_s is not None:
        if duration_s < 2:
            raise TelemetryError("--duration-s must be at least 2")
        sc = replace(sc, duration_s=duration_s)
    run = generate(sc, seed)
    out.write_text(run.to_long_csv(), encoding="utf-8")
    truth_path = truth or out.with_suffix(".truth.json")
    truth_path.write_text(json.dumps(run.truth_dict(), indent=2), encoding="utf-8")
    typer.echo(f"wrote {out} and {truth_path}")


@mig_app.command("benchmark")
def benchmark_command(
    output_format: FormatOpt = OutputFormat.TABLE,
    which: Annotated[
        str,
        typer.Option(
            "--set",
            help="held-out (the report; never used for tuning) or tuning (where the online "
            "settings were chosen).",
        ),
    ] = "held-out",
) -> None:
    """Compare every method on synthetic scenarios with a known truth (errors, conservation)."""
    from dataclasses import asdict

    from rich.console import Console

    from joulecast.mig.benchmark import evaluation_set, markdown_table, run_benchmark

    scenarios, seeds = evaluation_set(which)
    with Console(stderr=True).status("scoring every method on the synthetic scenarios"):
        scores = run_benchmark(scenarios, seeds)
    if output_format is OutputFormat.JSON:
        doc = {
            "set": which,
            "scenarios": [s.name for s in scenarios],
            "seeds": list(seeds),
            "methods": [asdict(s) for s in scores],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    if output_format is OutputFormat.CSV:
        from joulecast.cli.common import echo_csv

        echo_csv([{k: v for k, v in asdict(s).items() if not isinstance(v, list | tuple | dict)}
                  for s in scores])  # fmt: skip
        return
    typer.echo(
        f"{which} set: {len(scenarios)} scenarios x seeds {', '.join(map(str, seeds))}; "
        "error = per-instance dynamic energy vs truth"
    )
    typer.echo(markdown_table(scores))
    for s in scores:
        typer.echo(f"worst {s.method}: {s.worst_abs_error_pct:.2f} % at {s.worst_case}")


@mig_app.command("serve")
def serve_command(
    dcgm_url: Annotated[str, typer.Option("--dcgm-url", help="dcgm-exporter /metrics URL.")],
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to serve metrics on.")] = (
        "127.0.0.1:9477"
    ),
    state: Annotated[
        Path, typer.Option("--state", help="SQLite file for cumulative energies.")
    ] = Path("joulecast-mig.sqlite"),
    interval_s: Annotated[float, typer.Option("--interval-s", help="Poll period.")] = 1.0,
    timeout_s: Annotated[
        float, typer.Option("--timeout-s", help="HTTP timeout of one poll.")
    ] = 5.0,
    idle_power_w: Annotated[
        float | None, typer.Option("--idle-power-w", help="Known static board power in W.")
    ] = None,
    static_policy: Annotated[
        str, typer.Option("--static-policy", help="How static power is shared among tenants.")
    ] = "reserved",
    max_polls: Annotated[
        int | None,
        typer.Option(
            "--max-polls", help="Stop after this many polls; exit 1 if any failed (testing)."
        ),
    ] = None,
) -> None:
    """Poll dcgm-exporter, attribute online and serve per-instance power and energy."""
    import logging
    import signal
    import threading

    from joulecast.mig.httpio import parse_listen
    from joulecast.mig.service import MigService, ServiceConfig

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=False
    )
    if max_polls is not None and max_polls < 1:
        raise TelemetryError("--max-polls must be at least 1")
    host, port = parse_listen(listen)
    svc = MigService(
        ServiceConfig(
            dcgm_url=dcgm_url,
            state_path=state,
            interval_s=interval_s,
            timeout_s=timeout_s,
            idle_power_w=idle_power_w,
            static_policy=static_policy,
        )
    )
    try:
        server = svc.start_http(host, port)
    except BaseException:
        svc.close()
        raise
    logging.getLogger("joulecast.mig.serve").info(
        "serving on http://%s:%d/metrics, polling %s every %g s",
        host,
        server.server_port,
        dcgm_url,
        interval_s,
    )
    # SIGTERM (systemd, Kubernetes) ends the loop like Ctrl-C: counters are saved on the way out.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: svc.stop()) if main_thread else None
    failed = 0
    try:
        failed = svc.run(max_polls=max_polls)
    except KeyboardInterrupt:
        pass
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        server.shutdown()
        svc.close()
    if max_polls is not None and failed:
        typer.echo(f"error: {failed} of {max_polls} polls failed", err=True)
        raise typer.Exit(1)


@mig_app.command("predict")
def predict_command(
    layout: Annotated[Path, typer.Option("--layout", help="YAML or JSON planned layout.")],
    output_format: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Forecast per-partition power and energy of a planned MIG layout."""
    from joulecast.mig.predict import load_layout, predict

    forecast = predict(load_layout(layout))
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps(forecast.to_dict(), indent=2))
        return
    if output_format is OutputFormat.CSV:
        typer.echo("name,profile,dynamic_power_w,static_power_w,power_w,energy_j")
        for p in forecast.partitions:
            typer.echo(
                f"{p.name},{p.profile},{p.dynamic_power_w:.2f},{p.static_power_w:.2f},"
                f"{p.power_w:.2f},{p.energy_j:.1f}"
            )
        return
    table = Table(
        title=f"{forecast.gpu}: {forecast.board_power_w:.0f} W board (cap factor "
        f"{forecast.cap_factor:.2f})"
    )
    for col in ("partition", "profile", "dynamic W", "static W", "total W", "energy kJ"):
        table.add_column(col, justify="left" if col in ("partition", "profile") else "right")
    for p in forecast.partitions:
        table.add_row(
            p.name,
            p.profile,
            f"{p.dynamic_power_w:.1f}",
            f"{p.static_power_w:.1f}",
            f"{p.power_w:.1f}",
            f"{p.energy_j / 1000:.2f}",
        )
    Console().print(table)
