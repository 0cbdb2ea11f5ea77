"""A request that does not fit: the numbers, and the layouts that would fit."""

from __future__ import annotations

from joulecast.errors import JoulecastError, WorkloadError
from joulecast.hardware.spec import GPUSpec, gpu_ids, load_gpu
from joulecast.models.registry import ModelConfig
from joulecast.serving.layout import Layout, resolve_layout
from joulecast.serving.memory import ServingMemory, serving_memory


def _fits(
    cfg: ModelConfig, gpu: GPUSpec, n: int, weights: str, input_tokens: int, output_tokens: int
) -> bool:
    try:
        layout = resolve_layout(cfg, n, ep=n if cfg.is_moe and n > 1 else None)
    except JoulecastError:
        return False
    mem = serving_memory(cfg, gpu, layout, weights, input_tokens, output_tokens)
    return mem.max_running_batch >= 1


def does_not_fit(
    cfg: ModelConfig,
    gpu: GPUSpec,
    layout: Layout,
    weights: str,
    input_tokens: int,
    output_tokens: int,
    mem: ServingMemory,
) -> WorkloadError:
    """The error for a replica whose GPUs cannot hold the model and one sequence."""
    need = (
        mem.weights_bytes + mem.workspace_bytes + mem.kv_bytes_per_token * mem.tokens_per_sequence
    )
    where = f"{layout.num_gpus} {gpu.id}" + (f" (tp {layout.tp})" if layout.tp > 1 else "")
    options: list[str] = []
    for n in (2, 4, 8):
        if n > layout.num_gpus and _fits(cfg, gpu, n, weights, input_tokens, output_tokens):
            flag = f"--ep {n}" if cfg.is_moe else f"--tp {n}"
            options.append(f"{n} {gpu.id} with --num-gpus {n} {flag}")
            break
    bigger = [
        g
        for g in (load_gpu(i) for i in gpu_ids())
        if g.memory_capacity_gb > gpu.memory_capacity_gb
        and _fits(cfg, g, 1, weights, input_tokens, output_tokens)
    ]
    if bigger:
        options.append(f"1 {min(bigger, key=lambda g: g.memory_capacity_gb).id}")
    hint = f"; fits on {' or '.join(options)}" if options else ""
    return WorkloadError(
        f"{cfg.id} ({weights}) needs {need / 1e9:.0f} GB per GPU on {where} but each has "
        f"{mem.usable_bytes / 1e9:.0f} GB usable ({gpu.memory_capacity_gb:g} GB x "
        f"{mem.usable_bytes / mem.capacity_bytes:.2f}){hint}"
    )
