"""The emulated platform's speed: the TTNN executor next to XLA:CPU, measured in one run.

    python -m tests.jax.models.qwen2_5 tt-emulated-bench [--meshes 1x8,1x32] [--new-tokens 16] [--no-7b]

1. Decode steps per second of the rehearsal tier (Qwen2.5-7B's vocabulary and 28/4 heads at hidden 224, MLP
   300, 2 layers; batch 8, 32-token prompts; greedy, host loop) on each mesh: XLA:CPU and the executor (the
   programs tt-mlir compiled for the mesh's target), each in a process of its own, after a warm-up call that
   compiles. A step's time is (t(N tokens) - t(1 token)) / (N - 1).
2. The 7B-width one-layer ``forward`` (vocabulary 152064, hidden 3584, MLP 18944, 28/4 heads; bfloat16, batch
   8 x 32 tokens) on 1x8 / blackhole_8xp150 under the executor: seconds of the second call (the first fills
   the const-eval cache) and the process's peak memory, next to XLA:CPU's for the same call.

Prints a table; ``--json FILE`` writes the figures. Compiles go through the compile cache (a second run
compiles nothing). Timings on a shared 2-core machine swing: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from ...cli.parser import Parser, positive_int

PROG = "python -m tests.jax.models.qwen2_5 tt-emulated-bench"
def _seven_b(**overrides) -> dict:
    """Qwen2.5-7B-Instruct's published shape (``synthetic/presets.py``), with ``overrides``."""
    from ...synthetic.presets import config_json

    published = config_json("qwen2.5-7b-instruct")
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "tie_word_embeddings", "rms_norm_eps", "rope_theta")
    return {**{k: published[k] for k in keep}, **overrides}


REHEARSAL = _seven_b(hidden_size=224, intermediate_size=300, num_hidden_layers=2)  # the rehearsal tier
WIDTHS_7B = _seven_b(num_hidden_layers=1)
BATCH, PROMPT = 8, 32


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--meshes", default="1x8,1x32", help="meshes of the decode figures (comma-separated)")
    p.add_argument("--new-tokens", type=positive_int, default=16, help="greedy tokens per timed generate")
    p.add_argument("--no-7b", action="store_true", help="skip the 7B-width forward (a 5.3 GB checkpoint)")
    p.add_argument("--work-dir", default=None, help="where the checkpoints go (default: a temporary directory)")
    p.add_argument("--tt-python", default=None, help="a Python with a Tenstorrent PJRT plugin (default: .venv-tt)")
    p.add_argument("--json", default=None, help="write the figures here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def parse_args(argv=None):
    from ...cli.devices import parse_mesh

    p = build_parser()
    args = p.parse_args(argv)
    if args.worker:
        return args
    try:
        args.shapes = [parse_mesh(m) for m in args.meshes.split(",") if m.strip()]
    except ValueError as e:
        p.fail(f"argument --meshes: {e}")
    from .platform import EmulatedPlatform, EmulationUnavailable, parse_targets

    try:
        platform = EmulatedPlatform(parse_targets(["blackhole_8xp150"] if not args.no_7b else []),
                                    tt_python=args.tt_python)
        for shape in args.shapes:
            platform.check(shape[0] * shape[1])
        args.targets = {f"{a}x{b}": platform.target_for(a * b).name for a, b in args.shapes}
    except (EmulationUnavailable, ValueError) as e:
        p.fail(str(e))
    return args


# --- a worker: one (case, mesh, backend) in its own process ---------------------------------------

def worker(spec: dict) -> dict:
    import numpy as np

    from ...cli.devices import prepare_platform

    shape = tuple(spec["mesh"])
    prepare_platform("cpu", shape[0] * shape[1])
    import jax

    from ... import load_model, make_mesh

    mesh = make_mesh(shape, devices=jax.devices("cpu"))
    emulated = {"tt_target": spec["target"], "tt_python": spec.get("tt_python")} if spec["backend"] == "executor" else {}
    dtype = spec["dtype"]
    model = load_model(spec["checkpoint"], mesh, dtype=dtype, **emulated)
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 1000, (BATCH, PROMPT)).astype(np.int32)
    mask = np.ones_like(ids)
    out = {}
    if spec["case"] == "decode":
        n = spec["new_tokens"]

        def timed(tokens):
            start = time.perf_counter()
            model.generate(ids, mask, max_new_tokens=tokens, eos_token_id=(), loop="host")
            return time.perf_counter() - start

        start = time.perf_counter()
        timed(n)  # compiles (or reads the cache) and fills the const-eval cache
        out["warmup_s"] = time.perf_counter() - start
        one, many = timed(1), timed(n)
        out["steps_per_second"] = (n - 1) / max(many - one, 1e-9)
        out["prefill_s"] = one
    else:
        model.forward(ids, mask)  # compiles, fills the const-eval cache
        start = time.perf_counter()
        np.asarray(model.forward(ids, mask))
        out["forward_s"] = time.perf_counter() - start
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    return out


def _run(spec: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.jax.models.qwen2_5", "tt-emulated-bench", "--worker", f.name],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{PROG}: error: the {spec['case']} worker ({spec['backend']}, mesh "
                             f"{'x'.join(map(str, spec['mesh']))}) failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        os.remove(f.name)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        with open(args.worker) as f:
            spec = json.load(f)
        print(json.dumps(worker(spec)))
        return 0
    from ...synthetic import random_checkpoint as rc

    work = args.work_dir or tempfile.mkdtemp(prefix="tt_emulated_bench_")
    rehearsal = os.path.join(work, "rehearsal_tier")
    if not os.path.isdir(rehearsal):
        rc.build_checkpoint(rehearsal, REHEARSAL, seed=3)
    figures = {"decode": {}, "forward_7b": {}}
    common = {"tt_python": args.tt_python}
    for a, b in args.shapes:
        mesh = f"{a}x{b}"
        row = figures["decode"][mesh] = {"target": args.targets[mesh]}
        for backend in ("xla_cpu", "executor"):
            row[backend] = _run({**common, "case": "decode", "mesh": [a, b], "backend": backend, "dtype": "float32",
                                 "checkpoint": rehearsal, "target": args.targets[mesh], "new_tokens": args.new_tokens})
        print(f"decode {mesh} ({args.targets[mesh]}): XLA:CPU {row['xla_cpu']['steps_per_second']:.2f} steps/s, "
              f"executor {row['executor']['steps_per_second']:.2f} steps/s "
              f"({row['executor']['steps_per_second'] / row['xla_cpu']['steps_per_second']:.2f}x)", flush=True)
    if not args.no_7b:
        widths = os.path.join(work, "widths_7b_1layer")
        if not os.path.isdir(widths):
            rc.build_checkpoint(widths, WIDTHS_7B, seed=7)
        for backend in ("xla_cpu", "executor"):
            figures["forward_7b"][backend] = _run({**common, "case": "forward", "mesh": [1, 8], "backend": backend,
                                                   "dtype": "bfloat16", "checkpoint": widths,
                                                   "target": "blackhole_8xp150"})
        f7 = figures["forward_7b"]
        print(f"7B-width one-layer forward, 1x8 / blackhole_8xp150, bfloat16: XLA:CPU {f7['xla_cpu']['forward_s']:.2f}s "
              f"(peak {f7['xla_cpu']['peak_rss_gb']:.1f} GB), executor {f7['executor']['forward_s']:.2f}s "
              f"(peak {f7['executor']['peak_rss_gb']:.1f} GB)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
