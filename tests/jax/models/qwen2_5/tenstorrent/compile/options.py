"""The suite's tt-mlir compile options (optimization level, weight dtype, math fidelity, float32 accumulation)
as the (key, value) pairs a compile job and ``jax.jit`` take: one mapping for pytest's ``--tt-*`` options and
for ``tt-run``'s."""

from __future__ import annotations

from typing import Optional

# With fp32_dest_acc_en alone, tt-mlir writes a compute config naming only that field, and the runtime fills
# the others with the struct's defaults: LoFi (docs/chip_arithmetic.md). So it always goes with a fidelity.
FP32_DEST_ACC_FIDELITY = "hifi4"


def option_pairs(level: Optional[int], weight_dtype: Optional[str], fidelity: Optional[str],
                 fp32_dest_acc: bool = False) -> tuple:
    """``(("optimization_level", "1"), ...)`` for the options given; () for the plugin's defaults (bf16 weights
    are the default and name no option). ``fp32_dest_acc`` adds ``fp32_dest_acc_en`` and, without a
    ``fidelity``, ``math_fidelity = hifi4``."""
    out = []
    if level is not None:
        out.append(("optimization_level", str(level)))
    if weight_dtype and weight_dtype != "bf16":
        out.append(("experimental_weight_dtype", weight_dtype))
    if fidelity or fp32_dest_acc:
        out.append(("math_fidelity", fidelity or FP32_DEST_ACC_FIDELITY))
    if fp32_dest_acc:
        out.append(("fp32_dest_acc_en", "true"))
    return tuple(out)
