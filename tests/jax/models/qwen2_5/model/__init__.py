"""The model a user imports: config, tensor-parallel layout, the Flax shard, partition rules and
mesh, weight loading, the loaded model object, generation and the weight marks.

May import: jax, flax, numpy, ml_dtypes and the standard library; nothing else of the package
(no other sub-package, no torch, no transformers).

Public names: ``load_model``, ``Qwen2TP``, ``make_mesh``, ``PARTITION_RULES``, ``Qwen2Config``,
``TPLayout``, ``supported_tp_degrees`` and the errors ``CheckpointError``,
``UnsupportedConfigError``, ``UnsupportedParallelismError``.
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
