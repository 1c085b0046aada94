"""The suite's three tt-mlir compile options (optimization level, weight dtype, math fidelity) as the
(key, value) pairs a compile job and ``jax.jit`` take: one mapping for pytest's ``--tt-*`` options and for
``tt-run``'s."""

from __future__ import annotations

from typing import Optional


def option_pairs(level: Optional[int], weight_dtype: Optional[str], fidelity: Optional[str]) -> tuple:
    """``(("optimization_level", "1"), ...)`` for the options given; () for the plugin's defaults (bf16 weights
    are the default and name no option)."""
    out = []
    if level is not None:
        out.append(("optimization_level", str(level)))
    if weight_dtype and weight_dtype != "bf16":
        out.append(("experimental_weight_dtype", weight_dtype))
    if fidelity:
        out.append(("math_fidelity", fidelity))
    return tuple(out)
