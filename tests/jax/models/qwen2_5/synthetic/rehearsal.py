"""Acceptance rehearsal, full-scale tier: a full-size synthetic checkpoint on this CPU.

Two kinds of worker process, each with the machine's memory to itself (a 7B model fits
24 GiB once, not twice); ``test_rehearsal_full.py`` runs them and compares their outputs:

    python -m tests.jax.models.qwen2_5 rehearsal-worker torch CKPT OUT.json
    python -m tests.jax.models.qwen2_5 rehearsal-worker jax CKPT OUT.json --mesh 1x8

Both take the same batch of GSM8K chat prompts (Qwen2.5-Instruct's template, left-padded),
compute bfloat16 logits at every real position, greedily generate ``NEW_TOKENS`` tokens (no
stop ids, so both run the full length) and time a decode step. The JAX worker first times a
plain sequential read of the checkpoint's files (the page cache dropped before each read),
then the load, and records the loading process's peak resident memory.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import numpy as np

PROMPTS = 4
NEW_TOKENS = 16
READ_BLOCK = 64 << 20


def prompts(checkpoint: str, gsm8k_path=None):
    """(ids, mask) int32 [PROMPTS, s]: the first GSM8K test problems through the chat template."""
    from transformers import AutoTokenizer

    from ..gsm8k.data import load_split
    from ..gsm8k.evaluate import encode, left_padded
    from ..gsm8k.prompts import build_prompts, choose

    tok = AutoTokenizer.from_pretrained(checkpoint)
    problems = load_split("test", gsm8k_path)[:PROMPTS]
    return left_padded(encode(tok, build_prompts(problems, choose("chat", tok), tok)), int(tok.pad_token_id))


def weight_files(checkpoint: str):
    with open(os.path.join(checkpoint, "model.safetensors.index.json")) as f:
        index = json.load(f)
    files = [os.path.join(checkpoint, n) for n in sorted(set(index["weight_map"].values()))]
    return files, int(index["metadata"]["total_size"])


def drop_page_cache(paths) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def sequential_read(paths) -> dict:
    """Plain sequential read of ``paths`` from disk (page cache dropped first)."""
    drop_page_cache(paths)
    start, total = time.perf_counter(), 0
    buf = bytearray(READ_BLOCK)
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                total += n
    seconds = time.perf_counter() - start
    return {"bytes": total, "seconds": seconds, "gb_per_s": total / seconds / 1e9}


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def valid_logits(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float32 logits [n_real, vocab] at the real (unpadded) positions."""
    return np.asarray(logits, np.float32)[np.asarray(mask) == 1]


def worker_torch(checkpoint: str, out: str, gsm8k_path=None) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    ids, mask = prompts(checkpoint, gsm8k_path)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.bfloat16).eval()
    load_s = time.perf_counter() - start
    t_ids, t_mask = torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)
    positions = (t_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        start = time.perf_counter()
        logits = model(input_ids=t_ids, attention_mask=t_mask, position_ids=positions).logits.float().numpy()
        forward_s = time.perf_counter() - start
        times, result = {}, None
        for n in (1, NEW_TOKENS):
            config = GenerationConfig(do_sample=False, max_new_tokens=n, eos_token_id=None,
                                      pad_token_id=int(model.config.bos_token_id or 0), return_dict_in_generate=True,
                                      output_logits=True)
            start = time.perf_counter()
            result = model.generate(input_ids=t_ids, attention_mask=t_mask, generation_config=config)
            times[n] = time.perf_counter() - start
    tokens = result.sequences[:, ids.shape[1]:].numpy()
    steps = torch.stack(result.logits, 1).float().numpy()  # [b, n, v]
    top2 = np.sort(steps, axis=-1)[..., -2:]
    np.save(out + ".logits.npy", valid_logits(logits, mask))
    return {"load_seconds": load_s, "forward_seconds": forward_s, "tokens": tokens.tolist(),
            "step_gaps": (top2[..., 1] - top2[..., 0]).tolist(),
            "decode_seconds_per_step": (times[NEW_TOKENS] - times[1]) / (NEW_TOKENS - 1),
            "prompt_shape": list(ids.shape), "peak_rss": peak_rss_bytes()}


def worker_jax(checkpoint: str, out: str, mesh_text: str, gsm8k_path=None) -> dict:
    from ..cli.devices import parse_mesh, prepare_platform

    shape = parse_mesh(mesh_text)
    prepare_platform("cpu", shape[0] * shape[1])
    files, model_bytes = weight_files(checkpoint)
    raw = sequential_read(files)
    drop_page_cache(files)

    from .. import load_model, make_mesh

    rss_before = peak_rss_bytes()
    start = time.perf_counter()
    model = load_model(checkpoint, make_mesh(shape), dtype="bfloat16")
    load_s = time.perf_counter() - start
    peak = peak_rss_bytes()
    ids, mask = prompts(checkpoint, gsm8k_path)
    start = time.perf_counter()
    logits = np.asarray(model.forward(ids, mask))
    forward_s = time.perf_counter() - start  # compilation included
    np.save(out + ".logits.npy", valid_logits(logits, mask))
    del logits
    model.generate(ids, mask, max_new_tokens=2, eos_token_id=(), loop="host")  # compiles prefill and step
    times, tokens = {}, None
    for n in (1, NEW_TOKENS):
        start = time.perf_counter()
        tokens = model.generate(ids, mask, max_new_tokens=n, eos_token_id=(), loop="host")
        times[n] = time.perf_counter() - start
    return {"mesh": mesh_text, "model_bytes": model_bytes, "raw_read": raw, "load_seconds": load_s,
            "load_gb_per_s": model_bytes / load_s / 1e9, "peak_rss": peak, "rss_before_load": rss_before,
            "forward_seconds": forward_s, "tokens": np.asarray(tokens).tolist(),
            "decode_seconds_per_step": (times[NEW_TOKENS] - times[1]) / (NEW_TOKENS - 1),
            "prompt_shape": list(ids.shape)}


def main(argv=None) -> int:
    from ..cli.parser import Parser, mesh_shape

    p = Parser(prog="python -m tests.jax.models.qwen2_5 rehearsal-worker", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("torch", "jax"))
    p.add_argument("checkpoint")
    p.add_argument("out", help="result JSON (logits beside it as OUT.logits.npy)")
    p.add_argument("--mesh", type=mesh_shape, default=(1, 8))
    p.add_argument("--gsm8k-path", default=None)
    args = p.parse_args(argv)
    if not os.path.isfile(os.path.join(args.checkpoint, "model.safetensors.index.json")):
        p.fail(f"{args.checkpoint!r} holds no model.safetensors.index.json (build it with "
               f"python -m tests.jax.models.qwen2_5.synthetic)")
    if args.kind == "torch":
        result = worker_torch(args.checkpoint, args.out, args.gsm8k_path)
    else:
        result = worker_jax(args.checkpoint, args.out, f"{args.mesh[0]}x{args.mesh[1]}", args.gsm8k_path)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
