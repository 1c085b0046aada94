"""The device memory budget of a model on a mesh and a Tenstorrent target, read from compiled TTNN programs.

    python -m tests.jax.models.qwen2_5 tt-memory (--preset NAME | --config config.json) --mesh BxM \
        --target NAME [--programs forward,generate-host,...] [--batch N] [--cache-length N] \
        [--tt-optimization-level N] [--json OUT] [--dump-ttnn DIR]

Compiles every program of the chosen program sets in compile-only mode, in the Tenstorrent plugin's
interpreter (``.venv-tt``, as the compile checks do), at 1 and 2 decoder layers; reads each TTNN
module's device memory (``ttnn/memory.py``) and composes the budgets (``budget.py``). Prints a
table per program and per set, and writes the same as JSON. Exit status 0 when every set fits with
10% headroom, 1 when one does not, 2 on a usage error.

``--target wormhole_galaxy``: no Wormhole Galaxy descriptor is at hand; its programs are those of
the 32-chip Blackhole Galaxy (the same per-chip tensors and tile layouts) against the DRAM of a
Wormhole chip as its allocator reports it, 12 x 1,073,741,792 B (tt-xla issue #4040).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile

from ...cli.devices import mesh_text
from ...cli.parser import Parser, mesh_shape, positive_int

PROG = "python -m tests.jax.models.qwen2_5 tt-memory"
# target -> (the target compiled for, (banks, bytes per bank) of the chip compared with)
CAPACITY_STANDINS = {"wormhole_galaxy": ("blackhole_galaxy", (12, 1_073_741_792))}


def build_parser() -> Parser:
    from .budget import BATCH, CACHE_LENGTH, PROGRAM_SETS

    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--preset", help="a published Qwen2.5 config (synthetic/presets.py), e.g. qwen2.5-7b-instruct")
    what.add_argument("--config", help="a config.json (either transformers spelling)")
    p.add_argument("--mesh", type=mesh_shape, required=True, help="BxM mesh, e.g. 2x4")
    p.add_argument("--target", required=True, help="a compile target (tenstorrent/targets.py) or wormhole_galaxy")
    p.add_argument("--programs", default=",".join(PROGRAM_SETS),
                   help=f"comma-separated program sets (default: all of {', '.join(PROGRAM_SETS)})")
    p.add_argument("--batch", type=positive_int, default=BATCH)
    p.add_argument("--cache-length", type=positive_int, default=CACHE_LENGTH,
                   help="KV cache slots of the generate programs (prompt bucket + new tokens)")
    p.add_argument("--json", default=None, help="write the budgets as JSON here")
    p.add_argument("--dump-ttnn", default=None, help="write every compiled TTNN module it read into this directory")
    p.add_argument("--tt-python", default=None, help="a Python with a Tenstorrent PJRT plugin (default: .venv-tt)")
    p.add_argument("--tt-optimization-level", choices=("0", "1", "2"), default=None,
                   help="tt-mlir's optimization_level (default: the plugin's, 0); at 1 and 2 the model takes its fused "
                        "attention (docs/fused_attention.md)")
    return p


def parse_args(argv=None):
    """Every usage error before anything compiles: one line, exit status 2."""
    p = build_parser()
    args = p.parse_args(argv)
    from ...model.config import Qwen2Config
    from ...synthetic import presets
    from .budget import PROGRAM_SETS
    from ..compile.targets import parse_target

    if args.preset:
        if args.preset not in presets.PRESETS:
            p.fail(f"argument --preset: {args.preset!r} is not one of {', '.join(presets.PRESETS)}")
        raw, args.label = presets.config_json(args.preset), args.preset
    else:
        try:
            with open(args.config) as f:
                raw = json.load(f)
        except (OSError, ValueError) as e:
            p.fail(f"argument --config: cannot read {args.config!r}: {e}")
        args.label = os.path.splitext(os.path.basename(args.config))[0]
    try:
        args.model_config = Qwen2Config.from_dict(raw, source=args.label)
    except ValueError as e:
        p.fail(f"{'--preset' if args.preset else '--config'}: {e}")
    args.config_text = json.dumps(raw, sort_keys=True)
    compiled = CAPACITY_STANDINS.get(args.target, (None, None))[0]
    args.compiled_target = parse_target(p, args.target, args.mesh, args.model_config, compiled=compiled,
                                        more=CAPACITY_STANDINS)
    args.sets = [s.strip() for s in args.programs.split(",") if s.strip()]
    unknown = [s for s in args.sets if s not in PROGRAM_SETS]
    if unknown or not args.sets:
        p.fail(f"argument --programs: {', '.join(unknown) or 'none given'}; choose from {', '.join(PROGRAM_SETS)}")
    if not 64 <= args.cache_length <= args.model_config.max_position_embeddings or args.cache_length % 32:
        p.fail(f"argument --cache-length: {args.cache_length} must be a multiple of 32 in [64, "
               f"{args.model_config.max_position_embeddings}] (max_position_embeddings)")
    for option, path in (("--json", args.json), ("--dump-ttnn", args.dump_ttnn)):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            p.fail(f"argument {option}: directory {os.path.dirname(os.path.abspath(path))!r} does not exist")
    return args


def table(budgets: dict) -> str:
    from .budget import gib

    lines = [f"{'program set':16} {'programs':>8} {'weights':>8} {'cache+io':>8} {'transient':>9} {'1st call':>8} "
             f"{'resident':>8} {'old rt':>7} {'DRAM':>6} {'headroom':>8} fits  (GiB per chip)"]
    for name, b in budgets.items():
        lines.append(f"{name:16} {len(b['programs']):8d} {gib(b['weights_bytes']):>8} {gib(b['device_io_bytes']):>8} "
                     f"{gib(b['peak_transient_bytes']):>9} {gib(b['first_call_peak_bytes']):>8} "
                     f"{gib(b['resident_bytes']):>8} {gib(b['resident_per_program_cache_bytes']):>7} "
                     f"{gib(b['chip_dram_bytes']):>6} {b['headroom']:8.1%} {'yes' if b['fits'] else 'NO'}")
    lines.append("old rt: resident with a const-eval cache per executable (tt-mlir before #6434), each program its "
                 "own weights")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from . import budget as mb
    from ..compile.jobs import command_worker, run_all

    root = str(pathlib.Path(__file__).resolve().parents[6])  # where `tests.jax.models.qwen2_5` imports from
    python, descriptor = command_worker(build_parser(), args.tt_python, args.compiled_target, root)
    options = (("optimization_level", args.tt_optimization_level),) if args.tt_optimization_level else ()
    jobs = mb.jobs(args.label, tuple(args.mesh), args.cache_length, args.sets, batch=args.batch,
                   config=args.config_text, compiler_options=options)
    with tempfile.TemporaryDirectory(prefix="tt_memory_") as tmp:
        results = run_all(python, {args.compiled_target.name: (descriptor, jobs)}, tmp, root)
        got = results[args.compiled_target.name]
        if "failed" in got:
            print(f"{PROG}: error: the compile worker failed: {got['failed']}", file=sys.stderr)
            return 1
        chip = CAPACITY_STANDINS.get(args.target, (None, None))[1]
        try:
            budgets = mb.budgets(got, args.label, tuple(args.mesh), args.model_config.num_hidden_layers,
                                 args.cache_length, args.sets, batch=args.batch, config=args.config_text,
                                 chip_dram_bytes=chip[0] * chip[1] if chip else None, banks=chip[0] if chip else None,
                                 compiler_options=options)
        except RuntimeError as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 1
        if args.dump_ttnn:
            import glob
            import shutil

            os.makedirs(args.dump_ttnn, exist_ok=True)
            for path in glob.glob(os.path.join(got["out_dir"], "*.ttnn.mlir")):
                shutil.copy(path, args.dump_ttnn)
    level = f", optimization_level {args.tt_optimization_level}" if args.tt_optimization_level else ""
    print(f"{args.label} on {args.target} mesh {mesh_text(args.mesh)}, batch {args.batch}, "
          f"{args.cache_length}-slot cache{level}:")
    print(table(budgets))
    for name, b in budgets.items():
        if not b["fits"]:
            print(f"{name}: does not fit: {b['message']}")
    if args.json:
        out = {"model": args.label, "target": args.target, "compiled_for": args.compiled_target.name,
               "mesh": mesh_text(args.mesh), "batch": args.batch, "cache_length": args.cache_length,
               "programs": {k: v for b in budgets.values() for k, v in b["per_program"].items()},
               "sets": {name: {k: v for k, v in b.items() if k != "per_program"} for name, b in budgets.items()}}
        worst = max(out["sets"].values(), key=lambda b: b["peak_bytes"])
        out.update(resident_bytes=worst["resident_bytes"], peak_bytes=worst["peak_bytes"],
                   chip_dram_bytes=worst["chip_dram_bytes"], reserve_bytes=worst["reserve_bytes"],
                   fits=all(b["fits"] for b in out["sets"].values()))
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if all(b["fits"] for b in budgets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
