"""Tensor-parallel JAX/Flax Qwen2.5 (any Qwen2-family checkpoint) for tt-xla.

Public API::

    from tests.jax.models.qwen2_5 import make_mesh, load_model
    mesh = make_mesh((2, 4))                       # axes ("batch", "model")
    model = load_model(checkpoint_dir, mesh, dtype="float32")
    logits = model.forward(input_ids, attention_mask)
    tokens = model.generate(input_ids, attention_mask, max_new_tokens)
"""

from .causal_lm import Qwen2TP, load_model
from .config import Qwen2Config, UnsupportedConfigError
from .layout import TPLayout, UnsupportedParallelismError, supported_tp_degrees
from .partitioning import PARTITION_RULES, make_mesh
from .weights import CheckpointError

__all__ = [
    "CheckpointError", "PARTITION_RULES", "Qwen2Config", "Qwen2TP", "TPLayout",
    "UnsupportedConfigError", "UnsupportedParallelismError", "load_model", "make_mesh",
    "supported_tp_degrees",
]
