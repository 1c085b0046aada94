"""The one reader of TTNN modules as the Tenstorrent plugin prints them (MLIR generic op form).

``parse(text)`` gives a ``Module``: the ``#ttnn_layoutN`` aliases as ``Layout``s (buffer type, memory
layout, grid, memref, element type, tiling) with their raw text, the ``#system_desc``'s chips (``System``:
architecture, DRAM banks and sizes, alignment), the mesh shape of ``ttcore.meshes`` (``None`` in a
module printed without one), and every ``func.func``: its arguments (name, tensor type, attributes such
as ``ttcore.argument_type``, ``ttcore.shard_status`` and ``ttcore.local_shape``), its result types, its
ops one per line (results, op name, operands, the ``<{...}>`` attribute dictionary, operand and result
types, line number), its ``return`` and its text as printed. ``ttcore.load_cached`` (a const-eval call)
is read as an op whose ``callee`` is the const-eval function. Attribute values are read by
``attributes.py``. Nothing is guessed: a line inside a function that is not an op, a ``return`` or the
closing brace is a ``ModuleFormatError``.

Everything that reads a compiled module (the audits, the memory reader, the step cost, the executor)
reads this object; no other module applies a regular expression to the module text.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Dict, List, Optional, Tuple

__all__ = ["ModuleFormatError", "Layout", "System", "TensorType", "Op", "Argument", "Function", "Module", "parse",
           "parse_layouts", "parse_type", "parse_attributes", "split_top"]

_FUNC = re.compile(r"^\s*func\.func (?:public |private )?@(\w+)\((.*)$")
_MESHES = re.compile(r'ttcore\.meshes = #ttcore\.meshes<\[<"\w+" = ((?:\d+x)*\d+)>\]>')
_TENSOR = re.compile(r"^tensor<((?:\d+x)*)([a-z]\w*|!ttcore\.tile<32x32, (\w+)>)(?:, #(\w+))?>$")
_RESULTS = re.compile(r"^\s*((?:%[\w]+(?::\d+)?)(?:\s*,\s*%[\w]+)*)\s*=\s*(.*)$")
_LOC = re.compile(r"\s*loc\((?:[^()\"]|\"[^\"]*\"|\((?:[^()\"]|\"[^\"]*\"|\([^()]*\))*\))*\)\s*$")
_NAME = re.compile(r"%[\w]+(?:#\d+)?")
# layouts: ``#ttnn_layout3 = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <1x1>, memref<..., #dram>, <interleaved>>``
_LAYOUT = re.compile(r"^#(\w+) = #ttnn\.ttnn_layout<(.*)>\s*$", re.M)
_MEMREF = re.compile(r"memref<((?:\d+x)*)(!ttcore\.tile<(\d+)x(\d+), (\w+)>|[a-z]\w*), #(\w+)>")
_GRID = re.compile(r"\)\s*,\s*<(\d+)x(\d+)")
_MEM_LAYOUT = re.compile(r">\s*,\s*<(interleaved|height_sharded|width_sharded|block_sharded|nd_sharded)>")
# the system descriptor: each chip's DRAM, the DRAM alignment and the architecture
_SYSTEM_DESC_CHIP = re.compile(r"num_dram_channels = (\d+), dram_channel_size = (\d+).*?dram_unreserved_base = (\d+), "
                               r"dram_unreserved_end = (\d+)")
_DRAM_ALIGN = re.compile(r"noc_dram_address_align_bytes = (\d+)")
_ARCH = re.compile(r"arch = <(\w+)>")
# a function's text made independent of its name, locations and layout alias names (the const-eval cache key)
_ANY_LOC = re.compile(r"\s*loc\((?:[^()]|\([^()]*\))*\)")
_ALIAS = re.compile(r"#(\w+)")

SCALAR_BYTES = {"f32": 4, "f16": 2, "bf16": 2, "si32": 4, "ui32": 4, "u32": 4, "i32": 4, "si16": 2, "ui16": 2,
                "u16": 2, "i16": 2, "si8": 1, "ui8": 1, "u8": 1, "i8": 1, "i1": 1, "f64": 8, "si64": 8, "ui64": 8}
TILE = 32
# bytes of one 32x32 tile (block floats: the data and one shared exponent byte per 16 values)
TILE_BYTES = {"bfp_bf8": 1088, "bfp_f8": 1088, "bfp_bf4": 576, "bfp_f4": 576, "bfp_bf2": 320, "bfp_f2": 320}
BUFFERS = ("dram", "l1", "system_memory")


class ModuleFormatError(ValueError):
    """The module holds something this reader does not understand (it never guesses)."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """A ``#ttnn.ttnn_layout``: where a tensor lives and how it is stored."""
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


def parse_layouts(text: str) -> Dict[str, Layout]:
    """Every ``#name = #ttnn.ttnn_layout<...>`` alias of the module text."""
    out = {}
    for name, body in _LAYOUT.findall(text):
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
class System:
    """What the module's ``#system_desc`` says of its chips."""
    arch: Optional[str]                   # as printed: wormhole_b0, blackhole
    chips: Tuple[Tuple[int, int], ...]    # per chip: (DRAM banks, unreserved bytes of one bank)
    dram_align: Optional[int]             # noc_dram_address_align_bytes

    @property
    def family(self) -> str:
        """``wormhole`` or ``blackhole``."""
        for family in ("wormhole", "blackhole"):
            if self.arch and self.arch.startswith(family):
                return family
        raise ModuleFormatError(f"no known chip architecture in the module's system descriptor ({self.arch})")


def _parse_system(text: str) -> System:
    chips = tuple((int(n), int(end) - int(base)) for n, _, base, end in _SYSTEM_DESC_CHIP.findall(text))
    align = _DRAM_ALIGN.search(text)
    arch = _ARCH.search(text)
    return System(arch.group(1) if arch else None, chips, int(align.group(1)) if align else None)


@dataclasses.dataclass(frozen=True)
class TensorType:
    shape: Tuple[int, ...]
    dtype: str            # the element type as printed: f32, bf16, si32, ui32, i1, ...
    layout: Optional[str]  # the #ttnn_layout alias, None when printed without one

    def __str__(self):
        dims = "".join(f"{d}x" for d in self.shape)
        return f"tensor<{dims}{self.dtype}>"


@dataclasses.dataclass
class Op:
    name: str                  # "ttnn.add", "ttcore.load_cached", ...
    results: List[str]         # SSA names defined, e.g. ["%3"] or ["%3#0", "%3#1"]
    operands: List[str]
    attrs: Dict[str, str]      # attribute name -> its text (parse with the helpers below)
    operand_types: List[Optional[TensorType]]  # None for non-tensor operands (!ttnn.device)
    result_types: List[Optional[TensorType]]
    line: int                  # 1-based line in the module text
    callee: Optional[str] = None  # ttcore.load_cached's const-eval function

    @property
    def kind(self) -> str:
        return self.name.split(".", 1)[1]


@dataclasses.dataclass
class Argument:
    name: str
    type: TensorType
    attrs: Dict[str, str]

    @property
    def shard_status(self) -> Optional[str]:
        got = re.search(r"shard_status<(\w+)>", self.attrs.get("ttcore.shard_status", ""))
        return got.group(1) if got else None

    @property
    def local_shape(self) -> Optional[Tuple[int, ...]]:
        got = re.search(r"local_shape = tensor<((?:\d+x)*)\w+>", self.attrs.get("ttcore.local_shape", ""))
        return None if not got else tuple(int(d) for d in got.group(1).split("x") if d)

    @property
    def argument_type(self) -> Optional[str]:
        got = re.search(r"argument_type<(\w+)>", self.attrs.get("ttcore.argument_type", ""))
        return got.group(1) if got else None


@dataclasses.dataclass
class Function:
    name: str
    args: List[Argument]
    result_types: List[Optional[TensorType]]
    ops: List[Op]
    returns: List[str]
    attrs: str
    line: int
    result_attrs: List[Dict[str, str]] = dataclasses.field(default_factory=list)
    text: str = ""  # as printed: from its ``func.func`` line up to the next function's (or the module's end)

    @property
    def signature(self) -> str:
        return self.text.split("\n", 1)[0]

    def anonymous_text(self, layouts_text: Dict[str, str]) -> str:
        """The function's text with its name, its locations and its layout alias names left out (each alias
        replaced by its definition): two programs' copies of one const-eval function read the same."""
        head, _, body = self.text.partition("\n")
        text = head.replace(f"@{self.name}(", "@const_eval(") + "\n" + body
        text = _ANY_LOC.sub("", text)
        return _ALIAS.sub(lambda m: layouts_text.get(m.group(1), m.group(0)), text)


@dataclasses.dataclass
class Module:
    functions: Dict[str, Function]
    mesh_shape: Optional[Tuple[int, int]]  # None when the module was printed without ``ttcore.meshes``
    layouts: Dict[str, Layout]
    layouts_text: Dict[str, str] = dataclasses.field(default_factory=dict)  # alias -> its definition as printed
    system: System = System(None, (), None)

    @property
    def devices(self) -> int:
        return self.mesh_shape[0] * self.mesh_shape[1]

    @property
    def main(self) -> Function:
        return self.functions["main"]

    def layout_of(self, t: Optional[TensorType], where: str = "") -> Optional[Layout]:
        """The layout a tensor type names (``None`` for a non-tensor or a type printed without one)."""
        if t is None or t.layout is None:
            return None
        if t.layout not in self.layouts:
            raise ModuleFormatError(f"{where}tensor type names #{t.layout}, which the module does not define")
        return self.layouts[t.layout]

    def op_kinds(self) -> Dict[str, int]:
        """How many times each op appears over all functions (``ttnn.add`` -> 12)."""
        out: Dict[str, int] = {}
        for f in self.functions.values():
            for op in f.ops:
                out[op.name] = out.get(op.name, 0) + 1
        return out


def _scan(text: str, start: int = 0):
    """(index, character, bracket depth before it) outside quotes; ``>`` of an ``->`` arrow closes nothing."""
    depth, quote, i = 0, False, start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == '"':
                quote = False
        elif c == '"':
            quote = True
        else:
            yield i, c, depth
            if c in "<([{":
                depth += 1
            elif c in ">)]}" and not (c == ">" and i and text[i - 1] == "-"):
                depth -= 1
        i += 1


def split_top(text: str, sep: str = ",") -> List[str]:
    """Split at ``sep`` outside brackets, quotes and ``->`` arrows."""
    out, start = [], 0
    for i, c, depth in _scan(text):
        if c == sep and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _closing(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``start``."""
    for i, c, depth in _scan(text, start):
        if c in ">)]}" and depth == 1 and not (c == ">" and text[i - 1] == "-"):
            return i
    raise ModuleFormatError(f"unbalanced {text[start]!r} in {text[start:start + 120]!r}")


def parse_attributes(text: str) -> Dict[str, str]:
    """``a = 1 : i32, b = [..]`` (the inside of ``<{...}>`` or ``{...}``) -> {name: value text}."""
    out = {}
    for part in split_top(text):
        if "=" not in part:
            out[part.strip()] = "unit"
            continue
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def parse_type(text: str) -> Optional[TensorType]:
    text = text.strip()
    if not text.startswith("tensor<"):
        return None
    got = _TENSOR.match(text)
    if not got:
        raise ModuleFormatError(f"cannot read the tensor type {text[:120]!r}")
    # a block-float tensor prints its element type as a tile (``!ttcore.tile<32x32, bfp_bf8>``): its dtype is the tile's
    dtype = got.group(3) or got.group(2)
    return TensorType(tuple(int(d) for d in got.group(1).split("x") if d), dtype, got.group(4))


def _typed(text: str) -> List[Tuple[Optional[TensorType], Dict[str, str]]]:
    """Types of a list, each with the ``{...}`` attributes a function signature may give it."""
    text = text.strip()
    if text.startswith("(") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1]
    out = []
    for part in split_top(text) if text else []:
        brace = part.find(" {")
        attrs = parse_attributes(part[brace + 2:_closing(part, brace + 1)]) if brace >= 0 else {}
        out.append((parse_type(part[:brace] if brace >= 0 else part), attrs))
    return out


def _types(text: str) -> List[Optional[TensorType]]:
    return [t for t, _ in _typed(text)]


def _result_names(lhs: str) -> List[str]:
    names = [n.strip() for n in lhs.split(",")]
    if len(names) == 1 and ":" in names[0]:
        base, count = names[0].split(":")
        return [f"{base}#{i}" for i in range(int(count))]
    return names


def _parse_op(body: str, line: int, where: str) -> Op:
    got = _RESULTS.match(body)
    results, rest = (_result_names(got.group(1)), got.group(2)) if got else ([], body.strip())
    if rest.startswith("ttcore.load_cached("):
        close = _closing(rest, len("ttcore.load_cached"))
        inner = rest[len("ttcore.load_cached") + 1:close]
        callee, _, args = inner.partition(",")
        operands = _NAME.findall(args)
        sig = rest[close + 1:].strip()
        if not sig.startswith(":"):
            raise ModuleFormatError(f"{where} line {line}: load_cached without a type: {body[:160]!r}")
        ins, _, outs = sig[1:].rpartition("->")
        return Op("ttcore.load_cached", results, operands, {}, _types(ins), _types(outs), line,
                  callee=callee.strip().lstrip("@"))
    name = re.match(r'"([\w.]+)"\(', rest)
    if not name:
        raise ModuleFormatError(f"{where} line {line}: not an op in generic form: {body[:160]!r}")
    open_at = rest.index("(")
    close = _closing(rest, open_at)
    operands = _NAME.findall(rest[open_at + 1:close])
    tail = rest[close + 1:].strip()
    attrs: Dict[str, str] = {}
    if tail.startswith("<{"):
        end = _closing(tail, 1)
        attrs = parse_attributes(tail[2:end])
        tail = tail[end + 2:].strip()
    if not tail.startswith(":"):
        raise ModuleFormatError(f"{where} line {line}: {name.group(1)} has no type signature: {body[:160]!r}")
    sig = tail[1:].strip()
    close = _closing(sig, 0)
    ins, outs = sig[:close + 1], sig[close + 1:].strip()
    if not outs.startswith("->"):
        raise ModuleFormatError(f"{where} line {line}: {name.group(1)}: no '->' in {sig[:160]!r}")
    return Op(name.group(1), results, operands, attrs, _types(ins), _types(outs[2:]), line)


def _parse_signature(text: str, line: int):
    """``%arg0: tensor<..> {attrs} loc(..), ...) -> (types) attributes {...} {`` -> (args, result types, attrs)."""
    close = _closing("(" + text, 0) - 1
    args_text, rest = text[:close], text[close + 1:].strip()
    args = []
    for part in split_top(args_text):
        part = _LOC.sub("", part)
        name, _, rest_arg = part.partition(":")
        rest_arg = rest_arg.strip()
        attrs = {}
        brace = rest_arg.find(" {")
        if brace >= 0:
            attrs = parse_attributes(rest_arg[brace + 2:_closing(rest_arg, brace + 1)])
            rest_arg = rest_arg[:brace]
        args.append(Argument(name.strip(), parse_type(rest_arg), attrs))
    results: List[Tuple[Optional[TensorType], Dict[str, str]]] = []
    fattrs = ""
    if rest.startswith("->"):
        rest = rest[2:].strip()
        if rest.startswith("("):
            end = _closing(rest, 0)
            results, rest = _typed(rest[:end + 1]), rest[end + 1:].strip()
        else:
            cut = rest.find(" attributes ")
            cut = cut if cut >= 0 else rest.rfind("{")
            results, rest = _typed(rest[:cut]), rest[cut:].strip()
    if rest.startswith("attributes"):
        fattrs = rest[len("attributes"):].strip().rstrip("{").strip()
    return args, results, fattrs


def parse(text: str) -> Module:
    """The module's layouts, system descriptor, mesh and functions (see the module docstring)."""
    layouts = parse_layouts(text)
    mesh_shape = None
    mesh = _MESHES.search(text)
    if mesh:
        dims = tuple(int(d) for d in mesh.group(1).split("x"))
        if len(dims) != 2:
            raise ModuleFormatError(f"mesh shape {mesh.group(1)} is not 2-D")
        mesh_shape = (dims[0], dims[1])
    lines = text.splitlines()
    functions: Dict[str, Function] = {}
    current: Optional[Function] = None
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if current is None:
            got = _FUNC.match(raw)
            if got:
                args, results, fattrs = _parse_signature(got.group(2), number)
                current = Function(got.group(1), args, [t for t, _ in results], [], [], fattrs, number,
                                   [a for _, a in results])
            continue
        if not line or line.startswith("//"):
            continue
        if line.startswith("}"):
            functions[current.name] = current
            current = None
            continue
        body = _LOC.sub("", line)
        where = f"@{current.name}"
        if body.startswith("return"):
            current.returns = _NAME.findall(body.split(" : ")[0])
            continue
        current.ops.append(_parse_op(body, number, where))
    if current is not None:
        raise ModuleFormatError(f"@{current.name} (line {current.line}) is not closed")
    if "main" not in functions:
        raise ModuleFormatError(f"no @main in the module (functions: {sorted(functions)})")
    starts = sorted(f.line for f in functions.values())
    for f in functions.values():
        following = [s for s in starts if s > f.line]
        f.text = "\n".join(lines[f.line - 1:(following[0] - 1) if following else len(lines)])
    return Module(functions, mesh_shape, layouts, dict(_LAYOUT.findall(text)), _parse_system(text))
