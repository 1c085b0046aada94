"""Every TTNN op the suite's programs contain, on one virtual device, from the op's documented semantics.

``LOCAL[name]`` is ``(impl, attributes)``: ``impl(op, inputs, ctx) -> [results]`` with inputs and results
numpy arrays (``values.py``), and the attribute names it reads or may ignore. An attribute outside that
set is an ``UnsupportedOp`` error, as is an op outside the tables (``collectives.py`` holds the ops that
combine devices; ``executor.py`` the control ops: ``ttcore.load_cached``, ``ttcore.while_loop``,
``ttnn.deallocate``, ``ttnn.get_device``). Attributes that only steer the kernels (program configs,
compute configs, memory configs) are accepted. In ``exact`` arithmetic they change no value: every op computes
in float32 and rounds its result to the type the module declares. In ``chip`` arithmetic (``ctx.chip``)
matmul, linear, softmax, rms_norm, rms_norm_residual, add, subtract, multiply, silu, sigmoid, exp, reciprocal
and rsqrt (as ops and as fused activations) compute as the chip does (``arithmetic.py``) with the settings
``compute_settings`` reads from the op's ``compute_config``, or ttnn's defaults without one; every other op
as in ``exact`` (typecast already rounds as the device does: to nearest even).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from . import arithmetic, attention

from ..ttnn.attributes import activations, compute_config
from ..ttnn.module import ModuleFormatError
from .values import STORAGE, dense, enum, float_array, int_list, is_float, number, round_to

KERNEL_ONLY = ("compute_config", "matmul_program_config", "memory_config", "program_config", "dtype", "layout",
               "output_dtype", "use_multicore", "sub_core_grids", "core_grid")
_ACTIVATIONS = ("activations", "input_tensor_a_activations", "input_tensor_b_activations")


class UnsupportedOp(Exception):
    """An op, an attribute value or an input the executor does not implement (it never passes one through)."""


def _f(x):
    return np.asarray(x, np.float32) if x.dtype != np.float64 else x


def _out(op, x, index=0):
    t = op.result_types[index]
    x = np.asarray(x)
    if tuple(x.shape) != tuple(t.shape):
        if x.size == int(np.prod(t.shape)) and x.ndim == 0:
            x = x.reshape(t.shape)
        else:
            raise UnsupportedOp(f"result shape {x.shape} differs from the declared {t}")
    return round_to(x, t.dtype)


_FUSED = {"sin": np.sin, "cos": np.cos, "exp": np.exp, "relu": lambda x: np.maximum(x, 0),
          "logical_not_unary": lambda x: (x == 0).astype(np.float32),
          "silu": lambda x: x / (1 + np.exp(-x)), "neg": np.negative, "rsqrt": lambda x: 1 / np.sqrt(x),
          "sqrt": np.sqrt, "recip": lambda x: 1 / x, "abs": np.abs, "log": np.log, "tanh": np.tanh,
          "sigmoid": lambda x: 1 / (1 + np.exp(-x))}


def _fused(op, key, chip=False):
    """The unary ops an eltwise binary op applies to an input or to its result (``input_tensor_a_activations =
    [#ttnn.unary_with_param<op_type = sin>]``), in order; in ``chip`` arithmetic the SFPU's forms where modelled
    (with a float32 Dst when the op's result is float32)."""
    bf16_chip = (op.result_types[0].dtype != "f32") if chip else None
    return _read_fused(key, op.attrs.get(key, "[]").strip(), bf16_chip)


@functools.lru_cache(maxsize=1 << 12)  # read once per attribute text, not at every call of the op
def _read_fused(key, text, bf16_chip=None):
    if bf16_chip is not None:
        chip_fns = _chip_unary_fns(not bf16_chip)
        return [chip_fns.get(name, fn) for (name, _), fn in zip(activations(text), _read_fused(key, text))]
    try:
        names = activations(text)
    except ModuleFormatError:
        raise UnsupportedOp(f"cannot read {key} = {text}") from None
    out = []
    for name, params in names:
        if name not in _FUSED or params.strip():
            raise UnsupportedOp(f"fused activation {name}{params} in {key} is not implemented")
        out.append(_FUSED[name])
    return out


def _activate(fns, x):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for fn in fns:
            x = fn(_f(x))
    return x


# --- element-wise -----------------------------------------------------------------------------------

def _int_math(op, a, b, fn):
    wide = fn(a.astype(np.int64), b.astype(np.int64))
    return _out(op, wide)


def _binary(fn, compare=False, logical=False, ints=None, fpu=None):
    """An eltwise binary op with its fused activations; ``ints``: its integer form when it differs; ``fpu``: its
    name when ``chip`` arithmetic models it (add, subtract, multiply)."""
    def plain(op, a, b):
        as_float = is_float(op.result_types[0].dtype)
        if logical:
            return _out(op, fn(a != 0, b != 0).astype(np.float32 if as_float else np.int32))
        if compare:
            return _out(op, fn(a, b).astype(np.float32 if as_float else np.int32))
        if not as_float:
            if float_array(a) or float_array(b):
                if ints is _int_divide:  # level 1's axis_index arithmetic: the float quotient, truncated
                    with np.errstate(divide="ignore", invalid="ignore"):
                        return _out(op, np.trunc(_f(np.asarray(a)) / _f(np.asarray(b))).astype(np.int64))
                raise UnsupportedOp("integer result from float operands")
            return _int_math(op, a, b, ints or fn)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _out(op, fn(_f(a), _f(b)))

    def impl(op, ins, ctx):
        a, b = ins
        chip = _chip(ctx)
        pre_a = _fused(op, "input_tensor_a_activations", chip)
        pre_b = _fused(op, "input_tensor_b_activations", chip)
        post = _fused(op, "activations", chip)
        if (pre_a or pre_b or post) and not is_float(op.result_types[0].dtype):
            raise UnsupportedOp("fused activations on an op with an integer result")
        if pre_a:
            a = _f(_activate(pre_a, a))
        if pre_b:
            b = _f(_activate(pre_b, b))
        if chip and fpu is not None and is_float(op.result_types[0].dtype):
            out = _chip_binary(op, a, b, fpu, ctx)
        else:
            out = plain(op, a, b)
        return [_out(op, _activate(post, out)) if post else out]
    return impl


def _chip_binary(op, a, b, kind, ctx):
    """add, subtract, multiply as the chip computes them: two float32 operands on the SFPU in float32; else on
    the FPU, each operand as its source register holds it (multiply with the fidelity phases), in Dst, packed."""
    dtypes = [t.dtype for t in op.operand_types[:2] if t is not None]
    if len(dtypes) == 2 and all(d == "f32" for d in dtypes):
        with np.errstate(over="ignore", invalid="ignore"):
            y = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply}[kind](_f(a), _f(b))
        return _packed(op, y)
    s = compute_settings(op, ctx.family)
    a, b = np.broadcast_arrays(_f(a), _f(b))
    if kind == "multiply":
        y = arithmetic.multiply(a, b, s.fidelity, s.fp32_dest_acc)
        y = y if s.fp32_dest_acc else arithmetic.bf16_nearest(y)
    else:
        y = arithmetic.add(a, b, s.fp32_dest_acc, subtract=kind == "subtract")
    return _packed(op, y)


def _int_divide(a, b):
    if np.any(b == 0):
        raise UnsupportedOp("integer division by zero")
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)  # truncation toward zero


def _int_remainder(a, b):
    if np.any(b == 0):
        raise UnsupportedOp("integer remainder by zero")
    return np.remainder(a, b)


def _chip_unary_fns(fp32_dest_acc: bool) -> dict:
    """The SFPU's functions ``chip`` arithmetic models, by their names as ops and as fused activations; exp,
    reciprocal and rsqrt in their accurate modes (ttnn's default)."""
    return {"silu": lambda x: arithmetic.silu(x, fp32_dest_acc),
            "sigmoid": lambda x: arithmetic.sigmoid(x, fp32_dest_acc),
            "exp": lambda x: arithmetic.exp(x, False, fp32_dest_acc),
            "recip": lambda x: arithmetic.reciprocal(x, False, fp32_dest_acc),
            "reciprocal": lambda x: arithmetic.reciprocal(x, False, fp32_dest_acc),
            "rsqrt": lambda x: arithmetic.rsqrt(x, False, fp32_dest_acc)}


def _unary(fn, ints=None):
    def impl(op, ins, ctx):
        (a,) = ins
        if not is_float(op.result_types[0].dtype):
            if ints is None:
                raise UnsupportedOp(f"{op.kind} of an integer tensor is not implemented")
            return [_out(op, ints(a.astype(np.int64)))]
        if _chip(ctx) and op.kind in _CHIP_UNARY:
            s = compute_settings(op, ctx.family)
            return [_packed(op, _chip_unary_fns(s.fp32_dest_acc)[op.kind](_f(a)))]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return [_out(op, fn(_f(a)))]
    return impl


_CHIP_UNARY = ("silu", "sigmoid", "exp", "reciprocal", "rsqrt")


def _silu(x):
    return x / (1 + np.exp(-x))


def _where(op, ins, ctx):
    c, a, b = ins
    return [_out(op, np.where(c != 0, a, b))]


def _clamp_scalar(op, ins, ctx):
    (a,) = ins
    lo, hi = number(op.attrs["min"]), number(op.attrs["max"])
    if is_float(op.result_types[0].dtype):
        return [_out(op, np.clip(_f(a), lo, hi))]
    return [_out(op, np.clip(a.astype(np.int64), int(lo), int(hi)))]


def _typecast(op, ins, ctx):
    (a,) = ins
    target = op.result_types[0].dtype
    if is_float(target):
        return [_out(op, a.astype(np.float64))]
    if float_array(a):
        if np.isnan(a).any():
            raise UnsupportedOp("typecast of NaN to an integer type")
        info = np.iinfo(np.dtype(STORAGE[target]))
        # float -> int truncates toward zero and saturates (tt-metal's typecast kernel; negatives -> 0 for unsigned)
        return [_out(op, np.clip(np.trunc(a.astype(np.float64)), info.min, info.max).astype(np.int64))]
    return [_out(op, a.astype(np.int64))]


# --- creation -----------------------------------------------------------------------------------------

def _filled(value=None):
    """``ttnn.full`` (``value`` None: its ``fill_value``), ``zeros`` and ``ones``."""
    def impl(op, ins, ctx):
        shape = tuple(int_list(op.attrs["shape"]))
        fill = number(op.attrs["fill_value"]) if value is None else value
        return [_out(op, np.full(shape, fill, np.float64 if is_float(op.result_types[0].dtype) else np.int64))]
    return impl


def _arange(op, ins, ctx):
    start, end, step = (number(op.attrs[k]) for k in ("start", "end", "step"))
    kind = np.float64 if is_float(op.result_types[0].dtype) else np.int64
    return [_out(op, np.arange(start, end, step, dtype=kind))]


def _constant(op, ins, ctx):
    value, ttype = dense(op.attrs["value"])
    if tuple(ttype.shape) != tuple(op.result_types[0].shape):
        raise UnsupportedOp(f"constant of {ttype} declared as {op.result_types[0]}")
    return [_out(op, value.astype(np.float64 if is_float(ttype.dtype) else np.int64))]


# --- data movement --------------------------------------------------------------------------------------

def _moved(op, x):
    """A data-movement op's result: already in the storage of its type when the element type is unchanged (no
    rounding, no copy: the const-eval cache then holds no second copy of each weight), else rounded."""
    t = op.result_types[0]
    if op.operand_types[0] is not None and op.operand_types[0].dtype == t.dtype and tuple(x.shape) == tuple(t.shape):
        return x
    return _out(op, x)


def _same(op, ins, ctx):
    """Layout, memory and host/device moves: the values are unchanged (a dtype change is a typecast)."""
    (a,) = ins[:1]
    return [_moved(op, a if not float_array(a) or is_float(op.result_types[0].dtype) else np.trunc(a))]


def _reshape(op, ins, ctx):
    (a,) = ins
    shape = tuple(int_list(op.attrs["shape"])) if op.attrs["shape"] != "[]" else ()
    if shape != tuple(op.result_types[0].shape):
        raise UnsupportedOp(f"reshape attribute {shape} differs from the result type {op.result_types[0]}")
    return [_moved(op, a.reshape(shape))]


def _permute(op, ins, ctx):
    (a,) = ins
    return [_moved(op, np.transpose(a, int_list(op.attrs["permutation"])))]


def _slice_static(op, ins, ctx):
    (a,) = ins
    begins, ends, steps = (int_list(op.attrs[k]) for k in ("begins", "ends", "step"))
    return [_moved(op, a[tuple(slice(b, e, s) for b, e, s in zip(begins, ends, steps))])]


def _slice_dynamic(op, ins, ctx):
    a, begins, ends = ins
    steps = int_list(op.attrs["step"]) if "step" in op.attrs else [1] * a.ndim
    begins, ends = [int(v) for v in np.ravel(begins)], [int(v) for v in np.ravel(ends)]
    for d, (b, e) in enumerate(zip(begins, ends)):
        if not 0 <= b <= e <= a.shape[d]:
            raise UnsupportedOp(f"dynamic slice [{b}, {e}) of dimension {d} (size {a.shape[d]}) is out of range")
    return [_out(op, a[tuple(slice(b, e, s) for b, e, s in zip(begins, ends, steps))])]


def _concat(op, ins, ctx):
    return [_out(op, np.concatenate(ins, axis=int(number(op.attrs["dim"]))))]


def _repeat_interleave(op, ins, ctx):
    (a,) = ins
    return [_out(op, np.repeat(a, int(number(op.attrs["repeats"])), axis=int(number(op.attrs["dim"]))))]


def _pad(op, ins, ctx):
    """``padding`` (low, high) per dimension, filled with ``value``."""
    (a,) = ins
    pads = int_list(op.attrs["padding"])
    if len(pads) != 2 * a.ndim or min(pads) < 0:
        raise UnsupportedOp(f"pad: padding {pads} for a rank-{a.ndim} tensor")
    value = number(op.attrs.get("value", "0.0"))
    return [_out(op, np.pad(a, list(zip(pads[::2], pads[1::2])), constant_values=value))]


def _repeat(op, ins, ctx):
    (a,) = ins
    return [_out(op, np.tile(a, int_list(op.attrs["repeat_dims"])))]


def _rows(op, ins, ctx, scatter: bool):
    """``rows_gather``/``rows_scatter``: windows of ``windows`` rows (``column = false``: along the
    dimension ``_row_axis`` finds, a row being everything after it; ``column = true``: along the last dimension, one row per
    element of the others) starting at the indices' entries, one start per window (tt-metal's
    ``indexed_rows`` kernels of the plugin's build). The gather clamps a start so that its window fits, as
    StableHLO's gather does (``fill_out_of_bounds = false``); the scatter drops a window that does not fit,
    as StableHLO's scatter does (note: ``dynamic_update_slice`` clamps instead). The indices' last
    dimension lists the windows; their leading dimension is 1 (shared by every row group) or matches the
    operand's. The scatter overwrites (``reduce = invalid``); the updates hold the windows in order."""
    column = number(op.attrs["column"])
    sizes, windows = int_list(op.attrs["sizes"]), int_list(op.attrs["windows"])
    if len(sizes) != 1 or len(windows) != 1:
        raise UnsupportedOp(f"{op.kind} over {len(sizes)} dimensions is not implemented")
    size, window = sizes[0], windows[0]
    if scatter:
        operand, idx, updates = ins
        reduce = enum(op.attrs.get("reduce", "#ttcore.reduce_type<invalid>"))
        if reduce != "invalid":
            raise UnsupportedOp(f"rows_scatter with reduce {reduce} is not implemented")
    else:
        operand, idx = ins
        if number(op.attrs.get("fill_out_of_bounds", "false")):
            raise UnsupportedOp("rows_gather with fill_out_of_bounds = true is not implemented")
    axis = operand.ndim - 1 if column else _row_axis(op, operand, updates if scatter else None, size)
    if operand.shape[axis] != size:
        raise UnsupportedOp(f"{op.kind}: sizes = {size} but the operand's dimension holds {operand.shape[axis]}")
    if column and operand.ndim > 2 and int(np.prod(operand.shape[1:-1])) != 1:
        raise UnsupportedOp(f"{op.kind} with column = true over a table of several rows {operand.shape}")
    width = int(np.prod(operand.shape[axis + 1:]))  # a row: every dimension after the indexed one
    groups = operand.reshape(-1, size, width)  # [n, size, width]
    n = groups.shape[0]
    starts = np.asarray(idx).astype(np.int64)
    starts = starts.reshape(-1, starts.shape[-1]) if starts.ndim else starts.reshape(1, 1)
    if starts.shape[0] not in (1, n):
        raise UnsupportedOp(f"{op.kind}: indices {np.shape(idx)} do not broadcast over {operand.shape}")
    raw = np.broadcast_to(starts, (n, starts.shape[1]))
    starts = np.clip(raw, 0, size - window)
    span = starts.shape[1] * window
    if scatter:
        if updates.size != n * span * width:
            raise UnsupportedOp(f"rows_scatter: updates {updates.shape} do not fill {starts.shape[1]} windows of "
                                f"{window} over {operand.shape}")
        upd = updates.reshape(n, span, width)
        out = groups.copy()
        for g in range(n):
            for w, start in enumerate(starts[g]):
                if start != raw[g, w]:
                    continue  # an out-of-bounds window is dropped (tt-metal's rows_scatter, as StableHLO's scatter)
                out[g, start:start + window] = upd[g, w * window:(w + 1) * window]
        return [_out(op, out.reshape(operand.shape))]
    out = np.stack([np.concatenate([groups[g, start:start + window] for start in starts[g]]) for g in range(n)])
    return [_out(op, out.reshape(op.result_types[0].shape))]


def _row_axis(op, operand, updates, size) -> int:
    """The dimension ``rows_gather``/``rows_scatter`` index (``column = false``): the second-to-last, unless the
    operand's shape and the updates' (scatter) or the result's (gather) differ in one dimension only, of ``size``
    entries: then that one (a scan's stacked output [1, steps, batch, vocab] is written a step at a time along
    dimension 1, each row its [batch, vocab] block)."""
    other = updates.shape if updates is not None else tuple(op.result_types[0].shape)
    if len(other) == operand.ndim:
        differ = [d for d in range(operand.ndim) if other[d] != operand.shape[d]]
        if len(differ) == 1 and operand.shape[differ[0]] == size:
            return differ[0]
    return operand.ndim - 2


# --- reductions and normalizations ------------------------------------------------------------------------

def _dims(op, ndim):
    if "dim_arg" not in op.attrs:
        return tuple(range(ndim))
    return tuple(d % ndim for d in int_list(op.attrs["dim_arg"]))


def _reduce(fn):
    def impl(op, ins, ctx):
        (a,) = ins
        keep = bool(number(op.attrs.get("keep_dim", "false")))
        src = _f(a) if is_float(op.result_types[0].dtype) or float_array(a) else a.astype(np.int64)
        return [_out(op, fn(src, axis=_dims(op, a.ndim), keepdims=keep))]
    return impl


def _argmax(op, ins, ctx):
    (a,) = ins
    if "dim" not in op.attrs:
        raise UnsupportedOp("argmax without dim is not implemented")
    dim = int(number(op.attrs["dim"])) % a.ndim
    keep = bool(number(op.attrs.get("keep_dim", "false")))
    # ties: the first index; a NaN beats every number, the first NaN wins (tt-metal's argmax kernel, numpy alike)
    return [_out(op, np.argmax(a, axis=dim, keepdims=keep).astype(np.int64))]


def _cumsum(op, ins, ctx):
    (a,) = ins
    src = _f(a) if float_array(a) else a.astype(np.int64)
    return [_out(op, np.cumsum(src, axis=int(number(op.attrs["dim"]))))]


def _softmax(op, ins, ctx):
    (a,) = ins
    dim = int(number(op.attrs["dimension"]))
    x = _f(a)
    if _chip(ctx):
        s = compute_settings(op, ctx.family)
        # the exps stay float32 only with a float32 Dst and a float32 input or an explicit config (softmax's factory)
        fp32_exps = s.fp32_dest_acc and (op.operand_types[0].dtype == "f32" or s.explicit)
        return [_packed(op, arithmetic.softmax(x, dim, s.approximate, s.fp32_dest_acc, fp32_exps, s.fidelity))]
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(x - np.max(x, axis=dim, keepdims=True))
        return [_out(op, e / np.sum(e, axis=dim, keepdims=True))]


def _rms(x, weight, eps):
    x = _f(x)
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(eps))
    return y if weight is None else y * _f(weight)


def _rms_norm(op, ins, ctx):
    seg = int_list(op.attrs.get("operandSegmentSizes", "array<i32: 1, 1, 0>"))
    it = iter(ins)
    x = next(it)
    weight = next(it) if seg[1] else None
    bias = next(it) if len(seg) > 2 and seg[2] else None
    y = _chip_rms(op, x, weight, ctx) if _chip(ctx) else _rms(x, weight, number(op.attrs["epsilon"]))
    return [_out(op, y if bias is None else y + _f(bias))]


def _chip_rms(op, x, weight, ctx):
    s = compute_settings(op, ctx.family)
    return arithmetic.rms_norm(_f(x), None if weight is None else _f(weight), number(op.attrs["epsilon"]),
                               s.approximate, s.fp32_dest_acc, s.fidelity)


def _rms_norm_residual(op, ins, ctx):
    """(x, residual, weight) -> (rms_norm(x + residual) * weight, x + residual); the sum is rounded to its
    declared type before the norm reads it."""
    x, residual, weight = ins
    total = _out(op, _f(x) + _f(residual), 1)
    if _chip(ctx):
        return [_packed(op, _chip_rms(op, total, weight, ctx), 0), total]
    return [_out(op, _rms(total, weight, number(op.attrs["epsilon"])), 0), total]


# --- the chip's compute settings ---------------------------------------------------------------------

ARITHMETICS = ("exact", "chip")


def check_arithmetic(arithmetic: str) -> str:
    """``arithmetic`` if it names one of ARITHMETICS, else a ValueError that lists them."""
    if arithmetic not in ARITHMETICS:
        raise ValueError(f"arithmetic must be one of {', '.join(ARITHMETICS)}, got {arithmetic!r}")
    return arithmetic


@dataclasses.dataclass(frozen=True)
class Settings:
    fidelity: str
    approximate: bool
    fp32_dest_acc: bool
    explicit: bool  # read from the op's compute_config (else ttnn's defaults)


# unset fields of a present compute_config take the struct's defaults (tt-metal compute_kernel_config.hpp)
_STRUCT_DEFAULTS = {"math_fidelity": "lofi", "math_approx_mode": "true", "fp32_dest_acc_en": "false"}


def compute_settings(op, family: str) -> Settings:
    """The compute settings ``op`` runs with on a ``family`` chip (wormhole, blackhole): its ``compute_config``,
    or ttnn's defaults for the op (docs/chip_arithmetic.md)."""
    if "compute_config" in op.attrs:
        got = {**_STRUCT_DEFAULTS, **compute_config(op.attrs["compute_config"])}
        return Settings(got["math_fidelity"], got["math_approx_mode"] == "true", got["fp32_dest_acc_en"] == "true",
                        True)
    dtypes = [t.dtype for t in op.operand_types if t is not None]
    out_f32 = op.result_types[0].dtype == "f32"
    if op.kind in ("matmul", "linear"):
        if all(d in ("bfp_bf8", "bfp_bf4") for d in dtypes[:2]):
            fidelity = "lofi"
        elif all(d == "f32" for d in dtypes[:2]):
            fidelity = "hifi3" if family == "wormhole" else "hifi4"
        else:
            fidelity = "hifi2"
        return Settings(fidelity, False, out_f32, False)
    if op.kind == "softmax":
        return Settings("hifi3" if family == "wormhole" else "hifi4", dtypes[0] != "f32", True, False)
    if op.kind in ("rms_norm", "rms_norm_residual"):
        return Settings("hifi4", True, False, False)
    if op.kind in ("add", "subtract", "multiply") + _CHIP_UNARY:
        # binary_ng and the unary factories: HiFi4, a float32 Dst iff an operand or the result is float32
        return Settings("hifi4", False, out_f32 or "f32" in dtypes, False)
    raise UnsupportedOp(f"no compute settings are modelled for {op.kind}")


def _chip(ctx) -> bool:
    return getattr(ctx, "chip", False)


def _packed(op, y, index=0):
    """A Dst value packed to the result's type: bfloat16 by the packer's rounding (to nearest, ties away)."""
    return _out(op, arithmetic.bf16_nearest(y) if op.result_types[index].dtype == "bf16" else y, index)


# --- matrix products --------------------------------------------------------------------------------------

def _oriented(op, a, b):
    """The two operands of a matmul / linear as float arrays, transposed as its attributes say."""
    a, b = _f(a), _f(b)
    if number(op.attrs.get("transpose_a", "false")):
        a = np.swapaxes(a, -1, -2)
    if number(op.attrs.get("transpose_b", "false")):
        b = np.swapaxes(b, -1, -2)
    return a, b


def _mm(op, a, b):
    return np.matmul(*_oriented(op, a, b))


def _chip_mm(op, ins, ctx):
    """matmul / linear as the matrix engine computes it: in0 the activations (SrcB), in1 the weights (SrcA)."""
    a, b = _oriented(op, ins[0], ins[1])
    s = compute_settings(op, ctx.family)
    bias = _f(ins[2]) if len(ins) > 2 else None
    y = arithmetic.matmul(a, b, s.fidelity, s.fp32_dest_acc, bias=bias,
                          out_bf16=op.result_types[0].dtype != "f32")
    return [_out(op, y)]


def _matmul(op, ins, ctx):
    if "activation" in op.attrs:
        raise UnsupportedOp(f"matmul with a fused activation {op.attrs['activation']} is not implemented")
    if _chip(ctx) and is_float(op.result_types[0].dtype):
        return _chip_mm(op, ins, ctx)
    return [_out(op, _mm(op, *ins))]


def _linear(op, ins, ctx):
    if "activation" in op.attrs:
        raise UnsupportedOp(f"linear with a fused activation {op.attrs['activation']} is not implemented")
    if _chip(ctx) and is_float(op.result_types[0].dtype):
        return _chip_mm(op, ins, ctx)
    y = _mm(op, ins[0], ins[1])
    if len(ins) > 2:
        y = y + _f(ins[2])
    return [_out(op, y)]


# --- fused attention and RoPE (attention.py) ---------------------------------------------------------------

def _segments(op, names):
    """The op's operands by name, from its ``operandSegmentSizes`` (absent optional ones are None)."""
    sizes = int_list(op.attrs["operandSegmentSizes"])
    if len(sizes) != len(names) or any(size > 1 for size in sizes):
        raise UnsupportedOp(f"{op.kind}: operandSegmentSizes {sizes} for operands {names}")
    return sizes


def _attention_operands(op, ins, names):
    sizes, it, got = _segments(op, names), iter(ins), {}
    for name, size in zip(names, sizes):
        got[name] = next(it) if size else None
    if got.get("attention_sink") is not None:
        raise UnsupportedOp(f"{op.kind} with an attention sink is not implemented")
    if "sliding_window_size" in op.attrs:
        raise UnsupportedOp(f"{op.kind} with a sliding window is not implemented")
    d = op.operand_types[0].shape[-1]
    scale = number(op.attrs["scale"]) if "scale" in op.attrs else 1 / np.sqrt(d)
    return got, bool(number(op.attrs.get("is_causal", "true"))), float(scale)


def _sdpa(op, ins, ctx):
    got, causal, scale = _attention_operands(op, ins, ("query", "key", "value", "attention_mask", "attention_sink"))
    fn = attention.chip_sdpa if _chip(ctx) else attention.sdpa
    try:
        return [_out(op, fn(got["query"], got["key"], got["value"], got["attention_mask"], causal, scale))]
    except attention.AttentionInputError as e:
        raise UnsupportedOp(str(e)) from None


def _sdpa_decode(op, ins, ctx):
    got, causal, scale = _attention_operands(
        op, ins, ("query", "key", "value", "attention_mask", "cur_pos_tensor", "attention_sink"))
    fn = attention.chip_sdpa_decode if _chip(ctx) else attention.sdpa_decode
    try:
        return [_out(op, fn(got["query"], got["key"], got["value"], got["attention_mask"], got["cur_pos_tensor"],
                            causal, scale))]
    except attention.AttentionInputError as e:
        raise UnsupportedOp(str(e)) from None


def _rotary_embedding(op, ins, ctx):
    x, cos, sin = ins
    token = int(number(op.attrs["token_index"])) if "token_index" in op.attrs else None
    fn = attention.chip_rotary_embedding if _chip(ctx) else attention.rotary_embedding
    try:
        y = fn(x, cos, sin, token)
    except attention.AttentionInputError as e:
        raise UnsupportedOp(str(e)) from None
    rows = op.result_types[0].shape[-2]
    if rows > y.shape[-2]:  # the kernel writes whole tiles: rows up to a multiple of 32 (tt-mlir slices them off)
        y = np.concatenate([y, np.zeros(y.shape[:-2] + (rows - y.shape[-2], y.shape[-1]), y.dtype)], axis=-2)
    return [_out(op, y)]


# --- the KV cache -----------------------------------------------------------------------------------------

def _paged_update_cache(op, ins, ctx):
    """cache [users, heads, seq, d] <- input [1, users, heads, d] at row ``update_index[u]`` of each user, in
    place (the op has no result: ``ctx.update`` rebinds the cache operand)."""
    if "page_table" in op.attrs or len(ins) > 3:
        raise UnsupportedOp("paged_update_cache with a page table is not implemented")
    if number(op.attrs.get("share_cache", "false")):
        raise UnsupportedOp("paged_update_cache with share_cache = true is not implemented")
    cache, new, index = ins
    users, heads, seq, d = cache.shape
    if new.shape != (1, users, heads, d):
        raise UnsupportedOp(f"paged_update_cache input {new.shape} does not fit the cache {cache.shape}")
    out = cache.copy()
    for u, row in enumerate(np.ravel(index).astype(np.int64)):
        if row == -1:
            continue  # the kernel skips a user whose index is -1
        if not 0 <= row < seq:
            raise UnsupportedOp(f"paged_update_cache: user {u} writes row {row} outside [0, {seq})")
        out[u, :, row, :] = new[0, u]
    ctx.update(op.operands[0], round_to(out, op.operand_types[0].dtype))
    return []


def _binary_table():
    common = _ACTIVATIONS + KERNEL_ONLY
    table = {
        "add": _binary(np.add, fpu="add"), "subtract": _binary(np.subtract, fpu="subtract"),
        "multiply": _binary(np.multiply, fpu="multiply"),
        "maximum": _binary(np.maximum), "minimum": _binary(np.minimum), "pow_tensor": _binary(np.power),
        "eq": _binary(np.equal, compare=True), "ne": _binary(np.not_equal, compare=True),
        "gt": _binary(np.greater, compare=True), "ge": _binary(np.greater_equal, compare=True),
        "lt": _binary(np.less, compare=True), "le": _binary(np.less_equal, compare=True),
        "logical_and": _binary(np.logical_and, logical=True), "logical_or": _binary(np.logical_or, logical=True),
        "logical_xor": _binary(np.logical_xor, logical=True),
        "divide": _binary(np.divide, ints=_int_divide),
        # ttnn.remainder follows torch.remainder: the result takes the divisor's sign
        "remainder": _binary(np.remainder, ints=_int_remainder),
    }
    return {k: (v, common) for k, v in table.items()}


_UNARY = {
    "relu": _unary(lambda x: np.maximum(x, 0), ints=lambda x: np.maximum(x, 0)),
    "silu": _unary(_silu), "cos": _unary(np.cos), "sin": _unary(np.sin), "exp": _unary(np.exp),
    "log": _unary(np.log), "sqrt": _unary(np.sqrt), "rsqrt": _unary(lambda x: 1 / np.sqrt(x)),
    "reciprocal": _unary(lambda x: 1 / x), "tanh": _unary(np.tanh), "sigmoid": _unary(lambda x: 1 / (1 + np.exp(-x))),
    "neg": _unary(np.negative, ints=np.negative), "abs": _unary(np.abs, ints=np.abs),
    "sign": _unary(np.sign, ints=np.sign),
    "floor": _unary(np.floor), "ceil": _unary(np.ceil),
    "logical_not": _unary(lambda x: (x == 0).astype(np.float32), ints=lambda x: (x == 0).astype(np.int64)),
}

LOCAL = {
    **_binary_table(),
    **{k: (v, KERNEL_ONLY) for k, v in _UNARY.items()},
    "where": (_where, KERNEL_ONLY),
    "clamp_scalar": (_clamp_scalar, ("min", "max") + KERNEL_ONLY),
    "typecast": (_typecast, KERNEL_ONLY),
    "full": (_filled(), ("shape", "fill_value") + KERNEL_ONLY),
    "zeros": (_filled(0), ("shape",) + KERNEL_ONLY),
    "ones": (_filled(1), ("shape",) + KERNEL_ONLY),
    "arange": (_arange, ("start", "end", "step") + KERNEL_ONLY),
    "constant": (_constant, ("value",) + KERNEL_ONLY),
    "to_device": (_same, KERNEL_ONLY),
    "from_device": (_same, KERNEL_ONLY),
    "to_layout": (_same, KERNEL_ONLY),
    "to_memory_config": (_same, KERNEL_ONLY),
    "reshape": (_reshape, ("shape",) + KERNEL_ONLY),
    "permute": (_permute, ("permutation", "pad_value") + KERNEL_ONLY),
    "slice_static": (_slice_static, ("begins", "ends", "step") + KERNEL_ONLY),
    "slice_dynamic": (_slice_dynamic, ("step",) + KERNEL_ONLY),
    "concat": (_concat, ("dim",) + KERNEL_ONLY),
    "repeat": (_repeat, ("repeat_dims",) + KERNEL_ONLY),
    "pad": (_pad, ("padding", "value") + KERNEL_ONLY),
    "repeat_interleave": (_repeat_interleave, ("repeats", "dim") + KERNEL_ONLY),
    "rows_gather": (lambda op, ins, ctx: _rows(op, ins, ctx, False),
                    ("column", "fill_out_of_bounds", "sizes", "windows") + KERNEL_ONLY),
    "rows_scatter": (lambda op, ins, ctx: _rows(op, ins, ctx, True),
                     ("column", "reduce", "sizes", "windows") + KERNEL_ONLY),
    "sum": (_reduce(np.sum), ("dim_arg", "keep_dim") + KERNEL_ONLY),
    "mean": (_reduce(np.mean), ("dim_arg", "keep_dim") + KERNEL_ONLY),
    "max": (_reduce(np.max), ("dim_arg", "keep_dim") + KERNEL_ONLY),
    "min": (_reduce(np.min), ("dim_arg", "keep_dim") + KERNEL_ONLY),
    "prod": (_reduce(np.prod), ("dim_arg", "keep_dim") + KERNEL_ONLY),
    "argmax": (_argmax, ("dim", "keep_dim", "use_multicore") + KERNEL_ONLY),
    "cumsum": (_cumsum, ("dim",) + KERNEL_ONLY),
    "softmax": (_softmax, ("dimension", "numericStable") + KERNEL_ONLY),
    "rms_norm": (_rms_norm, ("epsilon", "operandSegmentSizes") + KERNEL_ONLY),
    "rms_norm_residual": (_rms_norm_residual, ("epsilon",) + KERNEL_ONLY),
    "matmul": (_matmul, ("transpose_a", "transpose_b") + KERNEL_ONLY),
    "linear": (_linear, ("transpose_a", "transpose_b") + KERNEL_ONLY),
    "paged_update_cache": (_paged_update_cache, ("share_cache",) + KERNEL_ONLY),
    "scaled_dot_product_attention": (_sdpa, ("is_causal", "scale", "operandSegmentSizes") + KERNEL_ONLY),
    "scaled_dot_product_attention_decode": (_sdpa_decode, ("is_causal", "scale", "operandSegmentSizes")
                                            + KERNEL_ONLY),
    "rotary_embedding": (_rotary_embedding, ("token_index",) + KERNEL_ONLY),
}
