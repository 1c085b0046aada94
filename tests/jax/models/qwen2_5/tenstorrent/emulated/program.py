"""One jitted function of the model on the emulated platform: called like ``jax.jit(fn)``, it lowers the
program for the CPU mesh once per argument signature, has it compiled for the Tenstorrent target (the
platform's compile service: once per session, from the on-disk cache after that), binds the TTNN module to
the program (``executor.runner.bind``) and executes it; results come back as numpy arrays in the program's
result types (bfloat16 stays bfloat16)."""

from __future__ import annotations

from typing import Dict

import jax
import numpy as np

from ...model.fused import DECODE_CUSTOM_CALL, plain_jax_decode


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
        self.fn, self.donate_argnums = fn, donate_argnums
        self._bound: Dict[tuple, object] = {}

    def lower(self, *args):
        return self.jitted.lower(*args)

    def __call__(self, *args):
        leaves, tree = jax.tree.flatten(args)
        key = (tree, tuple(_signature(x) for x in leaves))
        bound = self._bound.get(key)
        if bound is None:
            lowered = self.jitted.lower(*args)
            host = None
            if DECODE_CUSTOM_CALL in lowered.as_text():  # the fused decode: traced again for XLA:CPU's compile
                with plain_jax_decode():
                    host = jax.jit(self.fn, donate_argnums=self.donate_argnums).lower(*args)
            bound = self._bound[key] = self.platform.bind(self.model, self.name, lowered, host)
        return self.platform.run(bound, args)
