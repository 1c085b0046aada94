"""tt-xla's CI job for the suite, replayed on a copy of tt-xla's harness with tt-xla's own scripts.

    python -m tests.jax.models.qwen2_5 ci-replay --harness ../shared/ttxla_harness --tree DIR [--run PRESET:RUNS_ON ...]

1. The tree: tt-xla's harness copied with the package inside (``run-inside.sh`` makes it), the suite's entries
   appended to tt-xla's preset files of the same name, and the durations fragment merged into its root
   ``.test_durations`` (``durations.merge``), as a maintainer adding the suite to tt-xla would.
2. Expansion: tt-xla's ``.github/scripts/generate_test_matrix.py`` over those presets (tt-xla's own entries
   included: every one must still parse and expand); the suite's entries are those whose ``dir`` is the package.
3. Per expanded entry (one per parallel group), the pytest arguments exactly as ``call-test.yml`` builds them
   (``pytest_args``), collected with ``--collect-only -q --disable-warnings`` in the tree, then
   ``calculate_test_timeout.py`` on that output. Checks: each selection is non-empty; the meshes in its test ids
   are exactly its runner's on a runner with chips, and fit a CPU runner's 8 devices (compile-only checks,
   which need no devices, apart); the timeout is below tt-xla's
   240-minute default; the groups of a split entry are disjoint and together the entry's whole selection.
4. ``--run PRESET:RUNS_ON``: that preset's entries for that runner run for real, every group, with ``--junitxml``,
   ``--perf-report-dir`` and ``--perf-id`` as ``call-test.yml`` adds them; the junit files go to ``--reports``.

In the tree, pytest runs as ``run-inside.sh`` runs it: tt-xla's ``PYTHONPATH`` and the harness's
``-p ttxla_cpu_runner`` (the stand-in for a runner without Tenstorrent devices).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Set

from ..cli.parser import Parser
from . import DURATIONS_FILE, ENTRY_FILES
from .collection import PACKAGE, ROOTDIR
from .durations import merge

DIR = "./" + PACKAGE
PRESETS = ".github/workflows/test-matrix-presets"
DEFAULT_TIMEOUT = 240
# the meshes of each runner the entries name: an LLMBox has 8 chips, a Galaxy 32; tt-xla gives a CPU runner 8 devices
RUNNER_MESHES = {"n300-llmbox": {"1x1", "1x8", "2x4"}, "galaxy-wh-6u": {"1x32", "8x4"}, "cpu": {"1x1", "1x8", "2x4"}}
# runners with Tenstorrent chips: an entry holds exactly their meshes; a CPU runner's entry holds meshes that fit its
# 8 fake devices (or none: unit tests and compile-only checks need no mesh of devices)
CHIPS = ("n300-llmbox", "galaxy-wh-6u")
_MESH = re.compile(r"\bmesh_(\d+x\d+)\b")


def entries(path: str) -> List[dict]:
    with open(path) as f:
        got = json.load(f)
    if not isinstance(got, list) or not all(isinstance(e, dict) for e in got):
        raise ValueError(f"{path}: a preset is a JSON list of entries")
    return got


def pytest_args(entry: dict) -> List[str]:
    """``BASE_PYTEST_CMD`` of ``call-test.yml``'s "Set pytest command" step for one expanded entry (first attempt,
    no ``--dump-irs``), split as bash splits it when the step runs."""
    forked = "--forked" if str(entry.get("forked")).lower() == "true" else ""
    arch = f"--arch {entry.get('runs-on-original') or entry['runs-on']}" if entry.get("forge-models") is True else ""
    marks = f"-m '{entry['test-mark']}'" if entry.get("test-mark") else ""
    contains = f"-k '{entry['contains']}'" if entry.get("contains") else ""
    splits = (f"--splits {entry.get('parallel-groups') or 1} --group {entry.get('group-id') or 1} "
              f"--splitting-algorithm least_duration")
    base = (f"{forked} --log-memory --durations=0 {entry['dir']} {arch} {marks} {entry.get('args', '')} "
            f"{contains} {splits}")
    return shlex.split(base)


def runs_on(entry: dict) -> str:
    """The runner an entry names (before ``shared-runners`` maps it to a shared runner's label)."""
    return entry.get("runs-on-original") or entry["runs-on"]


def label(entry: dict) -> str:
    group = f" group {entry['group-id']}/{entry['parallel-groups']}" if "group-id" in entry else ""
    return f"{runs_on(entry)} {entry['name']} -m '{entry['test-mark']}'{group}"


class Tree:
    """tt-xla's harness tree with the package in it, and how ``run-inside.sh`` runs pytest there."""

    def __init__(self, harness: str, path: str, python: str):
        self.harness, self.path, self.python = os.path.abspath(harness), os.path.abspath(path), python

    def make(self, project: str) -> None:
        env = dict(os.environ, PYTHON=self.python, TTXLA_TREE=self.path)
        done = subprocess.run(["bash", os.path.join(self.harness, "run-inside.sh"), "--collect-only", "-q", DIR],
                              cwd=project, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"run-inside.sh --collect-only failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        for preset, ours in ENTRY_FILES.items():
            target = os.path.join(self.path, PRESETS, preset)
            merged = entries(target) + entries(ours)
            with open(target, "w") as f:
                json.dump(merged, f, indent=1)
        merge(DURATIONS_FILE, os.path.join(self.path, ".test_durations"))

    def env(self) -> dict:
        tree = self.path
        paths = [os.path.join(self.harness, "cpu_runner"), tree, os.path.join(tree, "tests")]
        return dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p]))

    def pytest(self, args: List[str], log: str) -> int:
        with open(log, "w") as f:
            return subprocess.run([self.python, "-m", "pytest", "-p", "ttxla_cpu_runner"] + args, cwd=self.path,
                                  env=self.env(), stdout=f, stderr=subprocess.STDOUT).returncode

    def script(self, name: str, args: List[str]) -> str:
        done = subprocess.run([self.python, os.path.join(".github", "scripts", name)] + args, cwd=self.path,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout


def collect(tree: Tree, args: List[str], log: str) -> List[str]:
    code = tree.pytest(["--collect-only", "-q", "--disable-warnings"] + args, log)
    with open(log) as f:
        ids = [line.strip() for line in f if "::" in line]
    if code not in (0, 5):
        with open(log) as f:
            raise RuntimeError(f"collection failed ({shlex.join(args)}):\n{f.read()[-3000:]}")
    return ids


def meshes(ids) -> Set[str]:
    return {m for nid in ids for m in _MESH.findall(nid.split("::", 1)[-1])}


def main(argv=None) -> int:
    p = Parser(prog="python -m tests.jax.models.qwen2_5 ci-replay", description=__doc__.split("\n\n")[0])
    p.add_argument("--harness", required=True, help="the tt-xla harness folder (../shared/ttxla_harness)")
    p.add_argument("--tree", required=True, help="where to make the tt-xla tree (made afresh)")
    p.add_argument("--python", default=sys.executable, help="the interpreter with the suite's and the harness's "
                                                            "requirements (default: this one)")
    p.add_argument("--run", action="append", default=[], metavar="PRESET:RUNS_ON",
                   help="run that preset's entries for that runner for real (every group), e.g. basic-test.json:cpu")
    p.add_argument("--reports", default="reports", help="where the logs and junit files go (default: reports)")
    args = p.parse_args(argv)
    for which in args.run:
        preset, _, runner = which.partition(":")
        if preset not in ENTRY_FILES or not any(runs_on(e) == runner for e in entries(ENTRY_FILES[preset])):
            p.fail(f"--run {which}: no such entry (PRESET:RUNS_ON, e.g. basic-test.json:cpu)")
    if not os.path.isfile(os.path.join(args.harness, "run-inside.sh")):
        p.fail(f"--harness: no run-inside.sh in {args.harness!r}")
    os.makedirs(args.reports, exist_ok=True)
    logs = os.path.abspath(os.path.join(args.reports, "ci-replay"))
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    tree = Tree(args.harness, args.tree, args.python)
    tree.make(ROOTDIR)
    together = json.loads(tree.script("generate_test_matrix.py", [":".join(ENTRY_FILES), PRESETS]))
    ours = [(preset, e) for preset in ENTRY_FILES for e in json.loads(tree.script("generate_test_matrix.py",
                                                                                  [preset, PRESETS]))
            if os.path.normpath(e.get("dir", "")) == os.path.normpath(DIR)]
    print(f"generate_test_matrix.py {':'.join(ENTRY_FILES)}: {len(together)} jobs, {len(ours)} of them the suite's")
    problems: List[str] = []
    compile_only = set(collect(tree, ["-m", "tt_compile", DIR], os.path.join(logs, "tt_compile.txt")))
    selections: Dict[tuple, List[str]] = {}
    for n, (preset, entry) in enumerate(ours):
        args_ = pytest_args(entry)
        out = os.path.join(logs, f"collected_{n}.txt")
        ids = collect(tree, args_, out)
        minutes = int(tree.script("calculate_test_timeout.py", ["--collected-output", out, "--durations-file",
                                                                ".test_durations", "--default-timeout",
                                                                str(DEFAULT_TIMEOUT)]).strip().splitlines()[-1])
        key = (preset, runs_on(entry), entry["test-mark"])
        selections.setdefault(key, []).extend(ids)
        runner = RUNNER_MESHES.get(runs_on(entry))
        have = meshes(i for i in ids if i not in compile_only)
        print(f"  {preset} {label(entry)}: {len(ids)} tests, meshes {sorted(have)}, timeout {minutes} min")
        if not ids:
            problems.append(f"{label(entry)}: selects no test")
        if runner is None:
            problems.append(f"{label(entry)}: no mesh table for runner {runs_on(entry)}")
        elif have != runner if runs_on(entry) in CHIPS else not have <= runner:
            problems.append(f"{label(entry)}: meshes {sorted(have)}, its runner has {sorted(runner)}")
        if minutes >= DEFAULT_TIMEOUT:
            problems.append(f"{label(entry)}: timeout {minutes} min, not below the {DEFAULT_TIMEOUT}-minute default")
    for key, ids in selections.items():
        preset, entry = next((p_, e) for p_, e in ours if (p_, runs_on(e), e["test-mark"]) == key)
        if "parallel-groups" not in entry:
            continue
        whole = dict(entry, **{"parallel-groups": 1, "group-id": 1})
        every = collect(tree, pytest_args(whole), os.path.join(logs, f"whole_{preset}_{runs_on(entry)}.txt"))
        if len(ids) != len(set(ids)):
            problems.append(f"{preset} {label(entry)}: a test is in more than one group")
        if sorted(set(ids)) != sorted(every):
            problems.append(f"{preset} {label(entry)}: the groups hold {len(set(ids))} tests, the selection {len(every)}")
        else:
            print(f"  {preset} {runs_on(entry)} {entry['name']}: {entry['parallel-groups']} groups, disjoint, "
                  f"{len(every)} tests in all")
    for which in args.run:
        preset, _, runner = which.partition(":")
        for n, entry in enumerate(e for p_, e in ours if p_ == preset and runs_on(e) == runner):
            tag = f"{preset.rsplit('.', 1)[0]}-{runner}-{n + 1}"
            junit = os.path.abspath(os.path.join(args.reports, f"junit-ci-{tag}.xml"))
            perf = os.path.join(logs, "benchmark_reports")
            start = time.time()
            code = tree.pytest(["-sv"] + pytest_args(entry) + [f"--junitxml={junit}", f"--perf-report-dir={perf}",
                                                                 "--perf-id=ci-replay"], os.path.join(logs, f"run-{tag}.log"))
            print(f"  ran {preset} {label(entry)}: exit {code} in {time.time() - start:.0f} s; {junit}")
            if code != 0:
                problems.append(f"{preset} {label(entry)}: pytest exited {code} (log: {logs}/run-{tag}.log)")
    for line in problems:
        print(f"ci-replay: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
