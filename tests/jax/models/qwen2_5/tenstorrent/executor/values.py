"""Tensor values on a virtual device: numpy arrays in the storage dtype of the type the module declares.

bf16 values are held as float32 arrays rounded to bfloat16 (round to nearest even), so arithmetic runs
in float32 and every result is rounded again to its declared type (a bfloat16 weight is kept as the caller's
bfloat16 array, half the memory, and read as float32 where an op computes: ``float_array``); f32 stays f32; integer types are
exact (int32 arithmetic wraps). Tile layout, memory placement and block-float weight storage change no
value here (see docs/executor.md).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from ..ttnn import attributes
from ..ttnn.attributes import enum, int_list, number  # noqa: F401  (the executor's attribute readers)
from ..ttnn.module import ModuleFormatError

STORAGE = {"f32": np.float32, "bf16": np.float32, "bfp_bf8": np.float32, "bfp_bf4": np.float32, "f16": np.float16, "f64": np.float64,
           "si32": np.int32, "ui32": np.uint32, "i32": np.int32, "si16": np.int16, "ui16": np.uint16,
           "si8": np.int8, "ui8": np.uint8, "i1": np.bool_, "si64": np.int64, "ui64": np.uint64}
FLOATS = ("f32", "bf16", "f16", "f64", "bfp_bf8", "bfp_bf4")
# block floats: mantissa bits (sign apart) of each value; 16 values of a tile face row share one exponent
BLOCK_MANTISSA_BITS = {"bfp_bf8": 7, "bfp_bf4": 3}
BLOCK = 16


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


BF16 = np.dtype(ml_dtypes.bfloat16)


def float_array(x) -> bool:
    """A float array: numpy's floats, or a bfloat16 weight held as the caller passed it (``Executor._convert``)."""
    return x.dtype.kind == "f" or x.dtype == BF16


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` (any numeric array) in the storage of ``dtype``: floats rounded, integers wrapped, bools 0/1."""
    if dtype not in STORAGE:
        raise ModuleFormatError(f"element type {dtype!r} is not supported by the executor")
    x = np.asarray(x)
    if dtype in BLOCK_MANTISSA_BITS:
        return block_float(x, BLOCK_MANTISSA_BITS[dtype])
    if dtype == "bf16":
        return (x if x.dtype == np.float32 else x.astype(np.float32)).astype(ml_dtypes.bfloat16).astype(np.float32)
    if dtype == "i1":
        return x != 0
    target = STORAGE[dtype]
    if dtype in _INTEGER:
        if float_array(x):
            raise ValueError(f"a float value reached integer type {dtype} without a typecast")
        if x.dtype != target:
            return x.astype(np.int64).astype(target) if x.dtype.kind in "iub" else x.astype(target)
        return x
    return x.astype(target, copy=False)


_INTEGER = frozenset(k for k, v in STORAGE.items() if np.issubdtype(v, np.integer))


def block_float(x: np.ndarray, bits: int) -> np.ndarray:
    """``x`` as tt-metal's block floats hold it: along the last dimension, each run of 16 values (a tile
    face row) shares the exponent of its largest magnitude; each value keeps a sign and ``bits`` mantissa
    bits (the leading one explicit), rounded to nearest even. Zeros stay zeros."""
    x = np.asarray(x, np.float32)
    if x.ndim == 0:
        x = x.reshape(1)
        return block_float(x, bits).reshape(())
    width = x.shape[-1]
    pad = -width % BLOCK
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    groups = padded.reshape(padded.shape[:-1] + (-1, BLOCK)).astype(np.float64)
    peak = np.max(np.abs(groups), axis=-1, keepdims=True)
    exponent = np.floor(np.log2(np.where(peak > 0, peak, 1.0)))
    step = np.exp2(exponent - (bits - 1))  # the value of one mantissa unit
    q = np.clip(np.round(groups / step), -(2 ** bits - 1), 2 ** bits - 1) * step
    return q.reshape(padded.shape)[..., :width].astype(np.float32)


def dense(text: str):
    """A ``dense<...>`` attribute -> (its values in the storage of its element type, the tensor type)."""
    values, ttype = attributes.dense(text)
    return round_to(values, ttype.dtype), ttype
