"""Tiny JAX functions, each compiled by tt-mlir to a TTNN module holding the ops it ``covers``: the
executor's op-level tests run each module and compare with the same function on XLA:CPU
(``test_ttnn_ops.py``; the compile worker builds them, ``compile_worker.py``).

``CASES[name]``: a ``Case`` with the mesh it compiles for, a builder ``build(mesh) -> (fn, args, specs)``
(``fn`` to jit, example numpy ``args``, each argument's ``PartitionSpec``), the op kinds its module must
contain, and its tolerance: ``None`` for exact equality (integer, boolean and data-movement results),
else the largest |difference| allowed relative to the largest |reference| value.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Tuple

import numpy as np

F32 = 1e-5      # float32 arithmetic: the executor and XLA:CPU may order sums differently
BF16 = 2e-2     # bfloat16 results: a few units in the last place of bfloat16 (2**-8 relative)


@dataclasses.dataclass(frozen=True)
class Case:
    mesh: Tuple[int, int]
    build: Callable
    covers: Tuple[str, ...]
    tolerance: Optional[float]
    compiler_options: Tuple[Tuple[str, str], ...] = ()  # tt-mlir's, for cases only a level >= 1 compiles


LEVEL1 = (("optimization_level", "1"),)  # where tt-mlir keeps tt-metal's fused SDPA and RoPE kernels


def _rng(seed=0):
    return np.random.RandomState(seed)


def _elementwise(mesh):
    import jax.numpy as jnp

    def fn(x, y):
        return (x + y) * y - x / (jnp.abs(y) + 1), jnp.minimum(x, y), jnp.maximum(x, y) ** 2, jnp.abs(x) ** y

    r = _rng(1)
    return fn, (r.randn(4, 40).astype(np.float32), r.randn(4, 40).astype(np.float32)), (None, None)


def _compare(mesh):
    import jax.numpy as jnp

    def fn(x, y, i):
        keep = ((x > y) & (y >= 0)) | (i == 3)
        return jnp.where(keep, x, y), keep, (i < 2) & ~(i == 0)

    r = _rng(2)
    return fn, (r.randn(6, 33).astype(np.float32), r.randn(6, 33).astype(np.float32),
                r.randint(0, 5, (6, 33)).astype(np.int32)), (None, None, None)


def _integers(mesh):
    import jax.numpy as jnp

    def fn(a, b):
        return (a * 3 + b) % 7, jnp.clip(a - b, 0, 30), jnp.maximum(a - 4, 0), a // (jnp.abs(b) + 1)

    r = _rng(3)
    return fn, (r.randint(0, 50, (5, 17)).astype(np.int32), r.randint(-9, 9, (5, 17)).astype(np.int32)), (None, None)


def _unary(mesh):
    import jax
    import jax.numpy as jnp

    def fn(x):
        return jnp.cos(x), jnp.sin(x) * x, jax.nn.silu(x), jnp.exp(-x * x), jax.lax.rsqrt(x * x + 1)

    return fn, (_rng(4).randn(3, 50).astype(np.float32),), (None,)


def _casts(mesh):
    import jax.numpy as jnp

    def fn(x, i):
        return (x * 4).astype(jnp.int32), i.astype(jnp.float32) / 3, x.astype(jnp.bfloat16) * 2

    r = _rng(5)
    return fn, (r.randn(4, 24).astype(np.float32) * 5, r.randint(-40, 40, (4, 24)).astype(np.int32)), (None, None)


def _reductions(mesh):
    import jax.numpy as jnp

    def fn(x, m):
        return (jnp.sum(x, -1), jnp.max(x, 1), jnp.min(x, axis=0), jnp.argmax(x, -1).astype(jnp.int32),
                jnp.cumsum(m, axis=1), jnp.prod(m[:, :3] + 1, axis=1), jnp.all(m[:, 0] >= 0))

    r = _rng(6)
    return fn, (r.randn(6, 70).astype(np.float32), r.randint(0, 2, (6, 40)).astype(np.int32)), (None, None)


def _softmax(mesh):
    import jax

    def fn(x):
        return jax.nn.softmax(x, axis=-1)

    return fn, (_rng(7).randn(2, 3, 5, 64).astype(np.float32) * 3,), (None,)


def _norms(mesh):
    import jax
    import jax.numpy as jnp

    from ...model.weight_marks import mark_weights

    def rms(x, scale):  # the model's RMSNorm (model/shard.py), which tt-mlir fuses
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + 1e-6)
        return scale * normed.astype(jnp.bfloat16)

    def fn(x, r, w, ids):
        w = mark_weights(w)  # a weight: it reaches the device through a const-eval function
        x, r = jnp.take(x, ids, axis=0).astype(jnp.bfloat16), r.astype(jnp.bfloat16)  # [4, 96], as the embedding
        first = rms(x.reshape(2, 2, 96), w).reshape(4, 96)
        total = x + first @ r
        return first, rms(total, w), total

    g = _rng(8)
    bf16 = __import__("ml_dtypes").bfloat16
    return fn, (g.randn(10, 96).astype(np.float32), g.randn(96, 96).astype(np.float32) * 0.1,
                (1 + 0.1 * g.randn(96)).astype(bf16), np.array([3, 0, 9, 3], np.int32)), (None,) * 4


def _products(mesh):
    import jax.numpy as jnp

    def fn(x, w, b, q, k):
        return x @ w + b, jnp.einsum("bhqd,bhkd->bhqk", q, k)

    g = _rng(9)
    return fn, (g.randn(5, 48).astype(np.float32), g.randn(48, 40).astype(np.float32), g.randn(40).astype(np.float32),
                g.randn(2, 3, 4, 16).astype(np.float32), g.randn(2, 3, 8, 16).astype(np.float32)), (None,) * 5


def _movement(mesh):
    import jax.numpy as jnp

    def fn(x, y):
        z = jnp.transpose(x.reshape(2, 3, 4, 5), (0, 2, 1, 3))
        return z, jnp.concatenate([x[:, 1:7], y], axis=1), jnp.tile(y[:1], (3, 1)), x[::1, 2:9]

    g = _rng(10)
    return fn, (g.randn(6, 20).astype(np.float32), g.randn(6, 3).astype(np.float32)), (None, None)


def _creation(mesh):
    import jax.numpy as jnp

    def fn(x):
        return (x + jnp.arange(x.shape[1], dtype=jnp.float32), jnp.zeros_like(x) + 2.5,
                x * jnp.array([[1.0, -2.0, 0.5, 4.0]], jnp.float32).repeat(x.shape[1] // 4, 1),
                jnp.ones((3, 4), jnp.int32) * 7)

    return fn, (_rng(11).randn(3, 8).astype(np.float32),), (None,)


def _gather_scatter(mesh):
    import jax
    import jax.numpy as jnp

    def fn(table, ids, rows, start):
        picked = jnp.take(table, ids, axis=0)
        updated = jax.lax.dynamic_update_slice(rows, jnp.ones((rows.shape[0], 4), rows.dtype), (0, start))
        window = jax.lax.dynamic_slice(table, (start, 0), (3, table.shape[1]))
        return picked, updated, window

    g = _rng(12)
    return fn, (g.randn(30, 12).astype(np.float32), g.randint(0, 30, (5,)).astype(np.int32),
                g.randn(3, 16).astype(np.float32), np.int32(6)), (None,) * 4


def _cache_update(mesh):
    import jax.numpy as jnp

    from ...model.shard import write_cache

    def fn(cache, new, slot):
        return write_cache(cache, new.astype(jnp.bfloat16), slot)

    g = _rng(13)
    return fn, (g.randn(2, 3, 64, 8).astype(np.float32).astype(__import__("ml_dtypes").bfloat16),
                g.randn(2, 3, 1, 8).astype(np.float32), np.int32(37)), (None, None, None)


def _loops(mesh):
    import jax
    import jax.numpy as jnp

    def fn(x, n):
        counted = jax.lax.fori_loop(0, 5, lambda i, v: v * 0.5 + i, x)

        def cond(s):
            return (s[0] < n) & ~jnp.all(s[2])

        def body(s):
            grown = s[1] * 2 + 1
            return s[0] + 1, grown, jnp.max(grown, axis=-1) > 20.0

        steps, grown, done = jax.lax.while_loop(cond, body, (jnp.int32(0), x, jnp.zeros((x.shape[0],), bool)))
        return counted, steps, grown, done

    return fn, (_rng(14).rand(2, 8).astype(np.float32), np.int32(6)), (None, None)


def _bf16(*arrays):
    import ml_dtypes

    return tuple(a.astype(np.float32).astype(ml_dtypes.bfloat16) for a in arrays)


def _fused_sdpa(mesh):
    """The prefill's SDPA pattern (model/fused.py) with grouped KV heads, head_dim 8 (tt-mlir pads it to a tile)
    and an additive causal mask with left padding."""
    from ...model.fused import additive_mask, sdpa

    def fn(q, k, v, allowed):
        return sdpa(q, k, v, additive_mask(allowed, q.dtype), 8 ** -0.5)

    g = _rng(16)
    b, n, kv, s, d = 2, 4, 1, 10, 8
    # row 1 left-padded by 3; every query sees its own key (as the model's mask: no row is all masked)
    allowed = np.tril(np.ones((s, s), bool))[None, None] & (np.arange(s) >= np.array([[0], [3]]))[:, None, None, :]
    allowed = allowed | np.eye(s, dtype=bool)[None, None]
    return fn, _bf16(g.randn(b, n, s, d), g.randn(b, kv, s, d), g.randn(b, kv, s, d)) + (allowed,), (None,) * 4


def _fused_sdpa_decode(mesh):
    """The decode kernel's custom call (model/fused.py): 4 query heads on 1 KV head, a 64-row cache, masked keys."""
    from ...model.fused import additive_mask, sdpa_decode

    def fn(q, k, v, slot, allowed):
        return sdpa_decode(q, k, v, slot, additive_mask(allowed, q.dtype), 64 ** -0.5)

    g = _rng(17)
    b, n, kv, t, d = 2, 4, 1, 64, 64
    slot = np.array([40, 40], np.int32)
    allowed = np.broadcast_to((np.arange(t) <= 40) & (np.arange(t) >= np.array([[0], [6]])), (n, b, t))
    allowed = np.ascontiguousarray(allowed.transpose(1, 0, 2)[:, None])  # [b, 1, n, t]
    return fn, _bf16(g.randn(1, b, n, d), g.randn(b, kv, t, d), g.randn(b, kv, t, d)) + (slot, allowed), (None,) * 5


def _fused_rope(mesh):
    """Rotate-half RoPE on [b, heads, s, d] with [1, 1, s, d] tables, and the decode form (one row, then the
    [1, b, heads, d] layout: tt-mlir's token_index = 0)."""
    from ...model.fused import rope_rotate_half

    def fn(x, cos, sin, x1, cos1, sin1):
        step = rope_rotate_half(x1, cos1, sin1)
        return rope_rotate_half(x, cos, sin), step.reshape(1, x1.shape[0], x1.shape[1], x1.shape[3]) * 2

    g = _rng(18)
    b, h, s, d = 2, 5, 12, 64
    return fn, _bf16(g.randn(b, h, s, d), g.randn(1, 1, s, d), g.randn(1, 1, s, d), g.randn(b, h, 1, d),
                     g.randn(1, 1, 1, d), g.randn(1, 1, 1, d)), (None,) * 6


def _collectives(axis):
    def build(mesh):
        import jax
        import jax.numpy as jnp
        from jax.sharding import PartitionSpec as P

        from ...model.partitioning import shard_map

        name = ("batch", "model")[axis]
        n = mesh.shape[name]

        def per_device(x):
            total = jax.lax.psum(x, name)
            gathered = jax.lax.all_gather(x, name, axis=1, tiled=True)
            where = jax.lax.axis_index(name).astype(jnp.float32)
            return total, gathered, x * 0 + where

        spec = P(None, name)
        fn = shard_map(per_device, mesh, in_specs=(spec,), out_specs=(spec, spec, spec))
        return fn, (_rng(15 + axis).randn(4, 8 * n).astype(np.float32),), (spec,)
    return build


CASES = {
    "elementwise": Case((1, 1), _elementwise, ("add", "subtract", "multiply", "divide", "minimum", "maximum",
                                                "pow_tensor"), F32),
    "compare": Case((1, 1), _compare, ("gt", "ge", "eq", "where", "logical_and", "logical_or"), None),
    "integers": Case((1, 1), _integers, ("remainder", "relu", "minimum", "ne", "abs", "sign"), None),
    "unary": Case((1, 1), _unary, ("cos", "silu"), F32),
    "casts": Case((1, 1), _casts, ("typecast",), BF16),
    "reductions": Case((1, 1), _reductions, ("sum", "max", "min", "argmax", "cumsum"), F32),
    "softmax": Case((1, 1), _softmax, ("softmax",), F32),
    "norms": Case((1, 1), _norms, ("rms_norm", "rms_norm_residual", "to_device", "rows_gather"), BF16),
    "products": Case((1, 1), _products, ("linear", "matmul"), F32),
    "movement": Case((1, 1), _movement, ("reshape", "permute", "slice_static", "concat", "repeat", "to_layout"),
                     None),
    "creation": Case((1, 1), _creation, ("arange", "full", "constant", "repeat"), None),
    "gather_scatter": Case((1, 1), _gather_scatter, ("rows_gather", "rows_scatter", "slice_dynamic", "clamp_scalar", "zeros", "ones"), None),
    "cache_update": Case((1, 1), _cache_update, ("paged_update_cache", "to_memory_config"), None),
    "loops": Case((1, 1), _loops, ("while_loop", "prod"), F32),
    "fused_sdpa": Case((1, 1), _fused_sdpa, ("scaled_dot_product_attention", "pad"), BF16, LEVEL1),
    "fused_sdpa_decode": Case((1, 1), _fused_sdpa_decode, ("scaled_dot_product_attention_decode",), BF16, LEVEL1),
    "fused_rope": Case((1, 1), _fused_rope, ("rotary_embedding",), BF16, LEVEL1),
    "collectives_model": Case((2, 4), _collectives(1), ("all_reduce", "all_gather", "mesh_partition"), F32),
    "collectives_batch": Case((2, 4), _collectives(0), ("all_reduce", "all_gather", "mesh_partition"), F32),
}
CONTROL_COVERED = ("load_cached", "get_device", "deallocate")  # in every module: each case runs them
