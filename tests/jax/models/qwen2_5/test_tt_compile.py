"""Every program compiles with Tenstorrent's compiler (tt-mlir) for an LLMBox and a Galaxy,
and the compiled TTNN decode step keeps the Megatron structure.

No Tenstorrent hardware is needed: a Tenstorrent PJRT plugin compiles for a system described
by a descriptor file (``tt_targets.py``), one worker process per descriptor (``tt_jobs.py``,
``tt_compile.py``). Nothing runs on a chip, so these tests prove that tt-mlir accepts each
program for each target, not its numerics or its device memory.

Cases: every mesh on each target of its size (1x1 on one chip, 1x8 and 2x4 on 8-chip
LLMBox/LoudBox descriptors, 1x32 and 8x4 on the 32-chip Galaxy), for the suite's random
geometries, and for the full Qwen2.5-7B geometry (28 layers, vocabulary 152064, abstract
parameters) on 1x8 and 1x32. Each compiles ``programs.PROGRAMS`` (forward in float32 and
bfloat16; prefill, decode step, generate loop and teacher-forced decode in bfloat16).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Optional

import pytest

from .tenstorrent.ttnn import audit as ttnn_audit, filecheck
from .testing.meshes import MESH_PARAMS
from .testing import options
from .testing.reports import report_dir_for, write_perf_report
from .testing.tt_workers import add_jobs, compiler_options, worker_python
from .synthetic.random_checkpoint import GEOMETRY_7B, geometry_config
from .model.weights import hf_tensors
from .tenstorrent.compile.jobs import AUDITED, PROGRAMS, REGENERATE, Job, run_all, tt_python
from .tenstorrent.compile.targets import (COMMITTED_DIR, ENV_DIRS, TARGETS, find_descriptor, read_manifest, schema_hash,
                         search_dirs, sha256)

SMALL_GEOMETRIES = ("gqa28x4", "tied6x2")
FULL_MESHES = ((1, 8), (1, 32))  # where the 7B geometry is compiled
AUDIT_MESHES = ((1, 8), (1, 32))  # where the decode step's TTNN program is audited
HISTOGRAM_LAYERS = 1  # the 7B decode step is compiled again with this many layers (per-layer ops)
# TTNN ops per decoder layer in the decode step (deallocations not counted): 79 before the weights
# became parameters and the step was reformulated for tt-mlir, 39 now (docs/tenstorrent_compile.md,
# "Decode on Tenstorrent hardware"). A change that adds ops fails here and must say why.
MAX_OPS_PER_LAYER = 39
NO_PER_LAYER = ("to_layout", "rows_scatter", "permute")
_PATTERNS = filecheck.PATTERNS_DIR
# The fused decode step (optimization level 1, docs/fused_attention.md): each layer runs tt-metal's SDPA decode and
# RoPE kernels once, and at most this many other TTNN ops that compute or move data; the layout moves tt-mlir's
# optimizer inserts (LAYOUT_MOVES: the cache update's input to L1, the slot vector to row-major) are printed apart.
FUSED_MAX_OPS_PER_LAYER = 28
LAYOUT_MOVES = ("to_layout", "to_memory_config")
FUSED_KERNELS = ("scaled_dot_product_attention_decode", "rotary_embedding")
LEVEL1 = (("optimization_level", "1"),)
FUSED_PROGRAMS = (AUDITED, ("prefill", "bfloat16"))


@dataclasses.dataclass(frozen=True)
class Case:
    kind: str  # compile | collectives | histogram | descriptor | option
    target: str
    mesh: Optional[tuple] = None
    geometry: Optional[str] = None
    options: tuple = ()  # kind "option": the compile options it checks

    def jobs(self, options=()):
        """The compile jobs of the case with the session's tt-mlir options (``tt_workers.compiler_options``)."""
        if self.kind == "descriptor":
            return []
        if self.kind == "option":  # one option on the 7B decode step: options is ((key, value),)
            return [Job(self.geometry, self.mesh, programs=(AUDITED,), audit=True, compiler_options=self.options)]
        if self.kind == "fused":  # level 1: the decode step and the prefill, and the decode step with one layer
            return [Job(self.geometry, self.mesh, programs=FUSED_PROGRAMS, audit=True, keep_ttnn=True,
                        compiler_options=LEVEL1),
                    Job(self.geometry, self.mesh, programs=(AUDITED,), audit=True, layers=HISTOGRAM_LAYERS,
                        compiler_options=LEVEL1)]
        audit = self.mesh in AUDIT_MESHES
        jobs = [Job(self.geometry, self.mesh, audit=audit, compiler_options=options)]
        if self.kind == "histogram":
            jobs.append(Job(self.geometry, self.mesh, programs=(AUDITED,), audit=True, layers=HISTOGRAM_LAYERS,
                            compiler_options=options))
        return jobs


def _params(kind: str, geometries, meshes=None):
    out = []
    for mesh_param in MESH_PARAMS:
        shape = mesh_param.values[0]
        if meshes is not None and shape not in meshes:
            continue
        for target in TARGETS:
            if shape not in target.meshes():
                continue
            for geometry in geometries(shape):
                marks = (list(mesh_param.marks) + [pytest.mark.large] * (geometry == GEOMETRY_7B)
                         + [pytest.mark.galaxy_bh] * (target.name == "blackhole_galaxy"))
                out.append(pytest.param(Case(kind, target.name, shape, geometry), marks=marks,
                                        id=f"{mesh_param.id}-{target.name}-{geometry}"))
    return out


COMPILE_CASES = _params("compile", lambda s: SMALL_GEOMETRIES + ((GEOMETRY_7B,) if s in FULL_MESHES else ()))
COLLECTIVE_CASES = _params("collectives", lambda s: ("gqa28x4", GEOMETRY_7B), AUDIT_MESHES)
HISTOGRAM_CASES = _params("histogram", lambda s: (GEOMETRY_7B,), AUDIT_MESHES)

# The 7B decode step with one compile option each, on the 8- and 32-chip tensor-parallel meshes
# (level 0 and bf16 weights are every other case's; --tt-optimization-level etc. change those).
# (level 1 is test_ttnn_fused_decode_step's, on the same targets)
OPTIONS = {"bfp_bf8": (("experimental_weight_dtype", "bfp_bf8"),)}
OPTION_TARGETS = {(1, 8): "blackhole_8xp150", (1, 32): "blackhole_galaxy"}
# Level 1 compiles here on Blackhole descriptors only (the plugin packs no Wormhole toolchain for tt-metal's op model)
FUSED_CASES = [pytest.param(Case("fused", target, mesh, GEOMETRY_7B),
                            marks=[pytest.mark.large, pytest.mark.filecheck]
                            + list(next(p for p in MESH_PARAMS if p.values[0] == mesh).marks)
                            + [pytest.mark.galaxy_bh] * (target == "blackhole_galaxy"),
                            id=f"mesh_{mesh[0]}x{mesh[1]}-{target}-level1")
               for mesh, target in OPTION_TARGETS.items()]
OPTION_CASES = [pytest.param(Case("option", target, mesh, GEOMETRY_7B, OPTIONS[name]),
                             marks=[pytest.mark.large] + list(next(p for p in MESH_PARAMS if p.values[0] == mesh).marks),
                             id=f"mesh_{mesh[0]}x{mesh[1]}-{target}-{name}")
                for mesh, target in OPTION_TARGETS.items() for name in OPTIONS]

pytestmark = [pytest.mark.tt_compile, pytest.mark.cpu]


@pytest.fixture(scope="session")
def tt_compile_results(request, tmp_path_factory):
    """target -> worker results for every case the session selected (all workers run once)."""
    config = request.config
    python, how, dirs = worker_python(config)
    plan = {}
    for item in request.session.items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("tt_case")
        if isinstance(case, Case):
            add_jobs(plan, _target(case.target), dirs, case.jobs(compiler_options(config)))
    base = str(tmp_path_factory.mktemp("tt_compile"))
    keep_ir = options.get(config, "--serialize") or options.get(config, "--dump-irs")
    return {"python": python, "found_by": how, "dirs": dirs,
            "targets": run_all(python, plan, base, str(config.rootpath), keep_ir=keep_ir)}


def _target(name):
    return next(t for t in TARGETS if t.name == name)


def _target_results(case: Case, results) -> dict:
    if find_descriptor(_target(case.target), results["dirs"]) is None:
        pytest.skip(f"no system descriptor for {case.target} ({_target(case.target).system}) in {results['dirs']}; "
                    f"add a directory holding {_target(case.target).file_names[0]} with --tt-system-descs DIR "
                    f"or {ENV_DIRS}=DIR (on the project machines: ../shared/tt_system_descs)")
    got = results["targets"].get(case.target)
    assert got is not None, f"no worker ran for {case.target}"
    assert "failed" not in got, f"the compile worker for {case.target} failed: {got['failed']}"
    return got


def _job(case: Case, results, job: Job) -> dict:
    return _target_results(case, results)["jobs"][job.id]


def _ttnn(case: Case, results, job: Job) -> str:
    target = _target_results(case, results)
    row = target["jobs"][job.id][f"{AUDITED[0]}/{AUDITED[1]}"]
    assert row["ok"], f"{job.id} {AUDITED} did not compile:\n{row.get('error')}"
    with open(os.path.join(target["out_dir"], f"{job.id}.ttnn.mlir")) as f:
        return f.read()


def test_tt_compile(tt_case, tt_compile_results, record_property, request):
    """Each program of the public API compiles for the target; a failure shows tt-mlir's first error lines."""
    job = tt_case.jobs(compiler_options(request.config))[0]
    rows = _job(tt_case, tt_compile_results, job)
    assert sorted(rows) == sorted(f"{p}/{d}" for p, d in PROGRAMS), rows
    record_property("checkpoint", tt_case.geometry)
    record_property("mesh", "x".join(map(str, tt_case.mesh)))
    record_property("tt_target", tt_case.target)
    options = dict(compiler_options(request.config))
    record_property("tt_compiler_options", json.dumps(options, sort_keys=True))
    seconds = {name: row["seconds"] for name, row in rows.items()}
    for name, value in seconds.items():
        record_property(f"compile_seconds[{name}]", value)
    write_perf_report(request.config, request.node.nodeid, {"compile_seconds": seconds, "target": tt_case.target,
                                                            "tt_compiler_options": options})
    if options.get(request.config, "--serialize") or options.get(request.config, "--dump-irs"):
        out_dir = _target_results(tt_case, tt_compile_results)["out_dir"]
        keep = report_dir_for(request.config, "ir", request.node.nodeid)
        for name in os.listdir(out_dir):
            if name.startswith(job.id + ".") and name.endswith((".ttir.mlir", ".ttnn.mlir")):
                shutil.copyfile(os.path.join(out_dir, name), os.path.join(keep, name))
    print(f"\n{job.id} on {tt_case.target}: " + ", ".join(f"{n} {r['seconds']:.1f}s" for n, r in rows.items()))
    failed = {name: row["error"] for name, row in rows.items() if not row["ok"]}
    assert not failed, "\n\n".join(f"{name} failed to compile for {tt_case.target}:\n{err}"
                                   for name, err in failed.items())
    weights = len(list(hf_tensors(geometry_config(tt_case.geometry))))
    not_parameters = {name: row["argument_types"] for name, row in rows.items()
                      if row.get("argument_types", {}).get("parameter") != weights}
    assert not not_parameters, f"tt-mlir did not get all {weights} weights as parameters: {not_parameters}"


@pytest.mark.filecheck
def test_ttnn_decode_step_collectives(tt_case, tt_compile_results, request):
    """The TTNN decode step holds 2 all-reduces (sums) per layer + the embedding's, the greedy pick's two
    all-gathers, and no other collective (pattern: filecheck/decode_step_collectives.ttnn.mlir)."""
    job = tt_case.jobs(compiler_options(request.config))[0]
    text = _ttnn(tt_case, tt_compile_results, job)
    layers = geometry_config(tt_case.geometry).num_hidden_layers
    with open(os.path.join(_PATTERNS, "decode_step_collectives.ttnn.mlir")) as f:
        filecheck.check(f.read(), text, {"ALL_REDUCES": 2 * layers + 1})


@pytest.mark.filecheck
def test_ttnn_decode_step_cache_update(tt_case, tt_compile_results, request):
    """Every layer writes its cache row in place in tile layout; no cache is converted or permuted
    (pattern: filecheck/decode_step_cache_update.ttnn.mlir)."""
    text = _ttnn(tt_case, tt_compile_results, tt_case.jobs(compiler_options(request.config))[0])
    layers = geometry_config(tt_case.geometry).num_hidden_layers
    with open(os.path.join(_PATTERNS, "decode_step_cache_update.ttnn.mlir")) as f:
        filecheck.check(f.read(), text, {"CACHE_WRITES": 2 * layers})


@pytest.mark.filecheck
def test_ttnn_decode_step_ops_per_layer(tt_case, tt_compile_results, record_property, request):
    """The 7B decode step's TTNN ops per decoder layer (28 layers against 1), printed and recorded:
    exactly 2 all-reduces per layer and no other collective."""
    full, one = tt_case.jobs(compiler_options(request.config))
    layers = geometry_config(tt_case.geometry).num_hidden_layers
    main_full = ttnn_audit.main_function(_ttnn(tt_case, tt_compile_results, full))
    main_one = ttnn_audit.main_function(_ttnn(tt_case, tt_compile_results, one))
    per = ttnn_audit.per_layer(ttnn_audit.histogram(main_full), layers,
                               ttnn_audit.histogram(main_one), HISTOGRAM_LAYERS)
    args = ttnn_audit.argument_types(main_full)
    summary = {"target": tt_case.target, "mesh": "x".join(map(str, tt_case.mesh)), "layers": layers,
               "ops_per_layer": per, "ops_per_layer_total": sum(per.values()),
               "main_ops_total": sum(ttnn_audit.histogram(main_full).values()),
               "main_argument_types": dict(args)}
    print(f"\n7B decode step, {summary['mesh']} on {tt_case.target}, per decoder layer: "
          f"{ttnn_audit.format_histogram(per)}; main arguments {dict(args)}")
    record_property("ttnn_ops_per_layer", json.dumps(per, sort_keys=True))
    write_perf_report(request.config, request.node.nodeid, summary)
    out_dir = os.path.join(str(request.config.rootpath), "reports", "ttnn")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"decode_step_7b_{summary['mesh']}_{tt_case.target}.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    assert per.get("all_reduce") == 2, per
    others = [c for c in ttnn_audit.COLLECTIVES if c != "all_reduce" and per.get(c)]
    assert not others, f"collectives other than all_reduce per layer: {others}"
    assert summary["ops_per_layer_total"] <= MAX_OPS_PER_LAYER, summary
    assert not [op for op in NO_PER_LAYER if per.get(op)], f"a layer re-lays out or permutes every step: {per}"
    weights = len(list(hf_tensors(geometry_config(tt_case.geometry))))
    assert args.get("parameter") == weights, f"weights must reach tt-mlir as parameters: {dict(args)}"


def test_ttnn_fused_decode_step(tt_case, tt_compile_results, record_property, request):
    """At optimization level 1 the 7B decode step reaches tt-metal's fused kernels: per decoder layer one
    ``scaled_dot_product_attention_decode``, one ``rotary_embedding``, exactly 2 all-reduces and no other collective,
    no permute, and at most FUSED_MAX_OPS_PER_LAYER other ops besides the optimizer's layout moves; the prefill holds
    one ``scaled_dot_product_attention`` per layer. The histogram and compile seconds are printed and recorded."""
    full, one = tt_case.jobs()
    layers = geometry_config(tt_case.geometry).num_hidden_layers
    rows = _job(tt_case, tt_compile_results, full)
    failed = {k: r.get("error") for k, r in rows.items() if not r["ok"]}
    assert not failed, f"level 1 did not compile: {failed}"
    assert {r["attention"] for r in rows.values()} == {"fused"}, rows
    main_full = ttnn_audit.main_function(_ttnn(tt_case, tt_compile_results, full))
    main_one = ttnn_audit.main_function(_ttnn(tt_case, tt_compile_results, one))
    per = ttnn_audit.per_layer(ttnn_audit.histogram(main_full), layers,
                               ttnn_audit.histogram(main_one), HISTOGRAM_LAYERS)
    moves = {k: v for k, v in per.items() if k in LAYOUT_MOVES}
    others = sum(v for k, v in per.items() if k not in LAYOUT_MOVES)
    out_dir = _target_results(tt_case, tt_compile_results)["out_dir"]
    with open(os.path.join(out_dir, f"{full.id}.prefill.bfloat16.ttnn.mlir")) as f:
        prefill = ttnn_audit.histogram(ttnn_audit.main_function(f.read()))
    seconds = {k: r["seconds"] for k, r in rows.items()}
    summary = {"target": tt_case.target, "mesh": "x".join(map(str, tt_case.mesh)), "layers": layers,
               "tt_compiler_options": dict(LEVEL1), "ops_per_layer": per, "ops_per_layer_total": sum(per.values()),
               "layout_moves_per_layer": moves, "compile_seconds": seconds,
               "prefill_sdpa": prefill.get("scaled_dot_product_attention", 0)}
    print(f"\n7B decode step at level 1, {summary['mesh']} on {tt_case.target}, per decoder layer: "
          f"{ttnn_audit.format_histogram(per)} ({others} besides the layout moves {moves}); compile seconds "
          f"{seconds}; prefill: {summary['prefill_sdpa']} scaled_dot_product_attention")
    record_property("ttnn_ops_per_layer", json.dumps(per, sort_keys=True))
    write_perf_report(request.config, request.node.nodeid, summary)
    report_dir = os.path.join(str(request.config.rootpath), "reports", "ttnn")
    os.makedirs(report_dir, exist_ok=True)
    with open(os.path.join(report_dir, f"decode_step_7b_level1_{summary['mesh']}_{tt_case.target}.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    assert all(per.get(k) == 1 for k in FUSED_KERNELS), f"not one fused kernel each per layer: {per}"
    assert per.get("all_reduce") == 2, per
    assert not [c for c in ttnn_audit.COLLECTIVES if c != "all_reduce" and per.get(c)], per
    assert not per.get("permute"), f"a layer permutes every step: {per}"
    assert others <= FUSED_MAX_OPS_PER_LAYER, summary
    assert summary["prefill_sdpa"] == layers, f"the prefill's attention is not fused in every layer: {prefill}"


def test_7b_decode_step_compiles_with_option(tt_case, tt_compile_results, record_property, request):
    """The 7B decode step compiles with ``bfp_bf8`` weights (whose weight tensors then hold block-float tiles);
    compile seconds and the per-call op count are printed."""
    (job,) = tt_case.jobs()
    row = _job(tt_case, tt_compile_results, job)[f"{AUDITED[0]}/{AUDITED[1]}"]
    assert row["ok"], f"{job.id} did not compile:\n{row.get('error')}"
    text = _ttnn(tt_case, tt_compile_results, job)
    options = dict(tt_case.options)
    ops = sum(ttnn_audit.histogram(ttnn_audit.main_function(text)).values())
    record_property("tt_compiler_options", json.dumps(options, sort_keys=True))
    record_property("compile_seconds", row["seconds"])
    write_perf_report(request.config, request.node.nodeid, {"compile_seconds": row["seconds"], "main_ops": ops,
                                                            "tt_compiler_options": options, "target": tt_case.target})
    print(f"\n7B decode step {options} on {tt_case.target} mesh {tt_case.mesh}: {row['seconds']:.1f}s, {ops} ops")
    if options.get("experimental_weight_dtype") == "bfp_bf8":
        assert "!ttcore.tile<32x32, bfp_bf8>" in text, "no weight became a bfp_bf8 tensor"


@pytest.mark.parametrize("tt_case", [pytest.param(Case("descriptor", t.name), id=t.name)
                                     for t in TARGETS if t.name in ("blackhole_p150", "blackhole_8xp150",
                                                                    "blackhole_galaxy")])
def test_tt_plugin_accepts_committed_descriptor(tt_case, tt_compile_results):
    """The installed plugin opens each committed descriptor as the chips it describes."""
    got = _target_results(tt_case, tt_compile_results)
    assert got["devices"] == _target(tt_case.target).chips, (
        f"{tt_case.target}: the plugin opened {got['devices']} devices; regenerate with {REGENERATE}")


def pytest_generate_tests(metafunc):  # noqa: D401 - pytest hook, module-local
    cases = {"test_tt_compile": COMPILE_CASES, "test_ttnn_decode_step_collectives": COLLECTIVE_CASES,
             "test_7b_decode_step_compiles_with_option": OPTION_CASES,
             "test_ttnn_fused_decode_step": FUSED_CASES,
             "test_ttnn_decode_step_cache_update": COLLECTIVE_CASES,
             "test_ttnn_decode_step_ops_per_layer": HISTOGRAM_CASES}.get(metafunc.function.__name__)
    if cases is not None:
        metafunc.parametrize("tt_case", cases)


@pytest.mark.cpu
def test_committed_descriptors_match_manifest():
    """Every committed descriptor is the file its manifest names (sha256, schema hash)."""
    manifest = read_manifest()
    assert manifest["descriptors"], "manifest lists no descriptor"
    for target, entry in manifest["descriptors"].items():
        path = os.path.join(COMMITTED_DIR, entry["file"])
        assert os.path.isfile(path), f"{path} is missing; regenerate with {REGENERATE}"
        assert sha256(path) == entry["sha256"], f"{path} differs from its manifest entry; regenerate with {REGENERATE}"
        assert schema_hash(path) == entry["schema_hash"] == manifest["schema_hash"], target
