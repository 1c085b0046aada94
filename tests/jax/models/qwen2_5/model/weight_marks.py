"""Marking the parameters as weights, so tt-mlir treats them as compile-time parameters.

tt-xla's front end reads a weight mark as a call of a private identity function whose name
starts with ``tt.mark`` and which carries ``ttcore.argument_type = "parameter"``; it then
passes that argument to tt-mlir as a parameter instead of a per-call input, and tt-mlir
moves every computation that depends on parameters and constants only (the weights'
conversions to tile layout, for instance) into const-eval functions that run once and are
cached. Without the mark each weight is re-laid out on every decode step.

The mark is a primitive of this package lowered on every platform (on the CPU the call is an
identity that XLA inlines). It is applied to the whole parameter tree at the top of each
jitted program, outside ``shard_map``: tt-xla's own Flax hook marks inside ``Module.apply``,
which here runs inside ``shard_map`` where tt-mlir does not see the program's arguments.
"""

from __future__ import annotations

import jax
from jax.extend import core
from jax.interpreters import mlir
from jax.interpreters.mlir import ir

try:  # the func dialect's Python bindings, as jax ships them
    from jax._src.lib.mlir.dialects import func as func_dialect
except ImportError:  # pragma: no cover - older layouts
    from jaxlib.mlir.dialects import func as func_dialect

ARGUMENT_TYPE = "ttcore.argument_type"
MARK_PREFIX = "tt.mark_weight"

mark_weight_p = core.Primitive("qwen2_5_mark_weight")
mark_weight_p.def_impl(lambda x: x)
mark_weight_p.def_abstract_eval(lambda x: x)


def _identity_function(ctx, tensor_type) -> str:
    """The module's private identity function for ``tensor_type`` (created once per type)."""
    name = f"{MARK_PREFIX}_{'x'.join(map(str, tensor_type.shape)) or 'scalar'}_{tensor_type.element_type}"
    symbols = ctx.module_context.symbol_table
    if name not in symbols:
        with ir.InsertionPoint.at_block_begin(ctx.module_context.module.body):
            fn = func_dialect.FuncOp(name, ir.FunctionType.get([tensor_type], [tensor_type]))
            fn.sym_visibility = ir.StringAttr.get("private")
            block = fn.add_entry_block()
            with ir.InsertionPoint(block):
                func_dialect.ReturnOp([block.arguments[0]])
        symbols.insert(fn)
    return name


def _lowering(ctx, x):
    tensor_type = ir.RankedTensorType(x.type)
    call = func_dialect.CallOp([tensor_type], ir.FlatSymbolRefAttr.get(_identity_function(ctx, tensor_type)), [x])
    call.operation.attributes[ARGUMENT_TYPE] = ir.StringAttr.get("parameter")
    return [call.result]


mlir.register_lowering(mark_weight_p, _lowering)


def mark_weights(params):
    """``params`` with every array marked as a weight (an identity on values)."""
    return jax.tree.map(mark_weight_p.bind, params)
