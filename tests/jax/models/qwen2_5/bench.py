"""Greedy-decoding benchmark: JAX on chosen meshes against Hugging Face PyTorch ``generate``.

    python -m tests.jax.models.qwen2_5.bench [--meshes 1x1,1x8,2x4] [--dtype float32] ...

Builds one random checkpoint, then in the same run measures, after warm-up and as the
median of ``--runs`` runs (JAX first: PyTorch's OpenMP threads left spinning after its
runs would otherwise slow JAX's): decode throughput (new tokens per second over the decode
phase), end-to-end throughput, time to first token (a 1-token generate) and compile time.
Prints each JAX figure with its ratio to PyTorch's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=688)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prompt", type=int, default=32, help="prompt length")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--meshes", default="1x1,1x8,2x4", help="comma-separated BxM mesh shapes")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--platform", choices=("auto", "cpu", "tt"), default="cpu")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    return p.parse_args(argv)


def mesh_shapes(text: str):
    shapes = []
    for item in text.split(","):
        a, _, b = item.strip().partition("x")
        if not (a.isdigit() and b.isdigit()):
            raise SystemExit(f"bad mesh {item!r}: use BxM, e.g. 2x4")
        shapes.append((int(a), int(b)))
    return shapes


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    args = parse_args(argv)
    shapes = mesh_shapes(args.meshes)
    if args.platform in ("cpu", "auto"):
        need = max(a * b for a, b in shapes)
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={need}")
        if args.platform == "cpu":
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import numpy as np
    import torch

    from . import load_model, make_mesh
    from . import random_checkpoint as rc

    geometry = dict(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                    num_hidden_layers=args.layers, num_attention_heads=args.heads,
                    num_key_value_heads=args.kv_heads, tie_word_embeddings=False)
    rng = np.random.RandomState(0)
    ids = rng.randint(0, args.vocab, size=(args.batch, args.prompt)).astype(np.int32)
    mask = np.ones_like(ids)
    b, n = args.batch, args.new_tokens
    print(f"config: hidden {args.hidden}, {args.layers} layers, {args.heads}/{args.kv_heads} heads, vocab "
          f"{args.vocab}, {args.dtype}; batch {b}, prompt {args.prompt}, {n} new tokens; median of {args.runs}")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), {os.cpu_count()} cores")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path, hf = rc.build_checkpoint(tmp, geometry, seed=0)
        if args.dtype == "bfloat16":
            hf = hf.to(torch.bfloat16)
        for shape in shapes:
            mesh = make_mesh(shape, platform=None if args.platform == "auto" else args.platform)
            model = load_model(path, mesh, dtype=args.dtype)
            t = time.perf_counter()
            model.generate(ids, mask, n, eos_token_id=())
            model.generate(ids, mask, 1, eos_token_id=())
            first_calls = time.perf_counter() - t
            total = median_time(lambda: model.generate(ids, mask, n, eos_token_id=()), args.runs)
            ttft = median_time(lambda: model.generate(ids, mask, 1, eos_token_id=()), args.runs)
            compile_s = first_calls - total - ttft
            rows.append(("jax", f"{shape[0]}x{shape[1]}", b * (n - 1) / (total - ttft), b * n / total, ttft, compile_s))

        torch_decode = None
        if not args.no_torch:
            tids, tmask = torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)

            def torch_gen(k):
                with torch.no_grad():
                    return hf.generate(input_ids=tids, attention_mask=tmask, do_sample=False, max_new_tokens=k,
                                       min_new_tokens=k, pad_token_id=0)

            torch_gen(n)  # warm-up
            total = median_time(lambda: torch_gen(n), args.runs)
            ttft = median_time(lambda: torch_gen(1), args.runs)
            torch_decode = b * (n - 1) / (total - ttft)
            rows.insert(0, ("pytorch", "-", torch_decode, b * n / total, ttft, 0.0))

    header = f"{'backend':8} {'mesh':5} {'decode tok/s':>13} {'vs torch':>9} {'e2e tok/s':>10} {'TTFT ms':>8} {'compile s':>9}"
    print(header)
    print("-" * len(header))
    for name, mesh_id, decode, e2e, ttft, compile_s in rows:
        ratio = f"{decode / torch_decode:8.2f}x" if torch_decode else "      n/a"
        print(f"{name:8} {mesh_id:5} {decode:13.1f} {ratio:>9} {e2e:10.1f} {ttft * 1e3:8.1f} {compile_s:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
