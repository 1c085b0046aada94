"""A synthetic checkpoint with a published Qwen2.5 shape: real config, real tokenizer, random weights.

    python -m tests.jax.models.qwen2_5.synthetic --preset qwen2.5-7b-instruct [--layers N] [--tokenizer DIR] OUT

Writes what the published checkpoint's repository holds: ``config.json`` and
``generation_config.json`` as published (transformers 4.x spelling), bfloat16 weights under
the published tensor names in ``model-0000k-of-0000n.safetensors`` shards with
``model.safetensors.index.json``, and Qwen2.5-Instruct's tokenizer (``qwen_tokenizer.py``;
without a tokenizer source, a small BPE trained here, which the output says). A full-scale
rehearsal of the acceptance run without a 15 GB download.

Weights stream to disk a block of rows at a time (host memory stays far below one tensor).
Each tensor's values depend only on ``--seed`` and its name, so a checkpoint with fewer
layers holds the same first layers. Initialisation that keeps a deep stack numerically
sane: every projection N(0, 1/fan_in) (outputs of unit scale), the two residual-branch outputs
(``o_proj``, ``down_proj``) further scaled by 1/sqrt(2 * layers) so the residual stream stays
O(1) at any depth, embeddings N(0, 1), biases N(0, 0.02^2), norm weights 1 + N(0, 0.05^2).
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
import time
import zlib
from typing import Dict, Iterator, List, Optional, Tuple

from ..cli.parser import Parser, positive_int

PROG = "python -m tests.jax.models.qwen2_5.synthetic"
ROWS_PER_BLOCK = 2048
DEFAULT_SHARD_BYTES = 4_000_000_000  # the published 7B repository has four shards of about 3.9 GB


def tensor_specs(config: dict) -> List[Tuple[str, Tuple[int, ...], float]]:
    """(Hugging Face name, shape, init std) of every tensor, in checkpoint order."""
    e, f, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    d = config.get("head_dim") or e // heads
    branch = 1.0 / math.sqrt(2 * layers)
    specs = [("model.embed_tokens.weight", (config["vocab_size"], e), 1.0)]
    for i in range(layers):
        p = f"model.layers.{i}."
        specs += [
            (p + "input_layernorm.weight", (e,), -0.05),  # negative std: 1 + N(0, std^2)
            (p + "self_attn.q_proj.weight", (heads * d, e), 1 / math.sqrt(e)),
            (p + "self_attn.q_proj.bias", (heads * d,), 0.02),
            (p + "self_attn.k_proj.weight", (kv * d, e), 1 / math.sqrt(e)),
            (p + "self_attn.k_proj.bias", (kv * d,), 0.02),
            (p + "self_attn.v_proj.weight", (kv * d, e), 1 / math.sqrt(e)),
            (p + "self_attn.v_proj.bias", (kv * d,), 0.02),
            (p + "self_attn.o_proj.weight", (e, heads * d), branch / math.sqrt(heads * d)),
            (p + "post_attention_layernorm.weight", (e,), -0.05),
            (p + "mlp.gate_proj.weight", (f, e), 1 / math.sqrt(e)),
            (p + "mlp.up_proj.weight", (f, e), 1 / math.sqrt(e)),
            (p + "mlp.down_proj.weight", (e, f), branch / math.sqrt(f)),
        ]
    specs.append(("model.norm.weight", (e,), -0.05))
    if not config.get("tie_word_embeddings"):
        specs.append(("lm_head.weight", (config["vocab_size"], e), 1 / math.sqrt(e)))
    return specs


def blocks(name: str, shape: Tuple[int, ...], std: float, seed: int) -> Iterator[bytes]:
    """The tensor's bfloat16 bytes, ``ROWS_PER_BLOCK`` rows at a time (deterministic in seed and name)."""
    import ml_dtypes
    import numpy as np

    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    rows = shape[0]
    width = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    for start in range(0, rows, ROWS_PER_BLOCK):
        n = min(ROWS_PER_BLOCK, rows - start)
        x = rng.standard_normal((n, width), dtype=np.float32) * abs(std)
        if std < 0:
            x += 1.0
        yield x.astype(ml_dtypes.bfloat16).tobytes()


def plan_shards(specs, shard_bytes: int) -> List[List[Tuple[str, Tuple[int, ...], float]]]:
    shards, current, size = [], [], 0
    for spec in specs:
        nbytes = 2 * math.prod(spec[1])
        if current and size + nbytes > shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(spec)
        size += nbytes
    shards.append(current)
    return shards


def write_shard(path: str, specs, seed: int) -> int:
    """One safetensors file, header first, then every tensor streamed in blocks."""
    header: Dict[str, dict] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in specs:
        nbytes = 2 * math.prod(shape)
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # 8-byte aligned data, as safetensors writes it
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, shape, std in specs:
            for chunk in blocks(name, shape, std, seed):
                f.write(chunk)
    os.replace(path + ".tmp", path)
    return offset


def write_weights(out_dir: str, config: dict, seed: int = 0, shard_bytes: int = DEFAULT_SHARD_BYTES,
                  log=print) -> int:
    shards = plan_shards(tensor_specs(config), shard_bytes)
    n = len(shards)
    weight_map, total = {}, 0
    for k, specs in enumerate(shards, 1):
        name = f"model-{k:05d}-of-{n:05d}.safetensors"
        start = time.time()
        total += write_shard(os.path.join(out_dir, name), specs, seed)
        weight_map.update({spec[0]: name for spec in specs})
        log(f"  {name}: {len(specs)} tensors, {time.time() - start:.1f}s")
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return total


def small_tokenizer(out_dir: str) -> dict:
    """The fallback: a byte-level BPE trained here (GSM8K questions when GSM8K_PATH is set)."""
    from .random_tokenizer import train_tokenizer

    texts = None
    try:
        from ..gsm8k.data import load_split, resolve_path

        if resolve_path(None, "train"):
            texts = [p.question for p in load_split("train")]
    except Exception:
        texts = None
    texts = texts or [f"Tom has {i} apples and buys {i + 3} more. How many apples does he have?" for i in range(500)]
    tok = train_tokenizer(texts)
    tok.save_pretrained(out_dir)
    return {"kind": "small-bpe", "source": "trained here", "vocab": len(tok), "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id}


def build(out_dir: str, preset: str, layers: Optional[int] = None, tokenizer: Optional[str] = None,
          seed: int = 0, shard_bytes: int = DEFAULT_SHARD_BYTES, overrides: Optional[dict] = None, log=print) -> dict:
    """Write the synthetic checkpoint; returns a summary (config, tokenizer, bytes, seconds)."""
    from . import presets, qwen_tokenizer

    fields = dict(overrides or {})
    if layers is not None:
        fields["num_hidden_layers"] = layers
    config = presets.config_json(preset, **fields)
    generation = presets.generation_config_json(preset)
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()
    source = qwen_tokenizer.resolve_source(tokenizer)
    try:
        tok = qwen_tokenizer.write(source, out_dir)
    except qwen_tokenizer.TokenizerSourceError as e:
        if tokenizer:  # asked for explicitly: no silent fallback
            raise
        log(f"tokenizer: {e}; using a small BPE trained here instead (special ids differ from Qwen's)")
        tok = small_tokenizer(out_dir)
        for raw in (config, generation):  # the small vocabulary's own special ids
            raw["eos_token_id"] = tok["eos_token_id"] if raw is config else [tok["eos_token_id"]]
            raw["bos_token_id"] = tok["pad_token_id"]
        generation["pad_token_id"] = tok["pad_token_id"]
    log(f"tokenizer: {tok['kind']} from {tok['source']}, {tok['vocab']} tokens, eos {tok['eos_token_id']}, "
        f"pad {tok['pad_token_id']}")
    for name, raw in (("config.json", config), ("generation_config.json", generation)):
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(raw, f, indent=2)
            f.write("\n")
    total = write_weights(out_dir, config, seed, shard_bytes, log)
    return {"config": config, "tokenizer": tok, "bytes": total, "seconds": time.time() - start}


def main(argv=None) -> int:
    from .presets import PRESETS, config_json

    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("out", metavar="OUT", help="output directory (created)")
    p.add_argument("--preset", required=True, choices=PRESETS, help="published configuration to copy")
    p.add_argument("--layers", type=positive_int, default=None, help="decoder layers (default: the preset's)")
    p.add_argument("--tokenizer", default=None, help="directory with Qwen's tokenizer.json (env QWEN2_5_TOKENIZER; "
                   "default: the hub's Qwen/Qwen2.5-7B-Instruct)")
    p.add_argument("--hidden-size", type=positive_int, default=None, help="narrower model (keeps the head counts)")
    p.add_argument("--intermediate-size", type=positive_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-gb", type=float, default=DEFAULT_SHARD_BYTES / 1e9, help="maximum shard size in GB")
    args = p.parse_args(argv)
    if args.tokenizer and not os.path.isfile(os.path.join(args.tokenizer, "tokenizer.json")):
        p.fail(f"argument --tokenizer: {args.tokenizer!r} is not a directory holding Qwen's tokenizer.json")
    heads = config_json(args.preset)["num_attention_heads"]
    if args.hidden_size and args.hidden_size % heads:
        p.fail(f"argument --hidden-size: {args.hidden_size} is not a multiple of the {heads} attention heads")
    if os.path.exists(args.out) and os.listdir(args.out):
        p.fail(f"OUT {args.out!r} exists and is not empty")
    if args.shard_gb <= 0:
        p.fail("argument --shard-gb: must be positive")
    overrides = {k: v for k, v in (("hidden_size", args.hidden_size), ("intermediate_size", args.intermediate_size))
                 if v is not None}
    print(f"{args.preset} -> {args.out}" + (f" ({args.layers} layers)" if args.layers else ""))
    summary = build(args.out, args.preset, args.layers, args.tokenizer, args.seed, int(args.shard_gb * 1e9),
                    overrides)
    print(f"wrote {summary['bytes'] / 1e9:.2f} GB of bfloat16 weights in {summary['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
