"""Logits parity with the Hugging Face PyTorch model on every mesh, float32 and bfloat16."""

import numpy as np
import pytest

from . import load_model
from .testing.compile_count import count_compiles
from .testing.meshes import mesh_name
from .testing.reports import record_model
from .testing.options import on_chip
from .testing.parity import F32_REL_TOL, assert_logits_parity, logits_report

GEOMETRIES = ["gqa28x4", "tied6x2"]


@pytest.mark.model_test
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_logits_parity(mesh, geometry, dtype, partitioner, reference_factory, request):
    path, ids, mask, ref = reference_factory(geometry)
    model = load_model(path, mesh, dtype=dtype)
    out = np.asarray(model.forward(ids, mask))
    assert out.shape == ref.shape and out.dtype == np.float32

    report = logits_report(out, ref, mask == 1)
    record_model(request.node, f"random-{geometry}", mesh, report, dtype=dtype, partitioner=partitioner)
    print(f"\n{geometry} {dtype} mesh_{mesh_name(mesh)} {partitioner}: {report}")
    assert_logits_parity(report, dtype, on_chip(request.config))


@pytest.mark.model_test
def test_forward_does_not_recompile(mesh, reference_factory):
    path, ids, mask, _ = reference_factory("gqa28x4")
    model = load_model(path, mesh)
    first = np.asarray(model.forward(ids, mask))
    with count_compiles() as compiles:
        again = np.asarray(model.forward(ids[::-1].copy(), mask[::-1].copy()))
    assert compiles() == 0
    # Same rows in the other order: equal up to float rounding (a row's position in the batch
    # can change the matrix-product tiling), and far from the stale, unreversed result.
    atol = F32_REL_TOL * np.abs(first).max()
    np.testing.assert_allclose(again[::-1], first, rtol=0, atol=atol)
    assert np.abs(again - first).max() > 100 * atol
