"""Greedy generation: cache consistency, parity with PyTorch generate, bfloat16 agreement,
compilation reuse, and an audit of the decode step's collectives."""

import re

import numpy as np
import pytest

from . import load_model, make_mesh
from .testing.compile_count import count_compiles
from .testing.meshes import build_mesh, mesh_name
from .testing.parity import left_padded_batch
from .testing.reports import record_model
from .model.generation import cached_step_logits
from .tenstorrent.compile.programs import decode_step
from .testing.options import on_chip
from .testing.parity import F32_CHIP_REL_TOL, f32_rel_tol, logits_report

NEW_TOKENS = 24
pytestmark = pytest.mark.model_test


def prompts(vocab):
    """Four left-padded prompts of lengths 11, 8, 5 and 2."""
    ids, mask = left_padded_batch(vocab, batch=4, seq=11, seed=21)
    mask[:] = 1
    for row, length in enumerate((11, 8, 5, 2)):
        mask[row, : 11 - length] = 0
    ids[mask == 0] = 0
    return ids, mask


@pytest.fixture(scope="session")
def hf_generation(checkpoint_factory):
    """PyTorch greedy tokens, with an EOS chosen so that one row stops early and another never does."""
    import torch

    path, model = checkpoint_factory("gqa28x4")
    ids, mask = prompts(model.config.vocab_size)

    def hf_generate(eos):
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor(ids, dtype=torch.long),
                                 attention_mask=torch.tensor(mask, dtype=torch.long), do_sample=False,
                                 max_new_tokens=NEW_TOKENS, eos_token_id=eos, pad_token_id=eos, min_new_tokens=0)
        out = out[:, ids.shape[1]:].numpy()
        return np.pad(out, ((0, 0), (0, NEW_TOKENS - out.shape[1])), constant_values=eos if eos is not None else 0)

    free = hf_generate(None)
    eos = None
    for row in range(len(free)):
        for step in range(1, 16):
            t = free[row, step]
            if t not in free[row, :step] and any(t not in other for other in free):
                eos = int(t)
                break
        if eos is not None:
            break
    assert eos is not None, "no early-EOS candidate in the random model's output"
    return path, ids, mask, eos, hf_generate(eos)


def test_cached_decoding_equals_full_recomputation(mesh, hf_generation, request):
    path, ids, mask, eos, expected = hf_generation
    model = load_model(path, mesh)
    forced = expected[:, :8]
    stepwise = cached_step_logits(model, ids, mask, forced)  # [b, 9, v]
    full = np.asarray(model.forward(np.concatenate([ids, forced], 1),
                                    np.concatenate([mask, np.ones_like(forced)], 1)))
    s = ids.shape[1]
    report = logits_report(stepwise, full[:, s - 1: s + 8], np.ones(stepwise.shape[:2], bool))
    record_model(request.node, "random-gqa28x4-decode", mesh, report)
    assert report["rel_diff"] <= f32_rel_tol(on_chip(request.config)) and report["argmax_agreement"] == 1.0, report


@pytest.mark.parametrize("loop", ["device", "host"])
def test_greedy_tokens_equal_pytorch_generate(mesh, loop, hf_generation, checkpoint_factory, request):
    """Token for token; on a chip (float32 matmuls read tf32 operands) a row may part from PyTorch only where
    PyTorch's own logits of the two tokens lie within F32_CHIP_REL_TOL of the largest logit."""
    path, ids, mask, eos, expected = hf_generation
    model = load_model(path, mesh)
    tokens = model.generate(ids, mask, NEW_TOKENS, eos_token_id=eos, loop=loop)
    assert tokens.shape == (4, NEW_TOKENS) and tokens.dtype == np.int32
    stopped = [r for r in range(4) if eos in expected[r, :-1]]
    assert stopped and len(stopped) < 4, "the test needs a row that stops early and one that does not"
    record_model(request.node, f"random-gqa28x4-generate-{loop}-loop", mesh,
                 token_agreement=float((tokens == expected).mean()))
    if not on_chip(request.config):
        np.testing.assert_array_equal(tokens, expected)
        return
    from .synthetic.random_checkpoint import hf_logits

    _, torch_model = checkpoint_factory("gqa28x4")
    for r in (r for r in range(len(tokens)) if (tokens[r] != expected[r]).any()):
        k = int(np.argmax(tokens[r] != expected[r]))
        prefix = np.concatenate([ids[r:r + 1], expected[r:r + 1, :k]], 1)
        logits = hf_logits(torch_model, prefix, np.concatenate([mask[r:r + 1], np.ones((1, k), mask.dtype)], 1))[0, -1]
        gap = abs(float(logits[tokens[r, k]] - logits[expected[r, k]]))
        bound = F32_CHIP_REL_TOL * float(np.abs(logits).max())
        assert gap <= bound, f"row {r} step {k}: PyTorch's logit gap {gap} exceeds the chip's float32 bound {bound}"


@pytest.fixture(scope="session")
def bf16_reference(hf_generation):
    """1x1 JAX bfloat16 tokens and the reference model (for logit gaps)."""
    path, ids, mask, _, _ = hf_generation
    model = load_model(path, make_mesh((1, 1)), dtype="bfloat16")
    return model, model.generate(ids, mask, NEW_TOKENS, eos_token_id=())


def test_bfloat16_tokens_match_single_device(mesh, hf_generation, bf16_reference, request):
    path, ids, mask, _, _ = hf_generation
    ref_model, ref_tokens = bf16_reference
    tokens = load_model(path, mesh, dtype="bfloat16").generate(ids, mask, NEW_TOKENS, eos_token_id=())
    diverged = [r for r in range(len(tokens)) if (tokens[r] != ref_tokens[r]).any()]
    flips = []
    for r in diverged:
        k = int(np.argmax(tokens[r] != ref_tokens[r]))
        # the 1x1 logits at the first divergence, fed the common prefix
        logits = cached_step_logits(ref_model, ids[r:r + 1], mask[r:r + 1], ref_tokens[r:r + 1, :k])[0, k]
        gap = abs(float(logits[tokens[r, k]] - logits[ref_tokens[r, k]]))
        bound = 2.0 ** -6 * float(np.abs(logits).max())  # a few bfloat16 ulps of the largest logit
        assert gap <= bound, f"row {r} step {k}: gap {gap} exceeds bfloat16 rounding {bound}"
        flips.append(f"row {r} step {k} gap {gap:.4g} <= {bound:.4g}")
    outcome = "identical" if not flips else "near-tie flips: " + "; ".join(flips)
    print(f"\nbfloat16 mesh_{mesh_name(mesh)}: {outcome}")
    record_model(request.node, "random-gqa28x4-generate-bf16", mesh, bf16_outcome=outcome)


def test_generation_compiles_once_per_bucket(mesh, hf_generation):
    path, ids, mask, eos, _ = hf_generation
    model = load_model(path, mesh)
    model.generate(ids, mask, NEW_TOKENS, eos_token_id=eos)  # warm-up
    with count_compiles() as compiles:
        model.generate(ids, mask, NEW_TOKENS, eos_token_id=eos)
        assert compiles() == 0, "a repeated call with the same shapes compiled"
        # other prompt lengths in the same bucket (16), other max_new_tokens in the same multiple of 32
        model.generate(ids[:, 2:], mask[:, 2:], NEW_TOKENS, eos_token_id=eos)
        model.generate(np.pad(ids, ((0, 0), (3, 0))), np.pad(mask, ((0, 0), (3, 0))), 30, eos_token_id=())
    assert compiles() == 0, "prompts inside one bucket recompiled"
    with count_compiles() as compiles:
        model.generate(np.pad(ids, ((0, 0), (9, 0))), np.pad(mask, ((0, 0), (9, 0))), NEW_TOKENS)  # bucket 32
    assert compiles() >= 1  # the counter does see compilations


COLLECTIVE = re.compile(r"=\s*([a-z0-9]+\[[0-9,]*\])\S*\s+(all-reduce|all-gather|all-to-all|collective-permute|reduce-scatter)"
                        r"(-start)?\(")


@pytest.mark.tensor_parallel
@pytest.mark.llmbox
def test_decode_step_collectives_on_1x8(request, hf_generation):

    path = hf_generation[0]
    model = load_model(path, build_mesh(request.config, (1, 8)))
    text = decode_step(model, batch=4, cache_len=48).compile().as_text()
    ops = COLLECTIVE.findall(text)
    kinds = {kind for _, kind, _ in ops}
    assert kinds == {"all-reduce", "all-gather"}, f"unexpected collectives: {ops}"
    hidden = model.config.hidden_size
    layers = model.config.num_hidden_layers
    # activations: [rows, 1, e] for the embedding, [tokens, e] in the layers (a token-major residual stream)
    activation = [shape for shape, kind, _ in ops if kind == "all-reduce"
                  and shape.endswith((f"[4,1,{hidden}]", f"[4,{hidden}]"))]
    # two per layer (attention, MLP) + one for the vocabulary-sharded embedding lookup, all sums
    assert len(activation) == 2 * layers + 1, ops
    # greedy selection: each device's best value and id gathered ([batch, tp]); no pmax/pmin (tt-mlir's
    # runtime runs every all-reduce as a sum)
    selection = sorted(shape for shape, kind, _ in ops if kind == "all-gather")
    assert selection == ["f32[4,8]", "s32[4,8]"], ops
    assert len(ops) == len(activation) + len(selection), ops
    assert not re.search(r"all-reduce(-start)?\([^\n]*to_apply=%?(max|min)", text), "a max/min all-reduce is left"


def test_generate_rejects_bad_input(checkpoint_factory):
    path = checkpoint_factory("gqa28x4")[0]
    model = load_model(path, make_mesh((1, 1)), max_cache_length=64)
    ids = np.ones((2, 20), np.int32)
    with pytest.raises(ValueError, match=r"a prompt of 40 tokens \(bucket 64\) plus max_new_tokens=8 needs 96 cache "
                                         r"positions; the model's cache holds 64"):
        model.generate(np.ones((2, 40), np.int32), None, 8)
    with pytest.raises(ValueError, match="empty"):
        model.generate(np.zeros((0, 5), np.int32), None, 8)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.generate(ids * 5000, None, 8)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        model.generate(ids, None, 0)
    with pytest.raises(ValueError, match="EOS ids \\[5000\\] are outside the vocabulary"):
        model.generate(ids, None, 8, eos_token_id=5000)
    with pytest.raises(ValueError, match="loop must be one of"):
        model.generate(ids, None, 8, loop="python")
    with pytest.raises(ValueError, match="max_cache_length must be in"):
        load_model(path, make_mesh((1, 1)), max_cache_length=10**9)
