"""Compile every program for a Tenstorrent system without its hardware (one descriptor per process).

Runs in a Python that has a Tenstorrent PJRT plugin (``requirements-tt.txt``), started by the
compile checks (``test_tt_compile.py``) with ``TT_COMPILE_ONLY_SYSTEM_DESC`` naming a system
descriptor, ``JAX_PLATFORMS=tt`` and a ``TMPDIR`` of its own (the plugin unpacks about 417 MB
of runtime there). ``jax.jit(...).lower(...).compile()`` then runs tt-mlir's whole pipeline
(StableHLO -> TTIR -> TTNN -> flatbuffer) for those chips; nothing runs.

    python -m tests.jax.models.qwen2_5.tenstorrent.compile.worker JOBS.json OUT_DIR

JOBS.json: ``{"keep_ir": bool, "jobs": [{"id", "geometry", "mesh": [b, m], "layers": N or null, "programs":
[[program, dtype] or [program, dtype, prompt, new_tokens], ...], "audit": [program, dtype] or null, "memory": bool,
"batch": N, "config": config.json text or null, "keep_ttnn": bool, "compiler_options": {key: value},
"attention": "plain", "fused" or null}]}`` (see ``jobs.py``); with ``memory`` each
program's row also holds its device memory (``ttnn.memory.read``) and const-eval cache entries, and its TTNN
module is kept; with ``keep_ttnn`` the TTNN module is kept (the executor runs it). OUT_DIR/results.json gets, per job and program, ok,
seconds and (on failure) the first lines of the compiler's error; an audited program's TTNN
module is written to OUT_DIR/<id>.ttnn.mlir, and with ``keep_ir`` every program's TTIR and TTNN
modules to OUT_DIR/<id>.<program>.<dtype>.{ttir,ttnn}.mlir (both need ``TTXLA_LOGGER_LEVEL=DEBUG``,
which makes the plugin print the IR of every stage).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
import tempfile
import time

ERROR_LINES = 12


@contextlib.contextmanager
def captured_fds(path: str):
    """Send this process's stdout and stderr file descriptors (the plugin's C++ logging) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


_MODULE_HEADER = re.compile(r"MLIR Module (\w+):\s*$")
_END = "END OF MLIR MODULE"


def last_module(log: str, stage: str = "ttnn") -> str:
    """The last module of ``stage`` the plugin printed (``#loc`` lines dropped)."""
    text, inside = [], False
    for line in log.splitlines():
        header = _MODULE_HEADER.search(line)
        if header:
            inside = header.group(1) == stage
            if inside:
                text = []
            continue
        if _END in line:
            inside = False
        elif inside and not line.startswith("#loc"):
            text.append(line)
    return "\n".join(text)


def error_excerpt(log: str, exc: BaseException) -> str:
    """The first compiler error lines of a failed compile (with one line of context each)."""
    lines = log.splitlines()
    picked = []
    for i, line in enumerate(lines):
        if re.search(r"\berror\b|ERROR|FATAL|failed to legalize", line):
            picked.append(line.strip()[:400])
        if len(picked) >= ERROR_LINES:
            break
    head = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:400] if str(exc).strip() else ''}"
    return "\n".join([head] + picked)


def run_jobs(jobs: list, out_dir: str, keep_ir: bool = False) -> dict:
    import jax

    from ...model.partitioning import make_mesh
    from .programs import abstract_model, lower
    from ...synthetic.random_checkpoint import geometry_config
    from .jobs import program_key
    from ..ttnn import memory
    from ..ttnn.audit import argument_types
    from ..ttnn.module import parse

    devices = jax.devices("tt")
    results = {"devices": len(devices), "device_kind": str(devices[0].device_kind) if devices else None,
               "jax": jax.__version__, "jobs": {}}
    for job in jobs:
        mesh = make_mesh(tuple(job["mesh"]), devices=devices)
        if job.get("op_cases"):  # the executor's op-level cases (compile/op_cases.py)
            results["jobs"][job["id"]] = compile_op_cases(job["op_cases"], mesh, out_dir,
                                                          dict(job.get("compiler_options") or {}))
            continue
        if job.get("config"):
            from ...model.config import Qwen2Config

            config = Qwen2Config.from_dict(json.loads(job["config"]), source=job["geometry"])
        else:
            config = geometry_config(job["geometry"])
        if job.get("layers"):
            config = dataclasses.replace(config, num_hidden_layers=int(job["layers"]))
        audit = tuple(job["audit"]) if job.get("audit") else None
        rows = results["jobs"][job["id"]] = {}
        for entry in job["programs"]:
            program, dtype, *shape = entry
            key = program_key(entry)
            options = dict(job.get("compiler_options") or {})
            model = abstract_model(config, mesh, dtype, options, job.get("attention"))
            stem = key.replace("/", ".")
            log_path = os.path.join(out_dir, f"{job['id']}.{stem}.log")
            start = time.time()
            row = {"program": program, "dtype": dtype, "attention": model.attention}
            sizes = dict(prompt=shape[0], new_tokens=shape[1]) if shape else {}
            try:
                with captured_fds(log_path):
                    lowered = lower(model, program, batch=job.get("batch", 8), **sizes)
                    lowered.compile(compiler_options=options) if options else lowered.compile()
                row.update(ok=True, seconds=round(time.time() - start, 2))
            except Exception as e:  # any compiler failure is a result, not a crash of the worker
                with open(log_path, errors="replace") as f:
                    row.update(ok=False, seconds=round(time.time() - start, 2), error=error_excerpt(f.read(), e))
            if row["ok"] and os.environ.get("TTXLA_LOGGER_LEVEL") == "DEBUG":
                with open(log_path, errors="replace") as f:
                    log = f.read()
                ttnn = last_module(log)
                try:
                    module = parse(ttnn)
                except ValueError as e:  # the reader's ModuleFormatError: reported with the row, the module kept
                    module, row["reader_error"] = None, f"{type(e).__name__}: {e}"
                if module is not None:
                    # which arguments tt-mlir got as parameters (weights) and which as per-call inputs
                    row["argument_types"] = dict(argument_types(module.main))
                if audit == (program, dtype):
                    with open(os.path.join(out_dir, f"{job['id']}.ttnn.mlir"), "w") as f:
                        f.write(ttnn)
                    row["ttnn_chars"] = len(ttnn)
                if job.get("memory") and module is not None:  # the device memory the compiled program needs, per chip
                    row["memory"] = memory.read(module)
                    row["const_eval"] = memory.const_eval_entries(module)
                if keep_ir or job.get("memory") or job.get("keep_ttnn"):  # --serialize: TTIR and TTNN modules
                    for stage in ("ttir", "ttnn") if keep_ir else ("ttnn",):
                        with open(os.path.join(out_dir, f"{job['id']}.{stem}.{stage}.mlir"), "w") as f:
                            f.write(last_module(log, stage))
            os.remove(log_path)
            rows[key] = row
            print(f"{job['id']} {key}: {'ok' if row['ok'] else 'FAILED'} {row['seconds']:.2f}s", flush=True)
    return results


def compile_op_cases(names, mesh, out_dir: str, options=None) -> dict:
    """Compile each named op case for ``mesh`` (with tt-mlir's ``options``); its TTNN module goes to
    OUT_DIR/op_<name>.ttnn.mlir."""
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P

    from .op_cases import CASES

    rows = {}
    for name in names:
        fn, args, specs = CASES[name].build(mesh)
        abstract = [jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype, sharding=NamedSharding(mesh, s or P()))
                    for a, s in zip(args, specs)]
        log_path = os.path.join(out_dir, f"op_{name}.log")
        start = time.time()
        try:
            with captured_fds(log_path):
                lowered = jax.jit(fn).lower(*abstract)
                lowered.compile(compiler_options=options) if options else lowered.compile()
            with open(log_path, errors="replace") as f:
                module = last_module(f.read())
            with open(os.path.join(out_dir, f"op_{name}.ttnn.mlir"), "w") as f:
                f.write(module)
            rows[name] = {"ok": bool(module.strip()), "seconds": round(time.time() - start, 2)}
        except Exception as e:  # a compiler failure is a result
            with open(log_path, errors="replace") as f:
                rows[name] = {"ok": False, "seconds": round(time.time() - start, 2), "error": error_excerpt(f.read(), e)}
        os.remove(log_path)
        print(f"op case {name}: {'ok' if rows[name]['ok'] else 'FAILED'}", flush=True)
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m tests.jax.models.qwen2_5 tt-compile-worker JOBS.json OUT_DIR"
    if argv in (["-h"], ["--help"]):
        print(f"{usage}\n\n{__doc__.splitlines()[0]}")
        return 0
    if len(argv) != 2:
        print(f"{usage}: two arguments expected, got {len(argv)}", file=sys.stderr)
        return 2
    if not os.environ.get("TT_COMPILE_ONLY_SYSTEM_DESC"):
        print("tt-compile-worker: error: set TT_COMPILE_ONLY_SYSTEM_DESC to a system descriptor (.ttsys)", file=sys.stderr)
        return 2
    jobs_path, out_dir = argv
    with open(jobs_path) as f:
        spec = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()
    results = run_jobs(spec["jobs"], out_dir, keep_ir=bool(spec.get("keep_ir")))
    results["seconds"] = round(time.time() - start, 2)
    fd, tmp = tempfile.mkstemp(dir=out_dir)
    with os.fdopen(fd, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "results.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
