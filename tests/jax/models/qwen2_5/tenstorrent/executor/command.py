"""Run what tt-mlir compiles for a checkpoint on the CPU: the compiled TTNN programs, executed chip by chip.

    python -m tests.jax.models.qwen2_5 tt-run --model-path DIR --mesh BxM --target NAME \
        --program forward|generate --input-ids IDS.npy [--attention-mask MASK.npy] \
        [--dtype float32|bfloat16] [--max-new-tokens N] --out OUT.npy [--json REPORT] \
        [--dump-ttnn DIR] [--ttnn-module FILE] [--arithmetic exact|chip] [--tt-optimization-level 0|1|2] \
        [--tt-math-fidelity lofi|hifi2|hifi3|hifi4] [--tt-weight-dtype bf16|bfp_bf8|bfp_bf4] [--tt-fp32-dest-acc]

Compiles the program(s) for the target in compile-only mode, in the Tenstorrent plugin's interpreter
(``.venv-tt``), runs them with the TTNN executor (``executor/``) on the checkpoint's weights, one
virtual device per chip, and writes the full-vocabulary float32 logits [batch, seq, vocab]
(``forward``) or the int32 tokens [batch, N] (``generate``: the compiled prefill and decode-step
programs in the host loop of ``generate(loop="host")``, no early stop). The JSON report holds the
ops executed by kind, seconds and each module's sha256. ``--ttnn-module FILE`` (with ``--program
forward``) executes that module text instead of compiling: a module dumped elsewhere (an edited one,
or one from a hardware run) is replayed. Prompts are left-padded to their bucket (``generate``'s).
``--arithmetic chip`` computes matmul, softmax and rms_norm as the chip does (docs/chip_arithmetic.md); the
``--tt-*`` options are tt-mlir's compile options, as the suite's pytest options of the same names.
Exit status 0 on success, 1 when a compile or the executor fails, 2 on a usage error.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import time

from ...cli.devices import mesh_text
from ...cli.parser import Parser, die, mesh_shape, positive_int

PROG = "python -m tests.jax.models.qwen2_5 tt-run"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--model-path", required=True, help="a Hugging Face Qwen2-family checkpoint directory")
    p.add_argument("--mesh", type=mesh_shape, required=True, help="BxM mesh, e.g. 2x4")
    p.add_argument("--target", required=True, help="a compile target (tenstorrent/targets.py)")
    p.add_argument("--program", required=True, choices=("forward", "generate"))
    p.add_argument("--input-ids", required=True, help="int token ids [batch, seq] (.npy)")
    p.add_argument("--attention-mask", default=None, help="1/0 mask [batch, seq] (.npy; default all ones)")
    p.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16"))
    p.add_argument("--max-new-tokens", type=positive_int, default=16)
    p.add_argument("--out", required=True, help="where the logits or tokens go (.npy)")
    p.add_argument("--json", default=None, help="write the run's report here")
    p.add_argument("--dump-ttnn", default=None, help="write the compiled TTNN modules into this directory")
    p.add_argument("--ttnn-module", default=None, help="execute this TTNN module (forward only) instead of compiling")
    p.add_argument("--tt-python", default=None, help="a Python with a Tenstorrent PJRT plugin (default: .venv-tt)")
    p.add_argument("--arithmetic", default="exact", choices=("exact", "chip"),
                   help="the executor's arithmetic: exact (float32, rounded to each declared type) or chip")
    p.add_argument("--tt-optimization-level", type=int, choices=(0, 1, 2), default=None,
                   help="tt-mlir's optimization_level (default: the plugin's, 0)")
    p.add_argument("--tt-math-fidelity", choices=("lofi", "hifi2", "hifi3", "hifi4"), default=None,
                   help="tt-mlir's math_fidelity (default: the plugin's)")
    p.add_argument("--tt-weight-dtype", choices=("bf16", "bfp_bf8", "bfp_bf4"), default="bf16",
                   help="the weights' device dtype (experimental_weight_dtype)")
    p.add_argument("--tt-fp32-dest-acc", action="store_true",
                   help="fp32_dest_acc_en, with math_fidelity hifi4 unless --tt-math-fidelity names one")
    return p


def compiler_options(args) -> tuple:
    """The ``--tt-*`` options as the (key, value) pairs a compile job takes; () for the plugin's defaults."""
    from ..compile.options import option_pairs

    return option_pairs(args.tt_optimization_level, args.tt_weight_dtype, args.tt_math_fidelity,
                        args.tt_fp32_dest_acc)


def parse_args(argv=None):
    """Every usage error before anything heavy loads: one line, exit status 2."""
    import numpy as np

    p = build_parser()
    args = p.parse_args(argv)
    from ...model.config import Qwen2Config
    from ..compile.targets import parse_target

    config_path = os.path.join(args.model_path, "config.json")
    try:
        with open(config_path) as f:
            args.config_text = f.read()
        args.model_config = Qwen2Config.from_dict(json.loads(args.config_text), source=config_path)
    except (OSError, ValueError) as e:
        p.fail(f"argument --model-path: cannot read {config_path!r}: {e}")
    args.tt_target = parse_target(p, args.target, args.mesh, args.model_config)
    try:
        args.ids = np.load(args.input_ids)
        args.mask = np.ones_like(args.ids) if args.attention_mask is None else np.load(args.attention_mask)
    except (OSError, ValueError) as e:
        p.fail(f"cannot read the inputs: {e}")
    if args.ids.ndim != 2 or args.ids.dtype.kind not in "iu" or args.ids.size == 0:
        p.fail(f"argument --input-ids: integer ids [batch, seq] expected, got {args.ids.dtype} {args.ids.shape}")
    if args.mask.shape != args.ids.shape:
        p.fail(f"argument --attention-mask: shape {args.mask.shape} differs from the ids' {args.ids.shape}")
    if args.ttnn_module and args.program != "forward":
        p.fail("argument --ttnn-module: only with --program forward")
    if args.ttnn_module and compiler_options(args):
        p.fail("argument --ttnn-module: the --tt-* compile options do not apply to a module that is not compiled")
    if args.ttnn_module and not os.path.isfile(args.ttnn_module):
        p.fail(f"argument --ttnn-module: {args.ttnn_module!r} does not exist")
    for option, path in (("--out", args.out), ("--json", args.json)):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            p.fail(f"argument {option}: directory {os.path.dirname(os.path.abspath(path))!r} does not exist")
    return args


def _compile(args, entries, bucket, new_tokens, root) -> dict:
    """{program: TTNN module text} for ``entries`` ((program, dtype) pairs) at the prompt bucket."""
    from ..compile.jobs import Job, command_worker, program_key, run_all

    python, descriptor = command_worker(build_parser(), args.tt_python, args.tt_target, root)
    programs = tuple((name, dtype, bucket, new_tokens) for name, dtype in entries)
    job = Job(os.path.basename(os.path.abspath(args.model_path)) or "model", tuple(args.mesh), programs=programs,
              batch=int(args.ids.shape[0]), config=args.config_text, keep_ttnn=True,
              compiler_options=compiler_options(args), attention=args.attention)
    with tempfile.TemporaryDirectory(prefix="tt_run_") as tmp:
        got = run_all(python, {args.target: (descriptor, [job])}, tmp, root)[args.target]
        if "failed" in got:
            die(PROG, f"the compile worker failed: {got['failed']}")
        out = {}
        for entry in programs:
            key = program_key(entry)
            row = got["jobs"][job.id][key]
            if not row["ok"]:
                die(PROG, f"{key} did not compile for {args.target}:\n{row.get('error')}")
            with open(os.path.join(got["out_dir"], f"{job.id}.{key.replace('/', '.')}.ttnn.mlir")) as f:
                out[entry[0]] = f.read()
    if args.dump_ttnn:
        os.makedirs(args.dump_ttnn, exist_ok=True)
        for name, text in out.items():
            with open(os.path.join(args.dump_ttnn, f"{name}.{args.dtype}.ttnn.mlir"), "w") as f:
                f.write(text)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    from ...cli.devices import prepare_platform

    prepare_platform("cpu", args.mesh[0] * args.mesh[1])
    import numpy as np

    from ...model import generation as gen
    from ...model.causal_lm import choose_attention, load_model
    from ...model.partitioning import make_mesh
    from ..compile import programs
    from . import runner
    from .executor import ExecutionError

    import jax

    root = str(pathlib.Path(__file__).resolve().parents[6])  # where `tests.jax.models.qwen2_5` imports from
    start = time.time()
    args.attention = choose_attention("tt", args.dtype, dict(compiler_options(args)))
    mesh = make_mesh(tuple(args.mesh), devices=jax.devices("cpu"))
    # the formulation tt-mlir compiles (fused for bfloat16 at level >= 1), lowered here for XLA:CPU to bind it
    model = load_model(args.model_path, mesh, dtype=args.dtype, attention=args.attention)
    ids, mask = args.ids.astype(np.int32), args.mask.astype(np.int32)
    new_tokens = args.max_new_tokens if args.program == "generate" else gen.NEW_TOKENS_MULTIPLE
    bucket = gen.prompt_bucket(ids.shape[1])
    entries = [("forward", args.dtype)] if args.program == "forward" else [("prefill", args.dtype),
                                                                          ("decode_step", args.dtype)]
    texts = ({"forward": pathlib.Path(args.ttnn_module).read_text()} if args.ttnn_module
             else _compile(args, entries, bucket, new_tokens, root))
    compiled_s = time.time() - start
    bound = {name: runner.bind(text, programs.lower(model, name, batch=ids.shape[0], prompt=bucket,
                                                    new_tokens=new_tokens), name, arithmetic=args.arithmetic)
             for name, text in texts.items()}
    try:
        if args.program == "forward":
            pad = bucket - ids.shape[1]
            padded_ids, padded_mask = np.pad(ids, ((0, 0), (pad, 0))), np.pad(mask, ((0, 0), (pad, 0)))
            out = bound["forward"](model.params, padded_ids, padded_mask)[:, pad:].astype(np.float32)
        else:
            out = runner.generate(model, bound["prefill"], bound["decode_step"], ids, mask,
                                  max_new_tokens=args.max_new_tokens, eos_token_id=()).astype(np.int32)
    except ExecutionError as e:
        die(PROG, str(e))
    np.save(args.out, out)
    counts = {}
    for b in bound.values():
        for name, n in b.executor.counts.items():
            counts[name] = counts.get(name, 0) + n
    report = {"program": args.program, "mesh": mesh_text(args.mesh), "target": args.target, "dtype": args.dtype,
              "arithmetic": args.arithmetic, "compiler_options": dict(compiler_options(args)),
              "attention": args.attention,
              "output_shape": list(out.shape), "ops_executed": dict(sorted(counts.items())),
              "executor_seconds": round(sum(b.executor.seconds for b in bound.values()), 3),
              "seconds": round(time.time() - start, 2), "compile_and_load_seconds": round(compiled_s, 2),
              "modules": {name: {"sha256": b.sha256, "source": args.ttnn_module or "compiled"}
                          for name, b in bound.items()}}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    print(f"{args.program} on {args.target} mesh {mesh_text(args.mesh)} ({args.dtype}, {args.arithmetic} arithmetic): "
          f"{args.out} {list(out.shape)}, "
          f"{sum(counts.values())} ops executed in {report['executor_seconds']:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
