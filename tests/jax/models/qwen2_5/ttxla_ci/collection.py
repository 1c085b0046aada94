"""The suite's tests as pytest collects them from a rootdir (this repository's, or a tt-xla tree's), with their
markers, and which of them a ``-m`` expression selects: one collection in a subprocess, read by the durations
and by the checks of the test-matrix entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, Set

PACKAGE = "tests/jax/models/qwen2_5"
ROOTDIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 5))

_SCRIPT = """
import json, sys
import pytest

class Markers:
    def pytest_collection_finish(self, session):
        with open(sys.argv[1], "w") as f:
            json.dump({i.nodeid: sorted({m.name for m in i.iter_markers()}) for i in session.items}, f)

sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", sys.argv[2]], plugins=[Markers()]))
"""


def markers(rootdir: str = ROOTDIR, python: str = sys.executable) -> Dict[str, Set[str]]:
    """{test id, as ``pytest --collect-only -q`` prints it: every marker name the test carries}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "markers.json")
        done = subprocess.run([python, "-c", _SCRIPT, out, PACKAGE], cwd=rootdir, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.isfile(out):
            raise RuntimeError(f"collecting {PACKAGE} in {rootdir} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        with open(out) as f:
            return {nid: set(names) for nid, names in json.load(f).items()}


def selects(expression: str, names: Set[str]) -> bool:
    """Whether ``pytest -m expression`` selects a test carrying the marker ``names``."""
    from _pytest.mark.expression import Expression

    return Expression.compile(expression).evaluate(lambda name, **kwargs: name in names)
