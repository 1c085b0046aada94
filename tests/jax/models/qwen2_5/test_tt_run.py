"""What tt-mlir compiled runs in the TTNN executor: the ``tt-run`` command and the op kinds of every program.

Every program of the suite (both random geometries, every mesh on a target of its size) is compiled for a
Tenstorrent target in compile-only mode (``tenstorrent/compile/worker.py``, its TTNN module kept); each op kind
found there must have an op-level case (``test_ttnn_ops.py``). ``tt-run`` compiles, executes, dumps and replays
a module from the command line; the 7B-width forward is an opt-in check at the full widths.

The model-level parity of the compiled programs (``forward`` against PyTorch in float32 and bfloat16, greedy
generation, GSM8K) is the suite's own tests run on the emulated platform (``--platform tt-emulated``, every
program compiled by tt-mlir and executed here; ``.ci/run``'s emulated stage, docs/emulated.md).

Needs a Tenstorrent plugin for the compiles (skips naming the install command without one); the
execution runs in this venv.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from . import load_model
from .synthetic import random_checkpoint as rc
from .tenstorrent.compile import programs
from .tenstorrent.executor import runner
from .tenstorrent.ttnn.module import parse
from .tenstorrent.compile.op_cases import CASES, CONTROL_COVERED
from .tenstorrent.compile.jobs import Job, run_all
from .tenstorrent.compile.targets import TARGETS, find_descriptor
from .testing.meshes import build_mesh
from .testing.parity import BF16_MIN_PCC, F32_REL_TOL, left_padded_batch, logits_report
from .testing.reports import write_perf_report
from .testing.tt_workers import add_jobs, worker_python

pytestmark = [pytest.mark.tt_compile, pytest.mark.cpu]

# (mesh, target) of the op-kind check: one chip, a row of 8 Blackhole chips, and the 8x4 Galaxy (collectives over
# both mesh axes). 2x4 on the Wormhole LLMBox and 1x32 run every program in the tt-emulated stage of .ci/run, where
# an op kind the executor lacks fails its test.
RUN_TARGETS = (((1, 1), "blackhole_p150"), ((1, 8), "blackhole_8xp150"), ((8, 4), "blackhole_galaxy"))
BATCH, PROMPT, NEW_TOKENS = 8, 32, 32  # the compiled shapes: prompts of the 32 bucket, a 64-position cache
FORWARD = (("forward", "float32"), ("forward", "bfloat16"))
GENERATION = (("prefill", "float32"), ("decode_step", "float32"), ("prefill", "bfloat16"),
              ("decode_step", "bfloat16"))
# every program the suite compiles (tenstorrent/jobs.PROGRAMS) is kept for the op-coverage check
GEOMETRY_PROGRAMS = {"gqa28x4": FORWARD + GENERATION + (("generate_loop", "bfloat16"), ("forced_decode", "bfloat16")),
                     "tied6x2": FORWARD + GENERATION[2:] + (("generate_loop", "bfloat16"),
                                                            ("forced_decode", "bfloat16"))}


def _job(geometry, mesh):
    return Job(geometry, mesh, programs=GEOMETRY_PROGRAMS[geometry], batch=BATCH, keep_ttnn=True)


@pytest.fixture(scope="session")
def tt_run_modules(request, tmp_path_factory):
    """target -> worker results (with ``out_dir`` holding every program's TTNN module)."""
    config = request.config
    python, _, dirs = worker_python(config)
    plan = {}
    for mesh, target in RUN_TARGETS:
        t = next(t for t in TARGETS if t.name == target)
        add_jobs(plan, t, dirs, [_job(g, mesh) for g in GEOMETRY_PROGRAMS])
    base = str(tmp_path_factory.mktemp("tt_run"))
    return {"dirs": dirs, "targets": run_all(python, plan, base, str(config.rootpath))}


def _module(results, target, geometry, mesh, program, dtype) -> str:
    t = next(t for t in TARGETS if t.name == target)
    if find_descriptor(t, results["dirs"]) is None:
        pytest.skip(f"no system descriptor for {target} ({t.system}) in {results['dirs']}; add its directory "
                    f"with --tt-system-descs DIR (on the project machines: ../shared/tt_system_descs)")
    got = results["targets"][target]
    assert "failed" not in got, f"the compile worker for {target} failed: {got['failed']}"
    job = _job(geometry, mesh)
    row = got["jobs"][job.id][f"{program}/{dtype}"]
    assert row["ok"], f"{job.id} {program}/{dtype} did not compile for {target}:\n{row.get('error')}"
    with open(os.path.join(got["out_dir"], f"{job.id}.{program}.{dtype}.ttnn.mlir")) as f:
        return f.read()


def _bind(model, text, program):
    lowered = programs.lower(model, program, batch=BATCH, prompt=PROMPT, new_tokens=NEW_TOKENS)
    return runner.bind(text, lowered, program)


def _report(request, figures):
    for key, value in figures.items():
        request.node.user_properties.append((key, json.dumps(value) if isinstance(value, (dict, list)) else value))
    write_perf_report(request.config, request.node.nodeid, figures)


def test_every_op_kind_of_the_suite_has_an_op_test(tt_run_modules, record_property):
    """The op kinds of every compiled program (both geometries, every program, on 1x1, 1x8 and 8x4 on their
    Blackhole targets) each have an op-level case (``test_ttnn_ops.py``, ``executor/op_cases.py``)."""
    kinds, where = {}, {}
    for target, got in tt_run_modules["targets"].items():
        if "failed" in got:
            pytest.fail(f"the compile worker for {target} failed: {got['failed']}")
        for name in sorted(os.listdir(got["out_dir"])):
            if not name.endswith(".ttnn.mlir"):
                continue
            with open(os.path.join(got["out_dir"], name)) as f:
                module = parse(f.read())
            for kind, count in module.op_kinds().items():
                short = kind.split(".", 1)[1]
                kinds[short] = kinds.get(short, 0) + count
                where.setdefault(short, f"{target}/{name}")
    assert len(where) > 30, f"too few op kinds found: {sorted(kinds)}"
    covered = {k for case in CASES.values() for k in case.covers} | set(CONTROL_COVERED)
    missing = sorted(set(kinds) - covered)
    record_property("ttnn_op_kinds", json.dumps(sorted(kinds)))
    print(f"\n{len(kinds)} TTNN op kinds in the suite's compiled programs: {', '.join(sorted(kinds))}")
    assert not missing, "op kinds without an op-level test: " + ", ".join(f"{k} (in {where[k]})" for k in missing)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def _tt_run(args, timeout=600):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run([sys.executable, "-m", "tests.jax.models.qwen2_5", "tt-run"] + args, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_tt_run_command_compiles_runs_and_replays(checkpoint_factory, tmp_path, request):
    """``tt-run --program forward`` writes the full-vocabulary logits and the report; the module it dumped,
    replayed with ``--ttnn-module``, gives the same logits."""
    from .tenstorrent.compile.jobs import tt_python

    python, how = tt_python(request.config.getoption("--tt-python"), ROOT)
    if python is None:
        pytest.skip(how)
    path, torch_model = checkpoint_factory("tied6x2")
    ids, mask = left_padded_batch(torch_model.config.vocab_size, batch=2, seq=12)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", mask)
    common = ["--model-path", path, "--mesh", "1x1", "--target", "blackhole_p150", "--program", "forward",
              "--dtype", "float32", "--input-ids", str(tmp_path / "ids.npy"), "--attention-mask",
              str(tmp_path / "mask.npy")]
    first = _tt_run(common + ["--out", str(tmp_path / "a.npy"), "--json", str(tmp_path / "a.json"),
                              "--dump-ttnn", str(tmp_path / "ttnn")])
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    logits = np.load(tmp_path / "a.npy")
    assert logits.shape == (2, 12, torch_model.config.vocab_size) and logits.dtype == np.float32
    report = logits_report(logits, rc.hf_logits(torch_model, ids, mask), mask == 1)
    assert report["rel_diff"] <= F32_REL_TOL, report
    meta = json.loads((tmp_path / "a.json").read_text())
    assert meta["ops_executed"]["ttnn.matmul"] + meta["ops_executed"].get("ttnn.linear", 0) > 0
    module = tmp_path / "ttnn" / "forward.float32.ttnn.mlir"
    again = _tt_run(common + ["--out", str(tmp_path / "b.npy"), "--json", str(tmp_path / "b.json"),
                              "--ttnn-module", str(module)])
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), logits)
    assert json.loads((tmp_path / "b.json").read_text())["modules"]["forward"]["sha256"] == \
        meta["modules"]["forward"]["sha256"]


def test_tt_run_generates_with_the_fused_kernels_at_level_1(checkpoint_factory, tmp_path, request):
    """At optimization level 1 a bfloat16 model's prefill and decode step hold tt-metal's fused SDPA, SDPA-decode and
    RoPE kernels, and ``tt-run --program generate`` runs them: the report names the fused formulation and counts
    the kernels it executed."""
    from .tenstorrent.compile.jobs import tt_python

    python, how = tt_python(request.config.getoption("--tt-python"), ROOT)
    if python is None:
        pytest.skip(how)
    path, torch_model = checkpoint_factory("gqa28x4")
    ids, mask = left_padded_batch(torch_model.config.vocab_size, batch=2, seq=12)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", mask)
    done = _tt_run(["--model-path", path, "--mesh", "1x1", "--target", "blackhole_p150", "--program", "generate",
                    "--dtype", "bfloat16", "--max-new-tokens", "6", "--tt-optimization-level", "1",
                    "--input-ids", str(tmp_path / "ids.npy"), "--attention-mask", str(tmp_path / "mask.npy"),
                    "--out", str(tmp_path / "t.npy"), "--json", str(tmp_path / "t.json")])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert np.load(tmp_path / "t.npy").shape == (2, 6)
    meta = json.loads((tmp_path / "t.json").read_text())
    assert meta["attention"] == "fused", meta
    executed = meta["ops_executed"]
    for kernel in ("scaled_dot_product_attention", "scaled_dot_product_attention_decode", "rotary_embedding"):
        assert executed.get(f"ttnn.{kernel}", 0) > 0, (kernel, executed)


@pytest.mark.parametrize("extra,message", [
    (["--program", "generate", "--ttnn-module", "x.mlir"], "--ttnn-module: only with --program forward"),
    (["--program", "forward", "--mesh", "1x32"], "does not fit blackhole_8xp150"),
    (["--program", "forward", "--target", "nowhere"], "'nowhere' is not one of"),
    (["--program", "forward", "--arithmetic", "ideal"], "argument --arithmetic: invalid choice: 'ideal'"),
    (["--program", "forward", "--ttnn-module", "x.mlir", "--tt-optimization-level", "1"],
     "the --tt-* compile options do not apply to a module that is not compiled"),
])
def test_tt_run_usage_errors_are_one_line(extra, message, checkpoint_factory, tmp_path):
    path, _ = checkpoint_factory("tied6x2")
    np.save(tmp_path / "ids.npy", np.ones((2, 5), np.int32))
    args = ["--model-path", path, "--mesh", "2x4", "--target", "blackhole_8xp150", "--input-ids",
            str(tmp_path / "ids.npy"), "--out", str(tmp_path / "o.npy")]
    for i in range(0, len(extra), 2):  # later options override the defaults above
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i:i + 2]
    proc = _tt_run(args, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# Qwen2.5-7B's widths with one decoder layer: the full vocabulary, hidden size, MLP and 28/4 heads
WIDTHS_7B = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=1,
                 num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False, config_style="v4",
                 rms_norm_eps=1e-6, rope_theta=1_000_000.0)
OPT_IN_7B = "QWEN2_5_TT_RUN_7B"


@pytest.mark.large
@pytest.mark.parametrize("mesh_shape,target", [pytest.param((1, 8), "blackhole_8xp150", id="mesh_1x8-blackhole_8xp150"),
                                               pytest.param((1, 32), "blackhole_galaxy",
                                                            id="mesh_1x32-blackhole_galaxy")])
def test_compiled_forward_at_7b_widths_matches_pytorch_bf16(mesh_shape, target, request, tmp_path):
    """The compiled bfloat16 ``forward`` at the full Qwen2.5-7B widths (one decoder layer, vocabulary 152064),
    executed chip by chip, against PyTorch in bfloat16: PCC at least ``BF16_MIN_PCC``. A 5.3 GB checkpoint
    and about 16 GB of memory: opt-in."""
    if not os.environ.get(OPT_IN_7B):
        pytest.skip(f"the 7B-width executor run builds a 5.3 GB checkpoint and needs about 16 GB of memory: "
                    f"set {OPT_IN_7B}=1 to run it")
    import torch

    python, _, dirs = worker_python(request.config)
    t = next(t for t in TARGETS if t.name == target)
    if find_descriptor(t, dirs) is None:
        pytest.skip(f"no system descriptor for {target} in {dirs}")
    path, torch_model = rc.build_checkpoint(str(tmp_path / "ckpt"), WIDTHS_7B, seed=7)
    ids, mask = left_padded_batch(WIDTHS_7B["vocab_size"], batch=BATCH, seq=PROMPT)
    torch_model = torch_model.to(torch.bfloat16)
    ref = rc.hf_logits(torch_model, ids, mask)
    del torch_model
    with open(os.path.join(path, "config.json")) as f:
        config = f.read()
    job = Job("qwen2_5_7b_widths_1layer", mesh_shape, programs=(("forward", "bfloat16"),), batch=BATCH, config=config,
              keep_ttnn=True)
    got = run_all(python, {target: (find_descriptor(t, dirs), [job])}, str(tmp_path / "tt"),
                  str(request.config.rootpath))[target]
    assert "failed" not in got, got["failed"]
    row = got["jobs"][job.id]["forward/bfloat16"]
    assert row["ok"], row.get("error")
    with open(os.path.join(got["out_dir"], f"{job.id}.forward.bfloat16.ttnn.mlir")) as f:
        text = f.read()
    model = load_model(path, build_mesh(request.config, mesh_shape), dtype="bfloat16")
    bound = _bind(model, text, "forward")
    out = bound(model.params, ids, mask)
    report = logits_report(out, ref, mask == 1)
    figures = {"mesh": "x".join(map(str, mesh_shape)), "tt_target": target, "dtype": "bfloat16",
               "checkpoint": "qwen2.5-7b widths, 1 layer", "pcc": report["pcc"], "rel_diff": report["rel_diff"],
               "top1_agreement": report["argmax_agreement"], "executor_seconds": round(bound.executor.seconds, 2),
               "compile_seconds": row["seconds"]}
    _report(request, figures)
    print(f"\nexecuted forward at 7B widths {figures['mesh']} on {target}: pcc {report['pcc']:.5f}, rel "
          f"{report['rel_diff']:.2e}, top-1 {report['argmax_agreement']:.3f}, executor {bound.executor.seconds:.1f}s")
    assert report["pcc"] >= BF16_MIN_PCC, report
