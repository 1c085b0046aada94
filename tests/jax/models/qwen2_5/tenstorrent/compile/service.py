"""Compile StableHLO for a Tenstorrent target once: a kept-up compile server per target and an on-disk cache.

``CompileService(python, root, cache_dir)`` answers ``compile(target, stablehlo, devices, options, ...)``
with the TTNN module tt-mlir makes of that program for that target (compile-only, in the plugin's
interpreter). Each answer is kept in ``cache_dir`` under a key made of everything that decides it: the
StableHLO text, the target, its descriptor's bytes, the plugin's version, the compile options, the
device assignment and the sharding-propagation flags; a later session finds it there and starts no
server. A server (``server.py``) is started the first time a target misses the cache and stays up until
``close()`` (or the interpreter exits): starting the plugin is most of a compile's cost.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Dict, Optional, Sequence

ENV_CACHE = "QWEN2_5_TT_COMPILE_CACHE"
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "qwen2_5_tt_compile")
START_TIMEOUT_S = 300


class CompileError(Exception):
    """tt-mlir could not compile a program (its first error lines), or the server could not start."""


def cache_dir(option: Optional[str] = None) -> str:
    return option or os.environ.get(ENV_CACHE) or DEFAULT_CACHE


def plugin_version(python: str) -> str:
    """The plugin distribution and version in ``python``'s environment, read without starting it."""
    script = ("import importlib.metadata as m\n"
              "for d in ('pjrt-plugin-tt', 'jax-tt-plugin'):\n"
              "    try: print(d, m.version(d)); break\n"
              "    except m.PackageNotFoundError: pass\n")
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    return out.stdout.strip() or "unknown"


class _Server:
    def __init__(self, python: str, descriptor: str, root: str):
        self.work = tempfile.mkdtemp(prefix="qwen2_5_tt_server_")
        tmp = os.path.join(self.work, "tmp")
        os.makedirs(tmp)
        env = dict(os.environ, JAX_PLATFORMS="tt", TT_COMPILE_ONLY_SYSTEM_DESC=descriptor, TMPDIR=tmp,
                   TTXLA_LOGGER_LEVEL="DEBUG",
                   PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        env.pop("XLA_FLAGS", None)  # the suite's fake CPU device count means nothing there
        self.log = os.path.join(self.work, "server.log")
        self.proc = subprocess.Popen(
            [python, "-m", "tests.jax.models.qwen2_5.tenstorrent.compile.server", self.log], cwd=root, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.started = time.time()
        hello = self._read(START_TIMEOUT_S)
        if not hello.get("ready"):
            raise CompileError(f"the compile server for {descriptor} did not start: {hello}")
        self.devices = int(hello["devices"])
        self.start_seconds = round(time.time() - self.started, 1)

    def _read(self, timeout: Optional[float] = None) -> dict:
        result = {}

        def read():
            result["line"] = self.proc.stdout.readline()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        line = result.get("line")
        if not line:
            self.close()
            tail = ""
            if os.path.isfile(self.log):
                with open(self.log, errors="replace") as f:
                    tail = f.read()[-2000:]
            raise CompileError(f"the compile server exited or timed out; its last output:\n{tail}")
        return json.loads(line)

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.work, ignore_errors=True)  # the plugin's unpacked runtime (about 417 MB)


class CompileService:
    """TTNN modules for StableHLO programs, per target, compiled once (see the module's docstring)."""

    def __init__(self, python: str, root: str, cache: Optional[str] = None):
        self.python, self.root = python, root
        self.cache = cache_dir(cache)
        os.makedirs(self.cache, exist_ok=True)
        self._servers: Dict[str, _Server] = {}
        self._plugin: Optional[str] = None
        self._descriptor_sha: Dict[str, str] = {}
        self.stats = {"hits": 0, "compiles": 0, "compile_seconds": 0.0, "server_starts": 0, "start_seconds": 0.0}
        atexit.register(self.close)

    @property
    def plugin(self) -> str:
        if self._plugin is None:
            self._plugin = plugin_version(self.python)
        return self._plugin

    def key(self, target: str, descriptor: str, stablehlo: str, devices: Sequence[int], options: dict,
            propagate_inputs: Sequence[bool], propagate_outputs: Sequence[bool]) -> str:
        if descriptor not in self._descriptor_sha:
            with open(descriptor, "rb") as f:
                self._descriptor_sha[descriptor] = hashlib.sha256(f.read()).hexdigest()
        spec = {"target": target, "descriptor": self._descriptor_sha[descriptor], "plugin": self.plugin,
                "options": {str(k): str(v) for k, v in sorted(dict(options).items())}, "devices": list(devices),
                "propagate": [list(map(bool, propagate_inputs)), list(map(bool, propagate_outputs))],
                "stablehlo": hashlib.sha256(stablehlo.encode()).hexdigest()}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:40]

    def compile(self, target: str, descriptor: str, stablehlo: str, devices: Sequence[int], options: dict,
                propagate_inputs: Sequence[bool], propagate_outputs: Sequence[bool]) -> str:
        """The TTNN module text of ``stablehlo`` compiled for ``target`` (from the cache when it is there)."""
        key = self.key(target, descriptor, stablehlo, devices, options, propagate_inputs, propagate_outputs)
        path = os.path.join(self.cache, f"{key}.ttnn.mlir")
        if os.path.isfile(path):
            self.stats["hits"] += 1
            with open(path) as f:
                return f.read()
        server = self._server(target, descriptor)
        with tempfile.TemporaryDirectory(prefix="qwen2_5_tt_compile_") as tmp:
            src, out = os.path.join(tmp, "program.stablehlo.mlir"), os.path.join(tmp, "program.ttnn.mlir")
            with open(src, "w") as f:
                f.write(stablehlo)
            answer = server.ask({"stablehlo": src, "out": out, "devices": list(devices), "options": dict(options),
                                 "propagate_inputs": list(map(bool, propagate_inputs)),
                                 "propagate_outputs": list(map(bool, propagate_outputs))})
            if not answer.get("ok"):
                raise CompileError(f"tt-mlir could not compile the program for {target}:\n{answer.get('error')}")
            with open(out) as f:
                text = f.read()
        self.stats["compiles"] += 1
        self.stats["compile_seconds"] += answer["seconds"]
        fd, tmp_path = tempfile.mkstemp(dir=self.cache)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp_path, path)  # atomic: two sessions sharing the cache never read half a module
        return text

    def _server(self, target: str, descriptor: str) -> _Server:
        server = self._servers.get(target)
        if server is None or server.proc.poll() is not None:
            server = self._servers[target] = _Server(self.python, descriptor, self.root)
            self.stats["server_starts"] += 1
            self.stats["start_seconds"] += server.start_seconds
        return server

    def close(self):
        for server in self._servers.values():
            server.close()
        self._servers.clear()
