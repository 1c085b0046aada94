"""Published Qwen2.5 configurations, as their Hugging Face repositories write them.

``config.json`` and ``generation_config.json`` in the transformers 4.x spelling the
published checkpoints use (``rope_theta``, ``torch_dtype``, sliding-window fields), so a
synthetic checkpoint (``synthetic.py``) and the compile checks (``tt_compile.py``) see what
the acceptance run will read. The Instruct and base models share their shapes.
"""

from __future__ import annotations

import copy

_COMMON = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 32768,
    "model_type": "qwen2",
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1",
    "use_cache": True,
    "use_sliding_window": False,
}

# name -> the fields that differ between sizes
_SIZES = {
    "qwen2.5-0.5b-instruct": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                  num_attention_heads=14, num_key_value_heads=2, max_window_layers=21,
                                  tie_word_embeddings=True, vocab_size=151936),
    "qwen2.5-1.5b-instruct": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                                  num_attention_heads=12, num_key_value_heads=2, max_window_layers=21,
                                  tie_word_embeddings=True, vocab_size=151936),
    "qwen2.5-3b-instruct": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                                num_attention_heads=16, num_key_value_heads=2, max_window_layers=70,
                                tie_word_embeddings=True, vocab_size=151936),
    "qwen2.5-7b-instruct": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                num_attention_heads=28, num_key_value_heads=4, max_window_layers=28,
                                tie_word_embeddings=False, vocab_size=152064),
    "qwen2.5-14b-instruct": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=48,
                                 num_attention_heads=40, num_key_value_heads=8, max_window_layers=70,
                                 tie_word_embeddings=False, vocab_size=152064),
}

_GENERATION = {
    "bos_token_id": 151643,
    "pad_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "repetition_penalty": 1.05,
    "temperature": 0.7,
    "top_p": 0.8,
    "top_k": 20,
    "transformers_version": "4.37.0",
}

PRESETS = tuple(_SIZES)
HUB_IDS = {name: "Qwen/" + name.replace("qwen", "Qwen").replace("-instruct", "-Instruct").replace("b-", "B-")
           for name in PRESETS}


def config_json(preset: str, **overrides) -> dict:
    """The preset's config.json as a dict (``overrides`` replace fields, e.g. num_hidden_layers)."""
    if preset not in _SIZES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    raw = dict(_COMMON, **_SIZES[preset])
    unknown = set(overrides) - set(raw)
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}")
    raw.update(overrides)
    return dict(sorted(raw.items()))


def generation_config_json(preset: str) -> dict:
    if preset not in _SIZES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    return copy.deepcopy(_GENERATION)
