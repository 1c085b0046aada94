"""What every program checks and derives from a batch before it runs: validated ids and mask, and
Hugging Face ``generate``'s position ids. Shared by the loaded model and generation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .config import Qwen2Config


def positions_from_mask(mask: jax.Array) -> jax.Array:
    """Hugging Face ``generate``'s position ids for left padding: cumsum(mask) - 1, pads at 0."""
    return jnp.maximum(jnp.cumsum(mask, axis=-1, dtype=jnp.int32) - 1, np.int32(0))


def check_batch(config: Qwen2Config, input_ids, attention_mask=None):
    """Validated int32 numpy (ids, mask), both [batch, seq]. Mask defaults to all ones."""
    ids = np.asarray(input_ids)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, seq], got shape {ids.shape}")
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"input_ids is empty (shape {ids.shape}); give at least one token in one row")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"input_ids must be integers, got {ids.dtype}")
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask)
    if mask.shape != ids.shape:
        raise ValueError(f"attention_mask shape {mask.shape} differs from input_ids shape {ids.shape}")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
    real = ids[mask == 1]
    if real.size and (real.min() < 0 or real.max() >= config.vocab_size):
        raise ValueError(f"input_ids hold ids outside the vocabulary [0, {config.vocab_size}): "
                         f"min {real.min()}, max {real.max()}")
    ids = np.where(mask == 1, ids, 0)  # pad ids are never looked up meaningfully; keep them in range
    return ids.astype(np.int32), mask.astype(np.int32)
