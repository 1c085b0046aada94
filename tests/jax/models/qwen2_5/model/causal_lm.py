"""The loaded, sharded model: ``load_model`` and the object it returns."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from .config import Qwen2Config
from .generation import generate
from .inputs import check_batch, positions_from_mask
from .layout import TPLayout
from .shard import MODEL_AXIS, Qwen2Shard
from .partitioning import batch_axis_for, model_size, partition_specs, shard_map
from .weight_marks import mark_weights
from .weights import DTYPES, load_params


class Qwen2TP:
    """A Qwen2 causal LM sharded over a ("batch", "model") mesh.

    ``forward`` and ``generate`` are the public entry points; ``params`` is the sharded
    parameter pytree in the padded tensor-parallel layout.
    """

    def __init__(self, config: Qwen2Config, mesh, params, dtype: str = "float32",
                 max_cache_length: Optional[int] = None, compiler_options: Optional[dict] = None,
                 programs=None, attention: Optional[str] = None):
        self.config = config
        self.compiler_options = compiler_options
        # None: every program is jax.jit on the mesh's devices; else a program backend that stands in for the
        # devices (the emulated Tenstorrent platform: tenstorrent/emulated/), with ``platform`` and
        # ``jit(model, fn, name, donate_argnums)``.
        self.programs = programs
        self.max_cache_length = cache_limit(config, max_cache_length)
        self.mesh = mesh
        self.dtype = dtype
        self.layout = TPLayout(config, model_size(mesh))
        self.attention = self.default_attention() if attention is None else check_attention(attention)
        self.module = Qwen2Shard(config, self.layout, jnp.dtype(DTYPES[dtype]), fused=self.attention == "fused")
        self.params = params
        self.param_specs = partition_specs(params)
        self._forward_fns = {}

    @property
    def platform(self) -> str:
        """Where the programs run: the mesh's platform (``tt``, ``cpu``) or the program backend's
        (``tt-emulated``)."""
        return self.programs.platform if self.programs is not None else self.mesh.devices.flat[0].platform

    def default_attention(self) -> str:
        """The formulation ``choose_attention`` gives this model's platform, dtype and tt-mlir options."""
        return choose_attention(self.platform, self.dtype, self.tt_compiler_options())

    def tt_compiler_options(self) -> dict:
        """tt-mlir's compile options for every program: this model's, else ``TT_COMPILER_OPTIONS``."""
        options = self.compiler_options if self.compiler_options is not None else TT_COMPILER_OPTIONS
        return dict(options or {})

    def jit_options(self) -> dict:
        """``jax.jit`` keywords of every program: tt-mlir's compile options on Tenstorrent devices; none
        elsewhere (XLA:CPU rejects them; a program backend passes them to its own compiler)."""
        if self.programs is not None or self.mesh.devices.flat[0].platform != "tt":
            return {}
        options = self.tt_compiler_options()
        return {"compiler_options": options} if options else {}

    def jit(self, fn, name: str, donate_argnums=()):
        """Every program of the model is built here: ``jax.jit`` on the mesh's devices, or the program
        backend's stand-in (called like it, with ``.lower``)."""
        if self.programs is not None:
            return self.programs.jit(self, fn, name, donate_argnums=donate_argnums)
        return jax.jit(fn, donate_argnums=donate_argnums, **self.jit_options())

    # --- forward ---------------------------------------------------------------------------
    def _forward_fn(self, batch_axis):
        if batch_axis not in self._forward_fns:
            row = P(batch_axis, None)

            def shard_fn(params, ids, mask):
                positions = positions_from_mask(mask)
                s = ids.shape[1]
                causal = jnp.arange(s, dtype=jnp.int32)[None, :] <= jnp.arange(s, dtype=jnp.int32)[:, None]  # [s, t]
                allowed = causal[None, :, :] & (mask[:, None, :] == 1)  # [b, s, t]
                logits, _ = self.module.apply({"params": params}, ids, positions, allowed)
                return logits

            sharded = shard_map(shard_fn, self.mesh, in_specs=(self.param_specs, row, row),
                                out_specs=P(batch_axis, None, MODEL_AXIS))
            vocab = self.config.vocab_size
            self._forward_fns[batch_axis] = self.jit(lambda p, i, m: sharded(mark_weights(p), i, m)[..., :vocab],
                                                     "forward")
        return self._forward_fns[batch_axis]

    def forward(self, input_ids, attention_mask=None) -> jax.Array:
        """Logits [batch, seq, vocab] float32 for int ids and a 1/0 left-padding mask."""
        ids, mask = check_batch(self.config, input_ids, attention_mask)
        fn = self._forward_fn(batch_axis_for(self.mesh, ids.shape[0]))
        return fn(self.params, ids, mask)

    __call__ = forward

    def release(self) -> None:
        """Free the parameters' device buffers and the compiled programs; the model is unusable after.
        (A 7B model on host devices leaves room for the PyTorch reference only once released.)"""
        for leaf in jax.tree.leaves(self.params):
            if isinstance(leaf, jax.Array):
                leaf.delete()
        self.params = None
        self._forward_fns.clear()
        self.__dict__.pop("_generation_programs", None)

    def generate(self, input_ids, attention_mask=None, max_new_tokens: int = 32,
                 eos_token_id=None, loop: Optional[str] = None) -> np.ndarray:
        """Greedy tokens [batch, max_new_tokens] int32 (see ``generation.py``)."""
        return generate(self, input_ids, attention_mask, max_new_tokens, eos_token_id, loop)


DEFAULT_MAX_CACHE_LENGTH = 4096
# The attention's formulations (shard.Qwen2Shard): "plain" (batched products and a softmax: XLA:CPU, and tt-mlir at
# level 0) and "fused" (the forms tt-mlir fuses into tt-metal's SDPA and RoPE kernels at level >= 1: fused.py).
ATTENTIONS = ("plain", "fused")
# Platforms whose programs tt-mlir compiles: Tenstorrent devices and the emulated platform.
TT_MLIR_PLATFORMS = ("tt", "tt-emulated")


def choose_attention(platform: str, dtype: str, compiler_options: Optional[dict]) -> str:
    """``fused`` for a bfloat16 model whose programs tt-mlir compiles at optimization level >= 1 (where it keeps
    the fused kernels; at level 0 it decomposes them, and the plain formulation takes fewer ops), else ``plain``
    (the kernels compute in bfloat16: tt-mlir casts a float32 model's operands down)."""
    if platform not in TT_MLIR_PLATFORMS or dtype != "bfloat16":
        return "plain"
    level = str(dict(compiler_options or {}).get("optimization_level", "0"))
    return "fused" if level not in ("0", "") else "plain"


def check_attention(attention: str) -> str:
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
    return attention
# tt-mlir compile options for every model on Tenstorrent devices that names none of its own (the suite sets
# them from --tt-optimization-level, --tt-weight-dtype, --tt-math-fidelity): optimization_level,
# experimental_weight_dtype, math_fidelity, ...
TT_COMPILER_OPTIONS: dict = {}
# A program backend for every model loaded without one (``mesh -> backend or None``): the suite sets it on its
# tt-emulated platform, so that the tests' ``load_model`` calls run there unchanged.
DEFAULT_PROGRAMS = None


def cache_limit(config: Qwen2Config, requested: Optional[int]) -> int:
    limit = min(DEFAULT_MAX_CACHE_LENGTH, config.max_position_embeddings) if requested is None else int(requested)
    if not 1 <= limit <= config.max_position_embeddings:
        raise ValueError(f"max_cache_length must be in [1, {config.max_position_embeddings}] "
                         f"(max_position_embeddings), got {requested}")
    return limit


def load_model(checkpoint_dir: str, mesh, dtype: str = "float32", max_cache_length: Optional[int] = None,
               compiler_options: Optional[dict] = None, programs=None, attention: Optional[str] = None) -> Qwen2TP:
    """Load a Hugging Face Qwen2-family checkpoint sharded over ``mesh``.

    The config and the mesh's "model" size are checked before any weight is read.
    ``max_cache_length`` bounds prompt + generated tokens in ``generate`` (default
    min(4096, max_position_embeddings)). ``compiler_options``: tt-mlir's compile options for every
    program on Tenstorrent devices (e.g. ``{"optimization_level": "1", "experimental_weight_dtype":
    "bfp_bf8"}``; default ``TT_COMPILER_OPTIONS``), ignored elsewhere. ``programs``: a program backend in
    place of ``jax.jit`` on the mesh's devices (default ``DEFAULT_PROGRAMS(mesh)`` when that is set): the
    package's ``load_model(..., tt_target=...)`` passes the emulated Tenstorrent platform's. ``attention``:
    ``plain`` or ``fused`` (``ATTENTIONS``); default ``fused`` for a bfloat16 model whose programs tt-mlir compiles
    at optimization level >= 1, else ``plain``.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if attention is not None:
        check_attention(attention)
    config = Qwen2Config.from_checkpoint(checkpoint_dir)
    cache_limit(config, max_cache_length)
    layout = TPLayout(config, model_size(mesh))  # raises with the supported T values
    params = load_params(checkpoint_dir, config, layout, mesh, dtype)
    if programs is None and DEFAULT_PROGRAMS is not None:
        programs = DEFAULT_PROGRAMS(mesh)
    return Qwen2TP(config, mesh, params, dtype, max_cache_length, compiler_options, programs, attention)
