"""The chip's arithmetic (``tenstorrent/executor/arithmetic.py``) held to cases worked by hand from the ISA's
fidelity-phase table and the SFPU kernels' formulas (docs/chip_arithmetic.md)."""

from __future__ import annotations

import numpy as np
import pytest

from .tenstorrent.executor import arithmetic

pytestmark = pytest.mark.cpu

F = np.float32


def test_bf16_rounding_ties_away_from_zero_and_sfpu_truncation():
    # 1 + 2^-8 lies halfway between bfloat16 1 and 1 + 2^-7: the hardware rounds away from zero (numpy's
    # ml_dtypes would give 1, the even neighbour); 1 + 3 * 2^-9 truncates to 1
    assert arithmetic.bf16_nearest(F(1 + 2 ** -8)) == F(1 + 2 ** -7)
    assert arithmetic.bf16_nearest(F(-(1 + 2 ** -8))) == F(-(1 + 2 ** -7))
    assert arithmetic.bf16_truncate(F(1 + 3 * 2 ** -9)) == F(1)
    assert np.isinf(arithmetic.bf16_nearest(F(np.inf)))


# activation (SrcB) 1 + 2^-7: stored mantissa 0000001, so its high part (hidden + 6 bits) is 1 and its low bit
# 2^-7; weight (SrcA) 1 + 3 * 2^-7: stored 0000011, high part (hidden + 4 bits) 1, low part 3 * 2^-7.
# phase 0: 1 * 1; phase 1 (SrcA low): + 3 * 2^-7; phase 2 (SrcB low): + 2^-7; phase 3: + 3 * 2^-14
@pytest.mark.parametrize("fidelity, want", [
    ("lofi", 1.0),
    ("hifi2", 1 + 3 * 2 ** -7),
    ("hifi3", 1 + 4 * 2 ** -7),
    ("hifi4", 1 + 4 * 2 ** -7 + 3 * 2 ** -14),
])
def test_matmul_fidelity_phases_take_the_bits_of_the_phase_table(fidelity, want):
    a, b = np.array([[1 + 2 ** -7]], F), np.array([[1 + 3 * 2 ** -7]], F)
    got = arithmetic.matmul(a, b, fidelity, fp32_dest_acc=True, out_bf16=False)
    assert got[0, 0] == F(want)
    # packed to bfloat16: HiFi4's 1.0314331 rounds to 1.03125 (8 significant bits)
    assert arithmetic.matmul(a, b, fidelity, True)[0, 0] == arithmetic.bf16_nearest(F(want))


def test_matmul_operands_are_not_symmetric():
    """The activation keeps 7 significant bits at HiFi2 where the weight keeps all 8: swapping them changes
    the product."""
    a, b = np.array([[1 + 3 * 2 ** -7]], F), np.array([[1 + 2 ** -7]], F)
    # activation 1 + 3 * 2^-7 -> high part 1 + 2^-6 (its last bit dropped); weight whole
    assert arithmetic.matmul(a, b, "hifi2", True, out_bf16=False)[0, 0] == F((1 + 2 ** -6) * (1 + 2 ** -7))


def test_matmul_bf16_dest_rounds_every_16_term_sum():
    # 32 products of 1 * 2^-8 after a first row term of 1: in float32 Dst the sum is 1 + 31 * 2^-8; in a
    # bfloat16 Dst the first 16-term chunk 1 + 15 * 2^-8 = 1.05859375 rounds to 1.0625 (ulp 2^-7), then the second
    # chunk adds 16 * 2^-8 = 0.0625: 1.125 exactly
    a = np.ones((1, 32), F)
    b = np.full((32, 1), 2 ** -8, F)
    b[0, 0] = 1
    assert arithmetic.matmul(a, b, "hifi4", True, out_bf16=False)[0, 0] == F(1 + 31 * 2 ** -8)
    assert arithmetic.matmul(a, b, "hifi4", False, out_bf16=False)[0, 0] == F(1.125)


def test_matmul_bias_and_float32_operands():
    # a float32 activation reaches SrcB as tf32 (10 stored bits) with a float32 Dst, as bfloat16 without
    a, b = np.array([[1 + 2 ** -10 + 2 ** -12]], F), np.array([[2.0]], F)
    assert arithmetic.matmul(a, b, "hifi4", True, out_bf16=False)[0, 0] == F(2 + 2 ** -9)
    assert arithmetic.matmul(a, b, "hifi4", False, out_bf16=False)[0, 0] == F(2)
    got = arithmetic.matmul(np.ones((2, 3), F), np.ones((3, 4), F), "hifi4", True, bias=np.arange(4, dtype=F))
    np.testing.assert_array_equal(got, np.broadcast_to(3 + np.arange(4, dtype=F), (2, 4)))
    with pytest.raises(ValueError, match="fidelity must be one of"):
        arithmetic.matmul(a, b, "hifi5", True)


def test_matmul_error_shrinks_with_fidelity_on_random_operands():
    rng = np.random.default_rng(0)
    a = arithmetic.bf16_nearest(rng.normal(size=(8, 96)).astype(F))
    b = arithmetic.bf16_nearest(rng.normal(size=(96, 5)).astype(F))
    exact = a.astype(np.float64) @ b
    err = {f: np.abs(arithmetic.matmul(a, b, f, True, out_bf16=False) - exact).max() for f in arithmetic.FIDELITIES}
    assert err["hifi4"] < 1e-4 < err["hifi3"] < err["hifi2"] < err["lofi"]


@pytest.mark.parametrize("x, want", [
    # round(369.33 * x + 32500.82) << 15: x = 0 -> u = 32501 -> exponent 126, mantissa 245/256: 0.978515625
    (0.0, 0.978515625),
    # x = 1 -> u = round(32870.148) = 32870 -> exponent 128, mantissa 102/256: 2 * (1 + 102/256) = 2.796875
    (1.0, 2.796875),
    # clamped at -88.5: u = round(|369.33 * -88.5 + 32500.82|) = 185 -> bits 185 << 15, a denormal:
    # 185 * 2^15 * 2^-149 = 185 * 2^-134 (not 0)
    (-100.0, 185 * 2.0 ** -134),
], ids=["zero", "one", "clamped"])
def test_approximate_exp_is_schraudolphs_bit_trick(x, want):
    assert arithmetic.exp(np.array([x], F), approximate=True)[0] == F(want)


def test_accurate_exp():
    x = np.array([-3.0, -0.5, 0.0, 0.25, 2.0], F)
    np.testing.assert_allclose(arithmetic.exp(x, False, fp32_dest_acc=True), np.exp(x), rtol=1e-6)
    # bfloat16 Dst: exp_21f's polynomial, within one bfloat16 ulp (2^-7 relative) and rounded to bfloat16
    got = arithmetic.exp(x, False, fp32_dest_acc=False)
    np.testing.assert_allclose(got, np.exp(x), rtol=2 ** -7)
    np.testing.assert_array_equal(got, arithmetic.bf16_nearest(got))
    # the approximation's error is percent-level, the accurate one's is not
    assert np.abs(arithmetic.exp(x, True) / np.exp(x) - 1).max() > 0.01


def test_reciprocal_newton_steps():
    x = np.array([3.0, 0.7, -5.0, 1e-3], F)
    np.testing.assert_allclose(arithmetic.reciprocal(x, False, True), 1 / x, rtol=2e-7)  # two steps
    one_step = arithmetic.reciprocal(x, True, True)
    assert 1e-6 < np.abs(one_step * x - 1).max() < 1e-3
    bf = arithmetic.reciprocal(x, False, False)
    np.testing.assert_array_equal(bf, arithmetic.bf16_nearest(bf))
    np.testing.assert_allclose(bf, 1 / x, rtol=2 ** -8)
    # 1 / 3 by hand: seed on the mantissa 1.5 (3 = 1.5 * 2), n = -1.5, y0 = 2.1212125 + (1.454546 - 0.484849) * -1.5
    # = 0.666667: the quadratic already near 2/3; the result scaled by 2^-1
    assert abs(arithmetic.reciprocal(np.array([3.0], F), True, True)[0] - 1 / 3) < 1e-5
    assert np.isinf(arithmetic.reciprocal(np.array([0.0], F), False, True)[0])


def test_rsqrt():
    x = np.array([4.0, 2.0, 0.01, 1e6], F)
    np.testing.assert_allclose(arithmetic.rsqrt(x, False), 1 / np.sqrt(x), rtol=1e-6)
    approx = arithmetic.rsqrt(x, True)
    rel = np.abs(approx * np.sqrt(x) - 1)
    assert 1e-5 < rel.max() < 2 ** -9  # the 10-bit variant
    # 4: seed bits 0x5F0B3892 - (0x40800000 >> 1) = 0x3EC b3892 -> 0.4017; one step y0 * (1.891 - y0 * 4 * y0)
    y0 = np.array([0x5F0B3892 - (0x40800000 >> 1)], np.uint32).view(F)[0]
    assert approx[0] == F(y0 * (F(1.89099014875) - y0 * (F(4) * y0)))
    assert np.isinf(arithmetic.rsqrt(np.array([0.0], F), False)[0])


def test_softmax_kernel():
    rng = np.random.default_rng(1)
    x = arithmetic.bf16_nearest((rng.normal(size=(4, 40)) * 3).astype(F))
    ref = np.exp(x - x.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    accurate = arithmetic.softmax(x, -1, approximate=False, fp32_dest_acc=True, fp32_exps=True)
    np.testing.assert_allclose(accurate, ref, atol=2e-3)  # the FPU product reads bfloat16-precision operands
    approx = arithmetic.softmax(x, -1, approximate=True, fp32_dest_acc=False, fp32_exps=False)
    err_acc, err_apx = np.abs(accurate - ref).max(), np.abs(approx - ref).max()
    assert err_apx > 2 * err_acc
    # a row of equal scores: exp(0) = 0.978515625 approximately, but the reciprocal of their sum cancels it
    flat = arithmetic.softmax(np.zeros((1, 8), F), -1, True, True, True)
    np.testing.assert_allclose(flat, 1 / 8, rtol=2 ** -10)  # less the tf32 truncation of the reciprocal


def test_rms_norm_kernel():
    rng = np.random.default_rng(2)
    x = arithmetic.bf16_nearest(rng.normal(size=(3, 64)).astype(F))
    w = arithmetic.bf16_nearest(rng.normal(size=(64,)).astype(F))
    ref = x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + 1e-6) * w
    fp32 = arithmetic.rms_norm(x, w, 1e-6, approximate=False, fp32_dest_acc=True)
    np.testing.assert_allclose(fp32, ref, rtol=2 ** -9, atol=1e-5)  # two tf32 truncations: rsqrt, then x * r
    bf = arithmetic.rms_norm(x, w, 1e-6, approximate=True, fp32_dest_acc=False)
    assert 1e-3 < np.abs(bf - ref).max() < 0.05 * np.abs(ref).max()
    # epsilon enters truncated to bfloat16: a zero row gives rsqrt(bf16(eps)), not rsqrt(eps)
    zero = arithmetic.rms_norm(np.zeros((1, 16), F), None, 1e-6, False, True)
    np.testing.assert_array_equal(zero, 0)


def test_eltwise_add_and_multiply_on_the_fpu():
    # bfloat16 Dst: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 and rounds away (nearest even would give 1)
    assert arithmetic.add(np.array([1.0], F), np.array([2 ** -8], F), False)[0] == F(1 + 2 ** -7)
    assert arithmetic.add(np.array([1.0], F), np.array([2 ** -8], F), False, subtract=True)[0] == F(1 - 2 ** -8)
    # float32 Dst: the operands as tf32: 2^-12 below 1's tenth mantissa bit is dropped before the add
    assert arithmetic.add(np.array([1 + 2 ** -12], F), np.array([0.0], F), True)[0] == F(1)
    # multiply: a (SrcA) 1 + 2^-7 keeps hidden + 4 bits in phase 0 (LoFi: 1), its low bits join in phase 1
    a, b = np.array([1 + 2 ** -7], F), np.array([3.0], F)
    assert arithmetic.multiply(a, b, "lofi", False)[0] == F(3)
    assert arithmetic.multiply(a, b, "hifi2", False)[0] == F(3 + 3 * 2 ** -7)


def test_silu_and_sigmoid():
    x = arithmetic.bf16_nearest(np.linspace(-12, 12, 97).astype(F))
    ref = x / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(arithmetic.silu(x, True), ref, rtol=1e-6, atol=1e-30)  # accurate exp, two Newton steps
    bf = arithmetic.silu(x, False)  # exp_21f, one Newton step, rounded to bfloat16
    np.testing.assert_array_equal(bf, arithmetic.bf16_nearest(bf))
    np.testing.assert_allclose(bf, ref, rtol=2 ** -7, atol=1e-6)
    assert arithmetic.silu(np.array([0.0], F), False)[0] == 0
    # sigmoid(0) = 1 / (1 + exp(0)): exp_21f(0) is 1.001953125 rounded to bfloat16 (1.0); one Newton step on 1/2
    assert arithmetic.sigmoid(np.array([0.0], F), False)[0] == F(0.5)
    np.testing.assert_allclose(arithmetic.sigmoid(x, True), 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)


def _eltwise_module(body: str, args: str, result: str) -> str:
    from .test_ttnn_ops import _module

    return "#system_desc = #ttcore.system_desc<[{arch = <wormhole_b0>}]>\n" + _module(body, args, result)


def test_the_executor_runs_eltwise_ops_as_the_chip_does():
    from .tenstorrent.executor import executor as ex

    none = "activations = [], input_tensor_a_activations = [], input_tensor_b_activations = []"
    body = (f'    %0 = "ttnn.add"(%arg0, %arg1) <{{{none}}}> : (tensor<2xbf16>, tensor<2xbf16>) -> tensor<2xbf16>\n'
            '    %1 = "ttnn.silu"(%0) : (tensor<2xbf16>) -> tensor<2xbf16>\n'
            '    return %1 : tensor<2xbf16>')
    text = _eltwise_module(body, "%arg0: tensor<2xbf16>, %arg1: tensor<2xbf16>", "tensor<2xbf16>")
    a, b = np.array([1.0, 3.0], F), np.array([2 ** -8, 0.5], F)
    (chip,) = ex.Executor(text, arithmetic="chip").run([[a], [b]])
    (exact,) = ex.Executor(text).run([[a], [b]])
    # the sum: ties away on the chip (1 + 2^-7), to even when exact (1); then the SFPU's silu in a bfloat16 Dst
    np.testing.assert_array_equal(chip[0], arithmetic.silu(np.array([1 + 2 ** -7, 3.5], F), False))
    s = np.array([1.0, 3.5])
    np.testing.assert_array_equal(exact[0], arithmetic.bf16_nearest(s / (1 + np.exp(-s))))


def _matmul_module(config: str) -> str:
    from .test_ttnn_ops import _module

    attrs = "transpose_a = false, transpose_b = false" + (f", compute_config = {config}" if config else "")
    body = (f'    %0 = "ttnn.matmul"(%arg0, %arg1) <{{{attrs}}}> : (tensor<1x32xbf16>, tensor<32x1xbf16>) -> '
            'tensor<1x1xbf16>\n    return %0 : tensor<1x1xbf16>')
    # the system descriptor names the chip family whose defaults apply
    return "#system_desc = #ttcore.system_desc<[{arch = <wormhole_b0>}]>\n" + _module(
        body, "%arg0: tensor<1x32xbf16>, %arg1: tensor<32x1xbf16>", "tensor<1x1xbf16>")


@pytest.mark.parametrize("config, want", [
    # the weights: 1, then 30 times 2^-8, then 0
    # no compute_config (optimization level 1): ttnn's matmul defaults for a bfloat16 result, HiFi2 and a
    # bfloat16 Dst: the first 16 terms, 1 + 15 * 2^-8, tie between 1.0546875 and 1.0625 and round away to
    # 1.0625; + 15 * 2^-8 = 1.12109375 ties again: 1.125
    ("", 1.125),
    # level 0's config: HiFi4, float32 Dst: 1 + 30 * 2^-8 = 1.1171875, a bfloat16
    ("#ttnn.device_compute_kernel_config<math_fidelity = hifi4, fp32_dest_acc_en = true>", 1.1171875),
], ids=["ttnn-defaults", "level-0-config"])
def test_the_executor_computes_a_matmul_with_the_settings_the_module_gives(config, want):
    from .tenstorrent.executor import executor as ex

    a = np.ones((1, 32), F)
    b = np.full((32, 1), 2 ** -8, F)
    b[0, 0], b[31, 0] = 1, 0
    text = _matmul_module(config)
    (chip,) = ex.Executor(text, arithmetic="chip").run([[a], [b]])
    assert chip[0][0, 0] == F(want)
    (exact,) = ex.Executor(text).run([[a], [b]])
    assert exact[0][0, 0] == F(1.1171875)  # float32, then rounded to the result's type
    with pytest.raises(ValueError, match="arithmetic must be one of exact, chip"):
        ex.Executor(text, arithmetic="ideal")


def test_the_arithmetic_is_chosen_on_the_emulated_platform_only(tmp_path):
    from . import load_model
    from .tenstorrent.emulated.platform import EmulatedPlatform

    with pytest.raises(ValueError, match="tt_arithmetic apply to the emulated platform: pass tt_target"):
        load_model(str(tmp_path), mesh=None, tt_arithmetic="chip")
    with pytest.raises(ValueError, match="arithmetic must be one of exact, chip, got 'ideal'"):
        EmulatedPlatform(arithmetic="ideal")


def test_float32_accumulation_always_comes_with_a_math_fidelity():
    # fp32_dest_acc_en alone gives a compute config whose unset math_fidelity the runtime reads as LoFi
    from .tenstorrent.compile.options import option_pairs
    from .tenstorrent.executor import ops

    assert option_pairs(None, "bf16", None) == ()
    assert option_pairs(1, "bf16", None, fp32_dest_acc=True) == (
        ("optimization_level", "1"), ("math_fidelity", "hifi4"), ("fp32_dest_acc_en", "true"))
    assert option_pairs(1, "bfp_bf8", "hifi2", True) == (
        ("optimization_level", "1"), ("experimental_weight_dtype", "bfp_bf8"), ("math_fidelity", "hifi2"),
        ("fp32_dest_acc_en", "true"))

    class Op:  # what tt-mlir writes for fp32_dest_acc_en alone at optimization level 1
        kind = "matmul"
        attrs = {"compute_config": "#ttnn.device_compute_kernel_config<fp32_dest_acc_en = true>"}
    assert ops.compute_settings(Op, "blackhole") == ops.Settings("lofi", True, True, True)
