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
import math
import re
from typing import Dict, List, Optional, Tuple

from .ttnn_audit import functions

SCALAR_BYTES = {"f32": 4, "f16": 2, "bf16": 2, "si32": 4, "ui32": 4, "u32": 4, "i32": 4, "si16": 2, "ui16": 2,
                "u16": 2, "i16": 2, "si8": 1, "ui8": 1, "u8": 1, "i8": 1, "i1": 1, "f64": 8, "si64": 8, "ui64": 8}
TILE = 32
# bytes of one 32x32 tile (block floats: the data and one shared exponent byte per 16 values)
TILE_BYTES = {"bfp_bf8": 1088, "bfp_f8": 1088, "bfp_bf4": 576, "bfp_f4": 576, "bfp_bf2": 320, "bfp_f2": 320}
BUFFERS = ("dram", "l1", "system_memory")

_LAYOUT = re.compile(r"^#(\w+) = #ttnn\.ttnn_layout<(.*)>\s*$", re.M)
_MEMREF = re.compile(r"memref<((?:\d+x)*)(!ttcore\.tile<(\d+)x(\d+), (\w+)>|[a-z]\w*), #(\w+)>")
_GRID = re.compile(r"\)\s*,\s*<(\d+)x(\d+)")
_MEM_LAYOUT = re.compile(r">\s*,\s*<(interleaved|height_sharded|width_sharded|block_sharded|nd_sharded)>")
_TENSOR = re.compile(r"tensor<((?:\d+x)*)([a-z]\w*), #(\w+)>")
_RESULT = re.compile(r"^\s*(%[\w]+(?::\d+)?(?:\s*,\s*%[\w]+)*)\s*=")
_VALUE = re.compile(r"%[\w]+(?:#\d+)?")
_SYSTEM_DESC_CHIP = re.compile(r"num_dram_channels = (\d+), dram_channel_size = (\d+).*?dram_unreserved_base = (\d+), "
                               r"dram_unreserved_end = (\d+)")
_DRAM_ALIGN = re.compile(r"noc_dram_address_align_bytes = (\d+)")


class ModuleFormatError(ValueError):
    """The module holds something this reader does not understand (it never guesses)."""


@dataclasses.dataclass(frozen=True)
class Layout:
    name: str
    buffer: str          # dram, l1 or system_memory
    memory: Optional[str]  # interleaved, height_sharded, ...; None in system memory
    grid: Tuple[int, int]
    memref: Tuple[int, ...]  # in tiles when tiled, else elements (one core's shard when sharded)
    dtype: str
    tiled: bool

    @property
    def element_bytes(self) -> int:
        if self.tiled:
            if self.dtype in TILE_BYTES:
                return TILE_BYTES[self.dtype]
            return TILE * TILE * _scalar(self.dtype, self.name)
        return _scalar(self.dtype, self.name)

    @property
    def cores(self) -> int:
        # the memref is the whole tensor in system memory and DRAM interleaved; one core's (bank's) part otherwise
        whole = self.memory is None or (self.buffer == "dram" and self.memory == "interleaved")
        return 1 if whole else self.grid[0] * self.grid[1]

    @property
    def nbytes(self) -> int:
        """The buffer's size: memref elements (tiles) times their bytes, times the cores of a sharded grid."""
        return math.prod(self.memref) * self.element_bytes * self.cores

    def footprint(self, banks: int, align: int) -> int:
        """What the allocator reserves for it on one chip: lockstep pages over ``banks`` when DRAM interleaved."""
        if self.buffer != "dram" or self.memory != "interleaved":
            return self.nbytes
        if self.tiled:
            pages, page = math.prod(self.memref), self.element_bytes
        else:
            pages, page = math.prod(self.memref[:-1]) or 1, self.memref[-1] * self.element_bytes
        page = -(-page // align) * align
        return -(-pages // banks) * page * banks


def _scalar(dtype: str, where: str) -> int:
    if dtype not in SCALAR_BYTES:
        raise ModuleFormatError(f"layout {where}: unknown element type {dtype!r}")
    return SCALAR_BYTES[dtype]


def parse_layouts(module: str) -> Dict[str, Layout]:
    out = {}
    for name, body in _LAYOUT.findall(module):
        memref = _MEMREF.search(body)
        grid = _GRID.search(body)
        if not memref or not grid:
            raise ModuleFormatError(f"layout #{name}: cannot read {body[:160]!r}")
        dims = tuple(int(d) for d in memref.group(1).split("x") if d)
        tiled = memref.group(2).startswith("!ttcore.tile")
        if tiled and (int(memref.group(3)), int(memref.group(4))) != (TILE, TILE):
            raise ModuleFormatError(f"layout #{name}: tiles of {memref.group(3)}x{memref.group(4)} are not read here")
        dtype = memref.group(5) if tiled else memref.group(2)
        buffer = memref.group(6)
        if buffer not in BUFFERS:
            raise ModuleFormatError(f"layout #{name}: unknown buffer type #{buffer}")
        mem = _MEM_LAYOUT.search(body[memref.end() - 1:])
        out[name] = Layout(name, buffer, mem.group(1) if mem else None, (int(grid.group(1)), int(grid.group(2))),
                           dims, dtype, tiled)
    return out


@dataclasses.dataclass(frozen=True)
class Chip:
    """The DRAM one chip of the module's system descriptor gives the allocator."""
    banks: int
    bank_bytes: int   # dram_unreserved_end - dram_unreserved_base of one bank
    align: int

    @property
    def dram_bytes(self) -> int:
        return self.banks * self.bank_bytes


def chip_of(module: str) -> Chip:
    """The smallest chip of the module's ``#system_desc`` (chips of one system differ by a few KB)."""
    chips = [(int(n), int(end) - int(base)) for n, _, base, end in _SYSTEM_DESC_CHIP.findall(module)]
    align = _DRAM_ALIGN.search(module)
    if not chips or not align:
        raise ModuleFormatError("no #system_desc with DRAM figures in the module")
    banks, bank_bytes = min(chips, key=lambda c: c[0] * c[1])
    return Chip(banks, bank_bytes, int(align.group(1)))


def _tensor_layouts(text: str, layouts: Dict[str, Layout]) -> List[Layout]:
    found = []
    for _, _, name in _TENSOR.findall(text):
        if name not in layouts:
            raise ModuleFormatError(f"tensor type names #{name}, which the module does not define")
        found.append(layouts[name])
    return found


def _split_type(line: str) -> Tuple[str, str]:
    """(operands, results) text of an op line's trailing ``: (...) -> (...)`` type."""
    body = line.rsplit(" loc(", 1)[0]
    colon = body.rfind(" : ")
    if colon < 0:
        return body, ""
    sig = body[colon + 3:]
    if "->" not in sig:
        return body[:colon], sig  # return %a, %b : types
    operands, results = sig.rsplit("->", 1)
    return operands, results


@dataclasses.dataclass
class Walk:
    """Live device bytes over one function's ops."""
    peak: Dict[str, int]
    returned: List[str]
    cached: List[Tuple[str, List[Layout]]]  # (const-eval function, its results' layouts) per load_cached


def walk(text: str, layouts: Dict[str, Layout], chip: Chip, name: str = "?") -> Walk:
    """Peak bytes of intermediates per buffer type (values made in the function, alive until deallocated;
    values it returns are left out, they are its results)."""
    lines = text.splitlines()
    returned = []
    for line in lines:
        if line.strip().startswith("return "):
            returned = _VALUE.findall(line.split(" : ")[0])
    keep = set(returned)
    live: Dict[str, Tuple[str, int]] = {}
    used = {b: 0 for b in BUFFERS}
    peak = dict(used)
    cached = []
    for number, line in enumerate(lines[1:], 2):
        s = line.strip()
        if not s or s.startswith(("}", "return ")):
            continue
        if s.startswith('"ttnn.deallocate"('):
            value = _VALUE.search(s).group(0)
            if value in live:
                buf, size = live.pop(value)
                used[buf] -= size
            continue
        result = _RESULT.match(line)
        if not result:
            if s.startswith('"ttnn.') or s.startswith("ttcore."):
                continue  # an op without results (an in-place cache update)
            raise ModuleFormatError(f"@{name} line {number}: cannot read {s[:120]!r}")
        lhs = [v.strip() for v in result.group(1).split(",")]
        if len(lhs) == 1 and ":" in lhs[0]:  # %3:2 = ... defines %3#0 and %3#1
            base, count = lhs[0].split(":")
            names = [f"{base}#{i}" for i in range(int(count))]
        else:
            names = lhs
        _, results = _split_type(s)
        outs = _tensor_layouts(results, layouts)
        if "ttcore.load_cached(" in s:
            callee = re.search(r"load_cached\(@(\w+)", s).group(1)
            cached.append((callee, outs))
            continue  # the runtime's const-eval cache, not this call's memory
        if not outs:
            continue  # !ttnn.device and other handles
        if len(outs) != len(names):
            raise ModuleFormatError(f"@{name} line {number}: {len(names)} results, {len(outs)} tensor types")
        for value, lay in zip(names, outs):
            if value in keep or lay.buffer == "system_memory":
                continue
            size = lay.footprint(chip.banks, chip.align)
            live[value] = (lay.buffer, size)
            used[lay.buffer] += size
            peak[lay.buffer] = max(peak[lay.buffer], used[lay.buffer])
    return Walk(peak, returned, cached)


_ARG = re.compile(r"(%arg\d+): (tensor<[^>]*>)\s*(\{[^}]*\})?")


def read(module: str) -> dict:
    """The per-chip memory figures of a compiled TTNN module (see the module docstring)."""
    layouts = parse_layouts(module)
    chip = chip_of(module)
    funcs = functions(module)
    if "main" not in funcs:
        raise ModuleFormatError(f"no @main in the module (functions: {sorted(funcs)})")
    main = funcs["main"]
    signature = main.splitlines()[0]
    args_text, _, results_text = signature.partition(") -> ")
    args = {}
    for value, tensor, attrs in _ARG.findall(args_text):
        (lay,) = _tensor_layouts(tensor, layouts)
        kind = re.search(r"argument_type<(\w+)>", attrs or "")
        args[value] = (lay, kind.group(1) if kind else "default")
    result_layouts = _tensor_layouts(results_text, layouts)
    w = walk(main, layouts, chip, "main")
    if len(w.returned) != len(result_layouts):
        raise ModuleFormatError(f"@main returns {len(w.returned)} values but declares {len(result_layouts)} results")
    fp = lambda lay: lay.footprint(chip.banks, chip.align) if lay.buffer != "system_memory" else 0
    inputs = sum(fp(lay) for lay, kind in args.values() if kind != "parameter")
    outputs = sum(fp(lay) for value, lay in zip(w.returned, result_layouts) if value not in args)
    params_on_device = sum(fp(lay) for lay, kind in args.values() if kind == "parameter")
    weights = constants = 0
    const_peak = running = const_transient = 0
    for callee, outs in w.cached:
        body = funcs.get(callee)
        if body is None:
            raise ModuleFormatError(f"@main loads @{callee}, which the module does not define")
        size = sum(fp(lay) for lay in outs)
        takes_parameters = bool(_ARG.findall(body.splitlines()[0]))
        if takes_parameters:
            weights += size
        else:
            constants += size
        inner = walk(body, layouts, chip, callee)
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


_LOC = re.compile(r"\s*loc\((?:[^()]|\([^()]*\))*\)")


def const_eval_entries(module: str) -> List[dict]:
    """Each ``ttcore.load_cached`` of ``@main``: what the tt-mlir runtime's const-eval cache keys it by, and
    the bytes its results hold on the device.

    Since tt-mlir #6434 (2025-12, the runtime tt-xla pins) the cache is one process-wide
    ``GlobalTensorCache`` keyed by (device, a hash of the const-eval function's IR with its name
    left out, the versions of its input tensors): two programs whose const-eval functions are the
    same and read the same weight buffers share one device copy, which lives until those weights
    are deleted. ``key`` models that: the function's text with its name, locations and layout
    aliases (expanded to their definitions) normalized, and the ``@main`` arguments it reads (the
    same parameter leaves in every program of a model)."""
    layouts = dict(_LAYOUT.findall(module))
    chip = chip_of(module)
    parsed = parse_layouts(module)
    funcs = functions(module)
    out = []
    for line in funcs["main"].splitlines():
        if "ttcore.load_cached(" not in line:
            continue
        callee, args = re.search(r"load_cached\(@(\w+), \[([^\]]*)\]", line).groups()
        body = funcs[callee].split("\n", 1)
        text = body[0].replace(f"@{callee}(", "@const_eval(") + "\n" + (body[1] if len(body) > 1 else "")
        text = _LOC.sub("", text)
        text = re.sub(r"#(\w+)", lambda m: layouts.get(m.group(1), m.group(0)), text)
        _, results = _split_type(line.strip())
        device = [lay for lay in _tensor_layouts(results, parsed) if lay.buffer != "system_memory"]
        key = hashlib.sha256((text + "|" + args.replace(" ", "")).encode()).hexdigest()[:24]
        out.append({"key": key, "bytes": sum(lay.footprint(chip.banks, chip.align) for lay in device),
                    "nbytes": sum(lay.nbytes for lay in device), "parameters": bool(args.strip()),
                    "function": callee, "inputs": [a.strip() for a in args.split(",") if a.strip()]})
    return out
