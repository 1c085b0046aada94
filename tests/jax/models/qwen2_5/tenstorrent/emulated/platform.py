"""The emulated Tenstorrent platform: which target stands for a mesh, and the program backend the model calls.

``EmulatedPlatform(targets, tt_python=None, compile_cache=None)`` is what ``Qwen2TP(programs=...)`` takes:
``jit(model, fn, name, donate_argnums)`` gives a program (``program.EmulatedProgram``) that compiles with
tt-mlir for the target of the model's mesh (the model's compile options, else ``TT_COMPILER_OPTIONS``, as on
``tt``) and runs in the TTNN executor. A mesh of N CPU devices runs on the target of N chips, or on a larger
one named for it (its devices' ids are the chips'). ``stats()`` counts compiles, cache hits and the ops
executed per target.

Nothing here falls back to XLA:CPU: without a plugin interpreter or a descriptor, building the platform
raises ``EmulationUnavailable`` naming what is missing and how to get it.
"""

from __future__ import annotations

import collections
import pathlib
from typing import Dict, Optional, Sequence

from ..compile.service import CompileService, cache_dir
from ..compile.targets import BY_NAME, TARGETS, Target, find_descriptor, search_dirs
from .program import EmulatedProgram

NAME = "tt-emulated"
# The target each mesh size runs on unless told otherwise: the one-chip Blackhole, the Wormhole LLMBox
# (the suite's hardware CI runner) and the Blackhole Galaxy (the 32-chip system with a descriptor here).
DEFAULT_TARGETS = {1: "blackhole_p150", 8: "wormhole_n300-llmbox", 32: "blackhole_galaxy"}
ROOT = str(pathlib.Path(__file__).resolve().parents[6])  # where `tests.jax.models.qwen2_5` imports from


class EmulationUnavailable(RuntimeError):
    """The emulated platform cannot start here: no plugin interpreter, or no descriptor for a target."""


def parse_targets(names: Sequence[str] = ()) -> Dict[int, Target]:
    """{chips: target}: the defaults, with each named target taking its chip count. An unknown name or two
    names for one chip count is a ValueError."""
    chosen: Dict[int, Target] = {n: BY_NAME[t] for n, t in DEFAULT_TARGETS.items()}
    seen = {}
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name not in BY_NAME:
            raise ValueError(f"unknown Tenstorrent target {name!r}; the targets are {', '.join(t.name for t in TARGETS)}")
        target = BY_NAME[name]
        if target.chips in seen:
            raise ValueError(f"two targets for {target.chips}-chip meshes: {seen[target.chips]} and {name}")
        seen[target.chips] = name
        chosen[target.chips] = target
    return chosen


_SERVICES: Dict[tuple, CompileService] = {}


def service(tt_python: Optional[str] = None, compile_cache: Optional[str] = None) -> CompileService:
    """The process's compile service for that plugin interpreter and cache (its servers are shared by every
    platform object and model)."""
    from ..compile.jobs import tt_python as find_python

    python, how = find_python(tt_python, ROOT)
    if python is None:
        raise EmulationUnavailable(f"the tt-emulated platform compiles with tt-mlir in a Python with a "
                                   f"Tenstorrent PJRT plugin: {how}")
    key = (python, cache_dir(compile_cache))
    if key not in _SERVICES:
        _SERVICES[key] = CompileService(python, ROOT, key[1])
    return _SERVICES[key]


class EmulatedPlatform:
    platform = NAME

    def __init__(self, targets: Optional[Dict[int, Target]] = None, tt_python: Optional[str] = None,
                 compile_cache: Optional[str] = None, descriptor_dirs: Optional[str] = None,
                 arithmetic: str = "exact"):
        from ..executor.ops import check_arithmetic

        self.arithmetic = check_arithmetic(arithmetic)  # the executor's: exact, or the chip's (docs/chip_arithmetic.md)
        self.targets = dict(targets or parse_targets())
        self.dirs = search_dirs(descriptor_dirs)
        self.service = service(tt_python, compile_cache)
        self.counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.executor_seconds: Dict[str, float] = collections.defaultdict(float)

    def target_for(self, devices: int) -> Target:
        fits = sorted((t for t in self.targets.values() if t.chips >= devices), key=lambda t: t.chips)
        if not fits:
            raise EmulationUnavailable(f"no Tenstorrent target has {devices} chips (targets: "
                                       f"{', '.join(t.name for t in self.targets.values())})")
        return fits[0]

    def descriptor(self, target: Target) -> str:
        path = find_descriptor(target, self.dirs)
        if path is None:
            raise EmulationUnavailable(f"no system descriptor for {target.name}: point QWEN2_5_TT_SYSTEM_DESCS (or "
                                       f"--tt-system-descs) at a directory holding {target.file_names[0]}")
        return path

    def check(self, devices: int) -> Target:
        """The target a mesh of ``devices`` runs on, its descriptor found (raises what is missing)."""
        target = self.target_for(devices)
        self.descriptor(target)
        return target

    # --- the program backend (Qwen2TP.jit) -------------------------------------------------------------
    def jit(self, model, fn, name: str, donate_argnums=()):
        self.check(model.mesh.size)
        return EmulatedProgram(self, model, fn, name, donate_argnums)

    def bind(self, model, name: str, lowered, host_lowered=None):
        """Compile ``lowered`` (lowered for Tenstorrent devices) with tt-mlir and bind its TTNN module to
        ``host_lowered``, the same program lowered for the CPU mesh, which XLA:CPU compiles for the binding (default
        ``lowered``)."""
        from jax._src.interpreters import pxla

        from ..executor import runner

        mesh = model.mesh
        target = self.target_for(mesh.size)
        args = lowered._lowering.compile_args
        inputs, outputs = pxla.get_prop_to_input_output(args["in_shardings"], args["out_shardings"],
                                                        len(args["ordered_effects"]))
        ttnn = self.service.compile(target.name, self.descriptor(target), lowered.as_text(),
                                    [int(d.id) for d in mesh.devices.flat], model.tt_compiler_options(),
                                    inputs, outputs)
        bound = runner.bind(ttnn, host_lowered or lowered, f"{name} ({target.name})", arithmetic=self.arithmetic)
        bound.target = target.name
        return bound

    def run(self, bound, args):
        before = bound.executor.seconds
        counts_before = collections.Counter(bound.executor.counts)
        out = bound(*args)
        self.counts[bound.target].update(bound.executor.counts - counts_before)
        self.executor_seconds[bound.target] += bound.executor.seconds - before
        return out

    def stats(self) -> dict:
        """Compiles, cache hits, compile and executor seconds, and ops executed by target."""
        return {"compile": dict(self.service.stats),
                "ops_executed": {t: int(sum(c.values())) for t, c in self.counts.items()},
                "executor_seconds": {t: round(s, 2) for t, s in self.executor_seconds.items()}}


