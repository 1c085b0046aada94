"""tt-xla's harness turns ``jax_enable_x64`` on for the whole session. It must change no result: no
value of ours may widen to 64 bits (a Python int in an index, a literal float in a table); what JAX
itself does in 64 bits under x64 (gather and loop-counter index arithmetic) changes no value."""

import re

import jax
import numpy as np
import pytest

from . import load_model
from .model import make_mesh
from .synthetic.random_checkpoint import geometry_config
from .tenstorrent.compile.programs import PROGRAMS, abstract_model, lower
from .testing.parity import left_padded_batch

pytestmark = pytest.mark.cpu


class x64:
    """``jax_enable_x64`` on (or off) inside the block, as tt-xla's harness sets it."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        self.previous = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", self.on)

    def __exit__(self, *exc):
        jax.config.update("jax_enable_x64", self.previous)


def _mesh(shape):
    return make_mesh(shape, devices=jax.devices("cpu")[: shape[0] * shape[1]])


def _signature(text):
    return re.search(r"func\.func public @main\((.*)", text).group(1)


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("shape", [(1, 1), (2, 4)], ids=["mesh_1x1", "mesh_2x4"])
def test_programs_keep_their_types_under_x64(shape, program):
    """No float64 anywhere, and the same argument and result types."""
    dtype = "float32" if program == "forward" else "bfloat16"
    texts = {}
    for on in (False, True):
        with x64(on):
            texts[on] = lower(abstract_model(geometry_config("gqa28x4"), _mesh(shape), dtype), program,
                              batch=8, prompt=16, new_tokens=32).as_text()
    assert "f64" not in texts[True], f"{program} computes in float64 under x64"
    assert _signature(texts[True]) == _signature(texts[False]), f"{program}'s inputs or outputs change under x64"


@pytest.mark.parametrize("shape", [(1, 1), (2, 4)], ids=["mesh_1x1", "mesh_2x4"])
def test_results_are_the_same_under_x64(checkpoint_factory, shape):
    path, torch_model = checkpoint_factory("gqa28x4")
    ids, mask = left_padded_batch(torch_model.config.vocab_size, batch=4, seq=9, seed=7)
    out = {}
    for on in (False, True):
        with x64(on):
            model = load_model(path, _mesh(shape), dtype="bfloat16")
            out[on] = (np.asarray(model.forward(ids, mask)),
                       model.generate(ids, mask, max_new_tokens=6, loop="device"),
                       model.generate(ids, mask, max_new_tokens=6, loop="host"))
            model.release()
    for name, a, b in zip(("forward logits", "device-loop tokens", "host-loop tokens"), out[False], out[True]):
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{name} differ under x64"
