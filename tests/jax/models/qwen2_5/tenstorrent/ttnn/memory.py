"""Device memory of a compiled TTNN module, per chip, read from the module itself.

The module is one SPMD program: every chip runs ``@main`` on its local shapes, so each figure is
per chip. Every tensor's type names a ``#ttnn.ttnn_layout`` that states where it lives
(``#dram``, ``#l1`` or ``#system_memory``, the host), whether it is tiled (``!ttcore.tile<32x32,
DT>``) or row-major, and its memref: the whole tensor for interleaved layouts, one core's shard
for sharded ones (times the grid's cores). tt-mlir collapses a tensor to 2-D before tiling and pads
each collapsed dimension to whole 32x32 tiles, which the memref already shows.

``read(module)`` gives:

* ``weights_bytes``: what the const-eval functions that take parameters leave on the device (the
  tt-mlir runtime caches ``ttcore.load_cached`` results for the life of the executable);
  ``constants_bytes``: the cached results of const-eval functions of constants only;
* ``device_io_bytes``: ``@main``'s arguments and results on the device (KV cache, key mask,
  tokens), a result that returns an argument (a cache updated in place, a donated buffer)
  counted once;
* ``peak_transient_bytes`` (DRAM) and ``peak_transient_l1_bytes``: the most bytes that ``@main``'s
  intermediate values hold at once, walking its ops in order, each value live from the op that
  makes it until its ``ttnn.deallocate`` (values ``@main`` returns are device I/O);
* ``const_eval_peak_bytes``: the DRAM in use during the first call while the const-eval functions
  run: the results cached so far plus the running function's own intermediates at their peak;
  ``const_eval_transient_bytes``: the largest of those intermediates (the embedding table, row-major
  and tiled at once).

DRAM interleaved buffers are placed page by page over every bank in lockstep (tt-metal's
allocator gives a buffer the same address range in each bank), so a buffer holds
``ceil(pages / banks)`` aligned pages in every bank; ``footprint`` counts that, ``nbytes`` the
plain size. A page is one tile, or one row of a row-major tensor.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Dict, List, Tuple, Union

from .module import BUFFERS, Function, Layout, Module, ModuleFormatError, parse

__all__ = ["Chip", "ModuleFormatError", "Walk", "chip_of", "const_eval_entries", "read", "walk"]


@dataclasses.dataclass(frozen=True)
class Chip:
    """The DRAM one chip of the module's system descriptor gives the allocator."""
    banks: int
    bank_bytes: int   # dram_unreserved_end - dram_unreserved_base of one bank
    align: int

    @property
    def dram_bytes(self) -> int:
        return self.banks * self.bank_bytes


def _module(module: Union[str, Module]) -> Module:
    return parse(module) if isinstance(module, str) else module


def chip_of(module: Union[str, Module]) -> Chip:
    """The smallest chip of the module's ``#system_desc`` (chips of one system differ by a few KB)."""
    system = _module(module).system
    if not system.chips or system.dram_align is None:
        raise ModuleFormatError("no #system_desc with DRAM figures in the module")
    banks, bank_bytes = min(system.chips, key=lambda c: c[0] * c[1])
    return Chip(banks, bank_bytes, system.dram_align)


def _tensor_layouts(module: Module, types, where: str) -> List[Layout]:
    """The layouts of the tensor types that name one (types printed without a layout, and handles, have none)."""
    return [lay for t in types for lay in [module.layout_of(t, where)] if lay is not None]


@dataclasses.dataclass
class Walk:
    """Live device bytes over one function's ops."""
    peak: Dict[str, int]
    returned: List[str]
    cached: List[Tuple[str, List[Layout]]]  # (const-eval function, its results' layouts) per load_cached


def walk(module: Module, function: Function, chip: Chip) -> Walk:
    """Peak bytes of intermediates per buffer type (values made in the function, alive until deallocated;
    values it returns are left out, they are its results)."""
    keep = set(function.returns)
    live: Dict[str, Tuple[str, int]] = {}
    used = {b: 0 for b in BUFFERS}
    peak = dict(used)
    cached = []
    for op in function.ops:
        where = f"@{function.name} line {op.line}: "
        if op.name == "ttnn.deallocate":
            if op.operands and op.operands[0] in live:
                buf, size = live.pop(op.operands[0])
                used[buf] -= size
            continue
        if not op.results:
            continue  # an op without results (an in-place cache update)
        outs = _tensor_layouts(module, op.result_types, where)
        if op.name == "ttcore.load_cached":
            cached.append((op.callee, outs))
            continue  # the runtime's const-eval cache, not this call's memory
        if not outs:
            continue  # !ttnn.device and other handles
        if len(outs) != len(op.results):
            raise ModuleFormatError(f"{where}{len(op.results)} results, {len(outs)} tensor types")
        for value, lay in zip(op.results, outs):
            if value in keep or lay.buffer == "system_memory":
                continue
            size = lay.footprint(chip.banks, chip.align)
            live[value] = (lay.buffer, size)
            used[lay.buffer] += size
            peak[lay.buffer] = max(peak[lay.buffer], used[lay.buffer])
    return Walk(peak, list(function.returns), cached)


def read(module: Union[str, Module]) -> dict:
    """The per-chip memory figures of a compiled TTNN module (see the module docstring)."""
    module = _module(module)
    chip = chip_of(module)
    main = module.main
    args = {}
    for arg in main.args:
        lay = module.layout_of(arg.type, "@main arguments: ")
        if lay is not None:
            args[arg.name] = (lay, arg.argument_type or "default")
    result_layouts = _tensor_layouts(module, main.result_types, "@main results: ")
    w = walk(module, main, chip)
    if len(w.returned) != len(result_layouts):
        raise ModuleFormatError(f"@main returns {len(w.returned)} values but declares {len(result_layouts)} results")
    fp = lambda lay: lay.footprint(chip.banks, chip.align) if lay.buffer != "system_memory" else 0
    inputs = sum(fp(lay) for lay, kind in args.values() if kind != "parameter")
    outputs = sum(fp(lay) for value, lay in zip(w.returned, result_layouts) if value not in args)
    params_on_device = sum(fp(lay) for lay, kind in args.values() if kind == "parameter")
    weights = constants = 0
    const_peak = running = const_transient = 0
    for callee, outs in w.cached:
        body = module.functions.get(callee)
        if body is None:
            raise ModuleFormatError(f"@main loads @{callee}, which the module does not define")
        size = sum(fp(lay) for lay in outs)
        if any(a.type is not None for a in body.args):  # it takes parameters
            weights += size
        else:
            constants += size
        inner = walk(module, body, chip)
        const_transient = max(const_transient, inner.peak["dram"])
        const_peak = max(const_peak, running + inner.peak["dram"] + size)
        running += size
    return {"chip_dram_bytes": chip.dram_bytes, "dram_banks": chip.banks, "dram_bank_bytes": chip.bank_bytes,
            "weights_bytes": weights + params_on_device, "constants_bytes": constants,
            "device_io_bytes": inputs + outputs, "device_inputs_bytes": inputs, "device_outputs_bytes": outputs,
            "peak_transient_bytes": w.peak["dram"], "peak_transient_l1_bytes": w.peak["l1"],
            "const_eval_peak_bytes": const_peak, "const_eval_transient_bytes": const_transient,
            "const_eval_functions": len(w.cached),
            "host_parameter_bytes": sum(lay.nbytes for lay, kind in args.values()
                                        if kind == "parameter" and lay.buffer == "system_memory")}


def const_eval_entries(module: Union[str, Module]) -> List[dict]:
    """Each ``ttcore.load_cached`` of ``@main``: what the tt-mlir runtime's const-eval cache keys it by, and
    the bytes its results hold on the device.

    Since tt-mlir #6434 (2025-12, the runtime tt-xla pins) the cache is one process-wide
    ``GlobalTensorCache`` keyed by (device, a hash of the const-eval function's IR with its name
    left out, the versions of its input tensors): two programs whose const-eval functions are the
    same and read the same weight buffers share one device copy, which lives until those weights
    are deleted. ``key`` models that: the function's text with its name, locations and layout
    aliases (expanded to their definitions) normalized, and the ``@main`` arguments it reads (the
    same parameter leaves in every program of a model)."""
    module = _module(module)
    chip = chip_of(module)
    out = []
    for op in module.main.ops:
        if op.name != "ttcore.load_cached":
            continue
        text = module.functions[op.callee].anonymous_text(module.layouts_text)
        device = [lay for lay in _tensor_layouts(module, op.result_types, f"@main line {op.line}: ")
                  if lay.buffer != "system_memory"]
        key = hashlib.sha256((text + "|" + ",".join(op.operands)).encode()).hexdigest()[:24]
        out.append({"key": key, "bytes": sum(lay.footprint(chip.banks, chip.align) for lay in device),
                    "nbytes": sum(lay.nbytes for lay in device), "parameters": bool(op.operands),
                    "function": op.callee, "inputs": list(op.operands)})
    return out
