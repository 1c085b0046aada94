"""Qwen2 model configuration, read from a checkpoint's ``config.json``.

Both spellings of the file are accepted:

* transformers 4.x (the published Qwen2.5 checkpoints): top-level ``rope_theta``,
  ``torch_dtype``, ``sliding_window`` with ``use_sliding_window``, ``rope_scaling``;
* transformers 5.x: ``rope_parameters: {rope_theta, rope_type}``, ``dtype``,
  ``layer_types``.

Anything this implementation cannot run exactly (another architecture, sliding-window
attention in use, RoPE scaling) raises :class:`UnsupportedConfigError` instead of
silently approximating.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional


class UnsupportedConfigError(ValueError):
    """The checkpoint's configuration asks for something this model does not implement."""


@dataclasses.dataclass(frozen=True)
class Qwen2Config:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 32768
    checkpoint_dtype: Optional[str] = None
    bos_token_id: Optional[int] = None
    eos_token_id: Any = None  # int or list of ints, as in config.json
    pad_token_id: Optional[int] = None

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", "num_key_value_heads", "head_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UnsupportedConfigError(f"config field {name} must be a positive integer, got {value!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise UnsupportedConfigError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads}) for grouped-query attention")

    @property
    def queries_per_kv(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "Qwen2Config":
        model_type = raw.get("model_type")
        if model_type != "qwen2":
            raise UnsupportedConfigError(
                f"{source}: model_type is {model_type!r}; this implementation runs Qwen2-family "
                f"checkpoints only (model_type 'qwen2', e.g. Qwen2.5-7B)")
        act = raw.get("hidden_act", "silu")
        if act != "silu":
            raise UnsupportedConfigError(f"{source}: hidden_act {act!r} is not supported (only 'silu')")

        _check_no_sliding_window(raw, source)
        rope_theta = _rope_theta(raw, source)

        heads = raw["num_attention_heads"]
        hidden = raw["hidden_size"]
        head_dim = raw.get("head_dim") or hidden // heads
        return cls(
            vocab_size=raw["vocab_size"],
            hidden_size=hidden,
            intermediate_size=raw["intermediate_size"],
            num_hidden_layers=raw["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=raw.get("num_key_value_heads") or heads,
            head_dim=head_dim,
            rms_norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
            rope_theta=rope_theta,
            tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
            max_position_embeddings=int(raw.get("max_position_embeddings", 32768)),
            checkpoint_dtype=raw.get("dtype") or raw.get("torch_dtype"),
            bos_token_id=raw.get("bos_token_id"),
            eos_token_id=raw.get("eos_token_id"),
            pad_token_id=raw.get("pad_token_id"),
        )

    @classmethod
    def from_checkpoint(cls, checkpoint_dir: str) -> "Qwen2Config":
        if not os.path.isdir(checkpoint_dir):
            raise FileNotFoundError(f"checkpoint directory {checkpoint_dir!r} does not exist")
        path = os.path.join(checkpoint_dir, "config.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing: a Hugging Face checkpoint directory needs its config.json")
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path} is not readable JSON: {e}") from e
        try:
            return cls.from_dict(raw, source=path)
        except KeyError as e:
            raise ValueError(f"{path} lacks the required field {e.args[0]!r}") from e

    def eos_token_ids(self) -> tuple:
        eos = self.eos_token_id
        if eos is None:
            return ()
        return tuple(eos) if isinstance(eos, (list, tuple)) else (eos,)


def _rope_theta(raw: dict, source: str) -> float:
    params = raw.get("rope_parameters")
    scaling = raw.get("rope_scaling")
    if isinstance(params, dict):
        rope_type = params.get("rope_type", params.get("type", "default"))
        if rope_type not in (None, "default"):
            raise UnsupportedConfigError(
                f"{source}: rope_parameters.rope_type {rope_type!r} (RoPE scaling) is not supported; "
                f"only default RoPE is implemented exactly")
        theta = params.get("rope_theta", raw.get("rope_theta"))
    else:
        theta = raw.get("rope_theta")
    if scaling:
        raise UnsupportedConfigError(
            f"{source}: rope_scaling {scaling!r} is not supported; only default RoPE is implemented "
            f"exactly (remove rope_scaling for contexts within max_position_embeddings)")
    return float(theta if theta is not None else 10000.0)


def _check_no_sliding_window(raw: dict, source: str) -> None:
    layer_types = raw.get("layer_types")
    if layer_types is not None:
        sliding = [i for i, t in enumerate(layer_types) if t != "full_attention"]
        if sliding:
            raise UnsupportedConfigError(
                f"{source}: layers {sliding} use {layer_types[sliding[0]]!r}; only full attention is "
                f"implemented (sliding-window attention would change results)")
    elif raw.get("use_sliding_window") and raw.get("sliding_window") is not None:
        first = raw.get("max_window_layers", 0)
        if first < raw["num_hidden_layers"]:
            raise UnsupportedConfigError(
                f"{source}: use_sliding_window is true with sliding_window={raw['sliding_window']} from "
                f"layer {first}; only full attention is implemented")
