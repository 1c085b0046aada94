"""Parse a TTNN module as the Tenstorrent plugin prints it (MLIR generic op form) into a small op graph.

What is read: the ``#ttnn_layoutN`` aliases (through ``ttnn_memory.parse_layouts``), the mesh shape of
``ttcore.meshes``, and every ``func.func``: its arguments (name, tensor type, attributes such as
``ttcore.shard_status`` and ``ttcore.local_shape``), its ops one per line (results, op name, operands,
the ``<{...}>`` attribute dictionary, result types, line number) and its ``return``. ``ttcore.load_cached``
(a const-eval call) is read as an op whose callee is its first attribute. Nothing is guessed: a line
inside a function that is not an op, a ``return`` or the closing brace is a ``ModuleFormatError``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, List, Optional, Tuple

from ..ttnn_memory import ModuleFormatError, parse_layouts

__all__ = ["ModuleFormatError", "TensorType", "Op", "Function", "Module", "parse", "parse_attributes",
           "split_top"]

_FUNC = re.compile(r"^\s*func\.func (?:public |private )?@(\w+)\((.*)$")
_MESHES = re.compile(r'ttcore\.meshes = #ttcore\.meshes<\[<"\w+" = ((?:\d+x)*\d+)>\]>')
_TENSOR = re.compile(r"^tensor<((?:\d+x)*)([a-z]\w*|!ttcore\.tile<32x32, (\w+)>)(?:, #(\w+))?>$")
_RESULTS = re.compile(r"^\s*((?:%[\w]+(?::\d+)?)(?:\s*,\s*%[\w]+)*)\s*=\s*(.*)$")
_LOC = re.compile(r"\s*loc\((?:[^()\"]|\"[^\"]*\"|\((?:[^()\"]|\"[^\"]*\"|\([^()]*\))*\))*\)\s*$")
_NAME = re.compile(r"%[\w]+(?:#\d+)?")


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


@dataclasses.dataclass
class Module:
    functions: Dict[str, Function]
    mesh_shape: Tuple[int, int]
    layouts: dict

    @property
    def devices(self) -> int:
        return self.mesh_shape[0] * self.mesh_shape[1]

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
    layouts = parse_layouts(text)
    mesh = _MESHES.search(text)
    if not mesh:
        raise ModuleFormatError("no ttcore.meshes attribute: not a TTNN module as the plugin prints it")
    dims = tuple(int(d) for d in mesh.group(1).split("x"))
    if len(dims) != 2:
        raise ModuleFormatError(f"mesh shape {mesh.group(1)} is not 2-D")
    functions: Dict[str, Function] = {}
    current: Optional[Function] = None
    for number, raw in enumerate(text.splitlines(), 1):
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
    return Module(functions, (dims[0], dims[1]), layouts)
