"""Partition rules, the device mesh, and the shard_map entry point.

``PARTITION_RULES`` is the single table mapping parameter paths (``/``-joined Flax
names) to ``PartitionSpec``s over the mesh axes ``("batch", "model")``. Weights are
replicated over "batch"; the "model" axis splits the slot axes that ``layout.py``
padded, so an even split hands each device whole heads, whole vocabulary rows and
whole MLP columns.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from .shard import BATCH_AXIS, MODEL_AXIS

AXES = (BATCH_AXIS, MODEL_AXIS)

# (rule name, regex over the parameter path, spec). Every parameter must match exactly one.
PARTITION_RULES = (
    ("embedding", r"^embed_tokens/embedding$", P(MODEL_AXIS, None)),          # [V', E] vocab rows
    ("qkv_kernel", r"^layers_\d+/self_attn/qkv_proj/kernel$", P(None, MODEL_AXIS)),  # [E, T*(q+2kv)*D]
    ("qkv_bias", r"^layers_\d+/self_attn/qkv_proj/bias$", P(MODEL_AXIS)),            # [T*(q+2kv)*D]
    ("o_kernel", r"^layers_\d+/self_attn/o_proj/kernel$", P(MODEL_AXIS, None)),          # [q_slots*D, E]
    ("gate_up_kernel", r"^layers_\d+/mlp/gate_up_proj/kernel$", P(None, MODEL_AXIS)),  # [E, 2*I']
    ("down_kernel", r"^layers_\d+/mlp/down_proj/kernel$", P(MODEL_AXIS, None)),          # [I', E]
    ("norm", r"^(layers_\d+/(input|post_attention)_layernorm|norm)/scale$", P()),        # [E]
    ("lm_head", r"^lm_head/kernel$", P(None, MODEL_AXIS)),                               # [E, V']
)


class UnmatchedParameterError(KeyError):
    pass


def match_rule(path: str) -> tuple:
    """The (name, spec) of the one rule matching ``path``; raises if none or several match."""
    hits = [(name, spec) for name, pattern, spec in PARTITION_RULES if re.search(pattern, path)]
    if len(hits) != 1:
        what = "no partition rule matches" if not hits else f"rules {[h[0] for h in hits]} all match"
        raise UnmatchedParameterError(f"{what} parameter {path!r}; update PARTITION_RULES in partitioning.py")
    return hits[0]


def path_str(key_path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in key_path)


def partition_specs(params):
    """A pytree of PartitionSpecs with the structure of ``params``."""
    return jax.tree_util.tree_map_with_path(lambda kp, _: match_rule(path_str(kp))[1], params)


# --- mesh ----------------------------------------------------------------------------------

def _auto_axis_types(n: int) -> dict:
    axis_type = getattr(jax.sharding, "AxisType", None)
    return {"axis_types": (axis_type.Auto,) * n} if axis_type is not None else {}


def make_mesh(shape: Sequence[int], devices: Optional[Sequence] = None, platform: Optional[str] = None) -> Mesh:
    """A ``Mesh`` of shape (batch, model) over the first batch*model devices.

    ``devices`` defaults to ``jax.devices(platform)`` (the default backend when None: the
    ``tt`` plugin when installed, else the CPU). Axes are Auto so GSPMD and shard_map mix.
    """
    if len(shape) != 2 or any(int(s) < 1 for s in shape):
        raise ValueError(f"mesh shape must be (batch, model) with positive sizes, got {tuple(shape)}")
    batch, model = (int(s) for s in shape)
    devs = list(devices) if devices is not None else jax.devices(platform) if platform else jax.devices()
    need = batch * model
    if len(devs) < need:
        raise ValueError(
            f"mesh {batch}x{model} needs {need} devices but only {len(devs)} "
            f"{devs[0].platform if devs else ''} devices are available; on the CPU set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={need} before JAX starts")
    grid = np.array(devs[:need], dtype=object).reshape(batch, model)
    return Mesh(grid, AXES, **_auto_axis_types(2))


def model_size(mesh: Mesh) -> int:
    return mesh.shape[MODEL_AXIS]


def batch_axis_for(mesh: Mesh, batch: int):
    """Shard sequences over "batch" when its size divides the batch, else replicate."""
    return BATCH_AXIS if batch % mesh.shape[BATCH_AXIS] == 0 else None


def named(mesh: Mesh, spec: P) -> NamedSharding:
    return NamedSharding(mesh, spec)


def shard_map(fn, mesh: Mesh, in_specs, out_specs):
    """``jax.shard_map`` where present (current jax), else the experimental one."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map as legacy  # jax < 0.6
    return legacy(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)
