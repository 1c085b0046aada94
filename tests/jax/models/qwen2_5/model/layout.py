"""The tensor-parallel layout: how heads, vocabulary and MLP columns are split over T devices.

This file is the one place that knows how a Hugging Face tensor becomes its padded
tensor-parallel form. The model itself is plain grouped-query attention over
``q_slots`` query heads and ``kv_slots`` KV heads; sharding those slot axes evenly over
"model" gives each device its own heads and the KV head they read.

Query heads are grouped by the KV head they read: ``K`` groups of ``G = H / K`` heads.

* ``T <= K`` (``K % T == 0``): each device owns ``K / T`` whole groups; no padding.
* ``T > K`` (``T % K == 0``): each group is split over ``R = T / K`` devices. The group is
  padded with zero query heads to ``G' = ceil(G / R) * R`` (zero q_proj columns and bias,
  zero o_proj rows: a padded head adds exactly zero) and each of its ``R`` devices gets a
  copy of the group's KV head. Qwen2.5-7B (H=28, K=4) at T=8: G'=8, 4 query heads and
  1 KV head per device; at T=32: 1 and 1.

Vocabulary and intermediate sizes are padded up to a multiple of T with zero rows; the
model masks padded vocabulary entries out of every logit and argmax.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .config import Qwen2Config


class UnsupportedParallelismError(ValueError):
    """The tensor-parallel degree does not fit the checkpoint's head layout."""


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def supported_tp_degrees(config: Qwen2Config, limit: int = 64) -> list:
    """Every T up to ``limit`` whose head layout this implementation can split exactly."""
    kv = config.num_key_value_heads
    dividing = [t for t in range(1, min(kv, limit) + 1) if kv % t == 0]
    return dividing + [t for t in range(kv + 1, limit + 1) if t % kv == 0]


@dataclasses.dataclass(frozen=True)
class TPLayout:
    """Padded slot counts of one config at tensor-parallel degree ``tp``."""

    config: Qwen2Config
    tp: int

    def __post_init__(self):
        cfg, t = self.config, self.tp
        if t < 1 or t not in supported_tp_degrees(cfg, limit=t):
            raise UnsupportedParallelismError(
                f"tensor-parallel degree {t} does not fit {cfg.num_attention_heads} query / "
                f"{cfg.num_key_value_heads} KV heads: it must divide the KV heads or be a multiple "
                f"of them. Supported 'model' axis sizes for this config: "
                f"{supported_tp_degrees(cfg, limit=max(64, t))}")

    # --- attention ---------------------------------------------------------------------
    @property
    def kv_replicas(self) -> int:
        """R: devices sharing one KV head (1 when T <= K)."""
        return max(1, self.tp // self.config.num_key_value_heads)

    @property
    def group_slots(self) -> int:
        """G': query-head slots per KV group after padding."""
        return _round_up(self.config.queries_per_kv, self.kv_replicas)

    @property
    def q_slots(self) -> int:
        return self.config.num_key_value_heads * self.group_slots

    @property
    def kv_slots(self) -> int:
        return self.config.num_key_value_heads * self.kv_replicas

    @property
    def q_per_device(self) -> int:
        return self.q_slots // self.tp

    @property
    def kv_per_device(self) -> int:
        return self.kv_slots // self.tp

    # --- MLP and vocabulary --------------------------------------------------------------
    @property
    def intermediate(self) -> int:
        return _round_up(self.config.intermediate_size, self.tp)

    @property
    def vocab(self) -> int:
        return _round_up(self.config.vocab_size, self.tp)

    def describe(self) -> str:
        c = self.config
        return (f"T={self.tp}: {self.q_per_device} query + {self.kv_per_device} KV heads per device "
                f"({self.q_slots} query slots for {c.num_attention_heads} heads, "
                f"{self.kv_slots} KV slots for {c.num_key_value_heads}), "
                f"vocab {c.vocab_size}->{self.vocab}, intermediate {c.intermediate_size}->{self.intermediate}")

    # --- Hugging Face tensor -> padded tensor-parallel tensor ----------------------------
    def _pad_groups(self, x: np.ndarray, axis: int) -> np.ndarray:
        """x has [..., H * D, ...] on ``axis``; returns [..., q_slots * D, ...] group-padded."""
        c = self.config
        shape = x.shape
        # [..., K, G, D, ...]
        x = x.reshape(shape[:axis] + (c.num_key_value_heads, c.queries_per_kv, c.head_dim) + shape[axis + 1:])
        pad = [(0, 0)] * x.ndim
        pad[axis + 1] = (0, self.group_slots - c.queries_per_kv)
        x = np.pad(x, pad)
        return x.reshape(shape[:axis] + (self.q_slots * c.head_dim,) + shape[axis + 1:])

    def _replicate_kv(self, x: np.ndarray, axis: int) -> np.ndarray:
        """x has [..., K * D, ...] on ``axis``; returns [..., K * R * D, ...]: each head R times."""
        c = self.config
        shape = x.shape
        x = x.reshape(shape[:axis] + (c.num_key_value_heads, c.head_dim) + shape[axis + 1:])
        x = np.repeat(x, self.kv_replicas, axis=axis)  # [..., K * R, D, ...]
        return x.reshape(shape[:axis] + (self.kv_slots * c.head_dim,) + shape[axis + 1:])

    @staticmethod
    def _pad_axis(x: np.ndarray, axis: int, size: int) -> np.ndarray:
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, size - x.shape[axis])
        return np.pad(x, pad)

    def transform_part(self, kind: str, hf: np.ndarray) -> np.ndarray:
        """One Hugging Face tensor (torch [out, in] Linear layout) in its padded TP form."""
        if kind == "q_kernel":      # [H*D, E] -> [E, q_slots*D]
            return self._pad_groups(hf.T, axis=1)
        if kind == "q_bias":        # [H*D] -> [q_slots*D]
            return self._pad_groups(hf, axis=0)
        if kind == "kv_kernel":     # [K*D, E] -> [E, kv_slots*D]
            return self._replicate_kv(hf.T, axis=1)
        if kind == "kv_bias":       # [K*D] -> [kv_slots*D]
            return self._replicate_kv(hf, axis=0)
        if kind == "o_kernel":      # [E, H*D] -> [q_slots*D, E]
            return self._pad_groups(hf.T, axis=0)
        if kind == "up_kernel":     # [I, E] -> [E, I']
            return self._pad_axis(hf.T, 1, self.intermediate)
        if kind == "down_kernel":   # [E, I] -> [I', E]
            return self._pad_axis(hf.T, 0, self.intermediate)
        if kind == "vocab_table":   # [V, E] -> [V', E]
            return self._pad_axis(hf, 0, self.vocab)
        if kind == "lm_head_kernel":  # [V, E] -> [E, V']
            return self._pad_axis(hf.T, 1, self.vocab)
        if kind == "norm":          # [E]
            return hf
        raise KeyError(f"unknown tensor kind {kind!r}")

    def _fuse_columns(self, parts) -> np.ndarray:
        """Concatenate TP tensors along their last (column-parallel) axis device by device:
        parts [..., T*a], [..., T*b], ... -> [..., T*(a+b+...)], where device j's contiguous
        shard is [part0_j | part1_j | ...], so one matrix product per device serves them all."""
        blocks = [p.reshape(p.shape[:-1] + (self.tp, p.shape[-1] // self.tp)) for p in parts]
        fused = np.concatenate(blocks, axis=-1)  # [..., T, a+b+...]
        return fused.reshape(fused.shape[:-2] + (-1,))

    def transform(self, kind: str, *hf: np.ndarray) -> np.ndarray:
        """Map the Hugging Face tensor(s) of one parameter to its TP form.

        ``kind`` is the parameter's role (:data:`FUSED` or a single-tensor kind of
        :meth:`hf_shapes`). Fused kinds take their parts in :data:`FUSED` order.
        """
        parts = FUSED.get(kind, (kind,))
        if len(hf) != len(parts):
            raise ValueError(f"{kind!r} is built from {len(parts)} tensors ({', '.join(parts)}), got {len(hf)}")
        if len(parts) == 1:
            return self.transform_part(kind, hf[0])
        return self._fuse_columns([self.transform_part(p, x) for p, x in zip(parts, hf)])

    VOCAB_KINDS = ("vocab_table", "lm_head_kernel")

    def vocab_block(self, kind: str, hf: np.ndarray, index: tuple) -> np.ndarray:
        """The block ``index`` (slices into the TP shape) of a vocabulary-sharded tensor, read from the
        Hugging Face [V, E] table directly: the padded whole is never built (the two largest tensors
        of a 7B, 1.1 GB each, then cost only their device shards while loading)."""
        v_axis = 0 if kind == "vocab_table" else 1  # TP shapes: [V', E] and [E, V']
        if kind not in self.VOCAB_KINDS:
            raise KeyError(f"{kind!r} is not vocabulary-sharded")
        start, stop, step = index[v_axis].indices(self.vocab)
        if step != 1:
            raise ValueError(f"vocabulary blocks are contiguous, got step {step}")
        real = np.asarray(hf[start:max(start, min(stop, self.config.vocab_size)), index[1 - v_axis]])  # [n, e]
        block = np.zeros((stop - start, real.shape[1]), hf.dtype)
        block[: real.shape[0]] = real  # rows past the true vocabulary stay zero
        return block if v_axis == 0 else np.ascontiguousarray(block.T)

    def shape(self, kind: str) -> tuple:
        """The TP shape of a parameter of ``kind`` (global, before sharding)."""
        c = self.config
        e, d = c.hidden_size, c.head_dim
        return {
            "qkv_kernel": (e, (self.q_slots + 2 * self.kv_slots) * d),
            "qkv_bias": ((self.q_slots + 2 * self.kv_slots) * d,),
            "o_kernel": (self.q_slots * d, e),
            "gate_up_kernel": (e, 2 * self.intermediate),
            "down_kernel": (self.intermediate, e),
            "vocab_table": (self.vocab, e),
            "lm_head_kernel": (e, self.vocab),
            "norm": (e,),
        }[kind]

    @staticmethod
    def hf_shapes(config: Qwen2Config, kind: str) -> tuple:
        """The Hugging Face (torch) shapes of the tensors a parameter of ``kind`` is built from."""
        c = config
        e, d = c.hidden_size, c.head_dim
        single = {
            "q_kernel": (c.num_attention_heads * d, e),
            "q_bias": (c.num_attention_heads * d,),
            "kv_kernel": (c.num_key_value_heads * d, e),
            "kv_bias": (c.num_key_value_heads * d,),
            "o_kernel": (e, c.num_attention_heads * d),
            "up_kernel": (c.intermediate_size, e),
            "down_kernel": (e, c.intermediate_size),
            "vocab_table": (c.vocab_size, e),
            "lm_head_kernel": (c.vocab_size, e),
            "norm": (e,),
        }
        return tuple(single[p] for p in FUSED.get(kind, (kind,)))


# Parameters built from several Hugging Face tensors, fused along their column-parallel axis
# so each device runs one matrix product where the checkpoint has three (q/k/v) or two
# (gate/up): fewer, larger products (about 5 % off a decode step on the CPU).
FUSED = {
    "qkv_kernel": ("q_kernel", "kv_kernel", "kv_kernel"),
    "qkv_bias": ("q_bias", "kv_bias", "kv_bias"),
    "gate_up_kernel": ("up_kernel", "up_kernel"),
}
