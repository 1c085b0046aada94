"""One jitted function of the model on the emulated platform: called like ``jax.jit(fn)``, it lowers the
program once per argument signature (for Tenstorrent devices: tt-mlir's text; for the CPU mesh: the binding),
has it compiled for the Tenstorrent target (the platform's compile service: once per session, from the on-disk
cache after that), binds the TTNN module to the program (``executor.runner.bind``) and executes it; results
come back as numpy arrays in the program's result types (bfloat16 stays bfloat16)."""

from __future__ import annotations

import warnings
from typing import Dict

import jax
import numpy as np

from ...model.fused import TT_PLATFORM


def _signature(x):
    """What decides the lowered program for one argument: shape, dtype, weak type and sharding."""
    if isinstance(x, jax.Array):
        return ("array", x.shape, str(x.dtype), x.weak_type, x.sharding)
    a = np.asarray(x)
    return ("host", a.shape, str(a.dtype), not isinstance(x, (np.ndarray, np.generic)))


class EmulatedProgram:
    def __init__(self, platform, model, fn, name: str, donate_argnums=()):
        self.platform, self.model, self.name = platform, model, name
        # The same jax.jit the devices would run, without tt-mlir's options: XLA:CPU lowers it (and rejects
        # them); the options go to tt-mlir with the program.
        self.jitted = jax.jit(fn, donate_argnums=donate_argnums)
        self._bound: Dict[tuple, object] = {}

    def lower(self, *args):
        return self.jitted.lower(*args)

    def __call__(self, *args):
        leaves, tree = jax.tree.flatten(args)
        key = (tree, tuple(_signature(x) for x in leaves))
        bound = self._bound.get(key)
        if bound is None:
            # tt-mlir gets the program lowered for Tenstorrent devices, as on them (tt-mlir's custom calls included:
            # model/fused.py); XLA:CPU compiles the same trace lowered for the CPU mesh, for the binding
            traced = self.jitted.trace(*args)
            with warnings.catch_warnings():  # as for a device: JAX lowers no donation for "tt"
                warnings.filterwarnings("ignore", "Some donated buffers were not usable")
                for_tt = traced.lower(lowering_platforms=(TT_PLATFORM,))
            bound = self._bound[key] = self.platform.bind(self.model, self.name, for_tt, traced.lower())
        return self.platform.run(bound, args)
