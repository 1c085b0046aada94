"""Checkpoint loading: other geometries and storage formats, and every bad-checkpoint error."""

import json
import os
import shutil

import numpy as np
import pytest

from . import CheckpointError, UnsupportedConfigError, UnsupportedParallelismError, load_model, make_mesh
from .synthetic import random_checkpoint as rc
from .testing.options import on_chip
from .testing.parity import f32_rel_tol, logits_report

# Multi-query attention with 5 query heads: every T > 1 pads (T=8: 8 slots, T=32: 32 slots).
MQA = dict(vocab_size=515, hidden_size=40, head_dim=8, intermediate_size=72, num_hidden_layers=2,
           num_attention_heads=5, num_key_value_heads=1, tie_word_embeddings=False)


@pytest.fixture(scope="module")
def mqa_fp16_single_file(tmp_path_factory):
    """One model.safetensors (no index) stored in float16, 4.x-style config.json."""
    out = str(tmp_path_factory.mktemp("mqa"))
    model = rc.random_model(MQA, seed=7).half()
    model.save_pretrained(out)  # small enough for a single file
    rc.to_v4_config(out)
    assert os.path.isfile(os.path.join(out, "model.safetensors"))
    return out, model.float()


@pytest.mark.model_test
def test_mqa_float16_single_file_matches_pytorch(mesh, mqa_fp16_single_file, request):
    path, model = mqa_fp16_single_file
    from .testing.parity import left_padded_batch

    ids, mask = left_padded_batch(MQA["vocab_size"], seed=3)
    ref = rc.hf_logits(model, ids, mask)
    out = np.asarray(load_model(path, mesh).forward(ids, mask))
    report = logits_report(out, ref, mask == 1)
    assert report["rel_diff"] <= f32_rel_tol(on_chip(request.config)) and report["argmax_agreement"] == 1.0, report


@pytest.fixture(scope="module")
def small_ckpt(checkpoint_factory):
    return checkpoint_factory("tied6x2")[0]


def corrupt(small_ckpt, tmp_path, how):
    """A copy of the small checkpoint broken in one way; returns (dir, expected error, match)."""
    d = str(tmp_path / "ckpt")
    shutil.copytree(small_ckpt, d)
    index_path = os.path.join(d, "model.safetensors.index.json")
    with open(index_path) as f:
        weight_map = json.load(f)["weight_map"]
    first_shard = os.path.join(d, weight_map["model.layers.0.mlp.up_proj.weight"])
    if how == "missing_dir":
        return str(tmp_path / "nope"), FileNotFoundError, "does not exist"
    if how == "missing_config":
        os.remove(os.path.join(d, "config.json"))
        return d, FileNotFoundError, "config.json is missing"
    if how == "missing_tensor":
        from safetensors.numpy import load_file, save_file
        tensors = load_file(first_shard)
        tensors.pop("model.layers.0.mlp.up_proj.weight")
        save_file(tensors, first_shard, metadata={"format": "pt"})
        return d, CheckpointError, r"tensor 'model.layers.0.mlp.up_proj.weight' is missing .*model-0000"
    if how == "wrong_shape":
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        cfg["intermediate_size"] += 2
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        return d, CheckpointError, r"model-0000\d-of-0000\d.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape \(130, 88\), expected \(132, 88\)"
    if how == "truncated":
        size = os.path.getsize(first_shard)
        with open(first_shard, "r+b") as f:
            f.truncate(size - 100)
        return d, CheckpointError, "truncated file"
    if how == "garbage":
        with open(first_shard, "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!" + b"\x00" * 64)
        return d, CheckpointError, "unreadable safetensors header"
    if how == "missing_shard":
        os.remove(first_shard)
        return d, CheckpointError, "listed in the index but missing"
    if how == "pickle_only":
        for name in os.listdir(d):
            if name.endswith(".safetensors") or name.endswith(".index.json"):
                os.remove(os.path.join(d, name))
        open(os.path.join(d, "pytorch_model.bin"), "wb").close()
        return d, CheckpointError, r"only pickle weights \(pytorch_model.bin\).*Convert them to safetensors"
    raise ValueError(how)


@pytest.mark.parametrize("how", ["missing_dir", "missing_config", "missing_tensor", "wrong_shape", "truncated",
                                 "garbage", "missing_shard", "pickle_only"])
def test_bad_checkpoint_errors(small_ckpt, tmp_path, how):
    path, error, match = corrupt(small_ckpt, tmp_path, how)
    with pytest.raises(error, match=match):
        load_model(path, make_mesh((1, 1)))


def write_config(tmp_path, **changes):
    d = tmp_path / "cfg"
    d.mkdir()
    raw = rc.hf_config(rc.GEOMETRIES["tied6x2"]).to_dict()
    raw.update(changes)
    raw = {k: v for k, v in raw.items() if v is not None or k in changes}
    (d / "config.json").write_text(json.dumps(raw))
    return str(d)


@pytest.mark.parametrize("changes, match", [
    (dict(model_type="llama"), "model_type is 'llama'"),
    (dict(layer_types=["full_attention", "sliding_attention", "full_attention"], sliding_window=64),
     r"layers \[1\] use 'sliding_attention'"),
    (dict(layer_types=None, use_sliding_window=True, sliding_window=64, max_window_layers=1),
     "use_sliding_window is true"),
    (dict(rope_parameters=None, rope_theta=1e6, rope_scaling={"type": "yarn", "factor": 4.0}), "rope_scaling"),
    (dict(rope_parameters={"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0}), "RoPE scaling"),
    (dict(hidden_act="gelu"), "hidden_act 'gelu'"),
])
def test_unsupported_config_fails_clearly(tmp_path, changes, match):
    with pytest.raises(UnsupportedConfigError, match=match):
        load_model(write_config(tmp_path, **changes), make_mesh((1, 1)))


def test_unsupported_tp_fails_before_reading_weights(tmp_path):
    """6 query / 3 KV heads cannot split 8 ways; the error lists T values and no weight is read."""
    import jax
    if len(jax.devices()) < 8:
        pytest.skip(f"needs 8 devices; the platform has {len(jax.devices())}")
    path = write_config(tmp_path, num_key_value_heads=3)  # no weight files at all
    with pytest.raises(UnsupportedParallelismError, match=r"Supported 'model' axis sizes for this config: \[1, 3, 6, 9"):
        load_model(path, make_mesh((1, 8)))


def test_bad_dtype_and_mesh():
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_model("unused", make_mesh((1, 1)), dtype="float16")
    with pytest.raises(ValueError, match="mesh 64x64 needs 4096 devices"):
        make_mesh((64, 64))


def test_forward_rejects_bad_input(small_ckpt):
    model = load_model(small_ckpt, make_mesh((1, 1)))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.forward(np.array([[1, 777]]))
    with pytest.raises(ValueError, match="empty"):
        model.forward(np.zeros((0, 4), dtype=np.int32))
    with pytest.raises(ValueError, match="attention_mask shape"):
        model.forward(np.ones((2, 3), dtype=np.int32), np.ones((2, 4), dtype=np.int32))
