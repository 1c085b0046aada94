"""Run a parsed TTNN module on one virtual device per chip of its mesh, in lockstep, on the CPU.

Every SSA value is a list of numpy arrays, one per device (device ``d`` at mesh row ``d // C``, column
``d % C``). An op local to a chip runs once per device (``ops.LOCAL``); a collective takes all devices'
inputs at once (``collectives.COLLECTIVE``). The control ops:

* ``ttcore.load_cached(@f, [args])``: a const-eval function, run on its first call and cached, keyed by
  the function and the identity of its input arrays (the runtime's const-eval cache: the same weights
  give the same device copies for every later call of the program);
* ``ttcore.while_loop`` (tt-xla's control-flow runtime): the first ``state_count`` operands are the loop
  state, the rest are passed to every call unchanged; the body returns the state entries
  ``output_indices`` names, in that order; ``condition_program`` (a scalar, non-zero to go on) is asked
  before each iteration, or the counted form runs ``range(initial, limit, step)`` times (the counter
  is an ordinary state entry); the op's results are the final ``output_indices`` entries;
* ``ttnn.deallocate`` frees the value (a later use is an error); ``ttnn.get_device`` is the mesh handle.

An op, an attribute or an input value the executor does not implement is an ``ExecutionError`` naming
the program, the function, the op, its line and the reason.
"""

from __future__ import annotations

import collections
import time
from typing import Dict, List, Optional

import numpy as np

from .collectives import COLLECTIVE
from ..ttnn.module import Module, Op, parse
from .ops import LOCAL, UnsupportedOp, check_arithmetic
from .values import BF16, int_list, round_to

CONTROL = ("ttcore.load_cached", "ttcore.while_loop", "ttnn.deallocate", "ttnn.get_device")
MAX_WHILE_ITERATIONS = 100_000


class ExecutionError(Exception):
    """What the executor could not run, and where."""


def known_ops() -> List[str]:
    """Every op name the executor runs."""
    return sorted(list(CONTROL) + [f"ttnn.{k}" for k in LOCAL] + [f"ttnn.{k}" for k in COLLECTIVE])


class _Env(dict):
    def update_value(self, name: str, device: int, value: np.ndarray):
        per = list(self[name])
        per[device] = value
        self[name] = per


class _DeviceContext:
    def __init__(self, env: _Env, device: int, chip: bool = False, family: str = ""):
        self.env, self.device = env, device
        self.chip, self.family = chip, family  # chip arithmetic, and the chip family whose defaults apply

    def update(self, name: str, value: np.ndarray):
        """An op that writes its operand in place (the KV cache update)."""
        self.env.update_value(name, self.device, value)


class Executor:
    """``Executor(module_text or Module, program="decode_step").run(inputs)``: ``inputs`` holds, for each
    ``@main`` argument, one array per device; returns each result's per-device arrays. ``arithmetic``:
    ``exact`` (float32, rounded to each declared type) or ``chip`` (``ops.py``, ``arithmetic.py``)."""

    def __init__(self, module, program: str = "module", all_reduce_as_written: bool = False,
                 arithmetic: str = "exact"):
        check_arithmetic(arithmetic)
        self.module: Module = parse(module) if isinstance(module, str) else module
        self.program = program
        self.arithmetic = arithmetic
        self._family = self.module.system.family if arithmetic == "chip" else ""
        if self.module.mesh_shape is None:
            raise ExecutionError(f"{program}: no ttcore.meshes attribute, so no mesh to run on: not a TTNN module "
                                 f"as the plugin prints it")
        self.all_reduce_as_written = all_reduce_as_written  # collectives.all_reduce: max/min as the dialect says
        self.devices = self.module.devices
        self.counts: collections.Counter = collections.Counter()
        self.seconds = 0.0
        self._cache: Dict[tuple, tuple] = {}
        self._parameters: Dict[int, tuple] = {}  # id(caller's array) -> (it, converted): stable const-eval keys
        self._check_ops()

    def _check_ops(self):
        known = set(known_ops())
        for f in self.module.functions.values():
            for op in f.ops:
                if op.name not in known:
                    raise ExecutionError(f"{self.program}: @{f.name} line {op.line}: op {op.name} is not "
                                         f"implemented by the executor")
                table = LOCAL if op.kind in LOCAL else COLLECTIVE if op.kind in COLLECTIVE else None
                if table is not None:
                    extra = sorted(set(op.attrs) - set(table[op.kind][1]))
                    if extra:
                        raise ExecutionError(f"{self.program}: @{f.name} line {op.line}: {op.name} has attributes "
                                             f"the executor does not know: {extra}")

    def run(self, inputs: List[List[np.ndarray]], function: str = "main") -> List[List[np.ndarray]]:
        f = self.module.functions[function]
        if len(inputs) != len(f.args):
            raise ExecutionError(f"{self.program}: @{function} takes {len(f.args)} arguments, got {len(inputs)}")
        args = []
        for arg, per in zip(f.args, inputs):
            if len(per) != self.devices:
                raise ExecutionError(f"{self.program}: {arg.name} has {len(per)} device values for "
                                     f"{self.devices} devices")
            values = []
            for d, x in enumerate(per):
                x = np.asarray(x)
                if tuple(x.shape) != tuple(arg.type.shape):
                    raise ExecutionError(f"{self.program}: {arg.name} on device {d} is {x.shape}, the module "
                                         f"declares {arg.type}")
                values.append(self._convert(x, arg))
            args.append(values)
        start = time.perf_counter()
        try:
            return self._call(function, args)
        finally:
            self.seconds += time.perf_counter() - start

    def _convert(self, x: np.ndarray, arg) -> np.ndarray:
        """The argument in its declared type; a parameter converted once per array the caller passes, so
        that the const-eval results cached for it are found again on the next call."""
        if arg.argument_type != "parameter":
            return round_to(x, arg.type.dtype)
        got = self._parameters.get(id(x))
        if got is None or got[0] is not x:
            # a bfloat16 weight declared bf16 is kept as it is (exact; ops read it as float32 where they compute):
            # the executor then holds no float32 copy of the model's weights
            held = x if (x.dtype == BF16 and arg.type.dtype == "bf16") else round_to(x, arg.type.dtype)
            got = self._parameters[id(x)] = (x, held)
        return got[1]

    def _call(self, name: str, args: List[List[np.ndarray]]) -> List[List[np.ndarray]]:
        f = self.module.functions.get(name)
        if f is None:
            raise ExecutionError(f"{self.program}: the module has no function @{name}")
        if len(args) != len(f.args):
            raise ExecutionError(f"{self.program}: @{name} takes {len(f.args)} arguments, got {len(args)}")
        env = _Env((a.name, v) for a, v in zip(f.args, args))
        for op in f.ops:
            try:
                self._op(op, env)
            except (UnsupportedOp, ValueError, KeyError, IndexError) as e:
                if isinstance(e, KeyError) and not str(e).startswith("'%"):
                    raise
                why = f"value {e} is not defined (or was deallocated)" if isinstance(e, KeyError) else str(e)
                raise ExecutionError(f"{self.program}: @{name} line {op.line}: {op.name}: {why}") from e
        return [env[r] for r in f.returns]

    def _ins(self, op: Op, env: _Env) -> List[List[np.ndarray]]:
        return [env[o] for o, t in zip(op.operands, op.operand_types) if t is not None]

    def _op(self, op: Op, env: _Env):
        self.counts[op.name] += 1
        if op.name == "ttnn.deallocate":
            env.pop(op.operands[0])
            return
        if op.name == "ttnn.get_device":
            env[op.results[0]] = [None] * self.devices
            return
        if op.name == "ttcore.load_cached":
            ins = [env[o] for o in op.operands]
            key = (op.callee, tuple(id(x) for per in ins for x in per))
            if key not in self._cache:
                self._cache[key] = (ins, self._call(op.callee, ins))  # inputs kept: their ids stay valid
            outs = self._cache[key][1]
        elif op.name == "ttcore.while_loop":
            outs = self._while(op, [env[o] for o in op.operands])
        elif op.kind in COLLECTIVE:
            per_device = [[x[d] for x in self._ins(op, env)] for d in range(self.devices)]
            extra = {"as_written": self.all_reduce_as_written} if op.kind == "all_reduce" else {}
            got = COLLECTIVE[op.kind][0](op, per_device, self.module.mesh_shape, **extra)
            outs = [[got[d][i] for d in range(self.devices)] for i in range(len(op.results))]
        else:
            impl = LOCAL[op.kind][0]
            ins = self._ins(op, env)
            chip = self.arithmetic == "chip"
            per = [impl(op, [x[d] for x in ins], _DeviceContext(env, d, chip, self._family))
                   for d in range(self.devices)]
            outs = [[per[d][i] for d in range(self.devices)] for i in range(len(op.results))]
        if len(outs) != len(op.results):
            raise UnsupportedOp(f"{len(outs)} results for {len(op.results)} names")
        for name, value in zip(op.results, outs):
            env[name] = value

    def _while(self, op: Op, operands):
        known = {"body_program", "condition_program", "output_indices", "state_count", "initial", "limit", "step"}
        if set(op.attrs) - known:
            raise UnsupportedOp(f"while_loop attributes {sorted(set(op.attrs) - known)}")
        count = int(int_list(op.attrs["state_count"])[0])
        changed = int_list(op.attrs["output_indices"])
        state = list(operands[:count])
        body = op.attrs["body_program"].lstrip("@")
        if "condition_program" in op.attrs:
            cond = op.attrs["condition_program"].lstrip("@")
            for _ in range(MAX_WHILE_ITERATIONS):
                (flag,) = self._call(cond, state + list(operands[count:]))
                flags = {bool(np.ravel(x)[0] != 0) for x in flag}
                if len(flags) != 1:
                    raise UnsupportedOp("the devices disagree on the loop condition")
                if not flags.pop():
                    break
                self._iterate(body, state, operands[count:], changed)
            else:
                raise UnsupportedOp(f"the loop ran {MAX_WHILE_ITERATIONS} iterations")
        else:
            initial, limit, step = (self._bound(op.attrs[k], operands) for k in ("initial", "limit", "step"))
            if step <= 0:
                raise UnsupportedOp(f"counted loop with step {step}")
            for _ in range(initial, limit, step):
                self._iterate(body, state, operands[count:], changed)
        return [state[i] for i in changed]

    @staticmethod
    def _bound(text, operands) -> int:
        """A ``#ttcore.loop_bound<N>`` constant (a bound read from an input is not implemented)."""
        if "input_index" in text:
            raise UnsupportedOp(f"loop bound {text} read from an input is not implemented")
        return int_list(text)[0]

    def _iterate(self, body, state, rest, changed):
        """One body call: it gets the state and the loop's other operands and returns the state entries
        ``output_indices`` names, in that order."""
        out = self._call(body, state + list(rest))
        if len(out) != len(changed):
            raise UnsupportedOp(f"@{body} returns {len(out)} values for {len(changed)} output_indices")
        for i, value in zip(changed, out):
            state[i] = value


def op_histogram(module) -> Dict[str, int]:
    """Op name -> count over every function of a module (text or parsed)."""
    return (parse(module) if isinstance(module, str) else module).op_kinds()


def first_unknown(module) -> Optional[str]:
    """The first op of the module the executor does not implement, or None."""
    known = set(known_ops())
    for name in op_histogram(module):
        if name not in known:
            return name
    return None
