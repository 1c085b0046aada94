"""The package's layout is its architecture: sub-packages in layers, each importing only the layers
below it, ``model`` importing no other part, ``testing`` imported only by the suite, ``tenstorrent/``'s
rooms in layers of their own, one reader of TTNN module text, and no import cycles. Read from the
source (every import statement, also those inside functions)."""

import ast
import os

import pytest

pytestmark = pytest.mark.cpu

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "tests.jax.models.qwen2_5"
# Each sub-package may import those of a lower rank. bench, tenstorrent and ttxla_ci share a rank: none imports another.
RANK = {"model": 0, "cli": 1, "gsm8k": 2, "synthetic": 3, "tenstorrent": 4, "bench": 4, "ttxla_ci": 4, "testing": 5}
# What the model may never import: it runs wherever JAX runs, without the reference stack or the suite.
MODEL_FORBIDDEN = ("torch", "transformers", "datasets", "tokenizers", "pytest")
TOP_FILES = ("__init__.py", "__main__.py", "conftest.py")
# tenstorrent/'s rooms: each imports those of a lower rank; memory and executor share a rank (neither imports the
# other); the emulated platform builds on the compiler and the executor
TT_RANK = {"ttnn": 0, "compile": 1, "memory": 2, "executor": 2, "emulated": 3}
# The one import of the package's __init__ beyond the model: load_model(..., tt_target=...) (inside the function).
TOP_MAY_IMPORT = ("tenstorrent.emulated.api",)
# What may apply a regular expression (import re), and why. TTNN module text is read by ttnn/module.py and
# ttnn/attributes.py alone; FileCheck matches text by design; the others never see a TTNN module.
MAY_USE_RE = {
    "tenstorrent.ttnn.module": "the reader of TTNN modules",
    "tenstorrent.ttnn.attributes": "the reader of TTNN attribute values",
    "tenstorrent.ttnn.filecheck": "FileCheck checks text by design",
    "tenstorrent.compile.worker": "the plugin's log: stage headers and error lines",
    "tenstorrent.compile.targets": "a descriptor's schema hash",
    "ttxla_ci.replay": "mesh ids in test ids",
    "model.partitioning": "the partition rules' parameter paths",
    "gsm8k.answers": "answers in model completions",
    "gsm8k.prompts": "GSM8K solutions",
    "test_bench": "the benchmark's printed table",
    "test_generation": "HLO text (XLA's collectives)",
    "test_x64": "StableHLO text",
    "test_docs": "Markdown links and headings",
}


def modules():
    """{dotted name relative to the package ('' for the top): (path, is_package)}."""
    found = {}
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, name), PACKAGE_DIR)[:-3].split(os.sep)
                is_pkg = rel[-1] == "__init__"
                found[".".join(rel[:-1] if is_pkg else rel)] = (os.path.join(root, name), is_pkg)
    return found


MODULES = modules()


def imports(name):
    """[(imported module relative to the package, or None for outside it; the absolute name), line]."""
    path, is_pkg = MODULES[name]
    here = name.split(".") if name else []
    package = here if is_pkg else here[:-1]
    out = []
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                if node.level - 1 > len(package):
                    raise AssertionError(f"{path}:{node.lineno} imports above the package")
                mod = ".".join(base + ([node.module] if node.module else []))
                targets = [f"{PACKAGE}.{mod}" if mod else PACKAGE]
            else:
                targets = [node.module]
            # `from X import y` where X.y is a module imports that module
            targets = [f"{t}.{a.name}" if _rel(f"{t}.{a.name}") in MODULES else t
                       for t in targets for a in node.names] if isinstance(node, ast.ImportFrom) else targets
        else:
            continue
        out += [((_rel(t), t), node.lineno) for t in targets]
    return out


def _rel(absolute):
    if absolute == PACKAGE:
        return ""
    if absolute.startswith(PACKAGE + "."):
        return absolute[len(PACKAGE) + 1:]
    return None


def part(name):
    """The sub-package a module belongs to; 'top' for the package's own files."""
    head = name.split(".")[0] if name else ""
    return head if head in RANK else "top"


def room(name):
    """The room of tenstorrent/ a module belongs to; None outside tenstorrent/ and for its __init__."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "tenstorrent" and parts[1] in TT_RANK else None


def test_the_package_top_holds_only_its_entry_points_and_the_tests():
    top = sorted(f for f in os.listdir(PACKAGE_DIR) if f.endswith(".py"))
    stray = [f for f in top if f not in TOP_FILES and not f.startswith("test_")]
    assert not stray, f"modules at the package top belong in a sub-package: {stray}"
    subdirs = sorted(d for d in os.listdir(PACKAGE_DIR) if os.path.isfile(os.path.join(PACKAGE_DIR, d, "__init__.py")))
    assert subdirs == sorted(RANK), f"sub-packages {subdirs}; the layering table knows {sorted(RANK)}"


def test_tenstorrent_holds_only_its_rooms():
    top = os.path.join(PACKAGE_DIR, "tenstorrent")
    stray = sorted(f for f in os.listdir(top) if f.endswith(".py") and f != "__init__.py")
    assert not stray, f"modules at tenstorrent/'s top belong in one of its rooms {sorted(TT_RANK)}: {stray}"
    rooms = sorted(d for d in os.listdir(top) if os.path.isfile(os.path.join(top, d, "__init__.py")))
    assert rooms == sorted(TT_RANK), f"tenstorrent/ rooms {rooms}; the layering table knows {sorted(TT_RANK)}"


@pytest.mark.parametrize("sub", sorted(RANK) + [f"tenstorrent.{r}" for r in sorted(TT_RANK)])
def test_each_sub_package_says_its_job_imports_and_public_names(sub):
    doc = ast.get_docstring(ast.parse(open(MODULES[sub][0]).read())) or ""
    assert "May import" in doc and "Public names" in doc, f"{sub}/__init__.py must open with its job, what it " \
                                                           f"may import and its public names"


def test_every_import_goes_down_the_layers():
    wrong = []
    for name in MODULES:
        src = part(name)
        command = name.endswith("__main__")
        for (target, absolute), line in imports(name):
            where = f"{MODULES[name][0][len(PACKAGE_DIR) + 1:]}:{line} imports {absolute}"
            if target is None:
                if src == "model" and absolute.split(".")[0] in MODEL_FORBIDDEN:
                    wrong.append(f"{where}: the model imports no reference stack or test tool")
                continue
            dst = "model" if target == "" else part(target)  # the package top re-exports the model
            if src == dst == "tenstorrent":
                here, there = room(name), room(target)
                if here and there and here != there and TT_RANK[there] >= TT_RANK[here]:
                    wrong.append(f"{where}: tenstorrent/{here}/ (rank {TT_RANK[here]}) may import only lower "
                                 f"rooms, not tenstorrent/{there}/")
                elif here is None and target != "tenstorrent" and name == "tenstorrent":
                    wrong.append(f"{where}: tenstorrent/__init__.py imports nothing")
                continue
            if src == dst or (src == "top" and name == "" and dst == "model"):
                continue
            if dst == "testing":
                if src == "top" and name in ("", "__main__"):
                    wrong.append(f"{where}: only the tests and the conftest import testing/")
                elif src != "top":
                    wrong.append(f"{where}: only the tests and the conftest import testing/")
                continue
            if dst == "top" and target != "":
                wrong.append(f"{where}: nothing imports the tests or the conftest")
                continue
            if src == "top":
                if name == "" and target not in TOP_MAY_IMPORT:
                    wrong.append(f"{where}: the package's __init__ imports the model only (and {TOP_MAY_IMPORT})")
                continue
            if command and dst != "testing":
                continue  # a command (__main__) may use any part but the suite's
            if src == "model" or RANK[dst] >= RANK[src]:
                wrong.append(f"{where}: {src}/ (rank {RANK[src]}) may import only lower layers, not {dst}/")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph = {name: sorted({t for (t, _), _ in imports(name) if t is not None and t != name}) for name in MODULES}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # a package's __init__ re-exporting its modules is not a cycle when those modules import siblings only
    cycles = [c for c in cycles if not any(MODULES[n][1] for n in c[:-1] if n)]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(n or "<top>" for n in c) for c in cycles)


def test_only_the_reader_applies_regular_expressions_to_ttnn_module_text():
    """Any module that imports ``re`` is listed with what it matches: TTNN module text is read by one reader."""
    found = {name for name in MODULES for (target, absolute), _ in imports(name) if target is None and absolute == "re"}
    unlisted = sorted(found - set(MAY_USE_RE))
    assert not unlisted, (f"{unlisted} import re: TTNN module text is read through tenstorrent/ttnn/module.py; "
                          f"anything else it matches goes in MAY_USE_RE with its reason")
    stale = sorted(set(MAY_USE_RE) - found)
    assert not stale, f"{stale} no longer import re: drop them from MAY_USE_RE"
