"""GSM8K acceptance run from the command line.

    python -m tests.jax.models.qwen2_5.gsm8k --model-path P --mesh 2x4 --samples 100 \
        --report out.json [--reference]

Without ``--model-path`` it builds a small random checkpoint (with a real tokenizer) so the
command works on a fresh machine. Prints accuracy, and with ``--reference`` the PyTorch
reference accuracy (cached on disk), the answer agreement and the throughput.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tests.jax.models.qwen2_5.gsm8k",
                                description="GSM8K accuracy of the tensor-parallel Qwen2.5 model")
    p.add_argument("--model-path", default=os.environ.get("QWEN2_5_MODEL_PATH"),
                   help="Hugging Face checkpoint directory (env QWEN2_5_MODEL_PATH); default: a random one")
    p.add_argument("--mesh", default="1x1", help="BxM mesh: B on 'batch', M on 'model' (e.g. 2x4, 1x8, 8x4, 1x32)")
    p.add_argument("--platform", choices=("auto", "tt", "cpu"), default="auto")
    p.add_argument("--samples", default="100", help="first N test problems, or 'all' (1319)")
    p.add_argument("--gsm8k-path", default=None, help="directory with test.jsonl/train.jsonl, or one .jsonl "
                   "(env GSM8K_PATH); default: the Hugging Face dataset openai/gsm8k")
    p.add_argument("--protocol", choices=("auto", "chat", "fewshot"), default="auto")
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--seed", type=int, default=1234, help="few-shot exemplar seed")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                   help="default: bfloat16 for --model-path, float32 for the random checkpoint")
    p.add_argument("--report", default="gsm8k_report.json", help="JSON report path")
    p.add_argument("--reference", action="store_true", help="also run (or reuse) the PyTorch reference")
    p.add_argument("--rerun-reference", action="store_true", help="ignore the cached reference")
    p.add_argument("--reference-cache", default=os.path.join(os.path.expanduser("~"), ".cache", "qwen2_5_gsm8k"))
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from ..devices import parse_mesh, prepare_platform, resolve_platform

    try:
        shape = parse_mesh(args.mesh)
        platform = resolve_platform(args.platform)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from e
    prepare_platform(platform, shape[0] * shape[1])  # fake host devices, before JAX starts its backend

    from .. import load_model, make_mesh
    from .data import load_split, select
    from .evaluate import Settings, evaluate, summary_line, write_report
    from .prompts import choose

    problems = select(load_split("test", args.gsm8k_path), args.samples)
    tmp = None
    if args.model_path:
        path = args.model_path
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = args.dtype or "bfloat16"
    else:
        from ..random_checkpoint import build_chat_checkpoint
        tmp = tempfile.TemporaryDirectory()
        texts = [p.question for p in load_split("train", args.gsm8k_path)]
        print("no --model-path: building a random checkpoint with a GSM8K-trained tokenizer in", tmp.name)
        path, _, tokenizer = build_chat_checkpoint(tmp.name, texts)
        dtype = args.dtype or "float32"

    protocol = choose(args.protocol, tokenizer, args.shots, args.seed)
    train = load_split("train", args.gsm8k_path) if protocol.name == "fewshot" else None
    mesh = make_mesh(shape, platform=platform)
    model = load_model(path, mesh, dtype=dtype)
    settings = Settings(protocol, args.max_new_tokens, args.batch_size, dtype)
    report = evaluate(model, path, tokenizer, problems, settings, train, reference=args.reference,
                      cache_dir=args.reference_cache, rerun_reference=args.rerun_reference,
                      mesh=args.mesh, show_progress=True)
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
