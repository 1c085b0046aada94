"""Device memory, read from the compiled TTNN programs: the Qwen2.5-7B fits every chip of an LLMBox
and a Galaxy with every program set the suite and the acceptance run keep alive, with 10% headroom.

The budget compiles (compile-only mode, one worker per descriptor as the compile checks) are the 7B
geometry at 1 and 2 decoder layers, batch 8, a 4096-slot cache; ``memory_budget.py`` composes the
28-layer budget per program set, modelling the tt-mlir runtime's process-wide const-eval cache.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys

import jax
import pytest

from .model.layout import TPLayout
from .model.partitioning import partition_specs
from .model.weights import param_shapes
from .synthetic.random_checkpoint import GEOMETRY_7B, geometry_config
from .tenstorrent.memory import budget as mb
from .tenstorrent.ttnn import memory as ttnn_memory
from .tenstorrent.compile.jobs import Job, run_all, tt_python
from .tenstorrent.memory.command import CAPACITY_STANDINS
from .tenstorrent.compile.targets import TARGETS, find_descriptor, search_dirs
from .testing.reports import write_perf_report
from .testing.tt_workers import add_jobs, worker_python

pytestmark = [pytest.mark.tt_compile, pytest.mark.cpu]

ROOT = pathlib.Path(__file__).resolve().parents[4]
# (mesh, target): every mesh on the chips it runs on; wormhole_galaxy is the Galaxy's programs against a
# Wormhole chip's DRAM (no Wormhole Galaxy descriptor here: memory_command.CAPACITY_STANDINS)
CASES = [((1, 8), "blackhole_8xp150"), ((1, 8), "wormhole_n300-llmbox"), ((2, 4), "blackhole_8xp150"),
         ((2, 4), "wormhole_n300-llmbox"), ((1, 32), "blackhole_galaxy"), ((1, 32), "wormhole_galaxy"),
         ((8, 4), "blackhole_galaxy"), ((8, 4), "wormhole_galaxy")]
ONE_CHIP = [((1, 1), "blackhole_p150"), ((1, 1), "wormhole_n150")]
FULL_CHECK = ((1, 8), "blackhole_8xp150")  # where the 28-layer extrapolation is checked against a full compile
# optimization level 1 (the fused attention, docs/fused_attention.md): the host-loop generation's programs on the
# Blackhole targets of the tensor-parallel meshes (level 1 compiles here on Blackhole descriptors only)
LEVEL1 = (("optimization_level", "1"),)
LEVEL1_CASES = [((1, 8), "blackhole_8xp150"), ((1, 32), "blackhole_galaxy")]
LEVEL1_SETS = ("generate-host",)
FULL_PROGRAM = ("decode_step", "bfloat16", 512, 3584)


def _compiled(target: str) -> str:
    return CAPACITY_STANDINS.get(target, (target, None))[0]


def _ids(cases):
    return [f"mesh_{a}x{b}-{t}" for (a, b), t in cases]


@pytest.fixture(scope="session")
def budget_results(request, tmp_path_factory):
    """compiled target -> worker results of every budget compile (all workers run once)."""
    config = request.config
    python, _, dirs = worker_python(config)
    plan = {}
    for mesh, target in CASES + ONE_CHIP:
        add_jobs(plan, next(t for t in TARGETS if t.name == _compiled(target)), dirs, mb.jobs(GEOMETRY_7B, mesh))
    if any(item.originalname == "test_7b_budget_fits_at_level_1" for item in request.session.items):
        for mesh, target in LEVEL1_CASES:
            add_jobs(plan, next(t for t in TARGETS if t.name == target), dirs,
                     mb.jobs(GEOMETRY_7B, mesh, sets=LEVEL1_SETS, compiler_options=LEVEL1))
    full = next(t for t in TARGETS if t.name == FULL_CHECK[1])
    add_jobs(plan, full, dirs, [Job(GEOMETRY_7B, FULL_CHECK[0], programs=(FULL_PROGRAM,), memory=True)])
    base = str(tmp_path_factory.mktemp("tt_memory"))
    return {"dirs": dirs, "targets": run_all(python, plan, base, str(config.rootpath))}


def _results(budget_results, target: str) -> dict:
    compiled = _compiled(target)
    got = budget_results["targets"].get(compiled)
    if got is None:
        pytest.skip(f"no system descriptor for {compiled} in {budget_results['dirs']}; add one with --tt-system-descs "
                    f"DIR or QWEN2_5_TT_SYSTEM_DESCS=DIR (on the project machines: ../shared/tt_system_descs)")
    assert "failed" not in got, f"the compile worker for {compiled} failed: {got['failed']}"
    return got


def _budgets(budget_results, mesh, target):
    chip = CAPACITY_STANDINS.get(target, (None, None))[1]
    return mb.budgets(_results(budget_results, target), GEOMETRY_7B, mesh, geometry_config(GEOMETRY_7B).num_hidden_layers,
                      chip_dram_bytes=chip[0] * chip[1] if chip else None, banks=chip[0] if chip else None)


def _independent_weight_bytes(mesh) -> int:
    """Per-device bytes of every weight from the partition specs alone: tiled and padded to 32x32 tiles after
    collapsing to 2-D (a 1-D weight is one row, padded to 32), except the embedding table, which
    ``ttnn.embedding`` reads row-major (no padding)."""
    cfg = dataclasses.replace(geometry_config(GEOMETRY_7B), num_hidden_layers=mb.LAYERS[-1])
    shapes = param_shapes(cfg, TPLayout(cfg, mesh[1]), "bfloat16")
    sizes = {"batch": mesh[0], "model": mesh[1]}
    total = 0
    flat_specs = jax.tree_util.tree_leaves(partition_specs(shapes), is_leaf=lambda x: isinstance(x, tuple))
    for (path, shape), spec in zip(jax.tree_util.tree_flatten_with_path(shapes)[0], flat_specs):
        axes = tuple(spec) + (None,) * (len(shape.shape) - len(spec))
        local = [d // (sizes[a] if a else 1) for d, a in zip(shape.shape, axes)]
        if "embed_tokens" in jax.tree_util.keystr(path):
            total += math.prod(local) * 2
            continue
        dims = [1] + local if len(local) == 1 else local
        rows = math.prod(dims[:-2]) * -(-dims[-2] // 32) * 32
        total += rows * (-(-dims[-1] // 32) * 32) * 2
    return total


@pytest.mark.parametrize("mesh,target", CASES[::2] + ONE_CHIP[:1], ids=_ids(CASES[::2] + ONE_CHIP[:1]))
def test_weight_bytes_equal_the_partition_specs_per_device_shapes(budget_results, mesh, target):
    rows = _results(budget_results, target)["jobs"][mb.jobs(GEOMETRY_7B, mesh)[-1].id]
    independent = _independent_weight_bytes(mesh)
    for key, row in rows.items():
        read = sum(e["nbytes"] for e in row["const_eval"] if e["parameters"])
        if key.startswith("generate_loop"):  # the loop's embedding is tiled too: at least the same bytes
            assert read >= independent, key
        else:
            assert read == independent, f"{key}: {read} B of weights read from the module, {independent} B expected"


@pytest.mark.parametrize("mesh,target", CASES, ids=_ids(CASES))
def test_7b_budget_fits_every_chip_with_every_program_set(budget_results, mesh, target, record_property, request):
    budgets = _budgets(budget_results, mesh, target)
    figures = {}
    for name, b in budgets.items():
        for key in ("weights_bytes", "device_io_bytes", "peak_transient_bytes", "first_call_peak_bytes",
                    "resident_bytes", "resident_per_program_cache_bytes", "chip_dram_bytes", "reserve_bytes"):
            record_property(f"memory[{name}].{key}", b[key])
        record_property(f"memory[{name}].headroom", b["headroom"])
        figures[name] = {k: b[k] for k in ("weights_bytes", "device_io_bytes", "peak_transient_bytes", "resident_bytes",
                                           "chip_dram_bytes", "reserve_bytes", "headroom", "fits")}
    write_perf_report(request.config, request.node.nodeid, {"memory": figures, "target": target})
    from .tenstorrent.memory.command import table
    print(f"\n7B mesh {mesh[0]}x{mesh[1]} on {target}:\n{table(budgets)}")
    short = {name: b["message"] for name, b in budgets.items() if not b["fits"]}
    assert not short, f"mesh {mesh[0]}x{mesh[1]} on {target}: {short}"
    # one device copy of a weight for every program of a set: their const-eval entries are the same cache entries,
    # so a set's union holds hardly more than its largest program (a few tables differ: RoPE, masks)
    rows = _results(budget_results, target)["jobs"][mb.jobs(GEOMETRY_7B, mesh)[-1].id]
    for name, b in budgets.items():
        union = mb.compose(rows[k] for k in b["programs"])["weights_bytes"]
        largest = max(sum(e["bytes"] for e in rows[k]["const_eval"]) for k in b["programs"])
        assert union <= 1.05 * largest, (name, union, largest)


@pytest.mark.large
@pytest.mark.parametrize("mesh,target", LEVEL1_CASES, ids=_ids(LEVEL1_CASES))
def test_7b_budget_fits_at_level_1(budget_results, mesh, target, record_property, request):
    """At optimization level 1 (the fused attention) the host-loop generation's programs (prefill and decode step,
    a 4096-slot cache) fit each chip with the headroom, and their weights take the bytes they take at level 0."""
    from .tenstorrent.memory.command import table

    budgets = mb.budgets(_results(budget_results, target), GEOMETRY_7B, mesh,
                         geometry_config(GEOMETRY_7B).num_hidden_layers, sets=LEVEL1_SETS, compiler_options=LEVEL1)
    level0 = mb.budgets(_results(budget_results, target), GEOMETRY_7B, mesh,
                        geometry_config(GEOMETRY_7B).num_hidden_layers, sets=LEVEL1_SETS)
    print(f"\n7B mesh {mesh[0]}x{mesh[1]} on {target} at optimization level 1:\n{table(budgets)}\nat level 0:\n"
          f"{table(level0)}")
    for name, b in budgets.items():
        record_property(f"memory_level1[{name}].resident_bytes", b["resident_bytes"])
        record_property(f"memory_level1[{name}].headroom", b["headroom"])
    write_perf_report(request.config, request.node.nodeid,
                      {"memory_level1": {n: {k: b[k] for k in ("weights_bytes", "device_io_bytes", "peak_transient_bytes",
                                                               "resident_bytes", "headroom", "fits")}
                                         for n, b in budgets.items()}, "target": target})
    short = {name: b["message"] for name, b in budgets.items() if not b["fits"]}
    assert not short, f"mesh {mesh[0]}x{mesh[1]} on {target} at level 1: {short}"
    for name in budgets:  # the same weights, whatever the formulation
        assert budgets[name]["weights_bytes"] <= 1.02 * level0[name]["weights_bytes"], (name, budgets, level0)


@pytest.mark.parametrize("mesh,target", ONE_CHIP, ids=_ids(ONE_CHIP))
def test_7b_on_one_chip_fits_a_blackhole_and_not_a_wormhole(budget_results, mesh, target):
    budgets = _budgets(budget_results, mesh, target)
    forward = budgets["forward"]
    if target.startswith("wormhole"):
        assert not forward["fits"] and forward["weights_bytes"] > forward["budget_bytes"], forward
        assert "GiB more than" in forward["message"], forward["message"]
    else:
        assert all(b["fits"] for b in budgets.values()), {n: b.get("message") for n, b in budgets.items()}


def test_extrapolated_budget_equals_a_full_28_layer_compile(budget_results):
    mesh, target = FULL_CHECK
    got = _results(budget_results, target)
    full_job = Job(GEOMETRY_7B, mesh, programs=(FULL_PROGRAM,), memory=True)
    full = mb.compose([got["jobs"][full_job.id][mb.program_key(FULL_PROGRAM)]])
    key = mb.program_key(FULL_PROGRAM)
    small = [mb.compose([got["jobs"][j.id][key]]) for j in mb.jobs(GEOMETRY_7B, mesh)]
    extra = mb.extrapolate(small[0], small[1], mb.LAYERS, geometry_config(GEOMETRY_7B).num_hidden_layers)
    for field in ("weights_bytes", "device_io_bytes", "peak_transient_bytes"):
        assert abs(extra[field] - full[field]) <= 0.001 * full[field] + 4096, (field, extra[field], full[field])


# --- the reader on a hand-made module ---------------------------------------------------------------

SMALL_MODULE = """\
#dram = #ttnn.buffer_type<dram>
#l1 = #ttnn.buffer_type<l1>
#system_memory = #ttnn.buffer_type<system_memory>
#system_desc = #ttcore.system_desc<[{role = host}], [{arch = <wormhole_b0>, grid = 8x8, num_dram_channels = 2, dram_channel_size = 1048576, noc_l1_address_align_bytes = 16, pcie_address_align_bytes = 32, noc_dram_address_align_bytes = 32, l1_unreserved_base = 1024, erisc_l1_unreserved_base = 1024, dram_unreserved_base = 1024, dram_unreserved_end = 1048576}]>
#host = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <1x1>, memref<64x64xbf16, #system_memory>>
#tile = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <1x1>, memref<2x2x!ttcore.tile<32x32, bf16>, #dram>, <interleaved>>
#rows = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <1x1>, memref<64x64xbf16, #dram>, <interleaved>>
#f32 = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <1x1>, memref<2x2x!ttcore.tile<32x32, f32>, #dram>, <interleaved>>
#vec = #ttnn.ttnn_layout<(d0) -> (0, d0), <1x1>, memref<1x2x!ttcore.tile<32x32, bf16>, #dram>, <interleaved>>
#shard = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <2x1>, memref<1x2x!ttcore.tile<32x32, bf16>, #l1>, <height_sharded>, core_ranges = <[#ttnn.core_range<(0,0), (0,1)>]>>
module {
      func.func private @main_const_eval_0(%arg0: tensor<64x64xbf16, #host> loc(unknown)) -> tensor<64x64xbf16, #tile> attributes {tt.function_type = "const_eval"} {
        %0 = "ttnn.get_device"() : () -> !ttnn.device loc(#loc)
        %1 = "ttnn.to_device"(%arg0, %0) : (tensor<64x64xbf16, #host>, !ttnn.device) -> tensor<64x64xbf16, #rows> loc(#loc)
        %2 = "ttnn.to_layout"(%1) : (tensor<64x64xbf16, #rows>) -> tensor<64x64xbf16, #tile> loc(#loc)
        "ttnn.deallocate"(%1) <{force = false}> : (tensor<64x64xbf16, #rows>) -> () loc(#loc)
        return %2 : tensor<64x64xbf16, #tile> loc(#loc)
      } loc(#loc)
      func.func private @main_const_eval_1() -> tensor<64xbf16, #vec> attributes {tt.function_type = "const_eval"} {
        %0 = "ttnn.get_device"() : () -> !ttnn.device loc(#loc)
        %1 = "ttnn.full"(%0) <{fill_value = 1.0 : f32}> : (!ttnn.device) -> tensor<64xbf16, #vec> loc(#loc)
        return %1 : tensor<64xbf16, #vec> loc(#loc)
      } loc(#loc)
      func.func public @main(%arg0: tensor<64x64xbf16, #host> {ttcore.argument_type = #ttcore.argument_type<parameter>}, %arg1: tensor<64x64xbf16, #tile> {ttcore.argument_type = #ttcore.argument_type<input>}) -> (tensor<64x64xbf16, #tile> {jax.result_info = "result[0]"}, tensor<64x64xbf16, #tile> {jax.result_info = "result[1]"}) attributes {tt.function_type = "forward_device"} {
        %0 = ttcore.load_cached(@main_const_eval_0, [%arg0]) : (tensor<64x64xbf16, #host>) -> tensor<64x64xbf16, #tile> loc(#loc)
        %1 = ttcore.load_cached(@main_const_eval_1, []) : () -> tensor<64xbf16, #vec> loc(#loc)
        %2 = "ttnn.matmul"(%arg1, %0) : (tensor<64x64xbf16, #tile>, tensor<64x64xbf16, #tile>) -> tensor<64x64xf32, #f32> loc(#loc)
        %3 = "ttnn.typecast"(%2) : (tensor<64x64xf32, #f32>) -> tensor<64x64xbf16, #tile> loc(#loc)
        %4 = "ttnn.to_memory_config"(%3) : (tensor<64x64xbf16, #tile>) -> tensor<64x64xbf16, #shard> loc(#loc)
        "ttnn.deallocate"(%2) <{force = false}> : (tensor<64x64xf32, #f32>) -> () loc(#loc)
        %5 = "ttnn.add"(%3, %1) : (tensor<64x64xbf16, #tile>, tensor<64xbf16, #vec>) -> tensor<64x64xbf16, #tile> loc(#loc)
        "ttnn.deallocate"(%3) <{force = false}> : (tensor<64x64xbf16, #tile>) -> () loc(#loc)
        "ttnn.paged_update_cache"(%arg1, %4) : (tensor<64x64xbf16, #tile>, tensor<64x64xbf16, #shard>) -> () loc(#loc)
        "ttnn.deallocate"(%4) <{force = false}> : (tensor<64x64xbf16, #shard>) -> () loc(#loc)
        return %5, %arg1 : tensor<64x64xbf16, #tile>, tensor<64x64xbf16, #tile> loc(#loc)
      } loc(#loc)
}
"""


def test_reader_gives_the_known_figures_of_a_hand_made_module():
    """Two 1 MiB banks; a bf16 64x64 weight is 4 tiles of 2048 B (2 per bank); the f32 product 4 tiles of 4096 B."""
    got = ttnn_memory.read(SMALL_MODULE)
    tile_bf16, tile_f32 = 2048, 4096
    assert got["chip_dram_bytes"] == 2 * (1048576 - 1024) and got["dram_banks"] == 2
    assert got["weights_bytes"] == 4 * tile_bf16                    # the cached tiled weight
    assert got["constants_bytes"] == 2 * tile_bf16                  # 1-D, one row of 2 tiles (padded to 32 rows)
    assert got["host_parameter_bytes"] == 64 * 64 * 2               # stays on the host
    # the cache (argument 1) is returned in place: counted once; %5 is a new output
    assert got["device_inputs_bytes"] == 4 * tile_bf16 and got["device_outputs_bytes"] == 4 * tile_bf16
    # live intermediates: %2 (f32) + %3 at once = 16384 + 8192; %4 is L1 (2 cores x 2 tiles)
    assert got["peak_transient_bytes"] == 4 * tile_f32 + 4 * tile_bf16
    assert got["peak_transient_l1_bytes"] == 2 * 2 * tile_bf16
    # const-eval: the row-major copy (64 rows x 128 B, 32 rows per bank) and the tiled result at once
    assert got["const_eval_transient_bytes"] == 64 * 64 * 2
    assert got["const_eval_peak_bytes"] == 64 * 64 * 2 + 4 * tile_bf16  # before the constant is made
    entries = ttnn_memory.const_eval_entries(SMALL_MODULE)
    assert [e["parameters"] for e in entries] == [True, False] and entries[0]["inputs"] == ["%arg0"]
    # the same function in another module (other name, other layout aliases) is the same cache entry
    renamed = SMALL_MODULE.replace("main_const_eval_0", "main_const_eval_7").replace("#tile", "#ttnn_layout9")
    assert ttnn_memory.const_eval_entries(renamed)[0]["key"] == entries[0]["key"]


def test_reader_counts_block_float_weights():
    """A weight cached as ``bfp_bf8`` tiles (``--tt-weight-dtype bfp_bf8``) is 4 tiles of 1088 B: its tensor type
    names a block-float tile (``tensor<64x64x!ttcore.tile<32x32, bfp_bf8>, #bfp>``), which is read like any other."""
    bfp = "tensor<64x64x!ttcore.tile<32x32, bfp_bf8>, #bfp>"
    module = SMALL_MODULE.replace(
        "#rows = ", "#bfp = #ttnn.ttnn_layout<(d0, d1) -> (d0, d1), <1x1>, memref<2x2x!ttcore.tile<32x32, bfp_bf8>, "
                    "#dram>, <interleaved>>\n#rows = ")
    for old in ('(%arg0: tensor<64x64xbf16, #host> loc(unknown)) -> tensor<64x64xbf16, #tile>',
                '(tensor<64x64xbf16, #rows>) -> tensor<64x64xbf16, #tile>', 'return %2 : tensor<64x64xbf16, #tile>',
                '[%arg0]) : (tensor<64x64xbf16, #host>) -> tensor<64x64xbf16, #tile>'):
        assert old in module
        module = module.replace(old, old.rsplit("tensor<64x64xbf16, #tile>", 1)[0] + bfp)
    got = ttnn_memory.read(module)
    assert got["weights_bytes"] == 4 * 1088
    assert got["const_eval_peak_bytes"] == 64 * 64 * 2 + 4 * 1088
    assert ttnn_memory.const_eval_entries(module)[0]["bytes"] == 4 * 1088


def test_reader_refuses_what_it_does_not_know():
    with pytest.raises(ttnn_memory.ModuleFormatError, match="unknown element type"):
        ttnn_memory.read(SMALL_MODULE.replace("memref<2x2x!ttcore.tile<32x32, f32>", "memref<2x2x!ttcore.tile<32x32, f7>"))
    with pytest.raises(ttnn_memory.ModuleFormatError, match="does not define"):
        ttnn_memory.read(SMALL_MODULE.replace("-> tensor<64x64xbf16, #tile> loc(#loc)\n        \"ttnn.deallocate\"(%3)",
                                              "-> tensor<64x64xbf16, #nowhere> loc(#loc)\n        \"ttnn.deallocate\"(%3)"))


def test_command_reports_a_model_that_cannot_fit(tmp_path):
    """The 14B on one Wormhole chip: does not fit, with the shortfall in the message and the JSON."""
    python, how = tt_python(None, str(ROOT))
    if python is None:
        pytest.skip(how)
    if find_descriptor(next(t for t in TARGETS if t.name == "wormhole_n150"), search_dirs(None)) is None:
        pytest.skip("no wormhole_n150 descriptor: set QWEN2_5_TT_SYSTEM_DESCS (e.g. ../shared/tt_system_descs)")
    out = tmp_path / "budget.json"
    proc = subprocess.run([sys.executable, "-m", "tests.jax.models.qwen2_5", "tt-memory", "--preset",
                           "qwen2.5-14b-instruct", "--mesh", "1x1", "--target", "wormhole_n150", "--programs", "forward",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "XLA_FLAGS"})
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "forward: does not fit: needs" in proc.stdout and "GiB more than" in proc.stdout, proc.stdout
    report = json.loads(out.read_text())
    forward = report["sets"]["forward"]
    assert report["fits"] is False and forward["shortfall_bytes"] > 0
    assert forward["resident_bytes"] > 25 * mb.GIB  # 14.8 B bf16 parameters, padded
    assert set(report["programs"]["forward/bfloat16/p32n32"]) >= {"weights_bytes", "device_io_bytes",
                                                                  "peak_transient_bytes"}
