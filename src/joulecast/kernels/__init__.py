"""Analytical kernel models: one module per kernel class.

Each model turns one IR op into an :class:`~joulecast.kernels.cost.OpCost`: the work it does
(FLOPs per pipe, bytes per memory level) and the clock-independent ingredients of its run time
(math cycles after tiling and wave quantisation, DRAM bytes, L2 bytes). The calibrated time model
in :mod:`joulecast.timeline` combines those ingredients at a given SM clock.
"""

from joulecast.kernels.cost import OpClass, OpCost, cost_of

__all__ = ["OpClass", "OpCost", "cost_of"]
