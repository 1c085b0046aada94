"""GSM8K acceptance run from the command line.

    python -m tests.jax.models.qwen2_5.gsm8k --model-path P --mesh 2x4 --samples 100 \
        --report out.json [--reference]
    python -m tests.jax.models.qwen2_5.gsm8k --model-path P --meshes 1x1,1x8,2x4,1x32,8x4 \
        --samples all --run-dir DIR [--resume] [--margin 2]

Without ``--model-path`` it builds a small random checkpoint (with a real tokenizer) so the
command works on a fresh machine. One mesh (``--mesh``): prints accuracy, and with
``--reference`` the PyTorch reference accuracy (cached on disk), the answer agreement and the
throughput. A run directory (``--run-dir``, any number of ``--meshes``): the PyTorch reference
and every mesh in turn, journaled batch by batch and resumable (``run.py``), with the parity rule
(``parity.py``) per mesh; the exit status is 0 when parity holds on every mesh, else 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile

from ..cli.devices import mesh_text
from ..cli.parser import Parser, die, mesh_shape, non_negative_int, positive_float, positive_int
from . import journal
from .parity import DEFAULT_MARGIN

PROG = "python -m tests.jax.models.qwen2_5.gsm8k"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="GSM8K accuracy of the tensor-parallel Qwen2.5 model")
    p.add_argument("--model-path", default=os.environ.get("QWEN2_5_MODEL_PATH"),
                   help="Hugging Face checkpoint directory (env QWEN2_5_MODEL_PATH); default: a random one")
    p.add_argument("--mesh", type=mesh_shape, default=(1, 1),
                   help="BxM mesh: B on 'batch', M on 'model' (e.g. 2x4, 1x8, 8x4, 1x32)")
    p.add_argument("--platform", choices=("auto", "tt", "cpu", "tt-emulated"), default="auto",
                   help="tt-emulated: every program compiled by tt-mlir for a Tenstorrent target (compile-only, in "
                        "--tt-python's plugin) and run by the TTNN executor on the CPU (docs/emulated.md)")
    p.add_argument("--tt-emulated-targets", default="",
                   help="tt-emulated: comma-separated targets, each for the meshes of its chip count (default "
                        "blackhole_p150, wormhole_n300-llmbox, blackhole_galaxy)")
    p.add_argument("--tt-python", default=None, help="tt-emulated: a Python with a Tenstorrent PJRT plugin "
                   "(default: .venv-tt)")
    p.add_argument("--tt-compile-cache", default=None, help="tt-emulated: where compiled programs are kept "
                   "(env QWEN2_5_TT_COMPILE_CACHE; default ~/.cache/qwen2_5_tt_compile)")
    p.add_argument("--tt-arithmetic", choices=("exact", "chip"), default=None,
                   help="tt-emulated: the executor's arithmetic, exact (the default) or chip (docs/chip_arithmetic.md)")
    p.add_argument("--samples", default="100", help="first N test problems, or 'all' (1319)")
    p.add_argument("--gsm8k-path", default=None, help="directory with test.jsonl/train.jsonl, or one .jsonl "
                   "(env GSM8K_PATH); default: the Hugging Face dataset openai/gsm8k")
    p.add_argument("--protocol", choices=("auto", "chat", "fewshot"), default="auto")
    p.add_argument("--shots", type=non_negative_int, default=4)
    p.add_argument("--seed", type=int, default=1234, help="few-shot exemplar seed")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--max-new-tokens", type=positive_int, default=256)
    p.add_argument("--max-cache-length", type=positive_int, default=None,
                   help="prompt + new tokens the KV cache holds (default min(4096, max_position_embeddings))")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                   help="default: bfloat16 for --model-path, float32 for the random checkpoint")
    p.add_argument("--report", default="gsm8k_report.json", help="JSON report path")
    p.add_argument("--reference", action="store_true", help="also run (or reuse) the PyTorch reference")
    p.add_argument("--rerun-reference", action="store_true", help="ignore the cached reference")
    p.add_argument("--reference-cache", default=os.path.join(os.path.expanduser("~"), ".cache", "qwen2_5_gsm8k"))
    p.add_argument("--meshes", type=mesh_list, default=None,
                   help="comma-separated meshes run in turn, e.g. 1x1,1x8,2x4,1x32,8x4 (needs --run-dir)")
    p.add_argument("--run-dir", default=None, help="directory of a resumable run: journal, plan, report.json, "
                   "summary.md (and the random checkpoint without --model-path)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its journal")
    p.add_argument("--margin", type=positive_float, default=DEFAULT_MARGIN,
                   help="parity margin in accuracy points: parity holds when the 95%% interval of the paired "
                        "accuracy difference lies within +-margin (default %(default)s)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one run of a --run-dir run (internal)
    return p


def mesh_list(text: str) -> list:
    shapes = [mesh_shape(part) for part in text.split(",") if part.strip()]
    if not shapes:
        raise argparse.ArgumentTypeError(f"expected meshes such as 1x1,2x4, got {text!r}")
    if len(set(shapes)) != len(shapes):
        raise argparse.ArgumentTypeError(f"a mesh is listed twice in {text!r}")
    return shapes


def parse_args(argv=None):
    """Parse and check every argument against the checkpoint's config, the mesh and the cache limit,
    before any data, weight or device is touched: a usage error is one line and exit status 2."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.samples != "all":
        try:
            args.samples = positive_int(args.samples)
        except Exception:
            p.fail(f"argument --samples: expected a positive integer or 'all', got {args.samples!r}")
    data = args.gsm8k_path or os.environ.get("GSM8K_PATH")
    if data and not os.path.exists(data):
        p.fail(f"GSM8K path {data!r} does not exist (--gsm8k-path / GSM8K_PATH)")
    report_dir = os.path.dirname(os.path.abspath(args.report))
    if not os.path.isdir(report_dir):
        p.fail(f"argument --report: directory {report_dir!r} does not exist")
    check_run_dir(p, args)
    args.tt_targets = emulated_targets(p, args)

    from ..model.config import Qwen2Config
    from ..model.generation import MIN_BUCKET, cache_length
    from ..model.layout import TPLayout
    from ..model.causal_lm import cache_limit

    if args.model_path:
        if not os.path.isdir(args.model_path):
            p.fail(f"argument --model-path: {args.model_path!r} is not a directory (a Hugging Face checkpoint "
                   f"directory with config.json and *.safetensors)")
        try:
            config = Qwen2Config.from_checkpoint(args.model_path)
        except (OSError, ValueError) as e:
            p.fail(f"argument --model-path: {e}")
    else:
        from ..synthetic.random_checkpoint import CHAT_MAX_POSITIONS, geometry_config

        config = dataclasses.replace(geometry_config(CHAT_GEOMETRY), max_position_embeddings=CHAT_MAX_POSITIONS)
    args.mesh_list = args.meshes or [args.mesh]
    option = "--meshes" if args.meshes else "--mesh"
    try:
        for shape in args.mesh_list:
            try:
                TPLayout(config, shape[1])
            except ValueError as e:
                raise ValueError(f"{option} {shape[0]}x{shape[1]}: {e}") from None
        args.max_cache_length = cache_limit(config, args.max_cache_length)
    except ValueError as e:
        p.fail(str(e))
    need = cache_length(MIN_BUCKET, args.max_new_tokens)
    if need > args.max_cache_length:
        p.fail(f"argument --max-new-tokens: {args.max_new_tokens} new tokens need at least {need} cache positions; "
               f"the cache holds {args.max_cache_length} (--max-cache-length, at most max_position_embeddings="
               f"{config.max_position_embeddings})")
    return args


CHAT_GEOMETRY = "gqa28x4"  # the random checkpoint built without --model-path


def emulated_targets(p: Parser, args) -> dict:
    """{mesh: target name} on --platform tt-emulated ({} elsewhere): each mesh on the target of its chip count;
    a usage error for an unknown target, a mesh no target holds, no plugin interpreter or no descriptor."""
    if args.platform != "tt-emulated":
        if args.tt_emulated_targets:
            p.fail("--tt-emulated-targets applies to --platform tt-emulated")
        if args.tt_arithmetic:
            p.fail("--tt-arithmetic applies to --platform tt-emulated")
        return {}
    from ..tenstorrent.emulated.platform import EmulatedPlatform, EmulationUnavailable, parse_targets

    try:
        platform = EmulatedPlatform(parse_targets(args.tt_emulated_targets.split(",")), tt_python=args.tt_python,
                                    compile_cache=args.tt_compile_cache)
        return {mesh_text(shape): platform.check(shape[0] * shape[1]).name for shape in (args.meshes or [args.mesh])}
    except (EmulationUnavailable, ValueError) as e:
        p.fail(f"--platform tt-emulated: {e}")


def check_run_dir(p: Parser, args) -> None:
    """The run directory's usage errors, before anything loads: a file, --resume without a journal, a
    journal without --resume, a journal written for another checkpoint."""
    if not args.run_dir:
        if args.meshes:
            p.fail("--meshes needs --run-dir DIR (the journal, report and summary of the run)")
        if args.resume:
            p.fail("--resume needs --run-dir DIR (the run to continue)")
        return
    run_dir = args.run_dir
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        p.fail(f"argument --run-dir: {run_dir!r} is a file, not a directory")
    parent = os.path.dirname(os.path.abspath(run_dir))
    if not os.path.isdir(parent):
        p.fail(f"argument --run-dir: directory {parent!r} does not exist")
    path = journal.path_in(run_dir)
    if args.resume and not os.path.isfile(path):
        p.fail(f"--resume: {run_dir!r} holds no journal ({journal.NAME}); start the run without --resume")
    if not args.resume and os.path.isfile(path):
        p.fail(f"argument --run-dir: {run_dir!r} holds a journal already: pass --resume to continue that run, "
               f"or choose another --run-dir")
    if args.resume:
        from .evaluate import checkpoint_fingerprint
        from .run import RANDOM_CHECKPOINT

        try:
            header, _, _ = journal.read(path)
        except (journal.JournalError, OSError) as e:
            p.fail(f"--resume: {e}")
        checkpoint = args.model_path or os.path.join(run_dir, RANDOM_CHECKPOINT)
        have = checkpoint_fingerprint(checkpoint) if os.path.isdir(checkpoint) else None
        if have != header.get("checkpoint"):
            p.fail(f"--resume: the journal in {run_dir!r} was written for another checkpoint than {checkpoint!r} "
                   f"(file names, sizes or times differ); resume with that checkpoint or start another --run-dir")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--worker" in argv:  # one run of a --run-dir run, started by the command itself
        worker_args = build_parser().parse_args(argv)
        from .run import worker

        return worker(worker_args.run_dir, worker_args.worker)
    args = parse_args(argv)
    if args.run_dir:
        return run_main(args)
    from ..cli.devices import prepare_platform, resolve_platform

    try:
        platform = resolve_platform(args.platform)
    except ValueError as e:
        build_parser().fail(str(e))
    shape = args.mesh
    prepare_platform(platform, shape[0] * shape[1])  # fake host devices, before JAX starts its backend

    from .. import load_model, make_mesh
    from .data import GSM8KFormatError, GSM8KUnavailable, load_split, select
    from .evaluate import Settings, evaluate, summary_line, write_report
    from .prompts import choose

    from ..cli.devices import jax_platform

    try:
        mesh = make_mesh(shape, platform=jax_platform(platform))
    except ValueError as e:
        build_parser().fail(str(e))
    try:
        problems = select(load_split("test", args.gsm8k_path), args.samples)
    except (GSM8KUnavailable, GSM8KFormatError) as e:
        die(PROG, str(e))
    mesh_name = mesh_text(shape)
    tmp = None
    if args.model_path:
        path = args.model_path
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = args.dtype or "bfloat16"
    else:
        from ..synthetic.random_checkpoint import build_chat_checkpoint
        tmp = tempfile.TemporaryDirectory()
        texts = [p.question for p in load_split("train", args.gsm8k_path)]
        print("no --model-path: building a random checkpoint with a GSM8K-trained tokenizer in", tmp.name)
        path, _, tokenizer = build_chat_checkpoint(tmp.name, texts, geometry=CHAT_GEOMETRY)
        dtype = args.dtype or "float32"

    protocol = choose(args.protocol, tokenizer, args.shots, args.seed)
    train = load_split("train", args.gsm8k_path) if protocol.name == "fewshot" else None
    emulated = ({"tt_target": args.tt_targets[mesh_name], "tt_python": args.tt_python,
                 "compile_cache": args.tt_compile_cache, "tt_arithmetic": args.tt_arithmetic or "exact"}
                if args.tt_targets else {})
    model = load_model(path, mesh, dtype=dtype, max_cache_length=args.max_cache_length, **emulated)
    settings = Settings(protocol, args.max_new_tokens, args.batch_size, dtype)
    report = evaluate(model, path, tokenizer, problems, settings, train, reference=args.reference,
                      cache_dir=args.reference_cache, rerun_reference=args.rerun_reference,
                      mesh=mesh_name, show_progress=True,
                      release_before_reference=True)
    report["platform"] = platform
    if args.tt_targets:
        report["tt_targets"] = dict(args.tt_targets)
        report["tt_arithmetic"] = args.tt_arithmetic or "exact"
    write_report(report, args.report)
    print(summary_line(report))
    print(f"accuracy {report['accuracy']:.1f}% ({report['correct']}/{report['problems']})")
    if "reference" in report:
        ref = report["reference"]
        print(f"reference accuracy {ref['accuracy']:.1f}% ({'cached' if ref['cached'] else 'computed'}), "
              f"answer agreement {ref['answer_agreement']:.1f}%, identical completions "
              f"{ref['identical_completions']}/{report['problems']}")
    print(f"throughput {report['tokens_per_second']:.1f} generated tokens/s; report: {args.report}")
    if tmp is not None:
        tmp.cleanup()
    return 0


def run_main(args) -> int:
    """The resumable run of every mesh of ``args.mesh_list`` and the reference in ``args.run_dir``."""
    from ..cli.devices import resolve_platform

    p = build_parser()
    try:
        platform = resolve_platform(args.platform)
    except ValueError as e:
        p.fail(str(e))
    if platform not in ("cpu", "tt-emulated"):  # on the CPU each worker makes the fake devices its mesh needs
        need = max(a * b for a, b in args.mesh_list)
        have = platform_devices(platform)
        if have < need:
            worst = next(mesh_text(m) for m in args.mesh_list if m[0] * m[1] == need)
            p.fail(f"--meshes {worst}: needs {need} devices; the {platform} platform has {have}")
    from ..model.config import Qwen2Config
    from . import run
    from .data import GSM8KFormatError, GSM8KUnavailable, load_split, select
    from .evaluate import (Settings, batches, checkpoint_fingerprint, describe_tokenizer, encode, pad_id,
                           stop_ids)
    from .prompts import build_prompts, choose

    try:
        problems = select(load_split("test", args.gsm8k_path), args.samples)
        train = None
        os.makedirs(args.run_dir, exist_ok=True)
        if args.model_path:
            path = args.model_path
            dtype = args.dtype or "bfloat16"
        else:
            path = os.path.join(args.run_dir, run.RANDOM_CHECKPOINT)
            dtype = args.dtype or "float32"
            if not os.path.isdir(path):
                from ..synthetic.random_checkpoint import build_chat_checkpoint

                train = load_split("train", args.gsm8k_path)
                print(f"no --model-path: building a random checkpoint with a GSM8K-trained tokenizer in {path}")
                build_chat_checkpoint(path + ".tmp", [q.question for q in train], geometry=CHAT_GEOMETRY)
                os.replace(path + ".tmp", path)
    except (GSM8KUnavailable, GSM8KFormatError) as e:
        die(PROG, str(e))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    try:
        protocol = choose(args.protocol, tokenizer, args.shots, args.seed)
    except ValueError as e:
        p.fail(f"argument --protocol: {e}")
    if protocol.name == "fewshot" and train is None:
        train = load_split("train", args.gsm8k_path)
    config = Qwen2Config.from_checkpoint(path)
    stops = stop_ids(tokenizer, config)
    pad = pad_id(tokenizer, stops)
    encoded = encode(tokenizer, build_prompts(problems, protocol, tokenizer, train))
    settings = Settings(protocol, args.max_new_tokens, args.batch_size, dtype)
    header = run.header_for(settings, problems, describe_tokenizer(tokenizer), checkpoint_fingerprint(path), stops,
                            pad, encoded, platform, args.max_cache_length, args.tt_targets, args.tt_arithmetic)
    path_j = journal.path_in(args.run_dir)
    if args.resume:
        old, _, _ = journal.read(path_j)
        diff = journal.difference(old, header)
        if diff:
            p.fail(f"--resume: the journal in {args.run_dir!r} was written with other settings: {diff}")
        if journal.repair(path_j):
            print("journal: a torn last line was dropped; that batch runs again", file=sys.stderr)
    else:
        journal.start(path_j, header)
    run.write_json(os.path.join(args.run_dir, run.PLAN), {
        "checkpoint": os.path.abspath(path), "platform": platform, "tt_targets": args.tt_targets,
        "tt_python": args.tt_python, "tt_compile_cache": args.tt_compile_cache,
        "tt_arithmetic": args.tt_arithmetic or "exact", "protocol": dataclasses.asdict(protocol),
        "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "dtype": dtype,
        "max_cache_length": args.max_cache_length, "stop_ids": stops, "pad_id": pad,
        "problem_ids": [q.id for q in problems], "encoded": encoded})
    runs = [run.REFERENCE] + [mesh_text(shape) for shape in args.mesh_list]
    run.run_workers(args.run_dir, runs, len(list(batches(len(encoded), args.batch_size))), PROG)
    report = run.assemble(args.run_dir, runs, problems, tokenizer, protocol, encoded, args.margin)
    return run.finish(args.run_dir, report)


def platform_devices(platform: str) -> int:
    """How many devices ``platform`` has, asked in a process of its own (this one must not hold them)."""
    import subprocess

    code = f"import jax; print(len(jax.devices({platform!r})))"
    env = dict(os.environ, JAX_PLATFORMS=platform)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    try:
        return int(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
