"""Random Qwen2 checkpoints built with Hugging Face transformers, for tests and demos.

Each checkpoint is a real ``Qwen2ForCausalLM`` with random weights (norm weights and
biases perturbed away from their init so that a dropped term shows), saved with
``save_pretrained`` as sharded safetensors with an index, so everything that uses it
goes through the real loader. transformers and torch are imported lazily.
"""

from __future__ import annotations

import json
import os
from typing import Optional

# Geometries. Sizes are odd on purpose: vocabularies and MLP widths that no mesh divides,
# head layouts that need padding at T = 8 and 32.
GEOMETRIES = {
    # Qwen2.5-7B's head layout (28 query / 4 KV heads, groups of 7), tiny head_dim.
    "gqa28x4": dict(vocab_size=1001, hidden_size=224, intermediate_size=300, num_hidden_layers=2,
                    num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False,
                    initializer_range=0.1, config_style="v5"),
    # Tied embeddings, head_dim given explicitly (6 * 16 != hidden 88), 4.x-style config.json.
    "tied6x2": dict(vocab_size=777, hidden_size=88, head_dim=16, intermediate_size=130, num_hidden_layers=3,
                    num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=True,
                    initializer_range=0.1, config_style="v4"),
    # The real Qwen2.5-7B geometry, 2 layers and a reduced vocabulary.
    "qwen2_5_7b_2layers": dict(vocab_size=1003, hidden_size=3584, intermediate_size=18944, num_hidden_layers=2,
                               num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False,
                               config_style="v4", rms_norm_eps=1e-6, rope_theta=1_000_000.0),
    # Benchmark default (generation issue): hidden 256, 4 layers, 8/2 heads, vocab 2048.
    "bench": dict(vocab_size=2048, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=False, config_style="v5"),
}
GEOMETRY_7B = "qwen2_5_7b"  # the full published Qwen2.5-7B config (presets.py); never built as a checkpoint here
CHAT_MAX_POSITIONS = 4096  # max_position_embeddings of the chat checkpoints (build_chat_checkpoint)


def geometry_config(name: str):
    """The ``Qwen2Config`` of a suite geometry (``random_checkpoint.GEOMETRIES``) or of the full
    Qwen2.5-7B (``qwen2_5_7b``: 28 layers, vocabulary 152064)."""
    from . import presets
    from ..model.config import Qwen2Config

    if name == GEOMETRY_7B:
        return Qwen2Config.from_dict(presets.config_json("qwen2.5-7b-instruct"), source=name)
    geo = {k: v for k, v in GEOMETRIES[name].items() if k not in ("config_style", "initializer_range")}
    geo.setdefault("head_dim", geo["hidden_size"] // geo["num_attention_heads"])
    geo.setdefault("max_position_embeddings", 1024)  # as hf_config
    geo.setdefault("rope_theta", 10000.0)
    return Qwen2Config(**geo)


def hf_config(geometry: dict, **overrides):
    from transformers import Qwen2Config

    kwargs = {k: v for k, v in geometry.items() if k != "config_style"}
    kwargs.setdefault("rope_theta", 10000.0)
    kwargs.setdefault("max_position_embeddings", 1024)
    kwargs.setdefault("rms_norm_eps", 1e-6)
    kwargs.update(overrides)
    theta = kwargs.pop("rope_theta")
    return Qwen2Config(rope_parameters={"rope_type": "default", "rope_theta": theta}, **kwargs)


def random_model(geometry: dict, seed: int = 0, **config_overrides):
    """A float32 ``Qwen2ForCausalLM`` with random weights, norms and biases perturbed."""
    import torch
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(hf_config(geometry, **config_overrides)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn_like(p))
    return model


def to_v4_config(checkpoint_dir: str) -> None:
    """Rewrite config.json the way transformers 4.x (and the published Qwen2.5) write it."""
    path = os.path.join(checkpoint_dir, "config.json")
    with open(path) as f:
        raw = json.load(f)
    rope = raw.pop("rope_parameters", None) or {}
    raw["rope_theta"] = rope.get("rope_theta", 10000.0)
    raw["rope_scaling"] = None
    raw.pop("layer_types", None)
    raw["torch_dtype"] = raw.pop("dtype", "float32")
    raw["use_sliding_window"] = False
    raw["sliding_window"] = raw.get("sliding_window") or 4096
    raw["max_window_layers"] = raw.get("max_window_layers", raw["num_hidden_layers"])
    raw["transformers_version"] = "4.43.1"
    with open(path, "w") as f:
        json.dump(raw, f, indent=2)


def save_checkpoint(model, out_dir: str, config_style: str = "v5", max_shard_size: Optional[str] = None,
                    dtype=None) -> str:
    """``save_pretrained`` as sharded safetensors (with an index); optionally a 4.x config.json."""
    import torch

    if dtype is not None:
        model = model.to(getattr(torch, dtype))
    if max_shard_size is None:
        total = sum(p.numel() * p.element_size() for p in model.parameters())
        max_shard_size = f"{max(1, total // 4 // 1000 + 1)}KB"  # about 4 shards
    model.save_pretrained(out_dir, max_shard_size=max_shard_size)
    if config_style == "v4":
        to_v4_config(out_dir)
    return out_dir


def build_checkpoint(out_dir: str, geometry: str | dict, seed: int = 0, **config_overrides):
    """Build, save and return (checkpoint_dir, float32 torch model)."""
    geo = GEOMETRIES[geometry] if isinstance(geometry, str) else geometry
    model = random_model(geo, seed, **config_overrides)
    save_checkpoint(model, out_dir, geo.get("config_style", "v5"))
    return out_dir, model


def hf_logits(model, input_ids, attention_mask):
    """PyTorch reference logits with ``generate``'s position ids (cumsum(mask) - 1, clamped)."""
    import numpy as np
    import torch

    ids = torch.as_tensor(np.asarray(input_ids), dtype=torch.long)
    mask = torch.as_tensor(np.asarray(attention_mask), dtype=torch.long)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float().numpy()


def build_chat_checkpoint(out_dir: str, texts, geometry: str = "gqa28x4", seed: int = 0):
    """A random checkpoint with a real tokenizer (byte-level BPE trained on ``texts``, Qwen's special
    tokens and a chat template) saved beside it. Returns (checkpoint_dir, torch model, tokenizer)."""
    from .random_tokenizer import train_tokenizer

    tokenizer = train_tokenizer(texts)
    geo = dict(GEOMETRIES[geometry], vocab_size=len(tokenizer))
    model = random_model(geo, seed, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         max_position_embeddings=CHAT_MAX_POSITIONS)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    save_checkpoint(model, out_dir, geo.get("config_style", "v5"))
    tokenizer.save_pretrained(out_dir)
    return out_dir, model, tokenizer
