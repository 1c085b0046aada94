"""Reading a compiled TTNN module: its functions, their op histograms, per-layer figures.

tt-mlir's TTNN module holds the per-call function ``@main`` (``tt.function_type =
"forward_device"``) and the ``@main_const_eval_N`` functions it hoisted out because they
depend on constants and parameters only (they run once and are cached). Op names are
counted as tt-mlir prints them (``%3 = "ttnn.matmul"(...)``); deallocations are kept apart,
as they free memory and compute nothing.
"""

from __future__ import annotations

import collections
import re
from typing import Dict

_FUNC = re.compile(r"func\.func (?:public |private )?@(\w+)\(")
_OP = re.compile(r'(?:^|=\s*)"ttnn\.(\w+)"\(')
_ARG_TYPE = re.compile(r"ttcore\.argument_type<(\w+)>")
NOT_COMPUTE = ("deallocate",)
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "collective_permute",
               "point_to_point", "mesh_shard")


def functions(module: str) -> Dict[str, str]:
    """{function name: its text} for every ``func.func`` of the module."""
    out, name, lines = {}, None, []
    for line in module.splitlines():
        found = _FUNC.search(line)
        if found:
            if name:
                out[name] = "\n".join(lines)
            name, lines = found.group(1), []
        if name:
            lines.append(line)
    if name:
        out[name] = "\n".join(lines)
    return out


def histogram(function_text: str, include_deallocate: bool = False) -> collections.Counter:
    ops = collections.Counter(m.group(1) for line in function_text.splitlines()
                              for m in [_OP.search(line.strip())] if m)
    if not include_deallocate:
        for name in NOT_COMPUTE:
            ops.pop(name, None)
    return ops


def argument_types(function_text: str) -> collections.Counter:
    """How many of the function's arguments are ``input``s and how many ``parameter``s."""
    return collections.Counter(_ARG_TYPE.findall(function_text.splitlines()[0]))  # the signature line


def main_function(module: str) -> str:
    funcs = functions(module)
    if "main" not in funcs:
        raise ValueError(f"no @main in the TTNN module (functions: {sorted(funcs)})")
    return funcs["main"]


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
