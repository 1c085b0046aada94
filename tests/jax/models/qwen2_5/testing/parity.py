"""Comparison metrics shared by the tests: relative error, argmax agreement, Pearson (PCC)."""

from __future__ import annotations

import numpy as np

F32_REL_TOL = 1e-4  # max |difference| <= F32_REL_TOL * max |logit|
# float32 on a Tenstorrent chip: the FPU reads float32 operands as tf32 (10 stored mantissa bits) even with a
# float32 Dst, so a float32 model's matmuls carry about 2^-11 relative error per operand. Measured under the
# executor's chip arithmetic (docs/chip_arithmetic.md): rel 4.4e-3 (gqa28x4, 1x1) against PyTorch, 8.2e-4
# between the cached decode and recomputation; the bound leaves under 2x of headroom.
F32_CHIP_REL_TOL = 2.0 ** -7
BF16_MIN_PCC = 0.99  # tt-xla's default PCC threshold


def f32_rel_tol(on_chip: bool) -> float:
    """The float32 logits bound: F32_REL_TOL where float32 is computed in float32, F32_CHIP_REL_TOL on a chip."""
    return F32_CHIP_REL_TOL if on_chip else F32_REL_TOL


def logits_report(out: np.ndarray, ref: np.ndarray, valid: np.ndarray) -> dict:
    """Compare logits [b, s, v] on the positions where ``valid`` [b, s] is true."""
    o = np.asarray(out, dtype=np.float64)[valid]
    r = np.asarray(ref, dtype=np.float64)[valid]
    max_abs = float(np.abs(o - r).max())
    scale = float(np.abs(r).max())
    return {
        "max_abs_diff": max_abs,
        "rel_diff": max_abs / scale,
        "argmax_agreement": float((o.argmax(-1) == r.argmax(-1)).mean()),
        "pcc": pcc(o, r),
        "atol": max_abs,
    }


def assert_logits_parity(report: dict, dtype: str, on_chip: bool) -> None:
    """The suite's logits thresholds on a ``logits_report``: float32 within ``f32_rel_tol`` with every argmax
    equal; bfloat16 PCC >= BF16_MIN_PCC."""
    if dtype == "float32":
        assert report["rel_diff"] <= f32_rel_tol(on_chip), report
        assert report["argmax_agreement"] == 1.0, report
    else:
        assert report["pcc"] >= BF16_MIN_PCC, report


def pcc(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def left_padded_batch(vocab: int, batch: int = 8, seq: int = 10, seed: int = 0):
    """Random ids with a different amount of left padding per row (row 0 unpadded)."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, vocab, size=(batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), dtype=np.int32)
    for row in range(1, batch):
        mask[row, : (row * 3) % (seq - 1)] = 0
    ids[mask == 0] = 0
    return ids, mask
