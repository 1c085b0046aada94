"""The acceptance run as one resumable command: the PyTorch reference and every mesh, in turn.

    python -m tests.jax.models.qwen2_5.gsm8k --meshes 1x1,1x8,2x4,1x32,8x4 --run-dir DIR [--resume]

The reference (``reference``) and each mesh run in a worker process of their own (a model loads
once per process, so a 7B on the host never holds JAX and PyTorch copies at once, and each mesh
gets the devices it needs). Every finished batch is journaled (``journal.py``); ``--resume``
skips what the journal holds, so a killed run loses at most the batches in flight. The parent
writes ``plan.json`` (everything a worker needs: encoded prompts, stop ids, settings, paths), runs
the workers, then scores the journaled tokens and writes ``report.json`` and ``summary.md``,
applying the parity rule (``parity.py``) to each mesh against the 1x1 run and against PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional

from . import journal, parity

REFERENCE = "reference"
PLAN = "plan.json"
REPORT = "report.json"
SUMMARY = "summary.md"
RANDOM_CHECKPOINT = "random-checkpoint"  # the default checkpoint of a run without --model-path, kept for --resume


def _sha256(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def header_for(settings, problems, tokenizer_info: dict, fingerprint: list, stops, pad, encoded, platform: str,
               max_cache_length: int, tt_targets: Optional[dict] = None, tt_arithmetic: Optional[str] = None) -> dict:
    """What a journal is bound to: a resumed run must agree on every field (on tt-emulated, the targets and a
    chosen arithmetic too)."""
    extra = {"tt_targets": dict(tt_targets)} if tt_targets else {}
    if tt_targets and tt_arithmetic:
        extra["tt_arithmetic"] = tt_arithmetic
    return {"settings": settings.describe(), "max_cache_length": max_cache_length, "platform": platform, **extra,
            "problems": [p.id for p in problems],
            "problems_sha256": _sha256([[p.id, p.question, p.gold] for p in problems]),
            "tokenizer": tokenizer_info, "checkpoint": fingerprint, "stop_ids": list(stops), "pad_id": pad,
            "prompts_sha256": _sha256(encoded)}


def write_json(path: str, value) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --- the worker: one run (the reference or a mesh), its missing batches ------------------------

def worker(run_dir: str, run: str) -> int:
    """Generate the batches of ``run`` the journal lacks, journaling each as it finishes."""
    with open(os.path.join(run_dir, PLAN)) as f:
        plan = json.load(f)
    path = journal.path_in(run_dir)
    _, lines, _ = journal.read(path)
    done = journal.done_batches(lines).get(run, {})
    encoded, ids = plan["encoded"], plan["problem_ids"]
    from .evaluate import Settings, batches, jax_completions, torch_completions, torch_model
    from .prompts import Protocol

    settings = Settings(Protocol(**{k: v for k, v in plan["protocol"].items()}), plan["max_new_tokens"],
                        plan["batch_size"], plan["dtype"])
    todo = [(k, idx) for k, idx in enumerate(batches(len(encoded), settings.batch_size)) if k not in done]
    if not todo:
        return 0
    if run == REFERENCE:
        model = torch_model(plan["checkpoint"], settings.dtype)
        complete = torch_completions
    else:
        from ..cli.devices import jax_platform, parse_mesh, prepare_platform

        shape = parse_mesh(run)
        prepare_platform(plan["platform"], shape[0] * shape[1])
        from .. import load_model, make_mesh

        target = (plan.get("tt_targets") or {}).get(run)  # tt-emulated: the Tenstorrent target of this mesh
        emulated = ({"tt_target": target, "tt_python": plan.get("tt_python"),
                     "compile_cache": plan.get("tt_compile_cache"),
                     "tt_arithmetic": plan.get("tt_arithmetic", "exact")} if target else {})
        model = load_model(plan["checkpoint"], make_mesh(shape, platform=jax_platform(plan["platform"])),
                           dtype=settings.dtype, max_cache_length=plan["max_cache_length"], **emulated)
        complete = jax_completions
    from tqdm import tqdm

    finished = sum(len(b["ids"]) for b in done.values())
    label = "PyTorch reference" if run == REFERENCE else f"mesh {run}"
    generated, seconds = 0, 0.0
    with tqdm(total=len(encoded), initial=finished, desc=f"GSM8K {label}", unit="problem", file=sys.stderr,
              dynamic_ncols=True) as bar:
        for k, idx in todo:
            start = time.perf_counter()
            tokens = complete(model, [encoded[i] for i in idx], settings, plan["stop_ids"], plan["pad_id"])
            took = time.perf_counter() - start
            journal.append_batch(path, run, k, [ids[i] for i in idx], tokens, took)
            generated += sum(len(t) for t in tokens)
            seconds += took
            bar.update(len(idx))
            bar.set_postfix_str(f"{generated / seconds:.1f} tok/s" if seconds else "")
    return 0


# --- the parent: plan, workers, report --------------------------------------------------------

def run_workers(run_dir: str, runs: List[str], total_batches: int, prog: str) -> None:
    """Each run with batches missing from the journal, in a worker process of its own."""
    for run in runs:
        _, lines, _ = journal.read(journal.path_in(run_dir))
        if len(journal.done_batches(lines).get(run, {})) >= total_batches:
            print(f"{run}: complete in the journal", file=sys.stderr)
            continue
        cmd = [sys.executable, "-m", "tests.jax.models.qwen2_5.gsm8k", "--worker", run, "--run-dir", run_dir]
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            print(f"{prog}: error: the {run} worker failed (exit status {proc.returncode}); its batches so far are "
                  f"journaled: rerun with --resume", file=sys.stderr)
            raise SystemExit(1)


def assemble(run_dir: str, runs: List[str], problems, tokenizer, protocol, encoded, margin: float) -> dict:
    """The report of a complete journal: per-run records and figures, and parity per mesh."""
    from .evaluate import accuracy, compare, score

    header, lines, _ = journal.read(journal.path_in(run_dir))
    done = journal.done_batches(lines)
    with open(os.path.join(run_dir, PLAN)) as f:
        plan = json.load(f)
    index = {p.id: i for i, p in enumerate(problems)}
    prompt_tokens = [len(e) for e in encoded]
    stops = header["stop_ids"]
    results: Dict[str, dict] = {}
    for run in runs:
        tokens: List[Optional[List[int]]] = [None] * len(problems)
        seconds = 0.0
        for batch in done.get(run, {}).values():
            seconds += batch["seconds"]
            for pid, t in zip(batch["ids"], batch["tokens"]):
                tokens[index[pid]] = t
        missing = [problems[i].id for i, t in enumerate(tokens) if t is None]
        if missing:
            raise RuntimeError(f"{run}: the journal lacks {len(missing)} problems (first {missing[0]})")
        records = score(problems, tokens, tokenizer, protocol, prompt_tokens, stops)
        generated = sum(len(t) for t in tokens)
        results[run] = {"tokens": tokens, "records": records, "accuracy": accuracy(records),
                        "correct": sum(r["correct"] for r in records), "generated_tokens": generated,
                        "seconds": seconds, "tokens_per_second": generated / seconds if seconds else None}
    ref = results[REFERENCE]
    report = {"run_dir": os.path.abspath(run_dir), "settings": header["settings"], "tokenizer": header["tokenizer"],
              "stop_ids": stops, "problems": len(problems), "margin": margin, "platform": header.get("platform"),
              "tt_targets": plan.get("tt_targets") or {},
              **({"tt_arithmetic": plan.get("tt_arithmetic", "exact")} if plan.get("tt_targets") else {}),
              "reference": {k: v for k, v in ref.items() if k != "tokens"}, "meshes": {}}
    one = results.get("1x1")
    for run in runs:
        if run == REFERENCE:
            continue
        res = results[run]
        records = res["records"]
        agreement = compare(records, ref["records"], res["tokens"], ref["tokens"])
        correct = [r["correct"] for r in records]
        vs_1x1 = None if run == "1x1" or one is None else parity.paired(
            correct, [r["correct"] for r in one["records"]], margin)
        vs_ref = parity.paired(correct, [r["correct"] for r in ref["records"]], margin)
        report["meshes"][run] = {
            "accuracy": res["accuracy"], "correct": res["correct"], "generated_tokens": res["generated_tokens"],
            "seconds": res["seconds"], "tokens_per_second": res["tokens_per_second"], **agreement,
            "parity": {"vs_1x1": vs_1x1, "vs_reference": vs_ref,
                       "holds": vs_ref["holds"] and (vs_1x1 is None or vs_1x1["holds"])},
            "records": records}
    report["parity"] = all(m["parity"]["holds"] for m in report["meshes"].values())
    return report


def _delta(result: Optional[dict]) -> str:
    if result is None:
        return "-"
    lo, hi = result["ci95"]
    return f"{result['delta']:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def table(report: dict) -> List[List[str]]:
    """The side-by-side rows: the reference, then every mesh."""
    n = report["problems"]
    rows = [["run", "accuracy", "vs 1x1: delta [95% CI]", "vs PyTorch: delta [95% CI]", "discordant vs PyTorch",
             "McNemar p", "identical", "parity", "tok/s"]]
    ref = report["reference"]
    rows.append(["PyTorch", f"{ref['accuracy']:.1f}% ({ref['correct']}/{n})", "-", "-", "-", "-", "-", "-",
                 f"{ref['tokens_per_second'] or 0:.1f}"])
    for run, m in report["meshes"].items():
        vs_ref = m["parity"]["vs_reference"]
        rows.append([run, f"{m['accuracy']:.1f}% ({m['correct']}/{n})", _delta(m["parity"]["vs_1x1"]),
                     _delta(vs_ref), f"{vs_ref['discordant'][0]} / {vs_ref['discordant'][1]}",
                     f"{vs_ref['p_value']:.3g}", f"{m['identical_completions']}/{n}",
                     "yes" if m["parity"]["holds"] else "no", f"{m['tokens_per_second'] or 0:.1f}"])
    return rows


def markdown(report: dict) -> str:
    rows = table(report)
    s = report["settings"]
    lines = [f"# GSM8K acceptance run: {report['problems']} problems",
             "",
             f"Protocol {s['protocol']['name']}, {s['dtype']}, greedy, {s['max_new_tokens']} new tokens, batch "
             f"{s['batch_size']}; tokenizer {report['tokenizer']['class']} ({report['tokenizer']['vocab']} tokens). "
             f"Parity: the 95% interval (Newcombe, paired) of the accuracy difference lies within "
             f"+-{report['margin']:g} points, against the 1x1 run and against PyTorch.",
             "",
             f"Platform {report.get('platform') or '?'}"
             + ("; Tenstorrent targets (compiled by tt-mlir, run by the TTNN executor): "
                + ", ".join(f"{m} on {t}" for m, t in report["tt_targets"].items())
                + f"; {report.get('tt_arithmetic', 'exact')} arithmetic" if report.get("tt_targets") else "")
             + ".",
             "",
             "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    verdict = "holds on every mesh" if report["parity"] else "does NOT hold on every mesh"
    lines += ["", f"Parity {verdict}.", ""]
    return "\n".join(lines)


def print_table(report: dict) -> None:
    rows = table(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def finish(run_dir: str, report: dict) -> int:
    write_json(os.path.join(run_dir, REPORT), report)
    with open(os.path.join(run_dir, SUMMARY), "w") as f:
        f.write(markdown(report))
    print_table(report)
    for run, m in report["meshes"].items():
        for name in ("vs_1x1", "vs_reference"):
            if m["parity"][name] is not None:
                print(f"{run} {name}: {parity.describe(m['parity'][name])}")
    print(f"report: {os.path.join(run_dir, REPORT)}; summary: {os.path.join(run_dir, SUMMARY)}")
    return 0 if report["parity"] else 1
