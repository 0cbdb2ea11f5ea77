"""LLM serving on 1 to 8 GPUs: steady-state continuous batching over the estimator.

``serve(model, gpu, batch=..., input_tokens=..., output_tokens=...)`` answers "what will serving
this model cost in joules per token, at which latency?" for a vLLM-like engine, with tensor,
expert and data parallelism (:mod:`joulecast.serving.layout`), memory and the feasible batch
(:mod:`joulecast.serving.memory`), and collectives (:mod:`joulecast.serving.comm`).
"""

from joulecast.serving.engine import ServeResult, StepBreakdown, serve
from joulecast.serving.layout import Layout, gpu_shard, resolve_layout
from joulecast.serving.memory import ServingMemory, serving_memory

__all__ = [
    "Layout",
    "ServeResult",
    "ServingMemory",
    "StepBreakdown",
    "gpu_shard",
    "resolve_layout",
    "serve",
    "serving_memory",
]
