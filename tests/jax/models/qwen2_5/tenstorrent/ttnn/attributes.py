"""Attribute values of a TTNN module (the text of one attribute, as ``module.parse_attributes`` gives it):
numbers, integer lists, enums, ``dense<...>`` constants and the unary activations an eltwise op fuses.
Part of the module reader: what executes or budgets a module asks these, never a regular expression.
"""

from __future__ import annotations

import functools
import re
import struct
from typing import Dict, List, Optional, Tuple

import ml_dtypes
import numpy as np

from .module import ModuleFormatError, parse_type

FLOAT_TYPES = ("f32", "bf16", "f16", "f64", "bfp_bf8", "bfp_bf4")
# the element type a hex ``dense<"0x...">`` holds its bytes in
HEX_SOURCE = {"f32": np.float32, "bf16": ml_dtypes.bfloat16, "f16": np.float16, "f64": np.float64,
              "si32": np.int32, "ui32": np.uint32, "i32": np.int32, "si16": np.int16, "ui16": np.uint16,
              "si8": np.int8, "ui8": np.uint8, "i1": np.bool_, "si64": np.int64, "ui64": np.uint64}
_ACTIVATION = re.compile(r"#ttnn\.unary_with_param<op_type = (\w+)(.*?)>")


_NUM = re.compile(r"^\s*([-+]?(?:0x[0-9A-Fa-f]+|[\d.]+(?:[eE][-+]?\d+)?|inf|nan)|true|false)\s*(?::\s*(\w+))?\s*$")


@functools.lru_cache(maxsize=1 << 16)  # the executor reads the same attribute texts at every call of a program
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
    return list(_int_tuple(text))


@functools.lru_cache(maxsize=1 << 16)
def _int_tuple(text: str):
    return tuple(_ints(text))


def _ints(text: str) -> List[int]:
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


@functools.lru_cache(maxsize=1 << 12)
def enum(text: str) -> str:
    """``#ttcore.reduce_type<sum>`` -> ``sum``."""
    got = re.match(r"^#[\w.]+<(\w+)>$", text.strip())
    if not got:
        raise ModuleFormatError(f"not an enum attribute: {text!r}")
    return got.group(1)


def dense(text: str):
    """``dense<[[0, 1]]> : tensor<1x2xui32>``, ``dense<1.0> : tensor<4xf32>`` or ``dense<"0x..."> : ...`` ->
    (the values, float64 for a float type and int64 otherwise, in the tensor's shape; the tensor type)."""
    got = re.match(r"^dense<(.*)>\s*:\s*(tensor<.*>)$", text.strip(), re.S)
    if not got:
        raise ModuleFormatError(f"not a dense attribute: {text[:120]!r}")
    body, ttype = got.group(1).strip(), parse_type(got.group(2))
    storage = np.float64 if ttype.dtype in FLOAT_TYPES else np.int64
    if body.startswith('"0x'):
        raw = bytes.fromhex(body[3:-1])
        if ttype.dtype not in HEX_SOURCE:
            raise ModuleFormatError(f"a hex dense attribute of element type {ttype.dtype} is not read here")
        source = HEX_SOURCE[ttype.dtype]
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
    return np.asarray(values).reshape(ttype.shape), ttype


@functools.lru_cache(maxsize=1 << 12)
def activations(text: str) -> List[Tuple[str, str]]:
    """``[#ttnn.unary_with_param<op_type = sin>, ...]`` -> [(op type, the rest of its parameters' text)]; a
    non-empty list that holds none is a ``ModuleFormatError``."""
    text = text.strip()
    found = _ACTIVATION.findall(text)
    if text != "[]" and not found:
        raise ModuleFormatError(f"cannot read the activations {text[:120]!r}")
    return found


_PLACEMENT = re.compile(r"<\s*(replicate|shard)\s*,\s*(-?\d+)\s*:\s*i32\s*>")
_OVERRIDE = re.compile(r"mesh_shape_override\s*=\s*\[([^\]]*)\]")


def mesh_mapper(text: str) -> Tuple[List[Tuple[str, int]], Optional[List[int]]]:
    """``#ttnn.mesh_mapper_config<placements = [<shard, 0 : i32>, <replicate, -1 : i32>], mesh_shape_override =
    [2 : ui32, 4 : ui32]>`` -> ([("shard", 0), ("replicate", -1)], [2, 4]) (the override None when absent): per
    mesh dimension, whether the tensor is replicated or split along a tensor dimension."""
    if "placements" not in text:
        raise ModuleFormatError(f"not a mesh mapper config: {text[:200]}")
    placements = [(kind, int(dim)) for kind, dim in _PLACEMENT.findall(text)]
    override = _OVERRIDE.search(text)
    shape = int_list(f"[{override.group(1)}]") if override else None
    return placements, shape


_DIMS = re.compile(r"dims\s*=\s*\[([^\]]*)\]")


def mesh_composer(text: str) -> Tuple[List[int], Optional[List[int]]]:
    """``#ttnn.mesh_composer_config<dims = [0 : i32, 2 : i32], mesh_shape_override = [2 : ui32, 4 : ui32]>`` ->
    ([0, 2], [2, 4]): the tensor dimension along which each mesh dimension's shards are joined."""
    dims = _DIMS.search(text)
    if dims is None:
        raise ModuleFormatError(f"not a mesh composer config: {text[:200]}")
    override = _OVERRIDE.search(text)
    return int_list(f"[{dims.group(1)}]"), (int_list(f"[{override.group(1)}]") if override else None)


@functools.lru_cache(maxsize=1 << 12)
def compute_config(text: str) -> Dict[str, str]:
    """``#ttnn.device_compute_kernel_config<math_fidelity = hifi4, fp32_dest_acc_en = true>`` -> {field: value}
    (the fields the module prints; an unset field is absent)."""
    if not text.strip().startswith("#ttnn.device_compute_kernel_config<"):
        raise ModuleFormatError(f"not a compute kernel config: {text[:120]!r}")
    return dict(re.findall(r"(\w+) = (\w+)", text))
