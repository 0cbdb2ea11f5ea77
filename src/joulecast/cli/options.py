"""Command-line options shared by joulecast's commands, each defined once.

The typer option types live here so that every command accepts the same flags with the same
help; :class:`WorkloadOptions` turns the workload flags into a pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from joulecast.errors import WorkloadError
from joulecast.hardware.spec import GPUSpec
from joulecast.schema import MAX_DIMENSION
from joulecast.workload.ir import Precision, Workload

if TYPE_CHECKING:
    from joulecast.models.registry import ModelConfig


class OutputFormat(StrEnum):
    """How a command prints its result."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="table, json or csv.")]
JsonAliasOpt = Annotated[
    bool, typer.Option("--json", hidden=True, help="Deprecated: use --format json.")
]


def output_format(fmt: OutputFormat, as_json: bool) -> OutputFormat:
    """``fmt``, or JSON when the deprecated ``--json`` flag is given (with a warning on stderr)."""
    if not as_json:
        return fmt
    typer.echo("warning: --json is deprecated; use --format json", err=True)
    return OutputFormat.JSON


SmClockOpt = Annotated[float | None, typer.Option("--sm-clock", help="Locked SM clock in MHz.")]
PowerCapOpt = Annotated[
    float | None,
    typer.Option(
        "--power-cap",
        help="Power limit in W, within the part's min..max limit (joulecast gpus --format json). "
        "Default: the part's default limit.",
    ),
]

WorkloadFileOpt = Annotated[
    Path | None, typer.Option("--workload", "-w", help="EnergAIzer kernel-list JSON file.")
]
ModelOpt = Annotated[str | None, typer.Option(help="Model id or alias (joulecast models).")]
ModelConfigOpt = Annotated[
    Path | None, typer.Option("--model-config", help="A local Hugging Face config.json.")
]
ExampleOpt = Annotated[bool, typer.Option(help="Use the built-in example encoder.")]


def _size(help_text: str, *names: str) -> Any:
    """A size option: an integer in [1, MAX_DIMENSION] (2**31), so that no request overflows."""
    return typer.Option(*names, min=1, max=MAX_DIMENSION, help=help_text)


BatchOpt = Annotated[
    int | None, _size("Sequences (or images) processed together; required with --model.")
]
SeqOpt = Annotated[
    int | None,
    _size(
        "Tokens per sequence in this pass. prefill: the prompt length (required). decode: new "
        "tokens per sequence in the step, default 1 (more than 1 models a multi-token step, e.g. "
        "speculative verification), against --context cached tokens. Not for vision models."
    ),
]
PhaseOpt = Annotated[
    str, typer.Option(help="prefill (the whole prompt) or decode (one step on a KV cache).")
]
ContextOpt = Annotated[
    int | None,
    _size("Tokens already in the KV cache: required for decode; a cached prefix for prefill."),
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        help="bf16, fp16, fp32, fp8, or auto (the checkpoint's own format; refused for mxfp4 "
        "checkpoints, which have no kernel model)."
    ),
]
AttentionOpt = Annotated[str | None, typer.Option(help="eager, sdpa or flash.")]
ImageSizeOpt = Annotated[
    int | None, _size("Input resolution in pixels of a vision model. Default: the model's own.")
]
PrefillTokensOpt = Annotated[
    int | None,
    _size(
        "Decode: prompt tokens prefilled in the same step (serving engines' chunked prefill).",
        "--prefill-tokens",
    ),
]
CudaGraphsOpt = Annotated[
    bool,
    typer.Option(
        "--cuda-graphs",
        help="The pass is replayed as a CUDA graph (serving engines): no host time per op.",
    ),
]
TraceModeOpt = Annotated[
    bool, typer.Option(help="Match the EnergAIzer traces (base model, no LM head).")
]


@dataclass(frozen=True)
class WorkloadOptions:
    """The workload options shared by ``estimate`` and ``sweep``."""

    workload: Path | None = None
    example: bool = False
    model: str | None = None
    model_config: Path | None = None
    batch: int | None = None
    seq: int | None = None
    phase: str = "prefill"
    context: int | None = None
    precision: str = "bf16"
    attention: str | None = None
    image_size: int | None = None
    trace_mode: bool = False
    prefill_tokens: int | None = None

    @classmethod
    def pick(cls, values: Mapping[str, Any]) -> WorkloadOptions:
        """The workload options among a command's parameters (e.g. its ``locals()``)."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def build(self, gpu: GPUSpec) -> Workload:
        """The pass these options describe, checked against ``gpu`` (fp8 support, memory).

        Raises:
            WorkloadError: not exactly one source, a model without ``--batch``, a precision the
                part cannot run, or a request that does not fit the part's memory.
        """
        chosen = sum(
            (self.workload is not None, bool(self.model or self.model_config), self.example)
        )
        if chosen != 1:
            raise WorkloadError("give exactly one of --workload FILE, --model NAME or --example")
        if self.workload is not None:
            from joulecast.workload.energaizer import load_energaizer

            return load_energaizer(self.workload)
        if self.example:
            from joulecast.workload.example import example_workload

            return example_workload()
        return self._model_pass(gpu)

    def _model_pass(self, gpu: GPUSpec) -> Workload:
        from joulecast.models.build import build_workload, memory_required_bytes
        from joulecast.models.registry import model_config_from_hf_json

        if self.batch is None:
            raise WorkloadError("--model needs --batch")
        cfg: str | ModelConfig = (
            model_config_from_hf_json(self.model_config)
            if self.model_config is not None
            else str(self.model)
        )
        precision = self.precision.strip().lower()
        if precision == "auto":
            precision = _auto_precision(cfg)
        prec = Precision(precision) if precision in set(Precision) else None
        if prec is None:
            raise WorkloadError(
                f"unsupported precision '{self.precision}' (use bf16, fp16, fp32, fp8 or auto)"
            )
        if prec in (Precision.FP8, Precision.FP4) and not gpu.supports_tensor(prec):
            raise WorkloadError(f"{gpu.id} has no {prec} tensor cores; use bf16 or fp16")
        kwargs: dict[str, Any] = {
            "batch": self.batch,
            "seq": self.seq,
            "phase": self.phase,
            "context": self.context,
            "precision": precision,
            "attention": self.attention,
            "image_size": self.image_size,
            "prefill_tokens": self.prefill_tokens,
        }
        need = memory_required_bytes(cfg, **kwargs)
        if need > gpu.memory_capacity_bytes:
            raise WorkloadError(
                f"this request needs {need / 1e9:.1f} GB (weights, KV cache, activations) but "
                f"{gpu.id} has {gpu.memory_capacity_gb:g} GB; lower the batch or sequence"
            )
        return build_workload(cfg, trace_mode=self.trace_mode, **kwargs)


def _auto_precision(model: str | ModelConfig) -> str:
    """What ``--precision auto`` means for ``model``: its checkpoint's format.

    Raises:
        WorkloadError: an mxfp4 checkpoint (joulecast has no fp4 kernel model; the Python API
            runs it as bf16, the command line makes the user say so).
    """
    from joulecast.models.build import checkpoint_precision
    from joulecast.models.registry import load_model_config

    cfg = load_model_config(model) if isinstance(model, str) else model
    if cfg.weight_precision == "mxfp4":
        raise WorkloadError(
            f"--precision auto: {cfg.id} ships mxfp4 weights, which joulecast has no kernel model "
            "for; pass --precision bf16 to model them dequantised to bf16 (or another explicit "
            "format)"
        )
    return checkpoint_precision(cfg)


HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host",
        help="Machine issuing the kernels: a shipped host id (joulecast host list) or a host file "
        "(joulecast host fit). Default: the part's default host.",
    ),
]
