"""tt-metal's fused attention and RoPE ops: ``scaled_dot_product_attention`` (prefill),
``scaled_dot_product_attention_decode`` and ``rotary_embedding``, in both arithmetics.

``exact``: the ops' documented semantics in float32, rounded to the declared result type. ``chip``: the
kernels' arithmetic with their defaults (no compute config reaches them from tt-mlir): for the SDPA kernels
HiFi2 products (an activation, SrcB, loses its last mantissa bit), every partial sum and every circular buffer
bfloat16, the approximate exp with the scale folded in, flash attention's running max, sum and output rescaled
chunk by chunk; for RoPE bfloat16 products and sum at HiFi4. Read from tt-metal's ``sdpa``/``sdpa_decode``
compute kernels (``compute_common.hpp``) and ``rotary_embedding``'s program factory; the choices where they are
unclear are in docs/chip_arithmetic.md ("Fused attention and RoPE").

Letters: b batch, n query heads, k KV heads, s query positions, t key positions, d head_dim.
"""

from __future__ import annotations

import numpy as np

from . import arithmetic

# the decode kernel's key chunk: the largest power of two dividing t, at most this (sdpa_decode program factory)
DECODE_MAX_CHUNK = 512
PREFILL_CHUNK = 32  # q and k chunks without a program config (sdpa program factory)
_LOG2E = np.float32(1.4426950408889634)


class AttentionInputError(ValueError):
    """Operands the kernels would refuse or read differently than their documented semantics."""


def _grouped(k, n):
    """k/v [b, k, t, d] -> [b, n, t, d]: query head h reads KV head h // (n / k)."""
    kv = k.shape[1]
    if n % kv:
        raise AttentionInputError(f"{n} query heads are not a multiple of {kv} KV heads")
    return np.repeat(k, n // kv, axis=1)


def _softmax_rows(x):
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)


# --- exact ---------------------------------------------------------------------------------------------------

def sdpa(q, k, v, mask, is_causal: bool, scale: float) -> np.ndarray:
    """q [b, n, s, d], k/v [b, k, t, d], additive mask [1|b, 1|n, s, t] or None -> [b, n, s, d] float32:
    softmax(scale q k^T + mask) v (the host pre-scales the mask by 1/scale, so it adds after scaling);
    ``is_causal`` (s == t): query i sees keys <= i."""
    q, k, v = (np.asarray(a, np.float32) for a in (q, k, v))
    n = q.shape[1]
    scores = np.matmul(q, np.swapaxes(_grouped(k, n), -1, -2)) * np.float32(scale)  # [b, n, s, t]
    scores = scores + _logit_mask(mask, is_causal, scores.shape)
    return np.matmul(_softmax_rows(scores), _grouped(v, n)).astype(np.float32)


def sdpa_decode(q, k, v, mask, cur_pos, is_causal: bool, scale: float) -> np.ndarray:
    """q [1, b, n, d], k/v [b, k, t, d] -> [1, b, n, d] float32. Causal: row i sees keys 0 .. cur_pos[i] (a row
    at -1 is skipped: zeros); else every key, softmax(scale (q k^T + mask)) with mask [1|b, 1, 1|n, t]
    (the decode kernel adds the mask before scaling)."""
    q, k, v = (np.asarray(a, np.float32) for a in (q, k, v))
    qb = q[0][:, :, None, :]  # [b, n, 1, d]
    n = qb.shape[1]
    scores = np.matmul(qb, np.swapaxes(_grouped(k, n), -1, -2))  # [b, n, 1, t]
    keep = _decode_keys(scores.shape, mask, cur_pos, is_causal)
    scores = (scores + keep) * np.float32(scale)
    out = np.matmul(_softmax_rows(scores), _grouped(v, n))[:, :, 0]  # [b, n, d]
    return _skip_rows(out, cur_pos, is_causal)[None]


def rotary_embedding(x, cos, sin, token_index) -> np.ndarray:
    """x [..., s, d] rotated by rotate-half RoPE: x cos + concat(-x2, x1) sin, with row i of x's last-but-one
    axis taking table row i (tables [1, 1, >= s, d]), or every row taking table row ``token_index``."""
    x = np.asarray(x, np.float32)
    c, s_ = _table_rows(x, cos, sin, token_index)
    return (x * c + rotate_half(x) * s_).astype(np.float32)


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def _table_rows(x, cos, sin, token_index):
    cos, sin = np.asarray(cos, np.float32), np.asarray(sin, np.float32)
    if cos.shape != sin.shape or cos.ndim != 4 or cos.shape[:2] != (1, 1) or cos.shape[-1] != x.shape[-1]:
        raise AttentionInputError(f"rotary_embedding reads tables [1, 1, rows, {x.shape[-1]}] (one row per "
                                  f"position, shared by every leading index); got cos {cos.shape}, sin {sin.shape}")
    if token_index is not None:
        if x.shape[0] != 1:
            raise AttentionInputError(f"rotary_embedding with token_index needs x.shape[0] == 1, got {x.shape}")
        return cos[0, 0, token_index], sin[0, 0, token_index]  # one row for every row of x
    rows = x.shape[-2]
    if cos.shape[2] < rows:
        raise AttentionInputError(f"rotary_embedding: {rows} rows of x, {cos.shape[2]} table rows")
    return cos[0, 0, :rows], sin[0, 0, :rows]


def _logit_mask(mask, is_causal: bool, shape):
    """The additive term of the prefill's scores [b, n, s, t]."""
    b, n, s, t = shape
    if is_causal:
        if mask is not None:
            raise AttentionInputError("scaled_dot_product_attention: a mask with is_causal = true")
        if s != t:
            raise AttentionInputError(f"causal scaled_dot_product_attention needs s == t, got {s} and {t}")
        return np.where(np.tril(np.ones((s, t), bool)), np.float32(0), np.float32(-np.inf))
    if mask is None:
        return np.float32(0)
    mask = np.asarray(mask, np.float32)
    if mask.ndim != 4 or mask.shape[2:] != (s, t) or mask.shape[0] not in (1, b) or mask.shape[1] not in (1, n):
        raise AttentionInputError(f"scaled_dot_product_attention mask {mask.shape} does not fit scores {shape}")
    return mask


def _decode_keys(shape, mask, cur_pos, is_causal: bool):
    """The additive term of the decode scores [b, n, 1, t]: the causal window or the mask."""
    b, n, _, t = shape
    if is_causal:
        if mask is not None:
            raise AttentionInputError("scaled_dot_product_attention_decode: a mask with is_causal = true")
        if cur_pos is None:
            raise AttentionInputError("causal scaled_dot_product_attention_decode needs cur_pos")
        pos = np.asarray(cur_pos, np.int64).reshape(b)
        if np.any(pos >= t):
            raise AttentionInputError(f"cur_pos {pos.tolist()} outside the {t} cache rows")
        seen = np.arange(t)[None, :] <= pos[:, None]  # [b, t]
        return np.where(seen, np.float32(0), np.float32(-np.inf))[:, None, None, :]
    if mask is None:
        return np.float32(0)
    mask = np.asarray(mask, np.float32)
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] not in (1, b) or mask.shape[2] not in (1, n) \
            or mask.shape[3] != t:
        raise AttentionInputError(f"scaled_dot_product_attention_decode mask {mask.shape} is not [b, 1, n, t] "
                                  f"for q heads {n}, keys {t}")
    return np.swapaxes(mask, 1, 2)  # [b, n, 1, t]


def _skip_rows(out, cur_pos, is_causal: bool):
    if is_causal and cur_pos is not None:
        out = np.where((np.asarray(cur_pos).reshape(-1) < 0)[:, None, None], np.float32(0), out)
    return out


# --- chip ------------------------------------------------------------------------------------------------------

def _rescale_exp(z):
    """The kernels' exp of a running max's change (exp_tile_first_column, piecewise): the scale is truncated to
    bfloat16 by the caller; 2^y by linear interpolation of the fraction, 0 below -42, stored truncated."""
    z = np.asarray(z, np.float32)
    y = z * _LOG2E
    whole = np.floor(y)
    out = np.ldexp(np.float32(1) + (y - whole), whole.astype(np.int32)).astype(np.float32)
    return arithmetic.bf16_truncate(np.where(z < -42, np.float32(0), out))


def _flash(q, k, v, bias, scale: float, chunk: int):
    """Flash attention as the SDPA kernels run it with their defaults, over key chunks of ``chunk``.

    q [..., s, d], k/v [..., t, d], bias [..., s, t] (the mask and causal window, added to the scores in
    bfloat16 before the scale) ->
    [..., s, d] float32 holding bfloat16 values. Products at HiFi2 into a bfloat16 Dst; scores, exps, running
    max/sum/output in bfloat16; exp approximate with the scale folded in (exp(scale * (score - max))); the
    running sum and output rescaled by the piecewise exp of the max's change; 1 / sum by the SFPU."""
    mm = lambda a, b: arithmetic.matmul(a, b, "hifi2", False)  # noqa: E731
    t = k.shape[-2]
    scale32 = np.float32(scale)
    scale16 = arithmetic.bf16_truncate(scale32)
    m = l_sum = o = None
    for start in range(0, t, chunk):
        kc, vc = k[..., start:start + chunk, :], v[..., start:start + chunk, :]
        scores = mm(q, np.swapaxes(kc, -1, -2))  # [..., s, c]
        scores = arithmetic.bf16_nearest(scores + bias[..., start:start + chunk])
        m_new = np.max(scores, axis=-1, keepdims=True) if m is None else np.maximum(
            m, np.max(scores, axis=-1, keepdims=True))
        with np.errstate(invalid="ignore", over="ignore"):
            p = arithmetic.exp(scale32 * arithmetic.bf16_nearest(scores - m_new), True, False)  # bf16, truncated
        p = np.where(np.isfinite(scores), p, np.float32(0))
        part_sum = arithmetic._row_sum(p, -1, False)
        part_out = mm(p, vc)
        if m is None:
            l_sum, o = part_sum, part_out
        else:
            alpha = _rescale_exp(scale16 * arithmetic.bf16_nearest(m - m_new))
            l_sum = arithmetic.bf16_nearest(part_sum + _scaled(l_sum, alpha))
            o = arithmetic.bf16_nearest(part_out + _scaled(o, alpha))
        m = m_new
    recip = arithmetic.bf16_nearest(arithmetic.reciprocal(l_sum, approximate=False, fp32_dest_acc=False))
    return _scaled(o, recip)


def _scaled(x, factor):
    """x times a broadcast column factor on the FPU at HiFi2 (the factor is SrcB), packed to bfloat16."""
    return arithmetic.bf16_nearest(arithmetic.multiply(x, factor, "hifi2", False))


def chip_sdpa(q, k, v, mask, is_causal: bool, scale: float) -> np.ndarray:
    """``sdpa`` as the prefill kernel computes it (32-key chunks; the mask, pre-scaled by 1/scale on the host in
    bfloat16, is added to the scores before the scale)."""
    q, k, v = (arithmetic.bf16_nearest(np.asarray(a, np.float32)) for a in (q, k, v))
    n = q.shape[1]
    k, v = _grouped(k, n), _grouped(v, n)
    shape = q.shape[:3] + (k.shape[2],)
    bias = _logit_mask(mask, is_causal, shape)
    if mask is not None:
        with np.errstate(over="ignore"):  # the lowest bfloat16 over the scale: -inf, as on the chip
            bias = arithmetic.bf16_nearest(bias * np.float32(1 / scale))
    bias = np.broadcast_to(np.asarray(bias, np.float32), shape)
    return _flash(q, k, v, bias, scale, PREFILL_CHUNK)


def decode_chunk(t: int) -> int:
    """The decode kernel's key chunk for a t-row cache."""
    return min(DECODE_MAX_CHUNK, t & -t)


def chip_sdpa_decode(q, k, v, mask, cur_pos, is_causal: bool, scale: float) -> np.ndarray:
    """``sdpa_decode`` as the decode kernel computes it: key chunks of ``decode_chunk(t)`` in order (the kernel
    spreads them over cores and merges the partial results in a tree with the same bfloat16 arithmetic; this
    merges them in sequence)."""
    q, k, v = (arithmetic.bf16_nearest(np.asarray(a, np.float32)) for a in (q, k, v))
    qb = q[0][:, :, None, :]  # [b, n, 1, d]
    n, t = qb.shape[1], k.shape[2]
    bias = np.broadcast_to(_decode_keys((qb.shape[0], n, 1, t), mask, cur_pos, is_causal), (qb.shape[0], n, 1, t))
    out = _flash(qb, _grouped(k, n), _grouped(v, n), np.asarray(bias, np.float32), scale,
                 decode_chunk(t))
    return _skip_rows(out[:, :, 0], cur_pos, is_causal)[None]


def chip_rotary_embedding(x, cos, sin, token_index) -> np.ndarray:
    """``rotary_embedding`` on the FPU at HiFi4 with bfloat16 circular buffers: x cos and rotate_half(x) sin each
    packed to bfloat16, then their bfloat16 sum (the -1 of rotate_half is exact)."""
    x = arithmetic.bf16_nearest(np.asarray(x, np.float32))
    c, s_ = (arithmetic.bf16_nearest(a) for a in _table_rows(x, cos, sin, token_index))
    return arithmetic.bf16_nearest(arithmetic.bf16_nearest(x * c) + arithmetic.bf16_nearest(rotate_half(x) * s_))
