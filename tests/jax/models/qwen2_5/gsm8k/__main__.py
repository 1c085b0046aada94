"""GSM8K acceptance run from the command line.

    python -m tests.jax.models.qwen2_5.gsm8k --model-path P --mesh 2x4 --samples 100 \
        --report out.json [--reference]

Without ``--model-path`` it builds a small random checkpoint (with a real tokenizer) so the
command works on a fresh machine. Prints accuracy, and with ``--reference`` the PyTorch
reference accuracy (cached on disk), the answer agreement and the throughput.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile

from ..cli.parser import Parser, die, mesh_shape, non_negative_int, positive_int

PROG = "python -m tests.jax.models.qwen2_5.gsm8k"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="GSM8K accuracy of the tensor-parallel Qwen2.5 model")
    p.add_argument("--model-path", default=os.environ.get("QWEN2_5_MODEL_PATH"),
                   help="Hugging Face checkpoint directory (env QWEN2_5_MODEL_PATH); default: a random one")
    p.add_argument("--mesh", type=mesh_shape, default=(1, 1),
                   help="BxM mesh: B on 'batch', M on 'model' (e.g. 2x4, 1x8, 8x4, 1x32)")
    p.add_argument("--platform", choices=("auto", "tt", "cpu"), default="auto")
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
    return p


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
    try:
        TPLayout(config, args.mesh[1])
        args.max_cache_length = cache_limit(config, args.max_cache_length)
    except ValueError as e:
        p.fail(f"--mesh {args.mesh[0]}x{args.mesh[1]}: {e}" if "parallel" in str(e) else str(e))
    need = cache_length(MIN_BUCKET, args.max_new_tokens)
    if need > args.max_cache_length:
        p.fail(f"argument --max-new-tokens: {args.max_new_tokens} new tokens need at least {need} cache positions; "
               f"the cache holds {args.max_cache_length} (--max-cache-length, at most max_position_embeddings="
               f"{config.max_position_embeddings})")
    return args


CHAT_GEOMETRY = "gqa28x4"  # the random checkpoint built without --model-path


def main(argv=None) -> int:
    args = parse_args(argv)
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

    try:
        mesh = make_mesh(shape, platform=platform)
    except ValueError as e:
        build_parser().fail(str(e))
    try:
        problems = select(load_split("test", args.gsm8k_path), args.samples)
    except (GSM8KUnavailable, GSM8KFormatError) as e:
        die(PROG, str(e))
    mesh_name = f"{shape[0]}x{shape[1]}"
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
    model = load_model(path, mesh, dtype=dtype, max_cache_length=args.max_cache_length)
    settings = Settings(protocol, args.max_new_tokens, args.batch_size, dtype)
    report = evaluate(model, path, tokenizer, problems, settings, train, reference=args.reference,
                      cache_dir=args.reference_cache, rerun_reference=args.rerun_reference,
                      mesh=mesh_name, show_progress=True,
                      release_before_reference=True)
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


if __name__ == "__main__":
    sys.exit(main())
