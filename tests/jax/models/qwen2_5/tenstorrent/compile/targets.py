"""Tenstorrent compile targets: which system descriptor stands for which mesh, and where they are.

A system descriptor (``.ttsys``) describes the chips of a Tenstorrent system. With
``TT_COMPILE_ONLY_SYSTEM_DESC=<file>`` a Tenstorrent PJRT plugin compiles for that system
without opening hardware (see ``tt_compile.py``). The Blackhole descriptors this project
compiles against are committed beside this file (``system_descs/``, made by
``python -m tests.jax.models.qwen2_5 tt-descriptors``, listed with their plugin and schema
hash in its ``manifest.json``). More come from directories named by ``--tt-system-descs`` or
``QWEN2_5_TT_SYSTEM_DESCS`` (for example tt-xla's ``tests/cpu_compile_only/system_descs``).

This module imports nothing heavy: the pytest collection uses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import re
from typing import Dict, List, Optional, Sequence

COMMITTED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "system_descs")
MANIFEST = os.path.join(COMMITTED_DIR, "manifest.json")
ENV_DIRS = "QWEN2_5_TT_SYSTEM_DESCS"
ENV_PYTHON = "QWEN2_5_TT_PYTHON"
TT_REQUIREMENTS = "requirements-tt.txt"
INSTALL_HINT = ("python3 -m venv .venv-tt && .venv-tt/bin/pip install -r requirements-tt.txt "
                "(or point --tt-python / QWEN2_5_TT_PYTHON at a Python with a Tenstorrent PJRT plugin)")


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    chips: int
    system: str  # what the descriptor stands for, in words
    file_names: tuple  # accepted file names, first is ours

    def meshes(self) -> tuple:
        return {1: ((1, 1),), 8: ((1, 8), (2, 4)), 32: ((1, 32), (8, 4))}[self.chips]


TARGETS = (
    Target("blackhole_p150", 1, "one Blackhole P150", ("blackhole_p150.ttsys", "p150_system_desc.ttsys")),
    Target("wormhole_n150", 1, "one Wormhole n150 (stand-in)",
           ("wormhole_n150.ttsys", "wormhole_n150.patched.ttsys", "n150_system_desc.ttsys")),
    Target("blackhole_8xp150", 8, "8 Blackhole P150 (LoudBox)", ("blackhole_8xp150.ttsys",)),
    Target("wormhole_n300-llmbox", 8, "Wormhole n300 LLMBox, 8 chips (stand-in)",
           ("wormhole_n300-llmbox.ttsys", "wormhole_n300-llmbox.patched.ttsys", "n300-llmbox_system_desc.ttsys")),
    Target("blackhole_galaxy", 32, "32-chip Blackhole Galaxy", ("blackhole_galaxy.ttsys",)),
)
BY_NAME = {t.name: t for t in TARGETS}


PLUGIN_DISTRIBUTIONS = ("pjrt-plugin-tt", "jax-tt-plugin")  # tt-xla's official wheel; the PyPI build


def installed_plugin() -> Optional[str]:
    """``"<distribution> <version>"`` of the Tenstorrent PJRT plugin in this Python, or None."""
    for dist in PLUGIN_DISTRIBUTIONS:
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def targets_for(shape: Sequence[int]) -> List[Target]:
    return [t for t in TARGETS if tuple(shape) in t.meshes()]


def search_dirs(extra: Optional[str] = None) -> List[str]:
    """The committed directory, then ``extra`` and ``$QWEN2_5_TT_SYSTEM_DESCS`` (os.pathsep-separated)."""
    dirs = [COMMITTED_DIR]
    for value in (extra, os.environ.get(ENV_DIRS)):
        dirs += [d for d in (value or "").split(os.pathsep) if d]
    return dirs


def find_descriptor(target: Target, dirs: Sequence[str]) -> Optional[str]:
    for d in dirs:
        for name in target.file_names:
            path = os.path.join(d, name)
            if os.path.isfile(path):
                return os.path.abspath(path)
    return None


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


_HASH = re.compile(rb"[0-9a-f]{64}")


def schema_hash(path: str) -> Optional[str]:
    """The FlatBuffer schema hash a descriptor carries (a 64-hex-digit string inside it)."""
    with open(path, "rb") as f:
        found = _HASH.findall(f.read())
    return found[0].decode() if found else None


def read_manifest() -> Dict:
    with open(MANIFEST) as f:
        return json.load(f)


def parse_target(parser, name: str, mesh, model_config, compiled: Optional[str] = None, more=()) -> Target:
    """The target a command's ``--target NAME --mesh BxM`` names, checked against the model: a usage error
    (``parser.fail``, one line, exit status 2) for an unknown name, a mesh of another size, or a mesh the
    model's heads cannot be split over. ``compiled``: the target compiled for when ``name`` is a stand-in
    (one of ``more``)."""
    from ...cli.devices import mesh_text
    from ...model.layout import TPLayout

    names = {t.name: t for t in TARGETS}
    if (compiled or name) not in names:
        parser.fail(f"argument --target: {name!r} is not one of {', '.join(list(names) + list(more))}")
    target = names[compiled or name]
    if tuple(mesh) not in target.meshes():
        parser.fail(f"--mesh {mesh_text(mesh)} does not fit {name} ({target.chips} chips: "
                    f"{', '.join(map(mesh_text, target.meshes()))})")
    try:
        TPLayout(model_config, mesh[1])
    except ValueError as e:
        parser.fail(f"--mesh {mesh_text(mesh)}: {e}")
    return target
