"""The real Qwen2.5-7B geometry (hidden 3584, 28/4 heads, head_dim 128, MLP 18944), 2 layers and a
reduced vocabulary, against PyTorch on the padded meshes. Select with ``-m large``; about 5 GiB."""

import gc

import numpy as np
import pytest

from . import load_model
from .synthetic import random_checkpoint as rc
from .testing.meshes import build_mesh, mesh_name
from .testing.parity import left_padded_batch
from .testing.reports import record_model
from .testing.options import on_chip
from .testing.parity import f32_rel_tol, logits_report

pytestmark = [pytest.mark.large, pytest.mark.model_test, pytest.mark.tensor_parallel, pytest.mark.nightly]


@pytest.fixture(scope="module")
def geometry_7b(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("qwen2_5_7b_2layers"))
    path, model = rc.build_checkpoint(out, "qwen2_5_7b_2layers", seed=11)
    ids, mask = left_padded_batch(model.config.vocab_size, batch=2, seq=7, seed=5)
    ref = rc.hf_logits(model, ids, mask)
    del model
    gc.collect()
    return path, ids, mask, ref


@pytest.mark.parametrize("shape", [pytest.param((1, 8), id="mesh_1x8", marks=pytest.mark.llmbox),
                                   pytest.param((1, 32), id="mesh_1x32", marks=pytest.mark.galaxy)])
def test_qwen2_5_7b_geometry_logits(request, shape, geometry_7b):
    path, ids, mask, ref = geometry_7b
    mesh = build_mesh(request.config, shape)
    model = load_model(path, mesh, dtype="float32")
    out = np.asarray(model.forward(ids, mask))
    report = logits_report(out, ref, mask == 1)
    record_model(request.node, "7b-geometry-2layers", mesh, report)
    print(f"\n7B geometry mesh_{mesh_name(mesh)}: {report}")
    del model
    gc.collect()
    assert report["rel_diff"] <= f32_rel_tol(on_chip(request.config)) and report["argmax_agreement"] == 1.0, report
