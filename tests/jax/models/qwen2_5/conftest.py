"""Model fixtures: the parametrized device meshes and session-scoped random checkpoints."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

from . import load_model
from . import random_checkpoint as rc
from .gsm8k.data import GSM8KUnavailable, load_split
from .gsm8k.evaluate import Settings, evaluate, summary_line, write_report
from .partitioning import make_mesh
from .plugin import write_perf_report
from .properties import set_measured

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
    return "x".join(str(n) for n in mesh.devices.shape)


def record_model(node, checkpoint: str, mesh, report: dict = None, **extra) -> None:
    """The test's junit properties beyond tt-xla's tags: checkpoint, mesh and extras; a measured
    logits report's pcc and atol go into the tags (``properties.set_measured``)."""
    node.user_properties.append(("checkpoint", checkpoint))
    node.user_properties.append(("mesh", mesh_name(mesh)))
    if report is not None:
        set_measured(node, report["pcc"], report["atol"])
        write_perf_report(node.config, node.nodeid, {"pcc": report["pcc"], "atol": report["atol"],
                                                     "checkpoint": checkpoint, "mesh": mesh_name(mesh)})
    for key, value in extra.items():
        node.user_properties.append((key, value))


def build_mesh(config, shape):
    """The mesh for ``shape`` on the session's platform; skips when devices are short."""
    platform = config.qwen_platform
    # On TT the single-device reference runs on the CPU.
    where = "cpu" if (platform == "tt" and shape == (1, 1)) else platform
    devices = jax.devices(where)
    need = shape[0] * shape[1]
    if len(devices) < need:
        pytest.skip(f"mesh_{shape[0]}x{shape[1]} needs {need} devices; the {where} platform has {len(devices)}")
    return make_mesh(shape, devices=devices)


@pytest.fixture(params=MESH_PARAMS)
def mesh(request):
    return build_mesh(request.config, request.param)


PARTITIONERS = ("shardy", "gspmd")


@pytest.fixture(params=PARTITIONERS)
def partitioner(request):
    """Run the test under Shardy and under GSPMD (jax_use_shardy_partitioner), as tt-xla does for
    multi-chip tests; programs built inside the test are traced and compiled under that choice."""
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


def left_padded_batch(vocab: int, batch: int = 8, seq: int = 10, seed: int = 0):
    """Random ids with a different amount of left padding per row (row 0 unpadded)."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, vocab, size=(batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), dtype=np.int32)
    for row in range(1, batch):
        mask[row, : (row * 3) % (seq - 1)] = 0
    ids[mask == 0] = 0
    return ids, mask


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


# --- GSM8K (test_gsm8k.py, test_rehearsal.py) ---------------------------------------------------

@pytest.fixture(scope="session")
def gsm8k_splits(request):
    path = request.config.getoption("--gsm8k-path")
    try:
        return load_split("test", path), load_split("train", path)
    except GSM8KUnavailable as e:
        pytest.skip(f"{e}. Pass --gsm8k-path=DIR (or set GSM8K_PATH), e.g. --gsm8k-path=../shared/data/gsm8k")


def run_gsm8k(request, mesh, path, tokenizer, problems, train, protocol, dtype, cache_dir, label,
              max_new_tokens=None):
    """Evaluate on ``mesh`` with the PyTorch reference; writes the JSON report and records properties."""
    cfg = request.config
    settings = Settings(protocol, max_new_tokens or cfg.getoption("--gsm8k-max-new-tokens"),
                        cfg.getoption("--gsm8k-batch-size"), dtype)
    model = load_model(path, mesh, dtype=dtype)
    report = evaluate(model, path, tokenizer, problems, settings, train, reference=True, cache_dir=cache_dir,
                      rerun_reference=cfg.getoption("--gsm8k-rerun-reference"), mesh=mesh_name(mesh))
    report["label"] = label
    report_dir = cfg.getoption("--gsm8k-report-dir")
    if not os.path.isabs(report_dir):
        report_dir = os.path.join(str(cfg.rootpath), report_dir)
    out = os.path.join(report_dir, f"gsm8k-{label}-{protocol.name}-{dtype}-mesh_{mesh_name(mesh)}.json")
    write_report(report, out)
    print("\n" + summary_line(report))
    write_perf_report(cfg, request.node.nodeid, {"gsm8k_tokens_per_second": report["tokens_per_second"],
                                                 "gsm8k_accuracy": report["accuracy"], "mesh": mesh_name(mesh)})
    record_model(request.node, f"{label}-gsm8k", mesh,
                 gsm8k_accuracy=report["accuracy"], gsm8k_reference_accuracy=report["reference"]["accuracy"],
                 gsm8k_agreement=report["reference"]["answer_agreement"], report_path=out)
    return report
