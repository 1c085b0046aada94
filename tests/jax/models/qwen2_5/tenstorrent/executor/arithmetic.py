"""How a Tenstorrent chip computes, op by op, on numpy arrays: the executor's ``chip`` arithmetic.

Every function takes and returns float32 arrays. What each one models, and the source it was read from, is in
``docs/chip_arithmetic.md`` (read from tt-metal, tt-llk and the ISA documentation as the plugin's build packs
them; an estimate of the chip, not a measurement on one). The choices made where the sources are unclear are
the constants and flags of this file, and nowhere else:

* rounding to bfloat16 is to nearest, ties away from zero (the SFPU's and the packer's rule), except a device
  typecast (nearest even, as ``values.round_to``); an SFPU store into a bfloat16 Dst truncates;
* an FPU operand is truncated to what its source register holds: 10 stored mantissa bits (tf32) with a
  float32 Dst, 7 (bfloat16) without; the fidelity phases split it at the bits of the phase table (weights,
  SrcA: hidden + 4 | the rest; activations, SrcB: hidden + 6 | the rest), so HiFi4 multiplies the whole
  register (the table is written for bfloat16; the tf32 split is this file's reading of it);
* a matrix instruction sums 16 products exactly and adds them to Dst, rounding to Dst's format, one phase at a
  time; with a float32 Dst the K sum is float32 (numpy's summation order, not the chip's); with a bfloat16 Dst
  every partial sum, K-block spills included, is bfloat16.
"""

from __future__ import annotations

import numpy as np

FIDELITIES = ("lofi", "hifi2", "hifi3", "hifi4")
# phase -> (SrcA part, SrcB part): 0 = the high bits, 1 = the low bits (Wormhole ISA, SrcASrcB.md)
PHASES = ((0, 0), (1, 0), (0, 1), (1, 1))
PHASE_COUNT = {"lofi": 1, "hifi2": 2, "hifi3": 3, "hifi4": 4}
SRC_A_HIGH_BITS = 4  # stored mantissa bits of a weight (SrcA) in phases 0 and 2
SRC_B_HIGH_BITS = 6  # stored mantissa bits of an activation (SrcB) in phases 0 and 1
OPERAND_BITS = {True: 10, False: 7}  # stored mantissa bits SrcA/SrcB hold: tf32 with a float32 Dst, else bfloat16
CHUNK = 16           # products one matrix instruction sums before it adds them to Dst

# the approximate exp (tt-llk ckernel_sfpu_exp.h, approximation mode): bits = round(A*x + B) << 15
_EXP_A = np.float32(369.329925537109375)   # 256 / ln 2
_EXP_B = np.float32(32500.818359375)       # 127 * 256 less Schraudolph's correction
_EXP_FLOOR = np.float32(-88.5)
# the accurate exp with a bfloat16 Dst (exp_21f): 2^frac by a second-degree polynomial in the mantissa integer
_EXP21_C0, _EXP21_C1, _EXP21_C2 = np.float32(1.001953125), np.float32(7.839635491371155e-08), np.float32(4.791750143340323e-15)
# reciprocal seeds (Wormhole ckernel_sfpu_recip.h): y0 = k2 + (k1 + k0 * n) * n with n = -mantissa in [1, 2)
_RECIP_SEED = {"minimax": (np.float32(0.3232325017452239990234375), np.float32(1.4545459747314453125),
                           np.float32(2.121212482452392578125)),
               "bf16": (np.float32(0.32133400440216064453125), np.float32(1.4514148235321044921875),
                        np.float32(2.1200883388519287109375))}
# rsqrt (ckernel_sfpu_sqrt.h): a magic-constant seed, then one correction
_RSQRT_APPROX = (0x5F0B3892, np.float32(1.89099014875))
_RSQRT_EXACT = (0x5F1110A0, np.float32(2.2825186), np.float32(2.2533049))


def _bits(x) -> np.ndarray:
    return np.ascontiguousarray(x, np.float32).view(np.uint32)


def _float(u) -> np.ndarray:
    return np.asarray(u, np.uint32).view(np.float32)


def bf16_nearest(x) -> np.ndarray:
    """To bfloat16, to nearest, ties away from zero (the hardware's rule); float32 out."""
    u = _bits(x)
    finite = (u & 0x7F800000) != 0x7F800000
    return _float(np.where(finite, (u + np.uint32(0x8000)) & np.uint32(0xFFFF0000), u & np.uint32(0xFFFF0000)))


def bf16_truncate(x) -> np.ndarray:
    """To bfloat16 by dropping the low 16 bits (an SFPU store into a bfloat16 Dst)."""
    return _float(_bits(x) & np.uint32(0xFFFF0000))


def keep_mantissa(x, stored_bits: int) -> np.ndarray:
    """``x`` with only its ``stored_bits`` most significant stored mantissa bits (truncated toward zero)."""
    mask = np.uint32((0xFFFFFFFF << (23 - stored_bits)) & 0xFFFFFFFF)
    return _float(_bits(x) & mask)


def _split(x, high_bits: int, fp32_dest_acc: bool):
    """(high part, low part) of an operand as the fidelity phases see it; the parts sum to the operand as its
    source register holds it."""
    x = keep_mantissa(x, OPERAND_BITS[bool(fp32_dest_acc)])
    high = keep_mantissa(x, high_bits)
    return high, x - high


def _check_fidelity(fidelity: str):
    if fidelity not in PHASE_COUNT:
        raise ValueError(f"fidelity must be one of {', '.join(FIDELITIES)}, got {fidelity!r}")


def _dst(x, fp32_dest_acc: bool) -> np.ndarray:
    """A value stored in Dst: float32, or rounded to bfloat16."""
    x = np.asarray(x, np.float32)
    return x if fp32_dest_acc else bf16_nearest(x)


def matmul(a, b, fidelity: str, fp32_dest_acc: bool, bias=None, out_bf16: bool = True) -> np.ndarray:
    """The matrix engine's ``a @ b``: ``a`` activations [..., M, K] (SrcB), ``b`` weights [..., K, N] (SrcA), both
    holding bfloat16 values (a float32 value counts as its tf32 or bfloat16 truncation). Each enabled fidelity phase
    multiplies the operand parts of the phase table; 16-term sums go into Dst (float32 with ``fp32_dest_acc``,
    else rounded to bfloat16 after every add); ``bias`` [N] is added in Dst; the result is packed to bfloat16
    (``out_bf16``) or returned as Dst holds it."""
    _check_fidelity(fidelity)
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul of {a.shape} and {b.shape}: inner dimensions differ")
    a_parts = _split(a, SRC_B_HIGH_BITS, fp32_dest_acc)  # activations are SrcB
    b_parts = _split(b, SRC_A_HIGH_BITS, fp32_dest_acc)  # weights are SrcA
    phases = PHASES[:PHASE_COUNT[fidelity]]
    if fp32_dest_acc:
        acc = sum(np.matmul(a_parts[pb], b_parts[pa]) for pa, pb in phases).astype(np.float32)
    else:
        k = a.shape[-1]
        acc = None
        for start in range(0, k, CHUNK):
            for pa, pb in phases:
                part = np.matmul(a_parts[pb][..., start:start + CHUNK], b_parts[pa][..., start:start + CHUNK, :])
                acc = bf16_nearest(part if acc is None else acc + part)
        if acc is None:
            acc = np.zeros(np.broadcast_shapes(a.shape[:-1], b.shape[:-2] + (1,))[:-1] + (a.shape[-2], b.shape[-1]),
                           np.float32)
    if bias is not None:
        acc = _dst(acc + np.asarray(bias, np.float32), fp32_dest_acc)
    return bf16_nearest(acc) if out_bf16 else np.asarray(acc, np.float32)


def multiply(a, b, fidelity: str = "hifi4", fp32_dest_acc: bool = True) -> np.ndarray:
    """The FPU's element-wise product (``a`` SrcA, ``b`` SrcB) with the fidelity phases, before packing."""
    _check_fidelity(fidelity)
    a_parts = _split(a, SRC_A_HIGH_BITS, fp32_dest_acc)
    b_parts = _split(b, SRC_B_HIGH_BITS, fp32_dest_acc)
    return sum(a_parts[pa] * b_parts[pb] for pa, pb in PHASES[:PHASE_COUNT[fidelity]]).astype(np.float32)


def add(a, b, fp32_dest_acc: bool, subtract: bool = False) -> np.ndarray:
    """The FPU's element-wise ``a + b`` (or ``a - b``) as Dst holds it: each operand as its source register holds
    it, the sum rounded to Dst's format (no fidelity: the adder takes whole mantissas)."""
    bits = OPERAND_BITS[bool(fp32_dest_acc)]
    a, b = keep_mantissa(a, bits), keep_mantissa(b, bits)
    return _dst(a - b if subtract else a + b, fp32_dest_acc)


def exp(x, approximate: bool, fp32_dest_acc: bool = True) -> np.ndarray:
    """The SFPU's exp as Dst holds it. ``approximate``: Schraudolph's bit trick (inputs clamped at -88.5;
    about 8 mantissa bits, percent-level error). Otherwise float32-accurate with a float32 Dst, or the
    polynomial exp_21f rounded to bfloat16 with a bfloat16 Dst."""
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        if approximate:
            t = _EXP_A * np.maximum(x, _EXP_FLOOR) + _EXP_B
            u = np.minimum(np.floor(np.abs(t.astype(np.float64)) + 0.5), 65535).astype(np.uint32)
            y = _float(u << np.uint32(15))
            return y if fp32_dest_acc else bf16_truncate(y)
        if fp32_dest_acc:
            return np.exp(x).astype(np.float32)
        z = np.clip(x * np.float32(1.4426950216293334961) + np.float32(127.0), 0, 255)
        zi = (z.astype(np.float64) * (1 << 23)).astype(np.int64)
        e = (zi >> 23) & 0xFF
        f = (zi & 0x7FFFFF).astype(np.float32)
        p = _EXP21_C0 + f * (_EXP21_C1 + f * _EXP21_C2)
        y = _float((_bits(p) & np.uint32(0x807FFFFF)) | (e.astype(np.uint32) << np.uint32(23)))
        return bf16_nearest(y)


def reciprocal(x, approximate: bool, fp32_dest_acc: bool = True) -> np.ndarray:
    """The SFPU's 1/x (Wormhole's kernel): a quadratic seed on the mantissa and Newton steps: two with a
    float32 Dst; one and bfloat16 rounding with a bfloat16 Dst; one without rounding when approximate."""
    x = np.asarray(x, np.float32)
    u = _bits(x)
    mantissa = _float((u & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000))  # [1, 2)
    n = -mantissa
    k0, k1, k2 = _RECIP_SEED["bf16" if (not fp32_dest_acc and not approximate) else "minimax"]
    y = k2 + (k1 + k0 * n) * n
    for _ in range(2 if (fp32_dest_acc and not approximate) else 1):
        t = np.float32(1) + n * y
        y = y + y * t
    if not fp32_dest_acc and not approximate:
        y = bf16_nearest(y)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.exp2(-(((u >> np.uint32(23)) & np.uint32(0xFF)).astype(np.float64) - 127)).astype(np.float32)
        out = np.copysign(y * scale, x)
    return np.where(x == 0, np.copysign(np.float32(np.inf), x), out).astype(np.float32)


def sigmoid(x, fp32_dest_acc: bool) -> np.ndarray:
    """The SFPU's accurate sigmoid (ckernel_sfpu_sigmoid.h): 1 / (1 + exp(-x)) with the accurate exp and two
    Newton steps of the reciprocal with a float32 Dst; exp_21f and one Newton step, then rounded to bfloat16,
    with a bfloat16 Dst."""
    r = _sigmoid(np.asarray(x, np.float32), fp32_dest_acc)
    return r if fp32_dest_acc else bf16_nearest(r)


def _sigmoid(x, fp32_dest_acc: bool) -> np.ndarray:
    """1 / (1 + exp(-x)) as sigmoid and silu compute it, before any rounding."""
    den = np.float32(1) + exp(-x, False, fp32_dest_acc)
    return reciprocal(den, approximate=not fp32_dest_acc, fp32_dest_acc=fp32_dest_acc)


def silu(x, fp32_dest_acc: bool) -> np.ndarray:
    """The SFPU's silu (ckernel_sfpu_silu.h): x times the sigmoid above (unrounded), rounded to bfloat16 with a
    bfloat16 Dst."""
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        y = (x * _sigmoid(x, fp32_dest_acc)).astype(np.float32)
    return y if fp32_dest_acc else bf16_nearest(y)


def rsqrt(x, approximate: bool, fp32_dest_acc: bool = True) -> np.ndarray:
    """The SFPU's 1/sqrt(x): a magic-constant seed and one correction (10 bits approximate, about 23 exact),
    rounded to bfloat16 with a bfloat16 Dst."""
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if approximate:
            magic, p1 = _RSQRT_APPROX
            y0 = _float(np.uint32(magic) - (_bits(x) >> np.uint32(1)))
            y = y0 * (p1 - y0 * (x * y0))
        else:
            magic, p1, p2 = _RSQRT_EXACT
            y0 = _float(np.uint32(magic) - (_bits(x) >> np.uint32(1)))
            c = -y0 * (x * y0)
            y = y0 * (p1 + c * (p2 + c))
            xy = x * y
            e = np.float32(1) - y * xy
            y = e * (y * np.float32(0.5)) + y
        y = np.where(x == 0, np.float32(np.inf), np.where(np.isinf(x), np.float32(0), y))
        y = np.where(x < 0, np.float32(np.nan), y).astype(np.float32)
    return y if fp32_dest_acc else bf16_nearest(y)


def _row_sum(x, axis: int, fp32_dest_acc: bool) -> np.ndarray:
    """The FPU's row reduction (scaler 1): float32 in a float32 Dst, else bfloat16 after every 16-term add."""
    x = np.moveaxis(np.asarray(x, np.float32), axis, -1)
    if fp32_dest_acc:
        s = np.sum(x, axis=-1, dtype=np.float32)
    else:
        s = np.zeros(x.shape[:-1], np.float32)
        for start in range(0, x.shape[-1], CHUNK):
            s = bf16_nearest(s + np.sum(x[..., start:start + CHUNK], axis=-1, dtype=np.float32))
    return np.expand_dims(s, axis)


def softmax(x, axis: int, approximate: bool, fp32_dest_acc: bool, fp32_exps: bool, fidelity: str = "hifi4"):
    """tt-metal's softmax kernel: row max, x - max in Dst, exp, the exps packed (float32 with ``fp32_exps``,
    else bfloat16), their row sum, its reciprocal (accurate with a float32 Dst, else approximate), and the
    FPU product, returned as Dst holds it (the caller packs it to the output's type)."""
    x = np.asarray(x, np.float32)
    axis = axis % max(x.ndim, 1)
    d = _dst(x - np.max(x, axis=axis, keepdims=True), fp32_dest_acc)
    e = exp(d, approximate, fp32_dest_acc)
    e = e if fp32_exps else bf16_nearest(e)
    s = _row_sum(e, axis, fp32_dest_acc)
    r = reciprocal(s, approximate=not fp32_dest_acc, fp32_dest_acc=fp32_dest_acc)
    r = r if fp32_dest_acc else bf16_nearest(r)
    return _dst(multiply(e, r, fidelity, fp32_dest_acc), fp32_dest_acc)


def rms_norm(x, weight, epsilon: float, approximate: bool, fp32_dest_acc: bool, fidelity: str = "hifi4"):
    """tt-metal's rms_norm kernel over the last dimension: x*x, the row sum times 1/W (float32), + epsilon
    (truncated to bfloat16), rsqrt, times x, times ``weight``; intermediates float32 with a float32 Dst, else
    bfloat16; returned as Dst holds it."""
    x = np.asarray(x, np.float32)
    interm = (lambda v: np.asarray(v, np.float32)) if fp32_dest_acc else bf16_nearest
    sq = interm(multiply(x, x, fidelity, fp32_dest_acc))
    mean = interm(_row_sum(sq, -1, fp32_dest_acc) * np.float32(1.0 / x.shape[-1]))
    v = _dst(mean + bf16_truncate(np.float32(epsilon)), fp32_dest_acc)
    r = interm(rsqrt(v, approximate, fp32_dest_acc))
    y = interm(multiply(x, r, fidelity, fp32_dest_acc))
    return y if weight is None else _dst(multiply(y, weight, fidelity, fp32_dest_acc), fp32_dest_acc)
