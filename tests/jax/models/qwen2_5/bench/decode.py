"""Greedy-decoding benchmark: JAX on chosen meshes against Hugging Face PyTorch ``generate``.

    python -m tests.jax.models.qwen2_5.bench [--meshes 1x1,1x8,2x4] [--dtype float32] ...

Builds one random checkpoint, then in the same run measures, after warm-up and as the
median of ``--runs`` runs, each backend and mesh in its own process (so PyTorch's thread
pools and unneeded fake devices do not slow the others): decode throughput (new tokens per second over the decode
phase), end-to-end throughput, time to first token (a 1-token generate) and compile time.
Prints each JAX figure with its ratio to PyTorch's. "warm-up s" is the extra time of the
first calls: compilation for JAX, first-call overhead for PyTorch. With a 1x1 mesh it also
prints the matmul floor: the decode throughput of the step's matrix products alone
(``matmul_floor``), the bound that weight streaming sets on this machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

from ..cli.parser import Parser, positive_int
from ..cli.devices import parse_mesh, prepare_platform, resolve_platform


def parse_args(argv=None):
    p = Parser(prog="python -m tests.jax.models.qwen2_5 bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=positive_int, default=256)
    p.add_argument("--layers", type=positive_int, default=4)
    p.add_argument("--heads", type=positive_int, default=8)
    p.add_argument("--kv-heads", type=positive_int, default=2)
    p.add_argument("--intermediate", type=positive_int, default=688)
    p.add_argument("--vocab", type=positive_int, default=2048)
    p.add_argument("--batch", type=positive_int, default=8)
    p.add_argument("--prompt", type=positive_int, default=32, help="prompt length")
    p.add_argument("--new-tokens", type=positive_int, default=64)
    p.add_argument("--meshes", default="1x1,1x8,2x4", help="comma-separated BxM mesh shapes")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--runs", type=positive_int, default=5, help="timed runs per process (median)")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="interleaved rounds of every backend, each in a fresh process (median of rounds)")
    p.add_argument("--platform", choices=("auto", "cpu", "tt"), default="cpu")
    p.add_argument("--loop", choices=("device", "host"), default=None,
                   help="JAX greedy loop: one on-device program, or host-driven steps (default: by platform)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--worker", choices=("jax", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.worker:
        check_args(p, args)
    return args


def check_args(p, args) -> None:
    """Meshes and head layout, before any checkpoint is built or process started."""
    from ..model.config import Qwen2Config, UnsupportedConfigError
    from ..model.layout import TPLayout

    args.shapes = mesh_shapes(p, args.meshes)
    try:
        config = Qwen2Config(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                             num_hidden_layers=args.layers, num_attention_heads=args.heads,
                             num_key_value_heads=args.kv_heads, head_dim=args.hidden // args.heads)
        for _, model in args.shapes:
            TPLayout(config, model)
    except (UnsupportedConfigError, ValueError) as e:
        p.fail(str(e))


def mesh_shapes(p, text: str):
    try:
        return [parse_mesh(item) for item in text.split(",")]
    except ValueError as e:
        p.fail(f"argument --meshes: {e}")


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _inputs(args):
    import numpy as np

    ids = np.random.RandomState(0).randint(0, args.vocab, size=(args.batch, args.prompt)).astype(np.int32)
    return ids, np.ones_like(ids)


def _measure(generate, args) -> dict:
    """Times ``generate(k)`` for k = new_tokens and k = 1 (time to first token)."""
    b, n = args.batch, args.new_tokens
    t = time.perf_counter()
    generate(n)
    generate(1)
    first_calls = time.perf_counter() - t
    total = median_time(lambda: generate(n), args.runs)
    ttft = median_time(lambda: generate(1), args.runs)
    # the decode rate is the difference of two timings: where noise makes it non-positive it is not measured (nan)
    decode = b * (n - 1) / (total - ttft) if total > ttft else float("nan")
    return {"decode": decode, "e2e": b * n / total, "ttft": ttft,
            "warmup": max(0.0, first_calls - total - ttft)}


def matmul_floor(model, batch: int, steps: int, runs: int) -> float:
    """Decode tokens/s of the 1x1 decode step's matrix products alone, on the model's own weights.

    Each step multiplies a [batch, hidden] activation by every weight matrix once (q|k|v, o,
    gate|up, down per layer, then the lm_head), as a real decode step does, with nothing
    else: no attention over the cache, no norms, no RoPE, no sampling. This bounds what any
    implementation built on XLA's CPU matrix products can reach on this machine.
    """
    import jax
    import jax.numpy as jnp

    c, params = model.config, model.params
    q_cols, f = model.layout.q_slots * c.head_dim, model.layout.intermediate

    def head(x):
        if c.tie_word_embeddings:
            return jnp.einsum("be,ve->bv", x, params["embed_tokens"]["embedding"])
        return x @ params["lm_head"]["kernel"]

    @jax.jit
    def run(x):
        def step(_, x):
            for i in range(c.num_hidden_layers):
                attn, mlp = params[f"layers_{i}"]["self_attn"], params[f"layers_{i}"]["mlp"]
                qkv = x @ attn["qkv_proj"]["kernel"]  # [b, (n+2k)*d]
                x = x + qkv[:, :q_cols] @ attn["o_proj"]["kernel"]
                gate_up = x @ mlp["gate_up_proj"]["kernel"]  # [b, 2f]
                x = x + (gate_up[:, :f] * gate_up[:, f:]) @ mlp["down_proj"]["kernel"]
                x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6)  # keep values tame
            return x + 1e-6 * jnp.max(head(x), axis=-1, keepdims=True)
        return jax.lax.fori_loop(0, steps, step, x)

    x = jnp.ones((batch, c.hidden_size), params["norm"]["scale"].dtype)
    run(x).block_until_ready()
    return batch * steps / median_time(lambda: run(x).block_until_ready(), runs)


def worker_jax(args) -> dict:
    """One mesh in its own process, with exactly the devices it needs."""
    a, m = parse_mesh(args.meshes)
    platform = resolve_platform(args.platform)
    prepare_platform(platform, a * m)
    import jax

    from .. import load_model, make_mesh

    ids, mask = _inputs(args)
    mesh = make_mesh((a, m), platform=platform)
    model = load_model(args.checkpoint, mesh, dtype=args.dtype)
    result = _measure(lambda k: model.generate(ids, mask, k, eos_token_id=(), loop=args.loop), args)
    if a * m == 1:
        result["floor"] = matmul_floor(model, args.batch, args.new_tokens - 1, args.runs)
    result["platform"] = jax.devices()[0].platform
    return result


def worker_torch(args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    ids, mask = _inputs(args)
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, dtype=getattr(torch, args.dtype)).eval()
    tids, tmask = torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)

    def generate(k):
        with torch.no_grad():
            return model.generate(input_ids=tids, attention_mask=tmask, do_sample=False, max_new_tokens=k,
                                  min_new_tokens=k, pad_token_id=0)

    result = _measure(generate, args)
    result["threads"] = torch.get_num_threads()
    return result


def _run_worker(kind: str, args, checkpoint: str, mesh: str = "1x1") -> dict:
    cmd = [sys.executable, "-m", __spec__.name if __spec__ else "tests.jax.models.qwen2_5.bench.decode",
           "--worker", kind, "--checkpoint", checkpoint, "--meshes", mesh, "--platform", args.platform,
           "--dtype", args.dtype, "--runs", str(args.runs), "--batch", str(args.batch), "--prompt", str(args.prompt),
           "--new-tokens", str(args.new_tokens), "--vocab", str(args.vocab)] + (["--loop", args.loop] if args.loop else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"benchmark worker {kind} {mesh} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = worker_jax(args) if args.worker == "jax" else worker_torch(args)
        print("RESULT " + json.dumps(result))
        return 0
    shapes = args.shapes
    from ..synthetic import random_checkpoint as rc

    geometry = dict(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                    num_hidden_layers=args.layers, num_attention_heads=args.heads,
                    num_key_value_heads=args.kv_heads, tie_word_embeddings=False)
    print(f"config: hidden {args.hidden}, {args.layers} layers, {args.heads}/{args.kv_heads} heads, vocab "
          f"{args.vocab}, {args.dtype}; batch {args.batch}, prompt {args.prompt}, {args.new_tokens} new tokens; "
          f"median of {args.runs} runs x {args.rounds} interleaved rounds, each backend and mesh in its own "
          f"process; {os.cpu_count()} cores" + (f"; XLA_FLAGS={os.environ['XLA_FLAGS']!r}" if os.environ.get("XLA_FLAGS") else ""))
    jobs = ([] if args.no_torch else [("pytorch", "-")]) + [("jax", f"{a}x{m}") for a, m in shapes]
    results = {job: [] for job in jobs}
    with tempfile.TemporaryDirectory() as tmp:
        rc.build_checkpoint(tmp, geometry, seed=0)
        for _ in range(args.rounds):  # interleaved, so slow phases of a shared machine hit every backend
            for name, mesh_id in jobs:
                kind = "torch" if name == "pytorch" else "jax"
                results[(name, mesh_id)].append(_run_worker(kind, args, tmp, mesh_id if kind == "jax" else "1x1"))
    rows = [(name, mesh_id, {k: statistics.median(r[k] for r in results[(name, mesh_id)])
                             for k in ("decode", "e2e", "ttft", "warmup")}) for name, mesh_id in jobs]
    torch_result = None if args.no_torch else rows[0][2]

    header = (f"{'backend':8} {'mesh':5} {'decode tok/s':>13} {'vs torch':>9} {'e2e tok/s':>10} {'TTFT ms':>8} "
              f"{'warm-up s':>9}")
    print(header)
    print("-" * len(header))
    unmeasured = False
    for name, mesh_id, r in rows:
        ratio = f"{r['decode'] / torch_result['decode']:8.2f}x" if torch_result else "      n/a"
        decode = f"{r['decode']:13.1f}"
        if math.isnan(r["decode"]) or (torch_result and math.isnan(torch_result["decode"])):
            unmeasured, ratio = True, "-"
            decode = "-" if math.isnan(r["decode"]) else decode
        print(f"{name:8} {mesh_id:5} {decode:>13} {ratio:>9} {r['e2e']:10.1f} {r['ttft'] * 1e3:8.1f} "
              f"{r['warmup']:9.2f}")
    if unmeasured:
        print("decode '-': the run of all new tokens was not slower than the 1-token run (timing noise on a run "
              "this short): raise --new-tokens or --runs")
    floors = [f for (name, mesh_id), runs in results.items() if mesh_id == "1x1" for f in [r["floor"] for r in runs]]
    if floors:
        floor = statistics.median(floors)
        ratio = (f" = {floor / torch_result['decode']:.2f}x PyTorch"
                 if torch_result and not math.isnan(torch_result["decode"]) else "")
        print(f"matmul floor (1x1): {floor:.1f} tok/s{ratio}: the decode step's matrix products alone on the same "
              f"weights (each weight read once per token, nothing else), the most any 1x1 decode built on XLA's "
              f"CPU matrix products reaches here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
