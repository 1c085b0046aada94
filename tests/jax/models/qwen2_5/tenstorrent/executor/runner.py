"""A compiled TTNN module bound to the JAX program it was compiled from, called like that program.

``bind(module_text, lowered)`` reads, from the same program lowered and compiled for the CPU on a mesh
of the same shape, which flattened arguments the module takes (JAX drops unused ones), how each is
sharded, and how each result is sharded. Calling the bound program with the program's own arguments
(global arrays) hands every virtual device its shard (``ttcore.shard_status = presharded``) or the whole
tensor (``unsharded``), checks each against the module's local shape, runs the executor, and assembles
each result's global array from the devices' shards; replicas of one shard must agree bit for bit (two
devices that hold the same part of a result and differ are a wrong lowering, reported as such).

``generate`` runs greedy generation as ``generate(loop="host")`` does, with the compiled prefill and
decode-step programs in place of the JAX ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import List

import jax
import numpy as np

from .executor import ExecutionError, Executor
from .values import float_array
from ..ttnn.module import parse


@dataclasses.dataclass
class BoundProgram:
    name: str
    executor: Executor
    sha256: str
    in_tree: object
    kept: List[int]
    in_shardings: list   # per kept argument
    out_tree: object
    out_shardings: list  # per flat result
    out_avals: list
    devices: list        # the CPU mesh's devices in mesh order: device d of the module is devices[d]
    _shards: dict = dataclasses.field(default_factory=dict)

    def __call__(self, *args):
        leaves, tree = jax.tree.flatten((args, {}))
        if tree != self.in_tree:
            raise ExecutionError(f"{self.name}: arguments {tree} differ from the compiled program's {self.in_tree}")
        main = self.executor.module.functions["main"]
        if len(self.kept) != len(main.args):
            raise ExecutionError(f"{self.name}: JAX keeps {len(self.kept)} arguments, @main takes {len(main.args)}")
        inputs = []
        for arg, index, sharding in zip(main.args, self.kept, self.in_shardings):
            leaf = leaves[index]
            if arg.argument_type == "parameter":  # the same shards for the same weights: cached const-evals hit
                got = self._shards.get(id(leaf))
                if got is None or got[0] is not leaf:
                    got = self._shards[id(leaf)] = (leaf, self._split(arg, leaf, sharding))
                inputs.append(got[1])
            else:
                inputs.append(self._split(arg, leaf, sharding))
        outs = self.executor.run(inputs)
        if len(outs) != len(self.out_avals):
            raise ExecutionError(f"{self.name}: @main returns {len(outs)} results, the program {len(self.out_avals)}")
        flat = [self._assemble(i, per, aval, sharding)
                for i, (per, aval, sharding) in enumerate(zip(outs, self.out_avals, self.out_shardings))]
        return jax.tree.unflatten(self.out_tree, flat)

    def _split(self, arg, x, sharding):
        if (isinstance(x, jax.Array) and arg.shard_status != "unsharded"
                and set(x.sharding.device_set) == set(self.devices) and x.sharding.is_equivalent_to(sharding, x.ndim)):
            # a device array sharded as the program takes it: each device's own shard, without a gathered copy
            mine = {s.device: s.data for s in x.addressable_shards}
            return [np.asarray(mine[dev]) for dev in self.devices]
        x = np.asarray(x)
        if arg.shard_status == "unsharded":
            return [x] * len(self.devices)
        where = sharding.devices_indices_map(x.shape)
        return [x[where[dev]] for dev in self.devices]

    def _assemble(self, i, per, aval, sharding):
        out = np.zeros(aval.shape, _host_dtype(aval.dtype))
        where = sharding.devices_indices_map(tuple(aval.shape))
        seen = {}
        for d, dev in enumerate(self.devices):
            index = where[dev]
            piece = per[d]
            if piece.shape != out[index].shape:
                raise ExecutionError(f"{self.name}: result {i} on device {d} is {piece.shape}, its shard "
                                     f"{out[index].shape}")
            key = repr(index)
            if key in seen:
                first_d, first = seen[key]
                if not np.array_equal(first, piece, equal_nan=float_array(piece)):
                    diff = float(np.nanmax(np.abs(first.astype(np.float64) - piece.astype(np.float64))))
                    raise ExecutionError(f"{self.name}: result {i}: devices {first_d} and {d} hold the same shard "
                                         f"and differ (max |diff| {diff:g}): the program's replicas disagree")
                continue
            seen[key] = (d, piece)
            out[index] = piece.astype(out.dtype) if out.dtype != np.bool_ else piece != 0
        return out


def _host_dtype(dtype):
    """The result's numpy dtype: the program's own (bfloat16 as ml_dtypes' bfloat16), so that a result fed
    back to a program (the host loop's caches) has the type it was lowered for."""
    return np.dtype(dtype)


def bind(module_text: str, lowered, name: str = "program", arithmetic: str = "exact") -> BoundProgram:
    """Bind a TTNN module to ``lowered`` (the ``jax.stages.Lowered`` of the program it was compiled from,
    lowered here on CPU devices of the module's mesh shape), executed in ``arithmetic`` (``exact``, ``chip``)."""
    module = parse(module_text)
    args = lowered._lowering.compile_args
    compiled = lowered.compile()
    flat_in = jax.tree.leaves(compiled.input_shardings)
    kept = sorted(args["kept_var_idx"])
    in_shardings = [flat_in[i] for i in kept] if len(flat_in) != len(kept) else flat_in
    out_shardings = jax.tree.leaves(compiled.output_shardings)
    mesh = next(s.mesh for s in in_shardings if hasattr(s, "mesh"))
    if tuple(mesh.devices.shape) != tuple(module.mesh_shape):
        raise ExecutionError(f"{name}: the module's mesh is {module.mesh_shape}, the program's "
                             f"{tuple(mesh.devices.shape)}")
    return BoundProgram(name, Executor(module, name, arithmetic=arithmetic), hashlib.sha256(module_text.encode()).hexdigest(),
                        lowered.in_tree, kept, in_shardings, lowered.out_tree, out_shardings,
                        list(args["global_out_avals"]), list(mesh.devices.flat))


def generate(model, prefill: BoundProgram, step: BoundProgram, input_ids, attention_mask=None,
             max_new_tokens: int = 16, eos_token_id=None) -> np.ndarray:
    """Greedy tokens [batch, max_new_tokens] through the compiled prefill and decode-step programs."""
    from ...model import generation as gen

    return gen.generate(model, input_ids, attention_mask, max_new_tokens, eos_token_id, loop="host",
                        programs=(prefill, step))
