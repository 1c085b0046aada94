"""The suite's meshes: the five parametrized shapes with tt-xla's marks, and building one on the
session's platform (a test whose mesh needs more devices than the platform has skips, saying so)."""

from __future__ import annotations

import pytest

from ..cli.devices import mesh_text
from ..model.partitioning import make_mesh

_m = pytest.mark
# Mesh ids select meshes (`pytest -k mesh_2x4`); marks follow tt-xla's conventions.
MESH_PARAMS = [
    pytest.param((1, 1), id="mesh_1x1", marks=[_m.single_device, _m.push]),
    pytest.param((1, 8), id="mesh_1x8", marks=[_m.tensor_parallel, _m.llmbox, _m.push]),
    pytest.param((2, 4), id="mesh_2x4", marks=[_m.tensor_parallel, _m.llmbox, _m.push]),
    pytest.param((1, 32), id="mesh_1x32", marks=[_m.tensor_parallel, _m.galaxy, _m.nightly]),
    pytest.param((8, 4), id="mesh_8x4", marks=[_m.tensor_parallel, _m.galaxy, _m.nightly]),
]


def mesh_name(mesh) -> str:
    return mesh_text(mesh.devices.shape)


def build_mesh(config, shape):
    """The mesh for ``shape`` on the session's platform; skips when devices are short."""
    import jax

    platform = config.qwen_platform  # set by the plugin's pytest_configure
    # On TT the single-device reference runs on the CPU; the emulated platform's meshes are CPU devices.
    where = "cpu" if (platform == "tt" and shape == (1, 1)) or platform == "tt-emulated" else platform
    devices = jax.devices(where)
    need = shape[0] * shape[1]
    if len(devices) < need:
        pytest.skip(f"mesh_{shape[0]}x{shape[1]} needs {need} devices; the {where} platform has {len(devices)}")
    return make_mesh(shape, devices=devices)
