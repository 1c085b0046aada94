"""Tensor values on a virtual device: numpy arrays in the storage dtype of the type the module declares.

bf16 values are held as float32 arrays rounded to bfloat16 (round to nearest even), so arithmetic runs
in float32 and every result is rounded again to its declared type; f32 stays f32; integer types are
exact (int32 arithmetic wraps). Tile layout, memory placement and block-float weight storage change no
value here (see the README's "Running the compiled program").
"""

from __future__ import annotations

import re
import struct
from typing import List

import ml_dtypes
import numpy as np

from .module import ModuleFormatError

STORAGE = {"f32": np.float32, "bf16": np.float32, "bfp_bf8": np.float32, "bfp_bf4": np.float32, "f16": np.float16, "f64": np.float64,
           "si32": np.int32, "ui32": np.uint32, "i32": np.int32, "si16": np.int16, "ui16": np.uint16,
           "si8": np.int8, "ui8": np.uint8, "i1": np.bool_, "si64": np.int64, "ui64": np.uint64}
FLOATS = ("f32", "bf16", "f16", "f64", "bfp_bf8", "bfp_bf4")
# block floats: mantissa bits (sign apart) of each value; 16 values of a tile face row share one exponent
BLOCK_MANTISSA_BITS = {"bfp_bf8": 7, "bfp_bf4": 3}
BLOCK = 16


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` (any numeric array) in the storage of ``dtype``: floats rounded, integers wrapped, bools 0/1."""
    if dtype not in STORAGE:
        raise ModuleFormatError(f"element type {dtype!r} is not supported by the executor")
    x = np.asarray(x)
    if dtype in BLOCK_MANTISSA_BITS:
        return block_float(x, BLOCK_MANTISSA_BITS[dtype])
    if dtype == "bf16":
        return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    if dtype == "i1":
        return x != 0
    target = STORAGE[dtype]
    if np.issubdtype(target, np.integer) and x.dtype.kind == "f":
        raise ValueError(f"a float value reached integer type {dtype} without a typecast")
    if np.issubdtype(target, np.integer) and x.dtype != target:
        return x.astype(np.int64).astype(target) if x.dtype.kind in "iub" else x.astype(target)
    return x.astype(target, copy=False)


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


# --- attribute values ---------------------------------------------------------------------------------

_NUM = re.compile(r"^\s*([-+]?(?:0x[0-9A-Fa-f]+|[\d.]+(?:[eE][-+]?\d+)?|inf|nan)|true|false)\s*(?::\s*(\w+))?\s*$")


def number(text: str):
    """``1 : i32`` -> 1, ``9.99E-7 : f32`` -> float, ``0xFF800000 : f32`` -> -inf (bits), ``true`` -> True."""
    got = _NUM.match(text)
    if not got:
        raise ModuleFormatError(f"not a number attribute: {text!r}")
    value, kind = got.group(1), got.group(2) or ""
    if value in ("true", "false"):
        return value == "true"
    if value.lower().startswith(("0x", "-0x", "+0x")):
        bits = int(value, 16)
        if kind == "f32":
            return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]
        if kind == "f64":
            return struct.unpack("<d", struct.pack("<Q", bits & 0xFFFFFFFFFFFFFFFF))[0]
        if kind == "bf16":
            return struct.unpack("<f", struct.pack("<I", (bits & 0xFFFF) << 16))[0]
        return bits
    if kind.startswith("f") or any(c in value for c in ".eEn"):
        return float(value)
    return int(value)


def int_list(text: str) -> List[int]:
    """``[1 : i32, 2 : i32]``, ``array<i64: 1, 0, 2>``, ``#ttnn.shape<1x1x8>``, ``#ttcore.loop_bound<31>``, ``3 : si64``."""
    text = text.strip()
    got = re.match(r"^array<\w+(?::\s*(.*))?>$", text)
    if got:
        return [int(v) for v in (got.group(1) or "").split(",") if v.strip()]
    got = re.match(r"^#ttnn\.shape<((?:\d+x)*\d*)>$", text)
    if got:
        return [int(v) for v in got.group(1).split("x") if v]
    got = re.match(r"^#ttcore\.loop_bound<(-?\d+)>$", text)
    if got:
        return [int(got.group(1))]
    if text.startswith("["):
        return [int(number(v)) for v in text[1:-1].split(",") if v.strip()]
    return [int(number(text))]


def enum(text: str) -> str:
    """``#ttcore.reduce_type<sum>`` -> ``sum``."""
    got = re.match(r"^#[\w.]+<(\w+)>$", text.strip())
    if not got:
        raise ModuleFormatError(f"not an enum attribute: {text!r}")
    return got.group(1)


def dense(text: str):
    """``dense<[[0, 1]]> : tensor<1x2xui32>``, ``dense<1.0> : tensor<4xf32>`` or ``dense<"0x..."> : ...`` ->
    (values in their storage type, the tensor type)."""
    from .module import parse_type

    got = re.match(r"^dense<(.*)>\s*:\s*(tensor<.*>)$", text.strip(), re.S)
    if not got:
        raise ModuleFormatError(f"not a dense attribute: {text[:120]!r}")
    body, ttype = got.group(1).strip(), parse_type(got.group(2))
    storage = np.float64 if is_float(ttype.dtype) else np.int64
    if body.startswith('"0x'):
        raw = bytes.fromhex(body[3:-1])
        source = {"f32": np.float32, "bf16": ml_dtypes.bfloat16, "f16": np.float16}.get(ttype.dtype,
                                                                                        STORAGE[ttype.dtype])
        flat = np.frombuffer(raw, dtype=source).astype(storage)
        count = int(np.prod(ttype.shape))
        values = np.broadcast_to(flat, (count,)) if flat.size == 1 else flat
    else:
        tokens = re.findall(r"[-+]?(?:0x[0-9A-Fa-f]+|[\d.]+(?:[eE][-+]?\d+)?|inf|nan)|true|false", body)
        values = np.array([number(f"{t} : {ttype.dtype}") for t in tokens], storage)
        if values.size == 1:
            values = np.broadcast_to(values, (int(np.prod(ttype.shape)),))
    if values.size != int(np.prod(ttype.shape)):
        raise ModuleFormatError(f"dense attribute holds {values.size} values for {ttype}")
    return round_to(np.asarray(values).reshape(ttype.shape), ttype.dtype), ttype
