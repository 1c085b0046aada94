"""Attention and RoPE written in the forms tt-mlir fuses into tt-metal's kernels (optimization level >= 1).

The model's "fused" formulation (``Qwen2Shard(fused=True)``, chosen by ``Qwen2TP`` for programs tt-mlir
compiles at level >= 1) calls these three functions; each computes what the plain formulation computes:

* ``rope_rotate_half``: ``x * cos + concat(-x2, x1) * sin`` on a 4-D ``x`` with tables shared by every row of
  its leading axes: TTIR's rotate-half pattern, ``ttnn.rotary_embedding``. Tables ``[1, 1, s, d]`` for
  ``x [b, heads, s, d]`` (prefill); ``[1, 1, 1, d]`` for ``x [b, heads, 1, d]`` (decode: tt-mlir's decode
  fusion then gives the kernel ``token_index = 0``).
* ``sdpa``: the composite ``tenstorrent.scaled_dot_product_attention`` (q ``[b, n, s, d]``, k/v ``[b, k, t, d]``,
  additive mask, ``is_causal = false``, ``scale``), ``ttnn.scaled_dot_product_attention``; its decomposition
  (what XLA:CPU runs) is ``matmul(q, k^T) * scale + mask``, a float32 softmax cast back, ``matmul(p, v)``.
* ``sdpa_decode``: one query position, ``tt.scaled_dot_product_attention_decode`` as a StableHLO custom call
  in a program lowered for Tenstorrent devices (``ttnn.scaled_dot_product_attention_decode``, which reads grouped
  KV heads directly); lowered for XLA:CPU, the same function in plain JAX. The custom call's form is tt-mlir's
  (``StableHLOToTTIRPatterns.cpp``): operands q, k, v, cur_pos, mask; string frontend attributes.

Letters: b batch, n query heads, k KV heads, g = n / k, s query positions, t key positions, d head_dim.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from jax._src.interpreters import mlir
from jax._src.lib.mlir import ir
from jax.extend.core import Primitive

DECODE_CUSTOM_CALL = "tt.scaled_dot_product_attention_decode"
TT_PLATFORM = "tt"  # the PJRT platform of Tenstorrent devices


def rope_rotate_half(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """x [b, heads, s, d] rotated by plain cos/sin tables [1, 1, s, d] (halves, as Hugging Face does)."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def additive_mask(allowed: jax.Array, dtype) -> jax.Array:
    """A boolean mask as the additive one the kernels take: 0 where allowed, the dtype's lowest value
    elsewhere (finite: a row with no allowed key, a left-padding query, stays finite)."""
    return jnp.where(allowed, jnp.zeros((), dtype), jnp.asarray(jnp.finfo(dtype).min, dtype))


def _sdpa_reference(q, k, v, mask, *, is_causal, scale):
    """softmax(q k^T * scale + mask) v: q [b, n, s, d], k/v [b, k, t, d], additive mask [b, 1, s, t]."""
    del is_causal  # false: the mask says which keys each query sees
    g = q.shape[1] // k.shape[1]
    k, v = jnp.repeat(k, g, axis=1), jnp.repeat(v, g, axis=1)  # [b, n, t, d]
    scores = jnp.matmul(q, jnp.swapaxes(k, -1, -2)) * jnp.asarray(scale, q.dtype) + mask  # [b, n, s, t]
    probs = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(q.dtype)
    return jnp.matmul(probs, v)


# tt-mlir legalizes this composite to its SDPA op whatever the ranks and unit dimensions around it (its SDPA
# pattern on the plain ops does not match once a single KV head's reshapes are folded to rank 3, at T = 32)
_sdpa_composite = jax.lax.composite(_sdpa_reference, "tenstorrent.scaled_dot_product_attention")


def sdpa(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, scale: float) -> jax.Array:
    """q [b, n, s, d], k/v [b, k, t, d], additive mask [b, 1, s, t] -> [b, n, s, d] in q's dtype."""
    return _sdpa_composite(q, k, v, mask.astype(q.dtype), is_causal=False, scale=float(scale))


def _sdpa_decode_reference(q, k, v, cur_pos, mask, *, scale):
    """What the decode kernel computes without causality: softmax(scale * (q k^T + mask)) v. q [1, b, n, d],
    k/v [b, k, t, d], mask [b, 1, n, t] -> [1, b, n, d]. (The kernel adds the mask before scaling.)"""
    del cur_pos  # the keys are chosen by the mask (is_causal = false)
    _, b, n, d = q.shape
    kv, t = k.shape[1], k.shape[2]
    g = n // kv
    qg = q[0].reshape(b, kv, g, d)  # [b, k, g, d]
    scores = jnp.einsum("bkgd,bktd->bkgt", qg, k, preferred_element_type=jnp.float32)
    scores = (scores + mask.reshape(b, kv, g, t).astype(jnp.float32)) * np.float32(scale)
    probs = jax.nn.softmax(scores, axis=-1).astype(q.dtype)  # [b, k, g, t]
    return jnp.einsum("bkgt,bktd->bkgd", probs, v).reshape(1, b, n, d)


_sdpa_decode_p = Primitive("qwen2_5_sdpa_decode")
_sdpa_decode_p.def_impl(lambda *args, scale: jax.jit(_sdpa_decode_reference, static_argnames="scale")(
    *args, scale=scale))
_sdpa_decode_p.def_abstract_eval(lambda q, k, v, cur_pos, mask, *, scale: jax.core.ShapedArray(q.shape, q.dtype))


def _lower_sdpa_decode(ctx, q, k, v, cur_pos, mask, *, scale):
    if tuple(ctx.module_context.platforms) != (TT_PLATFORM,):  # XLA:CPU: the same function in plain JAX
        return mlir.lower_fun(_sdpa_decode_reference, multiple_results=False)(ctx, q, k, v, cur_pos, mask,
                                                                               scale=scale)
    attributes = {"is_causal": "False", "has_attention_mask": "True", "has_attention_sink": "False",
                  "scale": repr(float(scale))}
    op = mlir.custom_call(
        DECODE_CUSTOM_CALL, result_types=[mlir.aval_to_ir_type(ctx.avals_out[0])],
        operands=[q, k, v, cur_pos, mask], api_version=0, backend_config="",
        extra_attributes={"mhlo.frontend_attributes": ir.DictAttr.get(
            {key: ir.StringAttr.get(value) for key, value in attributes.items()})})
    return op.results


mlir.register_lowering(_sdpa_decode_p, _lower_sdpa_decode)


def sdpa_decode(q: jax.Array, k: jax.Array, v: jax.Array, cur_pos: jax.Array, mask: jax.Array,
                scale: float) -> jax.Array:
    """One query position over a KV cache: q [1, b, n, d], k/v [b, k, t, d] (n a multiple of k), cur_pos [b]
    int32 (the slot just written), additive mask [b, 1, n, t] -> [1, b, n, d] in q's dtype. Lowered for Tenstorrent
    devices (platform ``tt``, also what the emulated platform lowers tt-mlir's text for) it is tt-mlir's custom
    call; lowered for XLA:CPU, plain JAX."""
    b, n, t = q.shape[1], q.shape[2], k.shape[2]
    if mask.shape != (b, 1, n, t):
        raise ValueError(f"sdpa_decode: mask {mask.shape} must be [b, 1, n, t] = {(b, 1, n, t)}")
    return _sdpa_decode_p.bind(q, k, v, cur_pos.astype(jnp.int32), mask.astype(q.dtype), scale=float(scale))
