"""Partition rules, the padded head layout, and per-device parameter bytes."""

import jax
import numpy as np
import pytest

from . import PARTITION_RULES, Qwen2Config, TPLayout, UnsupportedParallelismError, make_mesh
from .model.partitioning import UnmatchedParameterError, match_rule, partition_specs
from .synthetic.random_checkpoint import GEOMETRIES
from .model.weights import hf_tensors, param_shapes

# config.json of the published Qwen/Qwen2.5-7B (transformers 4.x style).
QWEN2_5_7B = {
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
    "intermediate_size": 18944, "max_position_embeddings": 131072, "max_window_layers": 28,
    "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": True,
    "use_sliding_window": False, "vocab_size": 152064,
}

pytestmark = pytest.mark.cpu  # host-side checks: shapes and specs, nothing is allocated

# The rule each parameter role must land on (written independently of the regexes).
INTENDED_RULE = {
    "qkv_kernel": "qkv_kernel", "qkv_bias": "qkv_bias", "o_kernel": "o_kernel", "gate_up_kernel": "gate_up_kernel",
    "down_kernel": "down_kernel", "norm": "norm", "vocab_table": "embedding", "lm_head_kernel": "lm_head",
}


def small_config(name):
    geo = {k: v for k, v in GEOMETRIES[name].items() if k != "config_style"}
    return Qwen2Config.from_dict({"model_type": "qwen2", **geo})


@pytest.mark.parametrize("name", ["gqa28x4", "tied6x2", "qwen2_5_7b"])
def test_every_parameter_matches_its_intended_rule(name):
    config = Qwen2Config.from_dict(QWEN2_5_7B) if name == "qwen2_5_7b" else small_config(name)
    seen = set()
    for path, kind, _ in hf_tensors(config):
        rule, _ = match_rule(path)  # raises when zero or several rules match
        intended = INTENDED_RULE[kind]
        assert rule == intended, (path, rule, intended)
        seen.add(rule)
    expected_rules = {r[0] for r in PARTITION_RULES} - ({"lm_head"} if config.tie_word_embeddings else set())
    assert seen == expected_rules  # no dead rule
    specs = partition_specs(param_shapes(config, TPLayout(config, 1)))
    assert len(jax.tree_util.tree_leaves(specs, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))) \
        == len(list(hf_tensors(config)))


@pytest.mark.parametrize("path", ["layers_0/self_attn/rotary_emb/inv_freq", "model/embed_tokens/embedding",
                                  "layers_0/mlp/gate_up_proj/bias", "layers_0/self_attn/q_proj/kernel",
                                  "lm_head/bias"])
def test_unmatched_parameter_raises(path):
    with pytest.raises(UnmatchedParameterError, match="no partition rule matches"):
        match_rule(path)


@pytest.mark.parametrize("tp, q, kv, q_slots, kv_slots", [
    (1, 28, 4, 28, 4), (2, 14, 2, 28, 4), (4, 7, 1, 28, 4), (8, 4, 1, 32, 8), (32, 1, 1, 32, 32)])
def test_qwen2_5_7b_head_layout(tp, q, kv, q_slots, kv_slots):
    lay = TPLayout(Qwen2Config.from_dict(QWEN2_5_7B), tp)
    assert (lay.q_per_device, lay.kv_per_device, lay.q_slots, lay.kv_slots) == (q, kv, q_slots, kv_slots)


@pytest.mark.parametrize("tp", [3, 5, 6, 7, 14, 30])
def test_unsupported_tp_degree_lists_the_supported_ones(tp):
    with pytest.raises(UnsupportedParallelismError, match=r"Supported 'model' axis sizes for this config: \[1, 2, 4, 8, 12, 16"):
        TPLayout(Qwen2Config.from_dict(QWEN2_5_7B), tp)


def test_padding_is_zero_and_kv_heads_are_copied():
    """At T=8 each group of 7 query heads gets one zero head; each KV head is held twice."""
    cfg = Qwen2Config.from_dict(dict(QWEN2_5_7B, hidden_size=8, head_dim=2))
    lay = TPLayout(cfg, 8)
    d, e = 2, 8
    rng = np.random.RandomState(0)
    q = rng.randn(28 * d, e).astype(np.float32)
    tq = lay.transform_part("q_kernel", q).reshape(e, 4, 8, d)  # [e, k, g', d]
    np.testing.assert_array_equal(tq[:, :, 7], 0)
    np.testing.assert_array_equal(tq[:, :, :7], q.T.reshape(e, 4, 7, d))
    o = rng.randn(e, 28 * d).astype(np.float32)
    to = lay.transform("o_kernel", o).reshape(4, 8, d, e)
    np.testing.assert_array_equal(to[:, 7], 0)
    kv = rng.randn(4 * d, e).astype(np.float32)
    tkv = lay.transform_part("kv_kernel", kv).reshape(e, 8, d)  # device j holds KV head j // 2
    for j in range(8):
        np.testing.assert_array_equal(tkv[:, j], kv.T.reshape(e, 4, d)[:, j // 2])
    # device j's query slots [4j, 4j+4) all read KV slot j: slot i's group is i // 8 == j // 2
    assert all((i // lay.q_per_device) // lay.kv_replicas == i // lay.group_slots for i in range(lay.q_slots))


@pytest.mark.parametrize("tp", [1, 2, 8])
def test_fused_projections_give_each_device_its_own_blocks(tp):
    """Device j's shard of the fused q|k|v (gate|up) parameter is its q, k and v (gate, up) shards
    side by side, in that order, so slicing the one product per device recovers each part."""
    cfg = Qwen2Config.from_dict(dict(QWEN2_5_7B, hidden_size=8, head_dim=2, intermediate_size=20))
    lay = TPLayout(cfg, tp)
    rng = np.random.RandomState(1)
    for kind, parts in (("qkv_kernel", ("q_kernel", "kv_kernel", "kv_kernel")),
                        ("qkv_bias", ("q_bias", "kv_bias", "kv_bias")),
                        ("gate_up_kernel", ("up_kernel", "up_kernel"))):
        hf = [rng.randn(*shape).astype(np.float32) for shape in TPLayout.hf_shapes(cfg, kind)]
        fused = lay.transform(kind, *hf)
        assert fused.shape == lay.shape(kind)
        separate = [lay.transform_part(p, x) for p, x in zip(parts, hf)]
        for j in range(tp):
            shard = np.split(fused, tp, axis=-1)[j]
            np.testing.assert_array_equal(shard, np.concatenate([np.split(x, tp, axis=-1)[j] for x in separate], -1))
    with pytest.raises(ValueError, match=r"'qkv_kernel' is built from 3 tensors"):
        lay.transform("qkv_kernel", hf[0])


def per_device_bytes(config, mesh, dtype="bfloat16"):
    shapes = param_shapes(config, TPLayout(config, mesh.shape["model"]), dtype)
    specs = partition_specs(shapes)
    total = 0
    for leaf, spec in zip(jax.tree_util.tree_leaves(shapes),
                          jax.tree_util.tree_leaves(specs, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))):
        shard = jax.sharding.NamedSharding(mesh, spec).shard_shape(leaf.shape)
        total += int(np.prod(shard)) * leaf.dtype.itemsize
    return total


@pytest.mark.parametrize("tp", [4, 8, 32])
def test_qwen2_5_7b_per_device_parameter_bytes(tp, record_property):
    config = Qwen2Config.from_dict(QWEN2_5_7B)
    hf_total = sum(int(np.prod(shape)) * 2 for _, kind, _ in hf_tensors(config)
                   for shape in TPLayout.hf_shapes(config, kind))
    devices = jax.devices()
    if len(devices) < tp:
        pytest.skip(f"T={tp} needs {tp} devices; the platform has {len(devices)}")
    mesh = make_mesh((1, tp), devices=devices)
    per_device = per_device_bytes(config, mesh)
    ratio = per_device / (hf_total / tp)
    record_property("per_device_bytes", per_device)
    print(f"\nQwen2.5-7B bf16 T={tp}: {per_device / 2**30:.3f} GiB per device, "
          f"total {hf_total / 2**30:.3f} GiB, ratio to total/T {ratio:.4f}")
    assert ratio <= 1.15


@pytest.mark.cpu
@pytest.mark.parametrize("tp", [1, 4, 8, 32])
@pytest.mark.parametrize("kind", TPLayout.VOCAB_KINDS)
def test_vocabulary_blocks_equal_slices_of_the_padded_tensor(kind, tp):
    """The loader builds each device's vocabulary block from the file (vocab_block): it must equal
    that block of the padded tensor transform() makes, padding rows included."""
    config = Qwen2Config(vocab_size=1001, hidden_size=12, intermediate_size=20, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=4, head_dim=3)
    layout = TPLayout(config, tp)
    hf = np.arange(1001 * 12, dtype=np.float32).reshape(1001, 12) + 1
    whole = layout.transform(kind, hf)
    rows = layout.vocab // tp
    for j in range(tp):
        vocab = slice(j * rows, (j + 1) * rows)
        index = (vocab, slice(None)) if kind == "vocab_table" else (slice(None), vocab)
        np.testing.assert_array_equal(layout.vocab_block(kind, hf, index), whole[index])
