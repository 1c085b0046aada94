"""``python -m tests.jax.models.qwen2_5 COMMAND [ARGS]``: every command of the package.

``--help`` lists them; each command parses its own arguments (``COMMAND --help``) with one-line
usage errors and exit status 2, as its own ``python -m`` module does.
"""

from __future__ import annotations

import importlib
import sys

PROG = "python -m tests.jax.models.qwen2_5"

# name -> (module relative to this package, its main function, one line)
COMMANDS = {
    "gsm8k": ("gsm8k.__main__", "main", "GSM8K accuracy of a checkpoint on a mesh, against the PyTorch reference"),
    "synthetic": ("synthetic.builder", "main", "write a synthetic checkpoint with a published Qwen2.5 shape"),
    "bench": ("bench.decode", "main", "greedy-decoding benchmark: JAX meshes against PyTorch generate"),
    "tt-descriptors": ("tenstorrent.compile.descriptors", "main",
                       "make the Blackhole system descriptors and their manifest (Tenstorrent plugin's venv)"),
    "tt-memory": ("tenstorrent.memory.command", "main",
                  "device memory budget per chip, read from the compiled TTNN programs (Tenstorrent plugin)"),
    "tt-run": ("tenstorrent.executor.command", "main",
               "run the compiled TTNN programs on the CPU, chip by chip: logits or greedy tokens (Tenstorrent plugin)"),
    "tt-emulated-bench": ("tenstorrent.emulated.bench", "main",
                          "the emulated platform's speed: TTNN executor against XLA:CPU (decode steps/s, 7B-width forward)"),
    "rehearsal-worker": ("synthetic.rehearsal", "main",
                         "one side (torch or jax) of the full-scale rehearsal on a synthetic checkpoint"),
    "tt-compile-worker": ("tenstorrent.compile.worker", "main",
                          "compile every program of a job file for one system descriptor (run by the suite)"),
    "ci-durations": ("ttxla_ci.durations", "main",
                     "remeasure the tt-xla .test_durations fragment from junit files; merge it into tt-xla's"),
    "ci-replay": ("ttxla_ci.replay", "main",
                  "replay tt-xla's CI job for the suite's test-matrix entries on a copy of tt-xla's harness"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} COMMAND [ARGS ...]   ({PROG} COMMAND --help for its arguments)", "", "commands:"]
    lines += [f"  {name:{width}}  {line}" for name, (_, _, line) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"{PROG}: error: unknown command {name!r} (choose from {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[name]
    run = getattr(importlib.import_module(f"{__package__}.{module}"), function)
    return run(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
