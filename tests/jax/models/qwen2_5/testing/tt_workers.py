"""The compile workers as the Tenstorrent tests start them: the interpreter with the plugin (a test skips,
naming the install command, without one), the descriptor directories, and the plan of jobs per target."""

from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

import pytest

from ..tenstorrent.compile.jobs import Job, tt_python
from ..tenstorrent.compile.targets import Target, find_descriptor, search_dirs


def worker_python(config) -> Tuple[str, str, list]:
    """(interpreter, how it was found, descriptor directories) of this session; skips without a plugin."""
    python, how = tt_python(config.getoption("--tt-python"), str(config.rootpath))
    if python is None:
        pytest.skip(how)
    return python, how, search_dirs(config.getoption("--tt-system-descs"))


def add_jobs(plan: Dict[str, Tuple[str, List[Job]]], target: Target, dirs: list, jobs: Iterable[Job]) -> None:
    """Add ``jobs`` to ``target``'s worker (once each); a target without a descriptor gets none."""
    descriptor = find_descriptor(target, dirs)
    if descriptor is None:
        return
    planned = plan.setdefault(target.name, (descriptor, []))[1]
    planned += [j for j in jobs if j not in planned]


def compiler_options(config) -> tuple:
    """The session's tt-mlir compile options (``--tt-optimization-level``, ``--tt-weight-dtype``,
    ``--tt-math-fidelity``, ``--tt-fp32-dest-acc``) as the (key, value) pairs a compile job and ``jax.jit``
    take; () for the defaults."""
    from ..tenstorrent.compile.options import option_pairs
    from . import options

    return option_pairs(options.get(config, "--tt-optimization-level"), options.get(config, "--tt-weight-dtype"),
                        options.get(config, "--tt-math-fidelity"), bool(options.get(config, "--tt-fp32-dest-acc")))
