"""The suite's fixtures: the parametrized device meshes, partitioners, session-scoped random
checkpoints with their PyTorch references, and the GSM8K splits.

It also brings the suite's pytest plugin (``testing/plugin.py``) wherever the package runs: the
repository's root conftest and ``-p tests.jax.models.qwen2_5.testing.plugin`` register it first;
otherwise (inside tt-xla, run by path or by markers) this conftest registers it, so its options,
markers, platform set-up and properties are there either way.
"""

from __future__ import annotations

import pytest

from .synthetic import random_checkpoint as rc
from .gsm8k.data import GSM8KUnavailable, load_split
from .testing import plugin
from .testing.meshes import MESH_PARAMS, build_mesh
from .testing.parity import left_padded_batch


def pytest_addoption(parser, pluginmanager):
    # Runs before the command line is parsed when pytest finds this conftest at start-up (a path on the
    # command line at or below this folder), and at registration otherwise (options then take defaults).
    if not pluginmanager.is_registered(plugin):
        pluginmanager.register(plugin, plugin.NAME)


@pytest.fixture(params=MESH_PARAMS)
def mesh(request):
    return build_mesh(request.config, request.param)


PARTITIONERS = ("shardy", "gspmd")


@pytest.fixture(params=PARTITIONERS)
def partitioner(request):
    """Run the test under Shardy and under GSPMD (jax_use_shardy_partitioner), as tt-xla does for
    multi-chip tests; programs built inside the test are traced and compiled under that choice."""
    import jax

    previous = jax.config.jax_use_shardy_partitioner
    jax.config.update("jax_use_shardy_partitioner", request.param == "shardy")
    yield request.param
    jax.config.update("jax_use_shardy_partitioner", previous)


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory):
    """``get(name)`` -> (checkpoint_dir, float32 torch model); each geometry built once."""
    built = {}

    def get(name: str):
        if name not in built:
            out = str(tmp_path_factory.mktemp(f"ckpt_{name}"))
            built[name] = rc.build_checkpoint(out, name, seed=list(rc.GEOMETRIES).index(name))
        return built[name]

    return get


@pytest.fixture(scope="session")
def reference_factory(checkpoint_factory):
    """``get(name)`` -> (checkpoint_dir, ids, mask, PyTorch float32 logits) for a padded batch."""
    cache = {}

    def get(name: str):
        if name not in cache:
            path, model = checkpoint_factory(name)
            ids, mask = left_padded_batch(model.config.vocab_size)
            cache[name] = (path, ids, mask, rc.hf_logits(model, ids, mask))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def gsm8k_splits(request):
    """(test, train) GSM8K problems (test_gsm8k.py, test_rehearsal.py); skips without the data."""
    path = request.config.getoption("--gsm8k-path")
    try:
        return load_split("test", path), load_split("train", path)
    except GSM8KUnavailable as e:
        pytest.skip(f"{e}. Pass --gsm8k-path=DIR (or set GSM8K_PATH), e.g. --gsm8k-path=../shared/data/gsm8k")
