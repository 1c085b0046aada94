"""The 7B decode step's estimated per-chip cost, read from its compiled TTNN module (``tenstorrent/step_cost.py``).

For every mesh and target, batch 1 and 8, bf16 and ``bfp_bf8`` weights (``experimental_weight_dtype``):
the DRAM bytes a step reads and writes per chip and the bytes its collectives move, from compiles at 1
and 2 decoder layers extrapolated to 28, turned into milliseconds per token from the chip's DRAM and link
bandwidth. Printed as a table next to tt-metal's hand-written Qwen2.5-7B on an n300 (an estimate from
the program's bytes, never a measured speed) and written to reports/ttnn/step_cost.json.
"""

from __future__ import annotations

import json
import os

import pytest

from .synthetic.random_checkpoint import GEOMETRY_7B, geometry_config
from .tenstorrent.ttnn import audit as ttnn_audit, step_cost as sc
from .tenstorrent.compile.jobs import Job, run_all
from .tenstorrent.compile.targets import TARGETS, find_descriptor
from .testing.reports import write_perf_report
from .testing.tt_workers import add_jobs, worker_python

pytestmark = [pytest.mark.tt_compile, pytest.mark.cpu]

PROMPT, NEW_TOKENS = 512, 3584  # a 4096-slot cache (the default max_cache_length), as the memory budgets
BATCHES = (1, 8)
WEIGHTS = {"bf16": (), "bfp_bf8": (("experimental_weight_dtype", "bfp_bf8"),)}
LAYERS = (1, 2)
# tt-metal's hand-written Qwen2.5-7B on an n300 (two Wormhole chips), bfp8 MLP weights: its PERF.md
TT_METAL_N300_TOKENS_PER_S_PER_USER = 24.6
CASES = [(mesh, t.name) for t in TARGETS for mesh in t.meshes()]
# the decode step's formulations weighed against each other (docs/fused_attention.md): tt-mlir's level 0 (the
# default: the plain formulation), level 1 with the plain formulation, and level 1 with the fused kernels; on the
# Blackhole targets, where level 1 compiles here
FORMULATIONS = {"level0": ((), None), "level1-plain": ((("optimization_level", "1"),), "plain"),
                "level1-fused": ((("optimization_level", "1"),), "fused")}
FUSED_CASES = (((1, 8), "blackhole_8xp150"), ((1, 32), "blackhole_galaxy"))
# level 1 with the plain formulation compiles in minutes per 7B layer count (tt-metal's op model checks its
# 40-odd ops), so it is compared on request: QWEN2_5_STEP_COST_PLAIN_LEVEL1=1 (docs/fused_attention.md has its row)
COMPARED = tuple(f for f in FORMULATIONS
                 if f != "level1-plain" or os.environ.get("QWEN2_5_STEP_COST_PLAIN_LEVEL1") == "1")


def _job(mesh, batch, weights, layers, formulation="level0"):
    options, attention = FORMULATIONS[formulation]
    return Job(GEOMETRY_7B, mesh, programs=(("decode_step", "bfloat16", PROMPT, NEW_TOKENS),), layers=layers,
               batch=batch, keep_ttnn=True, compiler_options=WEIGHTS[weights] + options, attention=attention)


@pytest.fixture(scope="session")
def step_cost_modules(request, tmp_path_factory):
    python, _, dirs = worker_python(request.config)
    plan = {}
    selected = {item.originalname for item in request.session.items}
    for mesh, target in CASES:
        t = next(x for x in TARGETS if x.name == target)
        jobs = []
        if "test_7b_decode_step_cost_per_chip" in selected:
            jobs += [_job(mesh, b, w, n) for b in BATCHES for w in WEIGHTS for n in LAYERS]
        if "test_7b_fused_decode_step_cost" in selected and (mesh, target) in FUSED_CASES:
            jobs += [_job(mesh, b, "bf16", n, f) for b in BATCHES for n in LAYERS for f in COMPARED]
        add_jobs(plan, t, dirs, jobs)
    return {"dirs": dirs, "targets": run_all(python, plan, str(tmp_path_factory.mktemp("step_cost")),
                                             str(request.config.rootpath))}


def _cost(results, mesh, target, batch, weights, layers, formulation="level0", ops=False):
    got = results["targets"][target]
    assert "failed" not in got, f"the compile worker for {target} failed: {got['failed']}"
    job = _job(mesh, batch, weights, layers, formulation)
    row = got["jobs"][job.id][f"decode_step/bfloat16/p{PROMPT}n{NEW_TOKENS}"]
    assert row["ok"], f"{job.id} did not compile for {target}:\n{row.get('error')}"
    with open(os.path.join(got["out_dir"], f"{job.id}.decode_step.bfloat16.p{PROMPT}n{NEW_TOKENS}.ttnn.mlir")) as f:
        text = f.read()
    if ops:
        return sc.step_cost(text), sc.arch_of(text), row["seconds"], ttnn_audit.histogram(ttnn_audit.main_function(text))
    return sc.step_cost(text), sc.arch_of(text), row["seconds"]


@pytest.mark.large
def test_7b_decode_step_cost_per_chip(step_cost_modules, request):
    """Prints the estimated per-token table; bfp_bf8 weights make a step read at least 10% fewer bytes than bf16
    (the weights' share shrinks to 1088 / 2048), the collectives move the same bytes, every estimate is a
    positive time."""
    layers = geometry_config(GEOMETRY_7B).num_hidden_layers
    rows, lines = [], []
    header = (f"{'mesh / target / batch / weights':44} {'read GB':>8} {'write GB':>8} {'links MB':>9} {'ms/tok':>8} "
              f"{'tok/s/u':>8}  (estimate from the program's bytes, per chip)")
    for mesh, target in CASES:
        t = next(x for x in TARGETS if x.name == target)
        if find_descriptor(t, step_cost_modules["dirs"]) is None:
            continue
        for batch in BATCHES:
            per = {}
            for weights in WEIGHTS:
                one, arch, _ = _cost(step_cost_modules, mesh, target, batch, weights, 1)
                two, _, _ = _cost(step_cost_modules, mesh, target, batch, weights, 2)
                full = sc.extrapolate(one, two, layers)
                est = sc.estimate(full, arch)
                per[weights] = full
                label = f"{mesh[0]}x{mesh[1]} {target} b{batch} {weights}"
                lines.append(sc.format_row(label, full, est))
                rows.append({"mesh": f"{mesh[0]}x{mesh[1]}", "target": target, "batch": batch, "weights": weights,
                             "arch": arch, **full, **est, "per_layer_read_bytes": two["dram_read_bytes"] -
                             one["dram_read_bytes"], "per_layer_link_bytes": two["link_bytes"] - one["link_bytes"]})
                assert est["seconds"] > 0
            # the weights' share shrinks to 1088 / 2048; the KV cache and activations stay bf16
            assert per["bfp_bf8"]["dram_read_bytes"] < 0.9 * per["bf16"]["dram_read_bytes"], (mesh, target, per)
            assert per["bfp_bf8"]["link_bytes"] == per["bf16"]["link_bytes"], (mesh, target, per)
    assert rows, "no target had a system descriptor"
    print("\n7B decode step, 28 layers, 4096-slot cache:\n" + header + "\n" + "\n".join(lines) +
          f"\ntt-metal's Qwen2.5-7B on an n300 (measured, its PERF.md): {TT_METAL_N300_TOKENS_PER_S_PER_USER} tok/s/user")
    out_dir = os.path.join(str(request.config.rootpath), "reports", "ttnn")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "step_cost.json"), "w") as f:
        json.dump({"estimate": "bytes read from the compiled TTNN program over DRAM and link bandwidth; not measured",
                   "tt_metal_n300_tokens_per_s_per_user": TT_METAL_N300_TOKENS_PER_S_PER_USER, "rows": rows}, f,
                  indent=1)
    write_perf_report(request.config, request.node.nodeid, {"step_cost": rows})


@pytest.mark.large
def test_7b_fused_decode_step_cost(step_cost_modules, request):
    """The fused decode step (level 1) against the default (level 0, the plain formulation), and against the plain one
    at level 1 on request (COMPARED), on 1x8 and 1x32 Blackhole, batch 1 and 8: bytes read and written, link bytes,
    TTNN ops per layer and the estimated tokens/s/user, printed side by side. The fused step reads fewer bytes
    than each plain one (no float32 scores through DRAM), moves the same link bytes, and runs fewer ops per layer."""
    layers = geometry_config(GEOMETRY_7B).num_hidden_layers
    rows, lines = [], []
    header = (f"{'mesh / target / batch / formulation':44} {'read GB':>8} {'write GB':>8} {'links MB':>9} {'ms/tok':>8} "
              f"{'tok/s/u':>8} {'ops/layer':>9}  (estimate from the program's bytes, per chip)")
    for mesh, target in FUSED_CASES:
        t = next(x for x in TARGETS if x.name == target)
        if find_descriptor(t, step_cost_modules["dirs"]) is None:
            continue
        for batch in BATCHES:
            per = {}
            for formulation in COMPARED:
                one, arch, _, h1 = _cost(step_cost_modules, mesh, target, batch, "bf16", 1, formulation, ops=True)
                two, _, seconds, h2 = _cost(step_cost_modules, mesh, target, batch, "bf16", 2, formulation, ops=True)
                full = sc.extrapolate(one, two, layers)
                est = sc.estimate(full, arch)
                ops = ttnn_audit.per_layer(h2, 2, h1, 1)
                per[formulation] = dict(full, ops_per_layer=sum(ops.values()))
                lines.append(sc.format_row(f"{mesh[0]}x{mesh[1]} {target} b{batch} {formulation}", full, est)
                             + f" {sum(ops.values()):9g}")
                rows.append({"mesh": f"{mesh[0]}x{mesh[1]}", "target": target, "batch": batch,
                             "formulation": formulation, "arch": arch, **full, **est, "ops_per_layer": ops,
                             "compile_seconds_2_layers": seconds})
            fused = per["level1-fused"]
            for plain in (per[f] for f in COMPARED if f != "level1-fused"):
                assert fused["dram_read_bytes"] < plain["dram_read_bytes"], (mesh, batch, per)
                assert fused["link_bytes"] == plain["link_bytes"], (mesh, batch, per)
                assert fused["ops_per_layer"] < plain["ops_per_layer"], (mesh, batch, per)
    assert rows, "no Blackhole target had a system descriptor"
    print("\n7B decode step, 28 layers, 4096-slot cache, by formulation:\n" + header + "\n" + "\n".join(lines))
    out_dir = os.path.join(str(request.config.rootpath), "reports", "ttnn")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "step_cost_fused.json"), "w") as f:
        json.dump({"estimate": "bytes read from the compiled TTNN program over DRAM and link bandwidth; not measured",
                   "rows": rows}, f, indent=1)
    write_perf_report(request.config, request.node.nodeid, {"step_cost_fused": rows})


HAND_MODULE = '''#dram = #ttnn.buffer_type<dram>
#l1 = #ttnn.buffer_type<l1>
#w = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <1x1>, memref<2x2x!ttcore.tile<32x32, bf16>, #dram>, <interleaved>>
#x = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <1x1>, memref<1x2x!ttcore.tile<32x32, bf16>, #dram>, <interleaved>>
#s = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <1x1>, memref<1x2x!ttcore.tile<32x32, bf16>, #l1>, <interleaved>>
module @m attributes {ttcore.meshes = #ttcore.meshes<[<"mesh" = 1x4>]>} {
  func.func public @main(%arg0: tensor<32x64xbf16, #x>, %arg1: tensor<64x64xbf16, #w>) -> tensor<32x64xbf16, #x> {
    %0 = "ttnn.matmul"(%arg0, %arg1) <{transpose_a = false, transpose_b = false}> : (tensor<32x64xbf16, #x>, tensor<64x64xbf16, #w>) -> tensor<32x64xbf16, #s>
    %1 = "ttnn.all_reduce"(%0) <{cluster_axis = 1 : ui32, reduce_type = #ttcore.reduce_type<sum>}> : (tensor<32x64xbf16, #s>) -> tensor<32x64xbf16, #x>
    return %1 : tensor<32x64xbf16, #x>
  }
}
'''


def test_step_cost_counts_dram_operands_and_ring_bytes():
    """A matmul reading an activation (2 tiles) and a weight (4 tiles) from DRAM into L1, then an all-reduce over
    4 chips writing DRAM: 6 tiles read, 2 written, and 2 (n - 1) / n of the 2-tile tensor over the links."""
    cost = sc.step_cost(HAND_MODULE)
    tile = 32 * 32 * 2
    assert cost["dram_read_bytes"] == 6 * tile
    assert cost["dram_written_bytes"] == 2 * tile
    assert cost["link_bytes"] == int(2 * tile * 2 * 3 / 4)
    est = sc.estimate(cost, "wormhole")
    assert est["seconds"] == pytest.approx(8 * tile / 288e9 + cost["link_bytes"] / 12.5e9)
