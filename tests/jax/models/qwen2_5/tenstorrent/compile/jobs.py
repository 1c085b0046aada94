"""Plan and launch the compile-only worker processes (``worker.py``), one per descriptor.

A backend starts once per process, so every target (system descriptor) gets a process of
its own, with its own ``TMPDIR`` (the plugin unpacks about 417 MB of runtime there, and two
processes must not share it). Processes run two at a time on a 2-core machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from .targets import ENV_PYTHON, INSTALL_HINT, installed_plugin

PROGRAMS = (("forward", "float32"), ("forward", "bfloat16"), ("prefill", "bfloat16"),
            ("decode_step", "bfloat16"), ("generate_loop", "bfloat16"), ("forced_decode", "bfloat16"))
AUDITED = ("decode_step", "bfloat16")
REGENERATE = ".venv-tt/bin/python -m tests.jax.models.qwen2_5 tt-descriptors"
WORKER_TIMEOUT_S = 1200


@dataclasses.dataclass(frozen=True)
class Job:
    """Programs of one geometry on one mesh; ``layers`` overrides the geometry's layer count."""

    geometry: str
    mesh: Tuple[int, int]
    programs: Tuple[Tuple, ...] = PROGRAMS  # (program, dtype) or (program, dtype, prompt, new_tokens)
    audit: bool = False
    layers: Optional[int] = None
    memory: bool = False  # read each program's device memory from its TTNN module (ttnn/memory.py)
    batch: int = 8
    config: Optional[str] = None  # a config.json's text, compiled instead of the geometry's config
    compiler_options: Tuple[Tuple[str, str], ...] = ()  # (key, value) pairs for .compile(compiler_options=...)
    op_cases: Tuple[str, ...] = ()  # names in compile/op_cases.py, compiled instead of the geometry's programs
    keep_ttnn: bool = False  # write every program's TTNN module (<id>.<program>.<dtype>.ttnn.mlir): the executor runs it
    attention: Optional[str] = None  # the model's formulation (causal_lm.ATTENTIONS); None: by the compile options

    @property
    def id(self) -> str:
        layers = "" if self.layers is None else f"_{self.layers}layers"
        memory = "_memory" if self.memory else ""
        keep = "_ttnn" if self.keep_ttnn else ""
        if self.op_cases:
            return f"op_cases_{self.mesh[0]}x{self.mesh[1]}{options_tag(self.compiler_options)}"
        batch = "" if self.batch == 8 else f"_b{self.batch}"
        attention = "" if self.attention is None else f"_{self.attention}"
        return (f"{self.geometry}{layers}_{self.mesh[0]}x{self.mesh[1]}{batch}{memory}{keep}"
                f"{options_tag(self.compiler_options)}{attention}")

    def spec(self) -> dict:
        return {"id": self.id, "geometry": self.geometry, "mesh": list(self.mesh), "layers": self.layers,
                "programs": [list(p) for p in self.programs], "audit": list(AUDITED) if self.audit else None,
                "memory": self.memory, "batch": self.batch, "config": self.config,
                "keep_ttnn": self.keep_ttnn, "op_cases": list(self.op_cases),
                "compiler_options": dict(self.compiler_options), "attention": self.attention}


def options_tag(options) -> str:
    """``_optimization_level1_experimental_weight_dtypebfp_bf8`` for a job id ('' without options)."""
    return "".join(f"_{k}{v}" for k, v in sorted(dict(options).items()))


def program_key(program) -> str:
    """The results' key of a job's program: ``prefill/bfloat16``, or ``prefill/bfloat16/p512n3584`` when shaped."""
    name, dtype, *shape = program
    return f"{name}/{dtype}" + (f"/p{shape[0]}n{shape[1]}" if shape else "")


def tt_python(option: Optional[str], rootdir: str) -> Tuple[Optional[str], str]:
    """(interpreter with a Tenstorrent plugin, how it was found) or (None, why not)."""
    if option:
        return (option, "--tt-python") if os.path.isfile(option) else (None, f"--tt-python {option} does not exist")
    env = os.environ.get(ENV_PYTHON)
    if env:
        return (env, ENV_PYTHON) if os.path.isfile(env) else (None, f"{ENV_PYTHON}={env} does not exist")
    venv = os.path.join(rootdir, ".venv-tt", "bin", "python")
    if os.path.isfile(venv):
        return venv, ".venv-tt"
    plugin = installed_plugin()  # inside tt-xla: its own environment has the plugin
    if plugin:
        return sys.executable, f"this Python ({plugin})"
    return None, f"no Tenstorrent PJRT plugin found; install it with: {INSTALL_HINT}"


def command_worker(parser, tt_python_option: Optional[str], target, root: str) -> Tuple[str, str]:
    """A command's (interpreter with the plugin, descriptor of ``target``), or its one-line usage error
    (``parser.fail``, exit status 2) naming what is missing."""
    from .targets import find_descriptor, search_dirs

    python, how = tt_python(tt_python_option, root)
    if python is None:
        parser.fail(how)
    descriptor = find_descriptor(target, search_dirs(None))
    if descriptor is None:
        parser.fail(f"--target: no system descriptor for {target.name}; point QWEN2_5_TT_SYSTEM_DESCS at a "
                    f"directory holding {target.file_names[0]}")
    return python, descriptor


def launch(python: str, descriptor: str, jobs: Sequence[Job], work_dir: str, rootdir: str,
           keep_ir: bool = False) -> subprocess.Popen:
    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, "jobs.json"), "w") as f:
        json.dump({"keep_ir": keep_ir, "jobs": [j.spec() for j in jobs]}, f)
    tmp = os.path.join(work_dir, "tmp")
    os.makedirs(tmp, exist_ok=True)
    env = dict(os.environ, JAX_PLATFORMS="tt", TT_COMPILE_ONLY_SYSTEM_DESC=descriptor, TMPDIR=tmp,
               PYTHONPATH=os.pathsep.join([rootdir] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.pop("XLA_FLAGS", None)  # the suite's fake CPU device count means nothing there
    env["TTXLA_LOGGER_LEVEL"] = "DEBUG"  # prints every stage's IR; the worker reads the TTNN module
    log = open(os.path.join(work_dir, "worker.log"), "wb")
    proc = subprocess.Popen([python, "-m", "tests.jax.models.qwen2_5.tenstorrent.compile.worker",
                             os.path.join(work_dir, "jobs.json"), os.path.join(work_dir, "out")],
                            cwd=rootdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log = log
    return proc


def run_all(python: str, plan: Dict[str, Tuple[str, List[Job]]], base_dir: str, rootdir: str,
            parallel: int = 2, keep_ir: bool = False) -> Dict[str, dict]:
    """Run every target's jobs (``plan``: target -> (descriptor, jobs)), ``parallel`` processes at a
    time, largest first. Returns target -> results (``tt_compile`` format) or {"failed": log tail}."""
    order = sorted(plan, key=lambda t: -sum(len(j.programs) * (5 if j.geometry == "qwen2_5_7b" else 1)
                                             for j in plan[t][1]))
    running, results = {}, {}
    while order or running:
        while order and len(running) < parallel:
            target = order.pop(0)
            descriptor, jobs = plan[target]
            running[target] = (launch(python, descriptor, jobs, os.path.join(base_dir, target), rootdir, keep_ir),
                               time.time())
        time.sleep(0.2)
        for target, (proc, start) in list(running.items()):
            if proc.poll() is None and time.time() - start < WORKER_TIMEOUT_S:
                continue
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.log.close()
            del running[target]
            results[target] = _collect(os.path.join(base_dir, target), proc.returncode, time.time() - start)
    return results


def _collect(work_dir: str, returncode: int, seconds: float) -> dict:
    shutil.rmtree(os.path.join(work_dir, "tmp"), ignore_errors=True)  # the unpacked runtime
    path = os.path.join(work_dir, "out", "results.json")
    if returncode == 0 and os.path.isfile(path):
        with open(path) as f:
            out = json.load(f)
        out["process_seconds"] = round(seconds, 1)
        out["out_dir"] = os.path.dirname(path)
        return out
    with open(os.path.join(work_dir, "worker.log"), errors="replace") as f:
        tail = f.read()[-3000:]
    return {"failed": f"worker exited {returncode} after {seconds:.0f}s; last output:\n{tail}\n"
                      f"(a 'system desc schema mismatch' means the descriptor was made for another plugin "
                      f"build: regenerate with {REGENERATE})"}
