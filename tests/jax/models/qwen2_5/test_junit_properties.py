"""A junit file of this suite carries tt-xla's properties for every test: ``tags`` (test_name,
specific_test_case and the record_test_properties keys, values as strings), ``owner``, and for
model tests ``group`` with one of the mandatory key sets and the measured pcc and atol."""

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

from .testing import junit_check, properties

pytestmark = pytest.mark.cpu

ROOT = pathlib.Path(__file__).resolve().parents[4]
SELECTION = ("test_logits_parity and mesh_1x8 and gqa28x4 and float32 or test_gold_without_final_answer_raises "
             "or test_committed_descriptors_match_manifest")


def parent_plugins(config) -> list:
    """The ``-p`` plugins of this session's command line (inside tt-xla's harness: its CPU runner)."""
    args, out = list(config.invocation_params.args), []
    for i, arg in enumerate(args):
        if arg == "-p" and i + 1 < len(args):
            out += ["-p", args[i + 1]]
        elif arg.startswith("-p") and len(arg) > 2:
            out.append(arg)
    return out


def test_junit_file_holds_tt_xla_properties_for_every_test(tmp_path, request):
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    perf = tmp_path / "perf"
    # The child runs as this session does: standalone with the root conftest, inside tt-xla with its
    # conftest and the same -p plugins (tt-xla's CI passes none; its CPU-runner harness passes one).
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          *parent_plugins(request.config), "-k", SELECTION,
                          f"--junitxml={junit}", "--serialize", f"--perf-report-dir={perf}", "--perf-id=ci",
                          "tests/jax/models/qwen2_5/test_logits.py",
                          "tests/jax/models/qwen2_5/test_gsm8k.py", "tests/jax/models/qwen2_5/test_tt_compile.py"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    cases, _, problems = junit_check.check(str(junit))
    assert not problems, "\n".join(problems)
    seen = {}
    for case in cases:
        props = junit_check.case_properties(case)
        seen[case.get("name").split("[")[0]] = (ast.literal_eval(props["tags"]), props)
    assert set(seen) == {"test_logits_parity", "test_gold_without_final_answer_raises",
                         "test_committed_descriptors_match_manifest"}

    tags, props = seen["test_logits_parity"]
    assert props["group"] == properties.MODEL_GROUP
    assert "model_group" not in tags  # tt-xla moves it to the group property
    assert (tags["model_name"], tags["run_mode"], tags["bringup_status"], tags["category"]) == (
        properties.MODEL_NAME, properties.RUN_MODE, properties.PASSED, "model_test")
    assert tags["parallelism"] == "tensor_parallel" and props["mesh"] == "1x8"
    assert 0.99 < float(tags["pcc"]) <= 1.0 and 0.0 <= float(tags["atol"]) < 1e-3, tags  # measured, not thresholds
    other, other_props = seen["test_gold_without_final_answer_raises"]
    assert other["category"] == "other" and "group" not in other_props

    # --serialize wrote each logits test's compiled programs as StableHLO; --perf-report-dir its figures
    for partitioner in ("shardy", "gspmd"):
        name = f"test_logits_parity[mesh_1x8-{partitioner}-gqa28x4-float32]"
        ir = ROOT / "reports" / "ir" / name
        assert any(p.suffix == ".mlir" for p in ir.iterdir()), f"no IR under {ir}"
        report = json.loads((perf / f"ci_{name.replace('[', '_').replace(']', '_')}.json").read_text())
        assert report["perf_id"] == "ci" and 0.99 < report["figures"]["pcc"] <= 1.0, report


def test_model_tests_without_a_mandatory_set_are_refused():
    with pytest.raises(KeyError, match="Model tests must have"):
        properties.validate_keys(["model_name", "run_mode"], model_test=True)
    with pytest.raises(KeyError, match="Invalid keys"):
        properties.validate_keys(["mesh"], model_test=False)
    properties.validate_keys(["model_name", "model_group", "run_mode", "bringup_status", "pcc"], model_test=True)
