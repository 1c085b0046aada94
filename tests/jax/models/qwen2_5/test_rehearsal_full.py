"""Acceptance rehearsal, full-scale tier (``-m large``; about 20 minutes and 20 GiB of memory here):
the 28-layer bfloat16 synthetic Qwen2.5-7B-Instruct (15.2 GB) on fake CPU devices against
PyTorch, each in its own process (``rehearsal_full.py``).

Needs the checkpoint, built once (about 3 minutes)::

    python -m tests.jax.models.qwen2_5.synthetic --preset qwen2.5-7b-instruct --tokenizer DIR OUT
    pytest -m large -k rehearsal_full --rehearsal-checkpoint=OUT

Skipped without it (the default suite's rehearsal tier is ``test_rehearsal.py``).
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from .synthetic import rehearsal as rf
from .testing.meshes import MESH_PARAMS
from .gsm8k.evaluate import checkpoint_fingerprint
from .testing.parity import BF16_MIN_PCC, pcc

pytestmark = [pytest.mark.large, pytest.mark.nightly, pytest.mark.model_test, pytest.mark.gsm8k]

ENV_VAR = "QWEN2_5_REHEARSAL_CHECKPOINT"
MEMORY_BOUND = 1.25  # the loading process's peak RSS, as a multiple of the checkpoint's bytes
NEAR_TIE = 0.125     # a greedy divergence is a near-tie when PyTorch's top-2 logit gap there is at most this
FULL_MESHES = [p for p in MESH_PARAMS if p.id in ("mesh_1x8", "mesh_1x32")]
# each mesh id with its mesh's marks (llmbox, galaxy, ...), so that tt-xla's CI picks the runner that has it
FULL_MESH_IDS = [pytest.param(p.id, id=p.id, marks=p.marks) for p in FULL_MESHES]


@pytest.fixture(scope="module")
def full_checkpoint(request):
    path = request.config.getoption("--rehearsal-checkpoint") or os.environ.get(ENV_VAR)
    if not path:
        pytest.skip(f"the full-scale rehearsal needs a full-size synthetic checkpoint (15.2 GB): build it with "
                    f"python -m tests.jax.models.qwen2_5.synthetic --preset qwen2.5-7b-instruct --tokenizer DIR OUT "
                    f"and pass --rehearsal-checkpoint=OUT (or {ENV_VAR}=OUT)")
    if not os.path.isfile(os.path.join(path, "model.safetensors.index.json")):
        pytest.fail(f"--rehearsal-checkpoint {path} holds no model.safetensors.index.json")
    return path


def _run(kind, checkpoint, out, *extra):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the worker sets its own devices
    proc = subprocess.run([sys.executable, "-m", "tests.jax.models.qwen2_5", "rehearsal-worker", kind, checkpoint, out,
                           *extra], capture_output=True, text=True, env=env, timeout=3600)
    assert proc.returncode == 0, f"{kind} worker failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    with open(out) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def torch_result(full_checkpoint, request):
    """PyTorch bfloat16, cached on disk by the checkpoint's files (the 7B reference fits memory only alone)."""
    key = hashlib.sha256(json.dumps([checkpoint_fingerprint(full_checkpoint), rf.PROMPTS, rf.NEW_TOKENS])
                         .encode()).hexdigest()[:16]
    cache = os.path.join(request.config.getoption("--gsm8k-reference-cache"), f"rehearsal_full-{key}")
    os.makedirs(cache, exist_ok=True)
    out = os.path.join(cache, "torch.json")
    if not os.path.isfile(out) or request.config.getoption("--gsm8k-rerun-reference"):
        _run("torch", full_checkpoint, out, "--gsm8k-path", request.config.getoption("--gsm8k-path") or "")
    with open(out) as f:
        result = json.load(f)
    result["logits"] = np.load(out + ".logits.npy")
    return result


@pytest.fixture(scope="module")
def jax_results(full_checkpoint, request, tmp_path_factory):
    done = {}

    def get(mesh_id):
        if mesh_id not in done:
            out = str(tmp_path_factory.mktemp("rehearsal_full") / f"jax_{mesh_id}.json")
            result = _run("jax", full_checkpoint, out, "--mesh", mesh_id.split("_")[1],
                          "--gsm8k-path", request.config.getoption("--gsm8k-path") or "")
            result["logits"] = np.load(out + ".logits.npy")
            done[mesh_id] = result
        return done[mesh_id]

    return get


def _report(request, name, figures):
    out_dir = os.path.join(str(request.config.rootpath), "reports", "rehearsal_full")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(figures, f, indent=1, sort_keys=True)
    print(f"\n{name}: {json.dumps(figures, sort_keys=True)}")


@pytest.mark.parametrize("mesh_id", FULL_MESH_IDS)
def test_rehearsal_full_load_memory_and_throughput(mesh_id, jax_results, request):
    r = jax_results(mesh_id)
    figures = {"mesh": mesh_id, "model_gb": r["model_bytes"] / 1e9, "peak_rss_gb": r["peak_rss"] / 1e9,
               "peak_over_model": r["peak_rss"] / r["model_bytes"], "load_s": r["load_seconds"],
               "load_gb_per_s": r["load_gb_per_s"], "raw_read_gb_per_s": r["raw_read"]["gb_per_s"],
               "load_over_raw": r["load_gb_per_s"] / r["raw_read"]["gb_per_s"]}
    _report(request, f"load_{mesh_id}", figures)
    assert r["peak_rss"] <= MEMORY_BOUND * r["model_bytes"], figures


@pytest.mark.parametrize("mesh_id", FULL_MESH_IDS)
def test_rehearsal_full_logits_match_pytorch(mesh_id, jax_results, torch_result, request):
    r = jax_results(mesh_id)
    ours, ref = r["logits"], torch_result["logits"]
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    figures = {"mesh": mesh_id, "positions": int(ours.shape[0]), "pcc": pcc(ours, ref),
               "top1_agreement": float((ours.argmax(-1) == ref.argmax(-1)).mean()),
               "max_abs_diff": float(np.abs(ours - ref).max()), "logit_std": float(ref.std())}
    _report(request, f"logits_{mesh_id}", figures)
    assert figures["pcc"] >= BF16_MIN_PCC, figures


def first_divergence(ours, ref):
    """(row, step) of each row's first differing token, or None for identical rows."""
    out = []
    for row, (a, b) in enumerate(zip(ours, ref)):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        out.append((row, diff[0]) if diff else None)
    return out


@pytest.mark.parametrize("mesh_id", FULL_MESH_IDS)
def test_rehearsal_full_greedy_tokens_match_pytorch(mesh_id, jax_results, torch_result, request):
    r = jax_results(mesh_id)
    divergences = [d for d in first_divergence(r["tokens"], torch_result["tokens"]) if d]
    gaps = {f"row {row} step {step}": torch_result["step_gaps"][row][step] for row, step in divergences}
    figures = {"mesh": mesh_id, "rows": len(r["tokens"]), "new_tokens": rf.NEW_TOKENS,
               "identical_rows": len(r["tokens"]) - len(divergences), "first_divergence_gap": gaps}
    _report(request, f"greedy_{mesh_id}", figures)
    far = {k: g for k, g in gaps.items() if g > NEAR_TIE}
    assert not far, f"tokens diverge where PyTorch's top-2 gap exceeds {NEAR_TIE}: {far}"


def test_rehearsal_full_decode_seconds_per_step(jax_results, torch_result, request):
    r = jax_results("mesh_1x8")
    figures = {"jax_1x8_s_per_step": r["decode_seconds_per_step"],
               "torch_bf16_s_per_step": torch_result["decode_seconds_per_step"],
               "jax_over_torch": r["decode_seconds_per_step"] / torch_result["decode_seconds_per_step"],
               "batch": r["prompt_shape"][0], "prompt": r["prompt_shape"][1]}
    _report(request, "decode_seconds", figures)
    assert figures["jax_1x8_s_per_step"] > 0 and figures["torch_bf16_s_per_step"] > 0


def test_rehearsal_full_gsm8k_command(full_checkpoint, request, tmp_path):
    report = tmp_path / "gsm8k.json"
    cmd = [sys.executable, "-m", "tests.jax.models.qwen2_5.gsm8k", "--model-path", full_checkpoint, "--mesh", "1x8",
           "--samples", "2", "--max-new-tokens", "32", "--reference", "--rerun-reference", "--report", str(report)]
    if request.config.getoption("--gsm8k-path"):
        cmd += ["--gsm8k-path", request.config.getoption("--gsm8k-path")]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    print("\n" + proc.stdout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(report) as f:
        data = json.load(f)
    _report(request, "gsm8k_command", {"stdout": proc.stdout.strip().splitlines()[-5:],
                                       "identical": data["reference"]["identical_completions"],
                                       "problems": data["problems"], "tokenizer": data["tokenizer"]})
    assert data["problems"] == 2 and data["tokenizer"]["vocab"] == 151665
