"""The emulated Tenstorrent platform (``load_model(..., tt_target=...)``, ``--platform tt-emulated``): every
program compiled by tt-mlir for the target and run by the TTNN executor, each distinct program compiled once
(on-disk cache), and clear errors, never a fallback to XLA:CPU, when the plugin or a descriptor is missing.
The suite's model tests themselves run on the platform with ``--platform tt-emulated`` (``.ci/run``)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from . import load_model
from .model.partitioning import make_mesh
from .tenstorrent.emulated import platform as emulated
from .testing.parity import left_padded_batch

pytestmark = pytest.mark.cpu


def _cpu_mesh(shape=(1, 1)):
    import jax

    return make_mesh(shape, devices=jax.devices("cpu"))


def test_without_a_plugin_interpreter_it_says_what_is_missing(checkpoint_factory):
    path, _ = checkpoint_factory("gqa28x4")
    with pytest.raises(emulated.EmulationUnavailable, match=r"Tenstorrent PJRT plugin: --tt-python /nonexistent/python "
                                                            r"does not exist"):
        load_model(path, _cpu_mesh(), tt_target="blackhole_p150", tt_python="/nonexistent/python")


def test_without_the_target_descriptor_it_says_where_to_point(checkpoint_factory, monkeypatch, tmp_path):
    path, _ = checkpoint_factory("gqa28x4")
    monkeypatch.setenv("QWEN2_5_TT_SYSTEM_DESCS", str(tmp_path))  # the Wormhole descriptors are not committed
    python = sys.executable  # any existing interpreter: the descriptor is checked before anything starts
    with pytest.raises(emulated.EmulationUnavailable, match="no system descriptor for wormhole_n300-llmbox: point "
                                                            "QWEN2_5_TT_SYSTEM_DESCS"):
        load_model(path, _cpu_mesh(), tt_target="wormhole_n300-llmbox", tt_python=python)


def test_a_bad_target_or_a_mesh_larger_than_it_is_a_value_error(checkpoint_factory):
    path, _ = checkpoint_factory("gqa28x4")
    with pytest.raises(ValueError, match="tt_target must be one of blackhole_p150, "):
        load_model(path, _cpu_mesh(), tt_target="grayskull")
    with pytest.raises(ValueError, match="a 2x4 mesh needs 8 chips; blackhole_p150 has 1"):
        load_model(path, _cpu_mesh((2, 4)), tt_target="blackhole_p150")
    with pytest.raises(ValueError, match="apply to the emulated platform: pass tt_target"):
        load_model(path, _cpu_mesh(), compile_cache="/tmp/x")


def test_each_chip_count_takes_its_target():
    targets = emulated.parse_targets(["blackhole_8xp150"])
    assert {n: t.name for n, t in targets.items()} == {1: "blackhole_p150", 8: "blackhole_8xp150",
                                                       32: "blackhole_galaxy"}
    with pytest.raises(ValueError, match="two targets for 8-chip meshes"):
        emulated.parse_targets(["blackhole_8xp150", "wormhole_n300-llmbox"])
    with pytest.raises(ValueError, match="unknown Tenstorrent target 'n300'"):
        emulated.parse_targets(["n300"])


@pytest.mark.tt_compile
def test_the_model_runs_tt_mlir_programs_compiled_once(checkpoint_factory, request, tmp_path):
    """1x1 on blackhole_p150, float32: ``forward`` matches XLA:CPU's to 1e-5 and greedy tokens are identical, through
    programs tt-mlir compiled (TTNN ops executed, the host loop as on ``tt``); a second model in a fresh compile
    service finds every program in the on-disk cache and starts no compile server."""
    from .tenstorrent.compile.jobs import tt_python

    python, how = tt_python(request.config.getoption("--tt-python"), str(request.config.rootpath))
    if python is None:
        pytest.skip(how)
    path, _ = checkpoint_factory("gqa28x4")
    ids, mask = left_padded_batch(1001, batch=4, seq=12)
    cache = str(tmp_path / "cache")
    mesh = _cpu_mesh()
    reference = load_model(path, mesh, dtype="float32")
    model = load_model(path, mesh, dtype="float32", tt_target="blackhole_p150", tt_python=python, compile_cache=cache)
    assert model.platform == "tt-emulated"
    got, want = np.asarray(model.forward(ids, mask)), np.asarray(reference.forward(ids, mask))
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    tokens = model.generate(ids, mask, max_new_tokens=4, eos_token_id=())
    np.testing.assert_array_equal(tokens, reference.generate(ids, mask, max_new_tokens=4, eos_token_id=()))
    stats = model.programs.stats()
    assert stats["compile"]["compiles"] == 3 and stats["ops_executed"]["blackhole_p150"] > 100, stats
    # a new process's view: a fresh service on the same cache compiles nothing
    emulated._SERVICES.clear()
    again = load_model(path, mesh, dtype="float32", tt_target="blackhole_p150", tt_python=python, compile_cache=cache)
    np.testing.assert_array_equal(np.asarray(again.forward(ids, mask)), got)
    again.generate(ids, mask, max_new_tokens=4, eos_token_id=())
    stats = again.programs.stats()["compile"]
    assert (stats["compiles"], stats["hits"], stats["server_starts"]) == (0, 3, 0), stats


@pytest.mark.tt_compile
def test_compile_options_reach_the_programs_and_a_mesh_may_use_part_of_a_target(checkpoint_factory, request, tmp_path):
    """``compiler_options`` go to tt-mlir with each program, as on ``tt``: block-float weights
    (``experimental_weight_dtype = bfp_bf8``) appear in the compiled module and move the bfloat16 logits off the
    CPU's by more than bfloat16 rounding, within the PCC the suite asks of bfloat16. The 1x1 mesh runs on one chip
    of an 8-chip target."""
    from .tenstorrent.compile.jobs import tt_python
    from .testing.parity import BF16_MIN_PCC, logits_report

    python, how = tt_python(request.config.getoption("--tt-python"), str(request.config.rootpath))
    if python is None:
        pytest.skip(how)
    path, _ = checkpoint_factory("gqa28x4")
    ids, mask = left_padded_batch(1001, batch=4, seq=12)
    cache = tmp_path / "cache"
    want = np.asarray(load_model(path, _cpu_mesh(), dtype="bfloat16").forward(ids, mask))
    model = load_model(path, _cpu_mesh(), dtype="bfloat16", tt_target="blackhole_8xp150", tt_python=python,
                       compile_cache=str(cache), compiler_options={"experimental_weight_dtype": "bfp_bf8"})
    got = np.asarray(model.forward(ids, mask))
    (module,) = list(cache.glob("*.ttnn.mlir"))
    assert "bfp_bf8" in module.read_text()
    report = logits_report(got, want, mask == 1)
    assert report["max_abs_diff"] > 2.0 ** -7 * np.abs(want).max() and report["pcc"] >= BF16_MIN_PCC, report


@pytest.mark.parametrize("args,message", [
    (["--platform", "tt-emulated", "--tt-python", "/nonexistent/python"], "--tt-python /nonexistent/python does not exist"),
    (["--tt-emulated-targets", "blackhole_8xp150"], "--tt-emulated-targets applies to --platform tt-emulated"),
    (["--tt-arithmetic", "chip"], "--tt-arithmetic applies to --platform tt-emulated"),
    (["--platform", "tt-emulated", "--tt-emulated-targets", "n300"], "unknown Tenstorrent target 'n300'"),
])
def test_gsm8k_command_usage_errors_on_the_emulated_platform(args, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tests.jax.models.qwen2_5", "gsm8k", "--samples", "1",
                           "--report", str(tmp_path / "r.json"), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_benchmark_command_refuses_a_bad_mesh_before_building_anything():
    proc = subprocess.run([sys.executable, "-m", "tests.jax.models.qwen2_5", "tt-emulated-bench", "--meshes", "1x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "argument --meshes: a mesh is written BxM" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_case_reports_the_ops_it_executed_and_the_fused_kernels_among_them():
    """The junit properties of a case on the emulated platform count only what it executed itself; the fused kernels
    (level >= 1) get a property of their own, absent when none ran (.ci/run requires it of its level-1 cases)."""
    import collections
    import json

    from .testing.emulated import SessionPlatform

    class Platform:
        targets, arithmetic = {}, "chip"
        counts = {"blackhole_p150": collections.Counter({"ttnn.matmul": 5, "ttnn.rotary_embedding": 1})}

    session = SessionPlatform(Platform())
    before = session.snapshot()
    Platform.counts["blackhole_p150"].update({"ttnn.matmul": 3, "ttnn.scaled_dot_product_attention_decode": 2})
    got = session.properties(before)
    assert got["tt_target"] == "blackhole_p150" and json.loads(got["tt_ops_executed"]) == {"blackhole_p150": 5}
    assert json.loads(got["tt_fused_kernels_executed"]) == {"ttnn.scaled_dot_product_attention_decode": 2}
    assert got["tt_arithmetic"] == "chip"
    Platform.counts["blackhole_p150"].update({"ttnn.matmul": 1})
    plain = session.properties({"blackhole_p150": collections.Counter(Platform.counts["blackhole_p150"]) -
                                collections.Counter({"ttnn.matmul": 1})})
    assert json.loads(plain["tt_ops_executed"]) == {"blackhole_p150": 1} and "tt_fused_kernels_executed" not in plain
    assert session.properties(session.snapshot()) == {}
