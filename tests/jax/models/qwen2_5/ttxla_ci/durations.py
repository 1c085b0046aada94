"""Every test's duration under tt-xla's test ids, for pytest-split (``--splitting-algorithm least_duration``)
and ``calculate_test_timeout.py`` (3x the summed durations of a job's tests, or 240 minutes as soon as one of
them is missing from ``.test_durations``).

    python -m tests.jax.models.qwen2_5 ci-durations JUNIT.xml [JUNIT.xml ...] [--out FRAGMENT] [--merge .test_durations]

A junit file of a run of the suite (``.ci/run`` writes ``reports/junit.xml``) gives each test's seconds on the
machine that ran it and, as its ``xla_compiles`` property, how many XLA programs it compiled there. A
Tenstorrent runner's time is not a CPU machine's: on ``tt`` each of those programs also goes through tt-mlir,
and on a CPU runner the machine differs. The estimate (seconds, rounded up to a tenth) errs long:

* a test that runs without chips (marked ``cpu``: unit tests, compile-only checks): ``CPU_MARGIN`` x its
  measured seconds;
* a test that runs on chips: ``CHIP_MARGIN`` x (its measured seconds + its compiles x ``TT_COMPILE_SECONDS``,
  one program's tt-mlir compile and first run on the device, from what the compile checks measured: the small
  geometries', or the 7B geometry's for a ``large`` test). The CPU seconds stand for what the chip run keeps: the PyTorch reference,
  the host loop, tokenization; the device's own run time is left inside the margin;
* a test that skipped here: by the same rule from its skip's seconds. Here, as in the entries (which pass no
  ``--model-path``, ``--rehearsal-checkpoint`` or ``QWEN2_5_TT_RUN_7B``), the real-checkpoint, full-scale and
  opt-in 7B cases skip; an entry that passes those inputs must remeasure from its own junit file;
* a test in no junit file (new since the last measurement): the longest estimate of the same test function,
  else ``NEW_TEST_SECONDS``;
* never below ``FLOOR_SECONDS``.

Test ids are the node ids tt-xla's collection gives (``tests/jax/models/qwen2_5/test_x.py::test_y[z]``): the
package sits at the same path there, and the ids are rootdir-relative in both places.
"""

from __future__ import annotations

import json
import math
import os
import sys
import xml.etree.ElementTree as ET
from typing import Dict, Iterable, List, Set

from ..cli.parser import Parser
from . import DURATIONS_FILE
from .collection import PACKAGE, ROOTDIR, markers

CPU_MARGIN = 2.0
CHIP_MARGIN = 2.0
# seconds per program a test compiles on tt: tt-mlir's compile plus tt-metal's kernel builds on its first run.
# The compile checks measured compile-only (jax-tt-plugin 0.1.3, this 2-core machine, optimization level 0) at
# most 3.2 s for a small geometry's program and 11.4 s for the 7B geometry's (28 layers); kernel builds on the
# device are not measured here: about 4x and 5x the compile is an estimate that errs long
TT_COMPILE_SECONDS = {"small": 15.0, "7b": 60.0}
NEW_TEST_SECONDS = 120.0
FLOOR_SECONDS = 1.0


def estimate(seconds: float, compiles: int, on_chips: bool, large: bool) -> float:
    """A runner's seconds for a test measured at ``seconds`` with ``compiles`` XLA compilations here."""
    if on_chips:
        value = CHIP_MARGIN * (seconds + compiles * TT_COMPILE_SECONDS["7b" if large else "small"])
    else:
        value = CPU_MARGIN * seconds
    return max(FLOOR_SECONDS, math.ceil(value * 10) / 10)


def node_id(classname: str, name: str) -> str:
    """A junit case's pytest node id: ``tests.jax.models.qwen2_5.test_x`` + ``test_y[z]`` ->
    ``tests/jax/models/qwen2_5/test_x.py::test_y[z]`` (the suite has no test classes)."""
    return classname.replace(".", "/") + ".py::" + name


def measured(junit_paths: Iterable[str]) -> Dict[str, dict]:
    """{node id: {"seconds", "compiles", "skipped"}} of every case of the suite in the junit files (a case that ran
    wins over one that skipped; else a later file's case replaces an earlier one's)."""
    out = {}
    for path in junit_paths:
        for case in ET.parse(path).getroot().iter("testcase"):
            nid = node_id(case.get("classname", ""), case.get("name", ""))
            if not nid.startswith(PACKAGE + "/"):
                continue
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            got = {"seconds": float(case.get("time") or 0.0), "compiles": int(props.get("xla_compiles") or 0),
                   "skipped": case.find("skipped") is not None}
            if nid not in out or not got["skipped"] or out[nid]["skipped"]:
                out[nid] = got
    return out


def fragment(cases: Dict[str, dict], ids: List[str], cpu: Set[str], large: Set[str]) -> Dict[str, float]:
    """Every id's duration by the rule of the module docstring."""
    out = {nid: estimate(cases[nid]["seconds"], cases[nid]["compiles"], nid not in cpu, nid in large)
           for nid in ids if nid in cases}
    by_function: Dict[str, float] = {}
    for nid, value in out.items():
        key = nid.split("[")[0]
        by_function[key] = max(by_function.get(key, 0.0), value)
    for nid in ids:
        if nid not in out:
            out[nid] = by_function.get(nid.split("[")[0], NEW_TEST_SECONDS)
    return {nid: out[nid] for nid in ids}


def merge(fragment_path: str, durations_path: str) -> int:
    """Write the fragment's durations into a tt-xla ``.test_durations`` (other tests' entries and the order kept);
    returns how many entries it set."""
    with open(fragment_path) as f:
        ours = json.load(f)
    with open(durations_path) as f:
        theirs = json.load(f)
    theirs.update(ours)
    with open(durations_path, "w") as f:
        json.dump(theirs, f, indent=4)
        f.write("\n")
    return len(ours)


def write(durations: Dict[str, float], path: str) -> None:
    with open(path, "w") as f:
        json.dump(dict(sorted(durations.items())), f, indent=1)
        f.write("\n")


def main(argv=None) -> int:
    p = Parser(prog="python -m tests.jax.models.qwen2_5 ci-durations",
               description="remeasure the suite's .test_durations fragment from junit files and merge it into tt-xla's")
    p.add_argument("junit", nargs="+", help="junit files of runs of the suite (e.g. reports/junit.xml)")
    p.add_argument("--out", default=DURATIONS_FILE, help="the fragment to write (default: the package's own)")
    p.add_argument("--merge", metavar="TEST_DURATIONS", help="a tt-xla .test_durations to merge the fragment into")
    args = p.parse_args(argv)
    for path in args.junit:
        if not os.path.isfile(path):
            p.fail(f"no junit file {path!r}")
    if args.merge and not os.path.isfile(args.merge):
        p.fail(f"--merge: no file {args.merge!r}")
    cases = measured(args.junit)
    marks = markers(ROOTDIR)
    ids = list(marks)
    got = fragment(cases, ids, {n for n in ids if "cpu" in marks[n]}, {n for n in ids if "large" in marks[n]})
    write(got, args.out)
    ran = sum(1 for nid in ids if nid in cases and not cases[nid]["skipped"])
    skipped = sum(1 for nid in ids if nid in cases and cases[nid]["skipped"])
    print(f"{os.path.relpath(args.out)}: {len(got)} tests ({ran} ran, {skipped} skipped, {len(got) - ran - skipped} "
          f"in no junit file); {sum(got.values()) / 3600:.2f} h in all")
    if args.merge:
        print(f"{args.merge}: {merge(args.out, args.merge)} entries set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
