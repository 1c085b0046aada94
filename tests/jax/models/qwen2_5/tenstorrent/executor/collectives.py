"""The ops that combine virtual devices, each over the groups its ``cluster_axis`` makes of the mesh.

A module's mesh is ``R x C`` (``ttcore.meshes``); device ``d`` sits at row ``d // C``, column ``d % C``
(the order of ``jax.sharding.Mesh.devices.flat``). ``cluster_axis = 0`` groups the devices of one column
(their position in the group is the row), ``cluster_axis = 1`` those of one row (position: the column).
Each op takes every device's input and returns every device's result:

* ``all_reduce``: each member gets the sum of its group's inputs, computed in float32 (integers
  exactly) and rounded to the declared type. A ``max`` or ``min`` reduce type is an error unless the
  executor is asked to run it as written: upstream tt-mlir's verifier refuses one, and the plugin build here
  accepts it but its runtime calls ``ttnn::all_reduce``, which always sums;
* ``all_gather``: each member gets its group's inputs concatenated along ``all_gather_dim`` in group order;
* ``reduce_scatter``: the group's reduction split along ``scatter_dim``; member k keeps chunk k;
* ``mesh_partition``: member k keeps chunk k of its own input along ``dim`` (no data moves);
* ``mesh_shard``: ``full_to_shard`` splits a host-side full tensor over the mesh (``shard_dims`` names the
  tensor dimension each mesh axis splits, -1 for none; ``replicate`` gives each device the whole tensor),
  ``shard_to_full`` concatenates the devices' shards back (replicas must agree);
* ``distribute_tensor``: a host tensor (the same on every device) replicated or split per mesh dimension
  (``mapper_config``'s placements), as GSPMD-partitioned programs take an unsharded input;
* ``aggregate_tensor``: the inverse, the devices' shards joined into one host tensor (``composer_config``'s dims).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from .ops import KERNEL_ONLY, UnsupportedOp, _out
from ..ttnn.attributes import mesh_composer, mesh_mapper
from .values import enum, float_array, int_list, number

_REDUCE = {"sum": np.sum, "max": np.max, "min": np.min}


def groups(mesh: Tuple[int, int], axis: int) -> List[List[int]]:
    """Device indices of each group along ``axis``, members in axis order."""
    rows, cols = mesh
    if axis == 0:
        return [[r * cols + c for r in range(rows)] for c in range(cols)]
    if axis == 1:
        return [[r * cols + c for c in range(cols)] for r in range(rows)]
    raise UnsupportedOp(f"cluster_axis {axis} on a 2-D mesh")


def _axis(op):
    return int(number(op.attrs["cluster_axis"]))


def _reduced(op, xs):
    kind = enum(op.attrs["reduce_type"])
    if kind not in _REDUCE:
        raise UnsupportedOp(f"{op.kind} with reduce_type {kind} is not implemented")
    stack = np.stack([x.astype(np.float32) if float_array(x) else x.astype(np.int64) for x in xs])
    return _REDUCE[kind](stack, axis=0)


RUNTIME_SUMS = ("upstream tt-mlir's verifier (AllReduceOp::verify) refuses a non-sum ttnn.all_reduce; the "
                "jax-tt-plugin build here accepts it, and its runtime runs it as a sum "
                "(runtime/lib/ttnn/operations/ccl/all_reduce.cpp calls ttnn::all_reduce, which takes no reduce "
                "type): on a chip this op computes a sum")


def all_reduce(op, per_device, mesh, as_written: bool = False):
    """``as_written``: honour a max/min ``reduce_type`` (the dialect's meaning); by default such an op is an
    error, as the runtime would sum."""
    kind = enum(op.attrs["reduce_type"])
    if kind != "sum" and not as_written:
        raise UnsupportedOp(f"reduce_type {kind}: {RUNTIME_SUMS}")
    out = [None] * len(per_device)
    for group in groups(mesh, _axis(op)):
        total = _out(op, _reduced(op, [per_device[d][0] for d in group]))
        for d in group:
            out[d] = [total]
    return out


def all_gather(op, per_device, mesh):
    dim = int(number(op.attrs["all_gather_dim"]))
    out = [None] * len(per_device)
    for group in groups(mesh, _axis(op)):
        whole = _out(op, np.concatenate([per_device[d][0] for d in group], axis=dim))
        for d in group:
            out[d] = [whole]
    return out


def reduce_scatter(op, per_device, mesh):
    dim = int(number(op.attrs["scatter_dim"]))
    out = [None] * len(per_device)
    for group in groups(mesh, _axis(op)):
        total = _reduced(op, [per_device[d][0] for d in group])
        if total.shape[dim] % len(group):
            raise UnsupportedOp(f"reduce_scatter of {total.shape[dim]} over {len(group)} devices")
        for k, piece in enumerate(np.split(total, len(group), axis=dim)):
            out[group[k]] = [_out(op, piece)]
    return out


def mesh_partition(op, per_device, mesh):
    dim = int(number(op.attrs["dim"]))
    out = [None] * len(per_device)
    for group in groups(mesh, _axis(op)):
        for k, d in enumerate(group):
            x = per_device[d][0]
            if x.shape[dim] % len(group):
                raise UnsupportedOp(f"mesh_partition of {x.shape[dim]} over {len(group)} devices")
            out[d] = [_out(op, np.split(x, len(group), axis=dim)[k])]
    return out


def mesh_shard(op, per_device, mesh):
    direction, kind = enum(op.attrs["shard_direction"]), enum(op.attrs["shard_type"])
    dims = int_list(op.attrs["shard_dims"]) if "shard_dims" in op.attrs else [-1, -1]
    rows, cols = mesh
    coords = [(d // cols, d % cols) for d in range(len(per_device))]
    if kind in ("replicate", "identity"):
        if direction == "full_to_shard":
            return [[_out(op, per_device[d][0])] for d in range(len(per_device))]
        first = per_device[0][0]
        if any(not np.array_equal(p[0], first) for p in per_device):
            raise UnsupportedOp("mesh_shard shard_to_full of a replicated tensor whose replicas differ")
        return [[_out(op, first)] for _ in per_device]
    if kind != "devices":
        raise UnsupportedOp(f"mesh_shard with shard_type {kind} is not implemented")
    if direction == "full_to_shard":
        out = []
        for d, (r, c) in enumerate(coords):
            x = per_device[d][0]
            for axis_pos, parts, dim in ((r, rows, dims[0]), (c, cols, dims[1])):
                if dim >= 0:
                    x = np.split(x, parts, axis=dim)[axis_pos]
            out.append([_out(op, x)])
        return out
    if direction == "shard_to_full":
        grid = [[per_device[r * cols + c][0] for c in range(cols)] for r in range(rows)]
        row_pieces = []
        for r in range(rows):
            row = grid[r]
            row_pieces.append(np.concatenate(row, axis=dims[1]) if dims[1] >= 0 else _agree(row))
        whole = np.concatenate(row_pieces, axis=dims[0]) if dims[0] >= 0 else _agree(row_pieces)
        return [[_out(op, whole)] for _ in per_device]
    raise UnsupportedOp(f"mesh_shard direction {direction}")


def distribute_tensor(op, per_device, mesh):
    """A host tensor put on the mesh: per mesh dimension (rows, then columns) ``replicate`` gives every device of
    that dimension the whole tensor, ``<shard, k>`` splits tensor dimension k into equal parts, part i on the
    devices at position i."""
    placements, override = mesh_mapper(op.attrs["mapper_config"])
    if override is not None and tuple(override) != tuple(mesh):
        raise UnsupportedOp(f"distribute_tensor over mesh {override} on a {mesh[0]}x{mesh[1]} module")
    if len(placements) != 2:
        raise UnsupportedOp(f"distribute_tensor with {len(placements)} placements on a 2-D mesh")
    rows, cols = mesh
    first = per_device[0][0]
    if any(not np.array_equal(p[0], first) for p in per_device):
        raise UnsupportedOp("distribute_tensor of a host tensor that differs between devices")
    out = []
    for d in range(len(per_device)):
        x = first
        for pos, parts, (kind, dim) in ((d // cols, rows, placements[0]), (d % cols, cols, placements[1])):
            if kind == "shard":
                if x.shape[dim] % parts:
                    raise UnsupportedOp(f"distribute_tensor: dimension {dim} ({x.shape[dim]}) over {parts} devices")
                x = np.split(x, parts, axis=dim)[pos]
        out.append([_out(op, x)])
    return out


def aggregate_tensor(op, per_device, mesh):
    """The devices' shards joined into one host tensor (every device gets it): along tensor dimension ``dims[1]``
    over each mesh row's devices in column order, then those rows along ``dims[0]`` in row order."""
    dims, override = mesh_composer(op.attrs["composer_config"])
    if override is not None and tuple(override) != tuple(mesh):
        raise UnsupportedOp(f"aggregate_tensor over mesh {override} on a {mesh[0]}x{mesh[1]} module")
    rows, cols = mesh
    row_parts = [np.concatenate([per_device[r * cols + c][0] for c in range(cols)], axis=dims[1]) for r in range(rows)]
    whole = np.concatenate(row_parts, axis=dims[0])
    return [[_out(op, whole)] for _ in per_device]


def _agree(pieces):
    if any(not np.array_equal(p, pieces[0]) for p in pieces):
        raise UnsupportedOp("mesh_shard shard_to_full over an unsharded mesh axis whose replicas differ")
    return pieces[0]


COLLECTIVE = {
    "all_reduce": (all_reduce, ("cluster_axis", "reduce_type", "num_links", "topology") + KERNEL_ONLY),
    "all_gather": (all_gather, ("all_gather_dim", "cluster_axis", "num_links", "topology") + KERNEL_ONLY),
    "reduce_scatter": (reduce_scatter, ("scatter_dim", "cluster_axis", "reduce_type", "num_links", "topology")
                       + KERNEL_ONLY),
    "mesh_partition": (mesh_partition, ("dim", "cluster_axis") + KERNEL_ONLY),
    "aggregate_tensor": (aggregate_tensor, ("composer_config",) + KERNEL_ONLY),
    "distribute_tensor": (distribute_tensor, ("mapper_config",) + KERNEL_ONLY),
    "mesh_shard": (mesh_shard, ("shard_direction", "shard_type", "shard_dims", "shard_shape") + KERNEL_ONLY),
}
