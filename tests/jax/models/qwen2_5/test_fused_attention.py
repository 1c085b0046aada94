"""The fused formulation (``model/fused.py``: the forms tt-mlir fuses into tt-metal's SDPA, SDPA-decode and RoPE
kernels) computes what the plain one does: logits parity with PyTorch and the same greedy tokens on every mesh,
and which formulation a model takes. On ``--platform tt-emulated`` the programs hold the decode kernel's custom
call and run in the TTNN executor (at optimization level 1, tt-mlir's fused kernels)."""

import numpy as np
import pytest

from . import load_model
from .model.causal_lm import Qwen2TP
from .model.partitioning import make_mesh
from .synthetic.random_checkpoint import geometry_config
from .tenstorrent.compile.programs import abstract_model, lower
from .testing.meshes import mesh_name
from .testing.options import on_chip
from .testing.parity import assert_logits_parity, logits_report
from .testing.reports import record_model

NEW_TOKENS = 12


def tt_mlir_level(config) -> int:
    """The optimization level tt-mlir compiles the session's programs at (0 off Tenstorrent platforms)."""
    from .testing import options

    if getattr(config, "qwen_platform", None) not in ("tt", "tt-emulated"):
        return 0
    return int(options.get(config, "--tt-optimization-level") or 0)


@pytest.mark.model_test
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fused_logits_parity(mesh, dtype, reference_factory, request):
    """Slot positions for RoPE (shifted per row by its padding), additive masks and the kernels' scale leave the
    logits where the plain formulation has them: float32 within the parity bound, bfloat16 above BF16_MIN_PCC."""
    if dtype == "float32" and tt_mlir_level(request.config) >= 1:
        pytest.skip("at optimization level >= 1 tt-mlir casts the fused kernels' operands to bfloat16: a float32 model "
                    "takes the plain formulation there (test_the_formulation_follows_...)")
    path, ids, mask, ref = reference_factory("gqa28x4")
    model = load_model(path, mesh, dtype=dtype, attention="fused")
    assert model.attention == "fused"
    report = logits_report(np.asarray(model.forward(ids, mask)), ref, mask == 1)
    record_model(request.node, "random-gqa28x4-fused", mesh, report, dtype=dtype)
    print(f"\nfused {dtype} mesh_{mesh_name(mesh)}: {report}")
    assert_logits_parity(report, dtype, on_chip(request.config))


@pytest.mark.model_test
@pytest.mark.parametrize("loop", ["device", "host"])
def test_fused_greedy_tokens_equal_plain(mesh, loop, reference_factory, request):
    """Float32 greedy tokens of the fused formulation (the prefill's SDPA, the decode kernel) equal the plain
    formulation's, which equal PyTorch generate's (test_generation.py); rows of different padding included."""
    if on_chip(request.config) or tt_mlir_level(request.config) >= 1:
        pytest.skip("on a chip, or with tt-mlir's bfloat16 kernels (level >= 1), the two formulations round "
                    "differently: test_generation's greedy test covers each against PyTorch")
    path, ids, mask, _ = reference_factory("gqa28x4")
    plain = load_model(path, mesh, attention="plain").generate(ids, mask, NEW_TOKENS, eos_token_id=(), loop=loop)
    fused = load_model(path, mesh, attention="fused").generate(ids, mask, NEW_TOKENS, eos_token_id=(), loop=loop)
    np.testing.assert_array_equal(fused, plain)


class _Programs:
    """A program backend that only names its platform (the formulation is chosen before any program is built)."""

    def __init__(self, platform):
        self.platform = platform


@pytest.mark.cpu
@pytest.mark.parametrize("platform,options,dtype,expected", [
    (None, {}, "bfloat16", "plain"), (None, {"optimization_level": "1"}, "bfloat16", "plain"),
    ("tt-emulated", {}, "bfloat16", "plain"), ("tt-emulated", {"optimization_level": "0"}, "bfloat16", "plain"),
    ("tt-emulated", {"optimization_level": "1"}, "bfloat16", "fused"),
    ("tt-emulated", {"optimization_level": "2"}, "bfloat16", "fused"),
    ("tt-emulated", {"optimization_level": "1"}, "float32", "plain"),
    ("tt", {}, "bfloat16", "plain"), ("tt", {"optimization_level": "1"}, "bfloat16", "fused")],
    ids=lambda v: v if isinstance(v, str) else "cpu" if v is None else f"level{v.get('optimization_level', 'default')}")
def test_the_formulation_follows_the_platform_the_level_and_the_dtype(platform, options, dtype, expected):
    """Fused only for a bfloat16 model where tt-mlir compiles at level >= 1 (at 0 it decomposes the kernels and the
    plain formulation takes fewer ops; the kernels compute in bfloat16, so a float32 model keeps its precision with
    the plain one); XLA:CPU always takes the plain one; ``attention=`` overrides."""
    config = geometry_config("gqa28x4")
    mesh = make_mesh((1, 1))
    programs = None if platform is None else _Programs(platform)
    model = Qwen2TP(config, mesh, None, dtype, compiler_options=options, programs=programs)
    assert model.attention == expected
    assert Qwen2TP(config, mesh, None, compiler_options=options, programs=programs, attention="plain").attention == "plain"
    with pytest.raises(ValueError, match="attention must be one of plain, fused, got 'flash'"):
        Qwen2TP(config, mesh, None, programs=programs, attention="flash")


@pytest.mark.cpu
def test_only_a_program_for_tt_mlir_holds_the_decode_custom_call():
    """The fused decode step lowered for Tenstorrent devices holds tt-mlir's custom call with its string attributes,
    lowered for XLA:CPU plain JAX; the prefill holds tt-mlir's SDPA composite either way."""
    model = abstract_model(geometry_config("gqa28x4"), make_mesh((1, 1)), attention="fused")
    assert "custom_call @tt.scaled_dot_product_attention_decode" not in lower(model, "decode_step").as_text()
    text = lower(model, "decode_step", platform="tt").as_text()
    call = next(line for line in text.splitlines() if "@tt.scaled_dot_product_attention_decode" in line)
    for attribute in ('has_attention_mask = "True"', 'has_attention_sink = "False"', 'is_causal = "False"',
                      'scale = "0.35355'):
        assert attribute in call, call
    assert "tenstorrent.scaled_dot_product_attention" in lower(model, "prefill").as_text()
