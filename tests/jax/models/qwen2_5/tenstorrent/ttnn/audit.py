"""Auditing a compiled TTNN module: its functions' op histograms, per-layer figures, argument types.

tt-mlir's TTNN module holds the per-call function ``@main`` (``tt.function_type =
"forward_device"``) and the ``@main_const_eval_N`` functions it hoisted out because they
depend on constants and parameters only (they run once and are cached). Ops are counted by
their TTNN name (``ttnn.matmul`` -> ``matmul``), as ``module.parse`` reads them; deallocations are
kept apart, as they free memory and compute nothing.
"""

from __future__ import annotations

import collections
from typing import Dict, Union

from .module import Function, Module, parse

NOT_COMPUTE = ("deallocate",)
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "collective_permute",
               "point_to_point", "mesh_shard")


def histogram(function: Function, include_deallocate: bool = False) -> collections.Counter:
    """How many times the function runs each TTNN op (``ttcore`` ops such as ``load_cached`` are not counted)."""
    ops = collections.Counter(op.kind for op in function.ops if op.name.startswith("ttnn."))
    if not include_deallocate:
        for name in NOT_COMPUTE:
            ops.pop(name, None)
    return ops


def argument_types(function: Function) -> collections.Counter:
    """How many of the function's arguments are ``input``s and how many ``parameter``s."""
    return collections.Counter(a.argument_type for a in function.args if a.argument_type)


def main_function(module: Union[str, Module]) -> Function:
    """``@main`` of a module (its text or the parsed ``Module``)."""
    return (parse(module) if isinstance(module, str) else module).main


def per_layer(hist_many: collections.Counter, layers_many: int, hist_one: collections.Counter,
              layers_one: int) -> Dict[str, float]:
    """Ops each decoder layer adds: the difference of two compiles of the same program with
    ``layers_many`` and ``layers_one`` layers, divided by the layer difference (ops shared by
    all layers, like the embedding or the RoPE table lookup, cancel out)."""
    span = layers_many - layers_one
    names = sorted(set(hist_many) | set(hist_one))
    out = {n: (hist_many.get(n, 0) - hist_one.get(n, 0)) / span for n in names}
    return {n: (int(v) if float(v).is_integer() else round(v, 2)) for n, v in out.items() if v}


def format_histogram(hist: Dict[str, float]) -> str:
    total = sum(hist.values())
    parts = ", ".join(f"{n} {v}" for n, v in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{total:g} ops: {parts}"
