"""Flax Qwen2 decoder, written for one tensor-parallel shard.

Every module here runs inside ``shard_map`` and sees its device's slice of the padded
tensor-parallel parameters (see ``layout.py``): ``q_heads`` query heads and ``kv_heads``
KV heads of this device, ``vocab_shard`` rows of the vocabulary, ``mlp_shard`` MLP
columns. Communication is explicit and limited to Megatron's pattern: one ``psum`` over
"model" after the attention output projection and one after the MLP down projection per
layer, plus one for the vocabulary-sharded embedding lookup. With T = 1 every ``psum``
is skipped and this is the plain single-device model.

Letters in shape comments: b batch, s query positions, t key positions, e hidden,
n query heads (local), k KV heads (local), g query heads per KV head, d head_dim,
v vocabulary (local shard), f MLP columns (local shard).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .config import Qwen2Config
from .fused import additive_mask, rope_rotate_half, sdpa, sdpa_decode
from .layout import TPLayout

MODEL_AXIS = "model"
BATCH_AXIS = "batch"

KVCache = Tuple[jax.Array, jax.Array]  # (keys, values), each [b, k, t, d], for one layer


def psum_model(x: jax.Array, tp: int) -> jax.Array:
    """Sum over "model". Skipped at T = 1, where it is the identity: XLA's CPU runtime still
    pays a collective rendezvous (~0.1 ms) for a one-device all-reduce."""
    return x if tp == 1 else jax.lax.psum(x, MODEL_AXIS)


def rope_tables(positions: jax.Array, head_dim: int, theta: float, dtype, table_size: int,
                head_scales: Sequence[float] = (1.0,)) -> Tuple[jax.Array, jax.Array]:
    """cos and signed sin for rotate-half RoPE: positions [b, s], each below ``table_size`` ->
    two [b, s, h, d] tables in ``dtype``, one row of ``head_scales`` per head (h of them).

    The sin table holds -sin on its first half (see ``apply_rope``), and each head's rows are
    multiplied by its scale: the queries' 1/sqrt(d) attention scale rides on the rotation, so
    no layer multiplies its scores. The angles of positions 0..table_size-1 depend only on
    static shapes, so XLA folds their cos/sin into a constant at compile time; each call only
    gathers rows. (Computed from ``positions`` directly, XLA would fuse the cos/sin into every
    consumer and evaluate them once per query and key element of every layer.)
    """
    half = head_dim // 2
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    freqs = jnp.arange(table_size, dtype=jnp.float32)[:, None] * inv_freq  # [p, d/2]
    angles = jnp.concatenate([freqs, freqs], axis=-1)  # [p, d]
    sign = np.where(np.arange(head_dim) < half, -1.0, 1.0).astype(np.float32)  # [d]
    cos, sin = jnp.cos(angles), jnp.sin(angles) * sign  # [p, d]
    scales = jnp.asarray(head_scales, jnp.float32)[:, None]  # [h, 1]
    return ((jnp.take(cos, positions, axis=0)[:, :, None, :] * scales).astype(dtype),  # [b, s, h, d]
            (jnp.take(sin, positions, axis=0)[:, :, None, :] * scales).astype(dtype))


def slot_rope_tables(first_slot, s: int, head_dim: int, theta: float, dtype, table_size: int
                     ) -> Tuple[jax.Array, jax.Array]:
    """The fused formulation's plain cos and sin tables [1, 1, s, d] for cache slots first_slot .. + s - 1, the
    same for every row and head (the form tt-mlir's RoPE fusion takes): a static slice of a constant table
    for a prefill (slot 0), a dynamic one for a decode step."""
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    freqs = jnp.arange(table_size, dtype=jnp.float32)[:, None] * inv_freq  # [p, d/2]
    angles = jnp.concatenate([freqs, freqs], axis=-1)  # [p, d]
    tables = jnp.stack([jnp.cos(angles), jnp.sin(angles)]).astype(dtype)  # [2, p, d]
    if isinstance(first_slot, int):
        rows = tables[:, first_slot:first_slot + s]
    else:
        rows = jax.lax.dynamic_slice_in_dim(tables, jnp.asarray(first_slot, jnp.int32), s, axis=1)  # [2, s, d]
    return rows[0][None, None], rows[1][None, None]  # [1, 1, s, d] each


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """x [b, s, heads, d] rotated by the tables (halves, as Hugging Face does; the sign of the
    rotated first half lives in the sin table, which saves a negation per layer on tt-mlir)."""
    half = x.shape[-1] // 2
    swapped = jnp.concatenate([x[..., half:], x[..., :half]], axis=-1)
    return x * cos + swapped * sin


_ONE_SLOT = jax.lax.ScatterDimensionNumbers(update_window_dims=(0, 1, 3), inserted_window_dims=(2,),
                                            scatter_dims_to_operand_dims=(2,))


def write_cache(cache: jax.Array, new: jax.Array, index) -> jax.Array:
    """cache [b, k, t, d] with new [b, k, s, d] written at key slots index .. index + s - 1."""
    if new.shape[2] == 1:
        # One slot (a decode step) as a scatter along t: tt-mlir lowers it to its in-place cache update,
        # which keeps the cache in tile layout (dynamic_update_slice became a row-major rows_scatter).
        slot = jnp.reshape(jnp.asarray(index, jnp.int32), (1, 1))
        return jax.lax.scatter(cache, slot, new, _ONE_SLOT, indices_are_sorted=True, unique_indices=True,
                               mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)
    zero = np.int32(0)  # int32 indices, also under jax_enable_x64 (tt-xla's harness)
    return jax.lax.dynamic_update_slice(cache, new, (zero, zero, jnp.asarray(index, jnp.int32), zero))


class RMSNorm(nn.Module):
    eps: float
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), self.dtype)
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return scale * normed.astype(self.dtype)


class Attention(nn.Module):
    """Grouped-query attention over this device's heads: one column-parallel q|k|v product,
    row-parallel output + psum."""

    config: Qwen2Config
    q_heads: int
    kv_heads: int
    tp: int
    dtype: jnp.dtype
    fused: bool = False

    @nn.compact
    def __call__(self, x, cos, sin, allowed, cache: Optional[KVCache] = None, cache_index=None):
        """x [(b s), e] (the tokens of b rows of s positions); allowed [b, s, t] bool (which keys each
        query may see).

        Without a cache the keys are this call's own positions (t == s). With a cache the
        new keys/values are written at ``cache_index`` and the query attends over the whole
        cache (t == cache length); the updated cache is returned.
        """
        c = self.config
        d = c.head_dim
        b = jax.tree.leaves(allowed)[0].shape[0]  # (the fused formulation's mask: see ``_fused``)
        s = x.shape[-2] // b

        def proj(features, name, bias):
            return nn.Dense(features, use_bias=bias, dtype=self.dtype, param_dtype=self.dtype, name=name)

        n, kv = self.q_heads, self.kv_heads
        qkv = proj((n + 2 * kv) * d, "qkv_proj", True)(x)  # [(b s), (n+2k)*d]: this device's q | k | v
        if self.fused:
            out, cache = self._fused(qkv, cos, sin, allowed, cache, cache_index, b, s)
            out = proj(c.hidden_size, "o_proj", False)(out)  # partial sum over this device's heads
            return psum_model(out, self.tp), cache
        # q and k heads are adjacent: one rotation serves both (half of RoPE's ops on tt-mlir).
        qk = apply_rope(qkv[..., : (n + kv) * d].reshape(b, s, n + kv, d), cos, sin)  # [b, s, n+k, d]
        q, k = qk[:, :, :n], qk[:, :, n:]  # q [b, s, n, d] already scaled by 1/sqrt(d); k [b, s, k, d]
        v = qkv[..., (n + kv) * d:].reshape(b, s, kv, d)  # [b, s, k, d]

        k = k.transpose(0, 2, 1, 3)  # [b, k, s, d]: each head's keys contiguous
        v = v.transpose(0, 2, 1, 3)  # [b, k, s, d]
        if cache is not None:
            cache_k, cache_v = cache  # [b, k, t, d]
            cache_k = write_cache(cache_k, k.astype(cache_k.dtype), cache_index)
            cache_v = write_cache(cache_v, v.astype(cache_v.dtype), cache_index)
            k, v = cache_k, cache_v  # [b, k, t, d]
            cache = (cache_k, cache_v)

        g = n // kv
        lowest = jnp.finfo(jnp.float32).min
        if s == 1:
            # A decode step as plain batched products over (b, k) with the cache as the right operand:
            # tt-mlir maps them to matmuls without permuting the cache or the scores.
            q = q.reshape(b * kv, g, d)  # [(b k), g, d]; q carries the 1/sqrt(d)
            t = k.shape[2]
            scores = jax.lax.dot_general(q, k.reshape(b * kv, t, d), (((2,), (2,)), ((0,), (0,))),
                                         preferred_element_type=jnp.float32)  # [(b k), g, t]
            scores = scores.reshape(b, kv, g, t)
            scores = jnp.where(allowed[:, :, None, :], scores, lowest)  # allowed [b, 1, t]
            probs = jax.nn.softmax(scores, axis=-1).astype(self.dtype)  # [b, k, g, t]
            out = jnp.einsum("bkgt,bktd->bkgd", probs, v).reshape(b * s, n * d)
        else:
            q = q.reshape(b, s, kv, g, d)  # [b, s, k, g, d]
            scores = jnp.einsum("bskgd,bktd->bkgst", q, k).astype(jnp.float32)
            scores = jnp.where(allowed[:, None, None, :, :], scores, lowest)
            probs = jax.nn.softmax(scores, axis=-1).astype(self.dtype)  # [b, k, g, s, t]
            out = jnp.einsum("bkgst,bktd->bskgd", probs, v).reshape(b * s, n * d)
        out = proj(c.hidden_size, "o_proj", False)(out)  # partial sum over this device's heads
        return psum_model(out, self.tp), cache

    def _fused(self, qkv, cos, sin, mask, cache, cache_index, b, s):
        """The attention in tt-mlir's fused forms (``fused.py``): RoPE on [b, heads, s, d] with plain [1, 1, s, d]
        tables, the prefill's SDPA pattern, the decode kernel's custom call. ``qkv`` [(b s), (n+2k)*d]; ``mask``:
        additive, [b, 1, s, t] (a decode step: the mask [b, 1, n, t] and the slot of every row [b]). The 1/sqrt(d)
        scale is the kernels' ``scale``."""
        d, n, kv = self.config.head_dim, self.q_heads, self.kv_heads
        scale = d ** -0.5
        # q and k heads are adjacent: one rotation serves both
        if s == 1:
            # the decode layout [1, b, heads, d] straight after RoPE on [b, heads, 1, d]: tt-mlir's decode RoPE
            # (token_index = 0), and q and the new k, v come out as the decode kernel and the cache update take them
            qk = rope_rotate_half(qkv[..., : (n + kv) * d].reshape(b, n + kv, 1, d), cos, sin).reshape(1, b, n + kv, d)
            q, k = qk[:, :, :n], qk[:, :, n:]  # [1, b, n, d], [1, b, k, d]
            v = qkv[..., (n + kv) * d:].reshape(1, b, kv, d)
            k, v = k.reshape(b, kv, 1, d), v.reshape(b, kv, 1, d)  # [b, k, 1, d]
        else:
            # one transpose for q, k and v; v sliced from it stays rank 4 with one KV head (tt-mlir's SDPA pattern
            # is rank 4 only), where a reshape of its own would be squeezed to rank 3
            heads = qkv.reshape(b, s, n + 2 * kv, d).transpose(0, 2, 1, 3)  # [b, n+2k, s, d]
            qk = rope_rotate_half(heads[:, : n + kv], cos, sin)
            q, k = qk[:, :n], qk[:, n:]  # [b, n, s, d], [b, k, s, d]
            v = heads[:, n + kv:]  # [b, k, s, d]
        if cache is not None:
            cache_k = write_cache(cache[0], k.astype(cache[0].dtype), cache_index)
            cache_v = write_cache(cache[1], v.astype(cache[1].dtype), cache_index)
            cache = (cache_k, cache_v)  # [b, k, t, d]
            if s == 1 or mask.shape[-1] != s:  # (a prompt from slot 0 attends its own keys: see ``hidden``)
                k, v = cache
        if s == 1:
            mask, cur_pos = mask
            out = sdpa_decode(q, k, v, cur_pos, mask, scale)  # [1, b, n, d]
            return out.reshape(b, n * d), cache
        out = sdpa(q, k, v, mask, scale)  # [b, n, s, d]
        return out.transpose(0, 2, 1, 3).reshape(b * s, n * d), cache


class MLP(nn.Module):
    """SwiGLU: one column-parallel gate|up product, row-parallel down + psum."""

    config: Qwen2Config
    mlp_shard: int
    tp: int
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x):
        def proj(features, name):
            return nn.Dense(features, use_bias=False, dtype=self.dtype, param_dtype=self.dtype, name=name)

        gate_up = proj(2 * self.mlp_shard, "gate_up_proj")(x)  # x [(b s), e] -> [(b s), 2f]: this device's gate | up
        h = nn.silu(gate_up[..., : self.mlp_shard]) * gate_up[..., self.mlp_shard:]  # [(b s), f]
        return psum_model(proj(self.config.hidden_size, "down_proj")(h), self.tp)


class DecoderLayer(nn.Module):
    config: Qwen2Config
    layout: TPLayout
    dtype: jnp.dtype
    fused: bool = False

    @nn.compact
    def __call__(self, x, cos, sin, allowed, cache=None, cache_index=None):
        c, lay = self.config, self.layout
        attn, cache = Attention(c, lay.q_per_device, lay.kv_per_device, lay.tp, self.dtype, self.fused,
                               name="self_attn")(
            RMSNorm(c.rms_norm_eps, self.dtype, name="input_layernorm")(x), cos, sin, allowed, cache, cache_index)
        x = x + attn
        mlp = MLP(c, lay.intermediate // lay.tp, lay.tp, self.dtype, name="mlp")
        x = x + mlp(RMSNorm(c.rms_norm_eps, self.dtype, name="post_attention_layernorm")(x))
        return x, cache


def vocab_ids(rows: int) -> jax.Array:
    """Global vocabulary ids of this device's ``rows`` vocabulary entries."""
    return jax.lax.axis_index(MODEL_AXIS) * rows + jnp.arange(rows, dtype=jnp.int32)


def mask_padded_vocab(logits: jax.Array, true_vocab: int) -> jax.Array:
    """logits [..., v] of this shard as float32, padded vocabulary entries at -inf."""
    ids = vocab_ids(logits.shape[-1])
    return jnp.where(ids < true_vocab, logits.astype(jnp.float32), np.float32(-np.inf))


class Embedding(nn.Module):
    """This device's rows [v, e] of the vocabulary-sharded embedding table."""

    rows: int
    features: int
    tp: int
    dtype: jnp.dtype

    def setup(self):
        self.embedding = self.param("embedding", nn.initializers.normal(0.02), (self.rows, self.features), self.dtype)

    def __call__(self, ids: jax.Array) -> jax.Array:
        """ids [b, s] global -> [b, s, e]: each device contributes the rows it owns, then psum."""
        local = ids - jax.lax.axis_index(MODEL_AXIS) * self.rows
        owned = (local >= 0) & (local < self.rows)
        rows = jnp.take(self.embedding, jnp.clip(local, np.int32(0), np.int32(self.rows - 1)), axis=0)
        return psum_model(jnp.where(owned[..., None], rows, jnp.zeros((), rows.dtype)).astype(self.dtype), self.tp)

    def attend(self, h: jax.Array) -> jax.Array:
        """Tied lm_head: h [b, s, e] -> this shard's logits [b, s, v]."""
        return jnp.einsum("bse,ve->bsv", h, self.embedding)


class LMHead(nn.Module):
    """Untied lm_head, column-parallel over the vocabulary: kernel [e, v] (this shard)."""

    rows: int
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.normal(0.02), (h.shape[-1], self.rows), self.dtype)
        return jnp.einsum("bse,ev->bsv", h, kernel)


class Qwen2Shard(nn.Module):
    """The whole decoder for one device. ``__call__`` returns vocab-shard logits [b, s, v].

    ``fused``: attention and RoPE in the forms tt-mlir fuses into tt-metal's kernels (``fused.py``). RoPE
    positions are then the cache slots, the same for every row (a row's positions shift by its left padding,
    which attention, depending on position differences only, does not see), so one table row serves a
    whole decode step."""

    config: Qwen2Config
    layout: TPLayout
    dtype: jnp.dtype
    fused: bool = False

    def setup(self):
        c, lay = self.config, self.layout
        self.embed_tokens = Embedding(lay.vocab // lay.tp, c.hidden_size, lay.tp, self.dtype)
        self.layers = [DecoderLayer(c, lay, self.dtype, self.fused) for _ in range(c.num_hidden_layers)]  # layers_0, layers_1, ...
        self.norm = RMSNorm(c.rms_norm_eps, self.dtype)
        if not c.tie_word_embeddings:
            self.lm_head = LMHead(lay.vocab // lay.tp, self.dtype)

    def hidden(self, ids, positions, allowed, caches: Optional[Sequence[KVCache]] = None, cache_index=None):
        """ids, positions [b, s]; allowed [b, s, t] -> final-norm hidden [b, s, e] and caches."""
        b, s = ids.shape
        # The residual stream is kept as [(b s), e] tokens: tt-mlir then needs no reshape around the
        # norms, products and residual adds of each layer.
        x = self.embed_tokens(ids).reshape(b * s, -1)
        # every position is below the number of key slots (a position never exceeds its cache slot)
        c, lay = self.config, self.layout
        if self.fused:
            first = 0 if caches is None else cache_index
            if s > 1 and isinstance(first, int) and first == 0:
                # a prompt written from slot 0 attends its own s keys, not the whole (otherwise empty) cache: the
                # SDPA pattern then reads k/v as computed, not through the cache write (which tt-mlir squeezes
                # to rank 3 for one KV head, and the pattern wants rank 4)
                allowed = allowed[..., :s]
            cos, sin = slot_rope_tables(first, s, c.head_dim, c.rope_theta, self.dtype, table_size=allowed.shape[-1])
            heads = lay.q_per_device if s == 1 else 1  # the decode kernel takes a mask row per query head
            if s > 1:
                # every query also sees its own slot: a left-padding query then has a key, and no row of the SDPA
                # kernel is all -inf (its host scales the mask by 1/scale, so the lowest value becomes -inf)
                own = jnp.arange(allowed.shape[-1], dtype=jnp.int32)[None, :] == (
                    first + jnp.arange(s, dtype=jnp.int32))[:, None]  # [s, t]
                allowed = allowed | own[None]
            mask = additive_mask(jnp.broadcast_to(allowed[:, None], (b, heads) + allowed.shape[1:]), self.dtype)
            mask = mask.reshape(b, 1, heads * s, -1)  # [b, 1, s, t]; a decode step's [b, 1, n, t]
            if s == 1:
                mask = (mask, jnp.full((b,), cache_index, jnp.int32))  # and the slot every row writes
        else:
            scales = [c.head_dim ** -0.5] * lay.q_per_device + [1.0] * lay.kv_per_device  # queries | keys
            cos, sin = rope_tables(positions, c.head_dim, c.rope_theta, self.dtype, table_size=allowed.shape[-1],
                                   head_scales=scales)
            mask = allowed
        new_caches = []
        for i, layer in enumerate(self.layers):
            x, cache = layer(x, cos, sin, mask, None if caches is None else caches[i], cache_index)
            new_caches.append(cache)
        return self.norm(x).reshape(b, s, -1), new_caches

    def logits(self, h):
        """h [b, s, e] -> this shard's logits [b, s, v] float32 (padded vocabulary at -inf)."""
        if self.config.tie_word_embeddings:
            out = self.embed_tokens.attend(h)
        else:
            out = self.lm_head(h)
        return mask_padded_vocab(out, self.config.vocab_size)

    def __call__(self, ids, positions, allowed, caches=None, cache_index=None):
        h, caches = self.hidden(ids, positions, allowed, caches, cache_index)
        return self.logits(h), caches
