"""Greedy generation with a static, sharded KV cache; the whole loop runs on device.

One jitted program per (batch size, prompt-length bucket, cache length):

1. the prompt is left-padded to its bucket (a power of two from 16 to 512, then a multiple
   of 512) and prefilled,
   writing every layer's keys/values into a preallocated cache of batch x cache_len x
   kv_slots x head_dim per layer (KV slots over "model", rows over "batch" when the batch
   divides) in the model's dtype. It is stored heads-major, [batch, kv_slots, cache_len,
   head_dim], so each head's keys are contiguous: attention over the cache then runs as
   plain batched matrix products (about 2x faster on the CPU than [batch, cache_len, ...]);
2. a ``lax.while_loop`` decodes one token per step, writing the cache in place
   (``dynamic_update_slice``), until ``max_new_tokens`` or every row has emitted EOS.

The cache length is the bucket and ``max_new_tokens``, each rounded up to a multiple of 32, so
nearby lengths share programs and the cache is whole tiles. Greedy selection never gathers the vocabulary: each device
takes the max and argmax of its vocabulary shard, then the devices' (max, id) pairs are gathered
over "model" and the first maximum wins (ties go to the lowest id, as ``argmax`` does).
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from .inputs import check_batch, positions_from_mask
from .shard import MODEL_AXIS, Qwen2Shard
from .partitioning import batch_axis_for, shard_map
from .weight_marks import mark_weights

MIN_BUCKET = 16
NEW_TOKENS_MULTIPLE = 32
MAX_EOS_IDS = 8  # EOS ids are passed as a fixed-size array so their number never recompiles


LARGE_BUCKET = 512


def prompt_bucket(length: int) -> int:
    """The padded prompt length: the next power of two (at least ``MIN_BUCKET``) up to
    ``LARGE_BUCKET``, then the next multiple of ``LARGE_BUCKET`` (bounded padding waste)."""
    length = int(length)
    if length > LARGE_BUCKET:
        return -(-length // LARGE_BUCKET) * LARGE_BUCKET
    return max(MIN_BUCKET, 1 << (length - 1).bit_length())


def cache_length(bucket: int, max_new_tokens: int) -> int:
    """The bucket and max_new_tokens, each rounded up to a multiple of 32: nearby lengths share programs, and the
    cache is whole tiles (tt-metal's SDPA-decode kernel needs that; tt-mlir falls back to the prompt kernel)."""
    up = lambda n: -(-int(n) // NEW_TOKENS_MULTIPLE) * NEW_TOKENS_MULTIPLE  # noqa: E731
    return up(bucket) + up(max_new_tokens)


# --- per-device pieces (run inside shard_map) ---------------------------------------------

def greedy_token(logits: jax.Array, tp: int) -> jax.Array:
    """logits [b, v] of this device's vocabulary shard -> global argmax ids [b] int32.

    Each device's best value and id are gathered over "model" ([b, tp], in vocabulary order) and every
    device picks the first maximum (ties go to the lowest id, as ``argmax`` does). Gathers, not a
    ``pmax``/``pmin`` pair: upstream tt-mlir refuses a non-sum ``ttnn.all_reduce`` in its verifier, and the
    jax-tt-plugin build here accepts one but its runtime sums (docs/executor.md, "A max/min all-reduce:
    upstream and in this plugin"); the gathers are right for both."""
    if tp == 1:
        return jax.lax.argmax(logits, logits.ndim - 1, jnp.int32)
    rows = logits.shape[-1]
    local_best = jnp.max(logits, axis=-1, keepdims=True)  # [b, 1]
    local_id = jax.lax.argmax(logits, logits.ndim - 1, jnp.int32)[:, None] + jax.lax.axis_index(MODEL_AXIS) * rows
    best = jax.lax.all_gather(local_best, MODEL_AXIS, axis=1, tiled=True)  # [b, tp]
    ids = jax.lax.all_gather(local_id, MODEL_AXIS, axis=1, tiled=True)  # [b, tp]
    winner = jax.lax.argmax(best, 1, jnp.int32)  # [b]
    return jnp.take_along_axis(ids, winner[:, None], axis=1)[:, 0]


class _Steps:
    """Prefill and decode for one device, shared by every program below."""

    def __init__(self, module: Qwen2Shard, params, cache_len: int):
        self.module, self.params, self.cache_len = module, params, cache_len

    def _apply(self, method, *args):
        return self.module.apply({"params": self.params}, *args, method=method)

    def empty_caches(self, batch: int):
        lay, c = self.module.layout, self.module.config
        shape = (batch, lay.kv_per_device, self.cache_len, c.head_dim)  # [b, k, t, d]
        return [(jnp.zeros(shape, self.module.dtype), jnp.zeros(shape, self.module.dtype))
                for _ in range(c.num_hidden_layers)]

    def prefill(self, ids, mask):
        """ids, mask [b, p] -> (last-position logits [b, v], caches, key_mask [b, t], lengths [b])."""
        b, p = ids.shape
        key_mask = jnp.zeros((b, self.cache_len), bool).at[:, :p].set(mask == 1)
        causal = jnp.arange(self.cache_len, dtype=jnp.int32)[None, :] <= jnp.arange(p, dtype=jnp.int32)[:, None]  # [s, t]
        allowed = causal[None] & key_mask[:, None, :]  # [b, s, t]
        h, caches = self._apply(Qwen2Shard.hidden, ids, positions_from_mask(mask), allowed,
                                self.empty_caches(b), 0)
        logits = self._apply(Qwen2Shard.logits, h[:, -1:])[:, 0]
        return logits, caches, key_mask, jnp.sum(mask, axis=-1, dtype=jnp.int32)

    def decode(self, caches, key_mask, token, position, slot):
        """One token per row at cache ``slot`` and RoPE ``position`` [b] -> (logits [b, v], caches, key_mask)."""
        # An element-wise "or" rather than a one-column update: tt-mlir keeps it in tile layout.
        key_mask = key_mask | (jnp.arange(key_mask.shape[1], dtype=jnp.int32) == slot)[None, :]
        h, caches = self._apply(Qwen2Shard.hidden, token[:, None], position[:, None], key_mask[:, None, :],
                                caches, slot)
        return self._apply(Qwen2Shard.logits, h)[:, 0], caches, key_mask


# --- programs ------------------------------------------------------------------------------

def _generate_program(model, batch_axis, cache_len: int):
    """Jitted (params, ids [B, p], mask, n_new, eos [MAX_EOS_IDS], pad) -> tokens [B, cache_len - p]."""

    def run(params, ids, mask, n_new, eos, pad):
        steps = _Steps(model.module, params, cache_len)
        b, p = ids.shape
        logits, caches, key_mask, lengths = steps.prefill(ids, mask)
        token = greedy_token(logits, model.layout.tp)
        out = jnp.full((b, cache_len - p), pad, jnp.int32)

        def emit(out, done, token, i):
            out = jax.lax.dynamic_update_slice(out, jnp.where(done, pad, token)[:, None], (np.int32(0), i))
            return out, done | jnp.isin(token, eos)

        out, done = emit(out, jnp.zeros((b,), bool), token, np.int32(0))

        def cond(state):
            # Each batch shard stops on its own rows; the "model" group of a shard holds the
            # same rows, so its collectives always run the same number of steps.
            i, _, _, _, _, _, done = state
            return (i < n_new) & ~jnp.all(done)

        def body(state):
            i, slot, token, caches, key_mask, out, done = state
            # the token generated at index i-1 is fed at cache slot p+i-1, RoPE position length+i-1. The slot
            # is carried, not computed as p + i - 1: tt-mlir folds that constant into the loop counter and
            # writes the cache at slot i - 1 (docs/emulated.md, "What it found").
            logits, caches, key_mask = steps.decode(caches, key_mask, token, lengths + i - 1, slot)
            token = greedy_token(logits, model.layout.tp)
            out, done = emit(out, done, token, i)
            return i + 1, slot + 1, token, caches, key_mask, out, done

        state = (jnp.int32(1), jnp.int32(p), token, caches, key_mask, out, done)
        return jax.lax.while_loop(cond, body, state)[5]

    row = P(batch_axis, None)
    fn = shard_map(run, model.mesh, in_specs=(model.param_specs, row, row, P(), P(), P()), out_specs=row)
    return model.jit(lambda params, *args: fn(mark_weights(params), *args), "generate_loop")


def _program(model, key, build):
    cache = model.__dict__.setdefault("_generation_programs", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def prepare_prompts(model, input_ids, attention_mask, max_new_tokens: int):
    """Validate and left-pad prompts to their bucket; returns (ids, mask, cache_len)."""
    ids, mask = check_batch(model.config, input_ids, attention_mask)
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    bucket = prompt_bucket(ids.shape[1])
    total = cache_length(bucket, max_new_tokens)
    if total > model.max_cache_length:
        raise ValueError(
            f"a prompt of {ids.shape[1]} tokens (bucket {bucket}) plus max_new_tokens={max_new_tokens} needs "
            f"{total} cache positions; the model's cache holds {model.max_cache_length} "
            f"(load_model(..., max_cache_length=N) raises it up to max_position_embeddings="
            f"{model.config.max_position_embeddings})")
    pad = bucket - ids.shape[1]
    ids = np.pad(ids, ((0, 0), (pad, 0)))
    mask = np.pad(mask, ((0, 0), (pad, 0)))
    return ids, mask, total


def eos_ids(model, eos_token_id) -> tuple:
    if eos_token_id is None:
        eos = model.config.eos_token_ids()
    elif isinstance(eos_token_id, (int, np.integer)):
        eos = (int(eos_token_id),)
    else:
        eos = tuple(int(e) for e in eos_token_id)
    if len(eos) > MAX_EOS_IDS:
        raise ValueError(f"at most {MAX_EOS_IDS} EOS ids are supported, got {len(eos)}")
    bad = [e for e in eos if not 0 <= e < model.config.vocab_size]
    if bad:
        raise ValueError(f"EOS ids {bad} are outside the vocabulary [0, {model.config.vocab_size})")
    return eos


LOOPS = ("device", "host")


def default_loop(model) -> str:
    """``device`` (one program with a ``while`` loop) except on Tenstorrent (``tt``, ``tt-emulated``), whose
    compiler gained ``stablehlo.while`` only recently: there the host drives one decode-step program per token."""
    return "host" if model.platform.startswith("tt") else "device"


def generate(model, input_ids, attention_mask=None, max_new_tokens: int = 32,
             eos_token_id: Optional[int | Sequence[int]] = None, loop: Optional[str] = None,
             programs=None) -> np.ndarray:
    """Greedy tokens [batch, max_new_tokens] int32.

    ``eos_token_id``: an id or ids that end a row (None: the checkpoint's ``eos_token_id``;
    ``()``: never stop early). After a row's EOS the rest of the row is the pad id
    (``pad_token_id`` from config.json, else the first EOS id). ``loop``: ``"device"`` or
    ``"host"`` (see ``default_loop``); both give the same tokens. ``programs``: (prefill, step)
    callables for the host loop in place of the jitted ones (``generate_host_loop``).
    """
    loop = loop or default_loop(model)
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}")
    if programs is not None and loop != "host":
        raise ValueError("programs stand in for the host loop's prefill and decode step: use loop='host'")
    ids, mask, total = prepare_prompts(model, input_ids, attention_mask, max_new_tokens)
    eos = eos_ids(model, eos_token_id)
    pad = model.config.pad_token_id
    if pad is None:
        pad = eos[0] if eos else 0
    eos_arr = np.full((MAX_EOS_IDS,), -1, np.int32)
    eos_arr[: len(eos)] = eos
    batch_axis = batch_axis_for(model.mesh, ids.shape[0])
    if loop == "host":
        return generate_host_loop(model, ids, mask, max_new_tokens, eos, pad, batch_axis, total, programs)
    fn = _program(model, ("generate", batch_axis, total), lambda: _generate_program(model, batch_axis, total))
    out = fn(model.params, ids, mask, np.int32(max_new_tokens), eos_arr, np.int32(pad))
    return np.asarray(out)[:, :max_new_tokens]


# --- programs for tests: teacher-forced decoding and a single decode step -----------------

def _forced_program(model, batch_axis, cache_len: int):
    def run(params, ids, mask, forced):
        steps = _Steps(model.module, params, cache_len)
        p = ids.shape[1]
        logits, caches, key_mask, lengths = steps.prefill(ids, mask)

        def body(carry, i):
            caches, key_mask, slot = carry  # slot p + i, carried (see _generate_program)
            logits, caches, key_mask = steps.decode(caches, key_mask, forced[:, i], lengths + i, slot)
            return (caches, key_mask, slot + 1), logits

        _, rest = jax.lax.scan(body, (caches, key_mask, jnp.int32(p)), jnp.arange(forced.shape[1], dtype=jnp.int32))
        return jnp.concatenate([logits[:, None], jnp.swapaxes(rest, 0, 1)], axis=1)  # [b, n+1, v]

    row = P(batch_axis, None)
    fn = shard_map(run, model.mesh, in_specs=(model.param_specs, row, row, row),
                   out_specs=P(batch_axis, None, MODEL_AXIS))
    vocab = model.config.vocab_size
    return model.jit(lambda params, *args: fn(mark_weights(params), *args)[..., :vocab], "forced_decode")


def cached_step_logits(model, input_ids, attention_mask, forced_tokens) -> np.ndarray:
    """Logits [batch, n+1, vocab]: after prefill, then after each forced token through the cache."""
    forced = np.asarray(forced_tokens, np.int32)
    ids, mask, total = prepare_prompts(model, input_ids, attention_mask, forced.shape[1] + 1)
    batch_axis = batch_axis_for(model.mesh, ids.shape[0])
    fn = _program(model, ("forced", batch_axis, total), lambda: _forced_program(model, batch_axis, total))
    return np.asarray(fn(model.params, ids, mask, forced))


def _cache_specs(model, batch_axis):
    spec = P(batch_axis, MODEL_AXIS, None, None)  # [b, k, t, d]: rows over "batch", KV slots over "model"
    return [(spec, spec)] * model.config.num_hidden_layers


def _prefill_program(model, batch_axis, cache_len: int):
    """Jitted (params, ids, mask) -> (first tokens [B], caches, key_mask [B, t], lengths [B])."""

    def run(params, ids, mask):
        steps = _Steps(model.module, params, cache_len)
        logits, caches, key_mask, lengths = steps.prefill(ids, mask)
        return greedy_token(logits, model.layout.tp), caches, key_mask, lengths

    row, vec = P(batch_axis, None), P(batch_axis)
    fn = shard_map(run, model.mesh, in_specs=(model.param_specs, row, row),
                   out_specs=(vec, _cache_specs(model, batch_axis), row, vec))
    return model.jit(lambda params, *args: fn(mark_weights(params), *args), "prefill")


def _step_program(model, batch_axis, cache_len: int):
    """Jitted single decode step (cache write, attention, greedy pick); caches and key mask donated.
    (params, caches, key_mask, token [B], position [B], slot) -> (token, caches, key_mask)."""

    def run(params, caches, key_mask, token, position, slot):
        steps = _Steps(model.module, params, cache_len)
        logits, caches, key_mask = steps.decode(caches, key_mask, token, position, slot)
        return greedy_token(logits, model.layout.tp), caches, key_mask

    caches, row, vec = _cache_specs(model, batch_axis), P(batch_axis, None), P(batch_axis)
    fn = shard_map(run, model.mesh, in_specs=(model.param_specs, caches, row, vec, vec, P()),
                   out_specs=(vec, caches, row))
    return model.jit(lambda params, *args: fn(mark_weights(params), *args), "decode_step", donate_argnums=(1, 2))


def generate_host_loop(model, ids, mask, max_new_tokens, eos, pad, batch_axis, cache_len, programs=None) -> np.ndarray:
    """The greedy loop driven from the host: a prefill program, then one decode-step program per
    token with the cache donated between steps. For backends without ``while`` support.
    ``programs``: (prefill, step) callables standing in for the jitted ones (a compiled program run
    elsewhere, such as the TTNN executor's), called with the same arguments."""
    if programs is not None:
        prefill, step = programs
    else:
        prefill = _program(model, ("prefill", batch_axis, cache_len),
                           lambda: _prefill_program(model, batch_axis, cache_len))
        step = _program(model, ("step", batch_axis, cache_len), lambda: _step_program(model, batch_axis, cache_len))
    token, caches, key_mask, lengths = prefill(model.params, ids, mask)
    lengths = np.asarray(lengths)
    out = np.full((ids.shape[0], max_new_tokens), pad, np.int32)
    done = np.zeros(ids.shape[0], bool)
    p = ids.shape[1]
    for i in range(max_new_tokens):
        if i:
            token, caches, key_mask = step(model.params, caches, key_mask, token,
                                           (lengths + i - 1).astype(np.int32), np.int32(p + i - 1))
        host = np.asarray(token)
        out[:, i] = np.where(done, pad, host)
        done |= np.isin(host, eos)
        if done.all():
            break
    return out
