"""The host: the CPU and framework that issue a pass's kernels, a part of its own.

An eager PyTorch pass is two timelines: the host issuing ops (Python, the dispatcher, the
driver) and the GPU running them. At small batch the host is the bottleneck, and its speed is a
property of the machine (CPU generation and clock, Python and PyTorch versions), not of the GPU:
the same A100 in another server runs a launch-bound pass at another speed. A :class:`Host` holds
those costs. The shipped hosts are the measurement machines, fitted by ``joulecast calibrate``
beside the GPU coefficients (one YAML file each in ``data/hosts/``); ``defaults.yaml`` there
says which host a part is assumed to sit in when none is given. ``joulecast host fit`` measures
a user's own host from one pass.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from joulecast.errors import SpecError, UnknownNameError
from joulecast.schema import NonNegativeFloat, PositiveFloat, to_builtins, validate
from joulecast.yamlio import load_mapping, load_yaml_text


class Host(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Host-side costs of issuing one pass.

    Attributes:
        id: short name.
        description: the machine and software stack, as far as known.
        host_op_s: host time to issue one functional op (a TensorIterator pointwise or
            row-wise kernel, a batched matmul of activations).
        host_module_op_s: host time to issue one module-level op (``nn.Linear``, conv,
            attention module): more Python than a functional op.
        pass_overhead_s: fixed host time per pass (forward-call entry and exit, output objects);
            half is spent before the first launch, half after the last.
        speed_factor: speed relative to the host this one was scaled from (1 for a fitted host).
        serving_step_s: CPU time of one serving-engine step (scheduling, input preparation,
            sampling, detokenisation, API processes) beyond the GPU's work, with no sequence
            running; async scheduling overlaps it with the GPU step, so a step lasts the longer
            of the two.
        serving_per_sequence_s: its growth per running sequence.
        sources: where the numbers come from.
    """

    id: str
    description: str
    host_op_s: NonNegativeFloat
    host_module_op_s: NonNegativeFloat
    pass_overhead_s: NonNegativeFloat
    speed_factor: PositiveFloat = 1.0
    serving_step_s: NonNegativeFloat = 0.0
    serving_per_sequence_s: NonNegativeFloat = 0.0
    sources: list[str] = []

    def serving_step_time_s(self, sequences: float) -> float:
        """CPU time of one serving step with ``sequences`` running."""
        return self.serving_step_s + self.serving_per_sequence_s * sequences

    def with_cuda_graphs(self) -> Host:
        """The host of a pass replayed as one CUDA graph: the graph is launched once, so no
        Python and dispatch time per op; the fixed time per pass stays."""
        return msgspec.structs.replace(self, host_op_s=0.0, host_module_op_s=0.0)

    def scaled(self, speed_factor: float, new_id: str, source: str) -> Host:
        """This host made ``speed_factor`` times faster (every cost divided by it)."""
        if not speed_factor > 0:
            raise SpecError(f"host speed factor must be positive (got {speed_factor:g})")
        return Host(
            id=new_id,
            description=f"{self.description}, scaled {speed_factor:.3g}x",
            host_op_s=self.host_op_s / speed_factor,
            host_module_op_s=self.host_module_op_s / speed_factor,
            pass_overhead_s=self.pass_overhead_s / speed_factor,
            speed_factor=self.speed_factor * speed_factor,
            serving_step_s=self.serving_step_s / speed_factor,
            serving_per_sequence_s=self.serving_per_sequence_s / speed_factor,
            sources=[*self.sources, source],
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data of the host (the YAML file's fields)."""
        return to_builtins(self)


def _host_dir() -> Any:
    return resources.files("joulecast.coefficients") / "data" / "hosts"


@cache
def host_ids() -> tuple[str, ...]:
    """Ids of every host shipped with joulecast."""
    return tuple(
        sorted(
            p.name.removesuffix(".yaml")
            for p in _host_dir().iterdir()
            if p.name.endswith(".yaml") and p.name != "defaults.yaml"
        )
    )


@cache
def load_host(host_id: str) -> Host:
    """A shipped host by id.

    Raises:
        UnknownNameError: no such host (the message lists the known ones).
    """
    key = host_id.strip().lower()
    if key not in host_ids():
        raise UnknownNameError("host", host_id, host_ids())
    text = (_host_dir() / f"{key}.yaml").read_text(encoding="utf-8")
    return validate(Host, load_yaml_text(text), f"host {key}.yaml")


def host_from_file(path: str | Path) -> Host:
    """Read a host file (YAML or JSON), e.g. one written by ``joulecast host fit``.

    Raises:
        SpecError: missing, unreadable, malformed file, or missing/negative fields.
    """
    p = Path(path)
    data = load_mapping(p, "host file")
    data.setdefault("id", p.stem)
    return validate(Host, data, p.name)


def resolve_host(host: str | Host) -> Host:
    """Accept a host, a shipped host id, or a path to a host file."""
    if isinstance(host, Host):
        return host
    if host.endswith((".yaml", ".yml", ".json")):
        return host_from_file(host)
    return load_host(host)


@cache
def _defaults() -> dict[str, dict[str, str]]:
    text = (_host_dir() / "defaults.yaml").read_text(encoding="utf-8")
    data = load_yaml_text(text)
    return {
        "by_gpu": dict(data.get("by_gpu") or {}),
        "otherwise": dict(data["otherwise"]),
        "serving": dict(data.get("serving") or {}),
    }


def default_host_id(gpu_id: str, form_factor: str) -> str:
    """The host a part is assumed to sit in when none is given (``hosts/defaults.yaml``): the
    measurement host for a calibrated part, else a default by form factor."""
    table = _defaults()
    if gpu_id in table["by_gpu"]:
        return table["by_gpu"][gpu_id]
    key = "SXM" if form_factor.upper().startswith("SXM") else form_factor.upper()
    return table["otherwise"].get(key, table["otherwise"]["DEFAULT"])


def default_serving_host_id() -> str:
    """The host of a serving engine when none is given (``defaults.yaml``, ``serving:``)."""
    return _defaults()["serving"]["DEFAULT"]
