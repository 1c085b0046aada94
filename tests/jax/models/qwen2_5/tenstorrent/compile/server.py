"""A compile server: StableHLO modules in, tt-mlir's TTNN modules out, one process kept up per descriptor.

Runs in a Python that has a Tenstorrent PJRT plugin, started by ``service.py`` with
``TT_COMPILE_ONLY_SYSTEM_DESC`` naming a system descriptor, ``JAX_PLATFORMS=tt``,
``TTXLA_LOGGER_LEVEL=DEBUG`` (the plugin prints every stage's module; the TTNN one is the answer) and a
``TMPDIR`` of its own. Starting the plugin is most of a compile's cost (about 5-20 s), so the process
stays up and answers one request per line:

    stdin:  {"stablehlo": PATH, "out": PATH, "devices": [id, ...], "options": {key: value},
             "propagate_inputs": [bool, ...], "propagate_outputs": [bool, ...]}
    stdout: {"ok": true, "seconds": S} or {"ok": false, "error": "..."}

``devices`` are the plugin's device ids in the order of the program's device assignment (the mesh's
devices in mesh order, as the caller lowered it); the module is compiled as ``jax.jit(...).compile``
compiles it (``num_partitions`` = the number of devices, SPMD partitioning, ``options`` as
``compiler_options``), and the TTNN module it printed is written to ``out``. The first line the server
writes is ``{"ready": true, "devices": N, "plugin": "..."}``. The plugin's own output goes to the log
file named by the second argument, never to the answers.

    python -m tests.jax.models.qwen2_5.tenstorrent.compile.server LOG
"""

from __future__ import annotations

import json
import os
import sys
import time


def _answer(channel, payload: dict) -> None:
    channel.write(json.dumps(payload) + "\n")
    channel.flush()


def compile_text(backend, text: str, devices: list, options: dict, propagate_inputs, propagate_outputs) -> None:
    """Compile a StableHLO module's text for ``devices`` (the plugin's devices, in assignment order)."""
    import numpy as np
    from jax._src import compiler
    from jax._src.interpreters import mlir
    from jax._src.lib import xla_client as xc
    from jax._src.lib.mlir import ir

    with mlir.make_ir_context():
        module = ir.Module.parse(text)
        assignment = np.array(devices, dtype=object).reshape(1, len(devices))
        compile_options = compiler.get_compile_options(
            num_replicas=1, num_partitions=len(devices), device_assignment=assignment, use_spmd_partitioning=True,
            env_options_overrides=dict(options), backend=backend)
        build = compile_options.executable_build_options
        build.allow_spmd_sharding_propagation_to_parameters = list(propagate_inputs)
        build.allow_spmd_sharding_propagation_to_output = list(propagate_outputs)
        compiler.backend_compile_and_load(backend, module, xc.DeviceList(tuple(devices)), compile_options, [])


def serve(log_path: str) -> int:
    from .worker import error_excerpt, last_module

    answers = os.fdopen(os.dup(1), "w")  # the protocol's channel: fd 1 itself goes to the log below
    log = open(log_path, "ab")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    import jax
    from jax._src import xla_bridge

    from .targets import installed_plugin

    backend = xla_bridge.get_backend("tt")
    by_id = {d.id: d for d in backend.devices()}
    _answer(answers, {"ready": True, "devices": len(by_id), "plugin": installed_plugin(), "jax": jax.__version__})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        start = time.time()
        sys.stdout.flush()
        offset = os.lseek(log.fileno(), 0, os.SEEK_END)
        try:
            missing = [i for i in request["devices"] if i not in by_id]
            if missing:
                raise ValueError(f"device ids {missing} are not among the descriptor's {len(by_id)} chips")
            with open(request["stablehlo"]) as f:
                text = f.read()
            compile_text(backend, text, [by_id[i] for i in request["devices"]], request.get("options") or {},
                         request["propagate_inputs"], request["propagate_outputs"])
            sys.stdout.flush()
            sys.stderr.flush()
            with open(log_path, errors="replace") as f:
                f.seek(offset)
                printed = f.read()
            ttnn = last_module(printed)
            if not ttnn.strip():
                raise RuntimeError("the plugin printed no TTNN module (is TTXLA_LOGGER_LEVEL=DEBUG set?)")
            with open(request["out"], "w") as f:
                f.write(ttnn)
            _answer(answers, {"ok": True, "seconds": round(time.time() - start, 3)})
        except Exception as e:  # a compile failure is an answer, not the end of the server
            sys.stdout.flush()
            sys.stderr.flush()
            with open(log_path, errors="replace") as f:
                f.seek(offset)
                printed = f.read()
            _answer(answers, {"ok": False, "seconds": round(time.time() - start, 3), "error": error_excerpt(printed, e)})
        # the log holds every stage's module of every compile: keep it from growing without bound
        if os.path.getsize(log_path) > 200_000_000:
            os.ftruncate(log.fileno(), 0)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m tests.jax.models.qwen2_5.tenstorrent.compile.server LOG", file=sys.stderr)
        return 0 if argv in (["-h"], ["--help"]) else 2
    if not os.environ.get("TT_COMPILE_ONLY_SYSTEM_DESC"):
        print("compile server: error: set TT_COMPILE_ONLY_SYSTEM_DESC to a system descriptor (.ttsys)", file=sys.stderr)
        return 2
    return serve(argv[0])


if __name__ == "__main__":
    sys.exit(main())
