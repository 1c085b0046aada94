"""Every program the public API compiles, lowered from abstract inputs (nothing allocated).

``load_model`` + ``forward`` + ``generate`` build five kinds of XLA program; this module
lowers each for a config, a mesh and a dtype without reading or allocating a weight, so a
compiler can be checked on the full Qwen2.5-7B geometry on a machine without its memory
(``tt_compile.py`` compiles them for Tenstorrent chips):

* ``forward``: ``model.forward`` (logits for a batch);
* ``prefill``: the first program of ``generate(loop="host")``;
* ``decode_step``: its per-token program (cache and key mask donated);
* ``generate_loop``: ``generate(loop="device")``, prefill and a ``while`` loop in one program;
* ``forced_decode``: the teacher-forced cached decode the parity tests run.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ...model import generation as gen
from ...model.causal_lm import Qwen2TP
from ...model.config import Qwen2Config
from ...model.layout import TPLayout
from ...model.partitioning import batch_axis_for, model_size, named, partition_specs
from ...model.weights import param_shapes

PROGRAMS = ("forward", "prefill", "decode_step", "generate_loop", "forced_decode")


def abstract_model(config: Qwen2Config, mesh, dtype: str = "bfloat16", compiler_options=None,
                   attention=None) -> Qwen2TP:
    """A ``Qwen2TP`` whose parameters are sharded ``ShapeDtypeStruct``s: it lowers and compiles
    every program, and runs none. ``compiler_options``: tt-mlir's, which choose the attention's formulation
    (``Qwen2TP.default_attention``) unless ``attention`` names one."""
    shapes = param_shapes(config, TPLayout(config, model_size(mesh)), dtype)
    params = jax.tree.map(lambda s, spec: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=named(mesh, spec)),
                          shapes, partition_specs(shapes))
    return Qwen2TP(config, mesh, params, dtype, compiler_options=compiler_options, attention=attention)


def _ints(shape, mesh=None, spec=None):
    sharding = None if mesh is None else named(mesh, spec)
    return jax.ShapeDtypeStruct(shape, jnp.int32, sharding=sharding)


def lower(model: Qwen2TP, program: str, batch: int = 8, prompt: int = 32, new_tokens: int = 32,
          platform: str = None):
    """``jax.stages.Lowered`` of ``program`` for a batch of ``prompt``-token prompts (a bucket
    length) and ``new_tokens`` generated tokens; for ``platform`` (e.g. ``tt`` on a machine without its plugin)
    instead of the mesh's."""
    if program not in PROGRAMS:
        raise ValueError(f"program must be one of {PROGRAMS}, got {program!r}")
    if gen.prompt_bucket(prompt) != prompt:
        raise ValueError(f"prompt length {prompt} is not a bucket length (next: {gen.prompt_bucket(prompt)})")
    axis = batch_axis_for(model.mesh, batch)
    ids = _ints((batch, prompt))
    cache_len = gen.cache_length(prompt, new_tokens)
    if program == "forward":
        return _lowered(model._forward_fn(axis), platform, model.params, ids, ids)
    if program == "prefill":
        return _lowered(gen._prefill_program(model, axis, cache_len), platform, model.params, ids, ids)
    if program == "decode_step":
        return decode_step(model, batch, cache_len, platform)
    if program == "generate_loop":
        scalar = _ints(())
        eos = _ints((gen.MAX_EOS_IDS,))
        return _lowered(gen._generate_program(model, axis, cache_len), platform, model.params, ids, ids, scalar, eos,
                        scalar)
    forced = _ints((batch, new_tokens - 1))
    return _lowered(gen._forced_program(model, axis, cache_len), platform, model.params, ids, ids, forced)


def _lowered(jitted, platform, *args):
    if platform is None:
        return jitted.lower(*args)
    with warnings.catch_warnings():  # JAX lowers no donation for "tt", as for a device
        warnings.filterwarnings("ignore", "Some donated buffers were not usable")
        return jitted.trace(*args).lower(lowering_platforms=(platform,))


def decode_step(model: Qwen2TP, batch: int, cache_len: int, platform: str = None):
    """The decode-step program of ``generate(loop="host")``, lowered (for ``platform`` instead of the mesh's)."""
    axis = batch_axis_for(model.mesh, batch)
    lay, c = model.layout, model.config
    cache = jax.ShapeDtypeStruct((batch, lay.kv_slots, cache_len, c.head_dim), model.module.dtype)
    vec = _ints((batch,))
    return _lowered(gen._step_program(model, axis, cache_len), platform, model.params,
                    [(cache, cache)] * c.num_hidden_layers, jax.ShapeDtypeStruct((batch, cache_len), np.bool_),
                    vec, vec, _ints(()))
