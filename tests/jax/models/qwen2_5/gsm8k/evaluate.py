"""Running GSM8K: prompts -> greedy completions (JAX model and PyTorch reference) -> scores -> report."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import List, Optional, Sequence

import numpy as np

from .answers import extract_answer, same_number
from .data import Problem
from .prompts import Protocol, build_prompts, finish


@dataclasses.dataclass(frozen=True)
class Settings:
    protocol: Protocol
    max_new_tokens: int = 256
    batch_size: int = 8
    dtype: str = "bfloat16"

    def describe(self) -> dict:
        return {"protocol": self.protocol.describe(), "max_new_tokens": self.max_new_tokens,
                "batch_size": self.batch_size, "dtype": self.dtype, "decoding": "greedy",
                "repetition_penalty": 1.0}


def stop_ids(tokenizer, config) -> List[int]:
    """Token ids that end a completion: the tokenizer's and config's EOS, and Qwen's turn ends."""
    ids = set(config.eos_token_ids())
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    for token in ("<|im_end|>", "<|endoftext|>"):
        if token in vocab:
            ids.add(int(vocab[token]))
    return sorted(i for i in ids if i < config.vocab_size)


def describe_tokenizer(tokenizer) -> dict:
    """What the report records of the tokenizer: where it came from, its size and special ids."""
    template = getattr(tokenizer, "chat_template", None)
    return {"name_or_path": getattr(tokenizer, "name_or_path", None), "class": type(tokenizer).__name__,
            "vocab": len(tokenizer), "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
            "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest() if template else None}


def pad_id(tokenizer, stops: Sequence[int]) -> int:
    return int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else int(stops[0])


def encode(tokenizer, prompts: Sequence[str]) -> List[List[int]]:
    return [list(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]


def left_padded(rows: Sequence[Sequence[int]], pad: int):
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    return ids, mask


def trim(tokens: Sequence[int], stops: Sequence[int]) -> List[int]:
    """The completion up to its first stop token (exclusive)."""
    out = []
    for t in tokens:
        if int(t) in stops:
            break
        out.append(int(t))
    return out


def batches(n: int, size: int):
    """Problem indices of each batch, in order (the batch composition a journal records)."""
    for start in range(0, n, size):
        yield list(range(start, min(n, start + size)))


def jax_completions(model, rows, settings: Settings, stops, pad) -> List[List[int]]:
    """Greedy completions (trimmed token lists) of one batch of encoded prompts on the JAX model."""
    ids, mask = left_padded(rows, pad)
    tokens = model.generate(ids, mask, settings.max_new_tokens, eos_token_id=stops)
    return [trim(tokens[row], stops) for row in range(len(rows))]


def torch_model(checkpoint_dir: str, dtype: str):
    """The Hugging Face PyTorch model of a checkpoint, in ``dtype``, for the reference."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(checkpoint_dir, dtype=getattr(torch, dtype)).eval()


def torch_completions(model, rows, settings: Settings, stops, pad) -> List[List[int]]:
    """PyTorch ``generate`` (greedy, no repetition penalty) on one batch of encoded prompts."""
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(do_sample=False, max_new_tokens=settings.max_new_tokens, eos_token_id=list(stops),
                              pad_token_id=pad, repetition_penalty=1.0)
    ids, mask = left_padded(rows, pad)
    with torch.no_grad():
        gen = model.generate(input_ids=torch.tensor(ids, dtype=torch.long),
                             attention_mask=torch.tensor(mask, dtype=torch.long), generation_config=config)
    return [trim(gen[row, ids.shape[1]:].tolist(), stops) for row in range(len(rows))]


def generate_jax(model, encoded, settings: Settings, stops, pad, progress=None):
    """Greedy completions (trimmed token lists) and the seconds spent generating."""
    out: List[List[int]] = [None] * len(encoded)
    start = time.perf_counter()
    for idx in batches(len(encoded), settings.batch_size):
        for i, tokens in zip(idx, jax_completions(model, [encoded[i] for i in idx], settings, stops, pad)):
            out[i] = tokens
        if progress is not None:
            progress.update(len(idx))
    return out, time.perf_counter() - start


def checkpoint_fingerprint(checkpoint_dir: str) -> list:
    """Names, sizes and modification times of a checkpoint's files (cheap; no hashing of weights)."""
    entries = []
    for name in sorted(os.listdir(checkpoint_dir)):
        path = os.path.join(checkpoint_dir, name)
        if os.path.isfile(path) and (name.endswith((".json", ".safetensors", ".txt", ".model", ".jinja"))):
            st = os.stat(path)
            entries.append([name, st.st_size, st.st_mtime_ns])
    return entries


def reference_key(checkpoint_dir, settings: Settings, problem_ids, stops) -> str:
    blob = json.dumps({"checkpoint": checkpoint_fingerprint(checkpoint_dir), "settings": settings.describe(),
                       "problems": list(problem_ids), "stops": list(stops)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def generate_reference(checkpoint_dir, encoded, settings: Settings, stops, pad, problem_ids,
                       cache_dir: Optional[str] = None, rerun: bool = False, progress=None) -> dict:
    """Hugging Face PyTorch greedy completions on the same prompts, cached on disk by
    (checkpoint files, protocol and settings, problem ids, stops). Returns
    {"tokens": [...], "seconds": s, "cached": bool, "cache_file": path}."""
    key = reference_key(checkpoint_dir, settings, problem_ids, stops)
    cache_file = os.path.join(cache_dir, f"reference-{key[:24]}.json") if cache_dir else None
    if cache_file and not rerun and os.path.isfile(cache_file):
        with open(cache_file) as f:
            cached = json.load(f)
        if cached.get("key") == key:
            if progress is not None:
                progress.update(len(encoded))
            return {"tokens": cached["tokens"], "seconds": cached["seconds"], "cached": True, "cache_file": cache_file}

    model = torch_model(checkpoint_dir, settings.dtype)
    out: List[List[int]] = [None] * len(encoded)
    start = time.perf_counter()
    for idx in batches(len(encoded), settings.batch_size):
        for i, tokens in zip(idx, torch_completions(model, [encoded[i] for i in idx], settings, stops, pad)):
            out[i] = tokens
        if progress is not None:
            progress.update(len(idx))
    seconds = time.perf_counter() - start
    if cache_file:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = cache_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"key": key, "tokens": out, "seconds": seconds}, f)
        os.replace(tmp, cache_file)
    return {"tokens": out, "seconds": seconds, "cached": False, "cache_file": cache_file}


def score(problems: Sequence[Problem], completions: Sequence[List[int]], tokenizer, protocol: Protocol,
          prompt_tokens: Sequence[int], stops) -> List[dict]:
    records = []
    for p, tokens, n_prompt in zip(problems, completions, prompt_tokens):
        text = finish(tokenizer.decode(tokens, skip_special_tokens=True), protocol)
        predicted = extract_answer(text)
        records.append({"id": p.id, "completion": text, "extracted": predicted, "gold": p.gold,
                        "correct": same_number(predicted, p.gold), "prompt_tokens": int(n_prompt),
                        "completion_tokens": len(tokens)})
    return records


def compare(records, ref_records, tokens, ref_tokens) -> dict:
    """Adds the reference's completion, answer and correctness and ``tokens_identical`` to each record;
    returns the answer agreement (%) and the number of identical completions."""
    for rec, ref_rec, ours, theirs in zip(records, ref_records, tokens, ref_tokens):
        rec["reference_completion"] = ref_rec["completion"]
        rec["reference_extracted"] = ref_rec["extracted"]
        rec["reference_correct"] = ref_rec["correct"]
        rec["tokens_identical"] = list(ours) == list(theirs)
    agree = sum(same_number(a["extracted"], b["extracted"]) or (a["extracted"] is None and b["extracted"] is None)
                for a, b in zip(records, ref_records))
    return {"answer_agreement": 100.0 * agree / max(1, len(records)),
            "identical_completions": sum(r["tokens_identical"] for r in records)}


def accuracy(records) -> float:
    return 100.0 * sum(r["correct"] for r in records) / max(1, len(records))


def evaluate(model, checkpoint_dir: str, tokenizer, problems: Sequence[Problem], settings: Settings,
             train: Optional[Sequence[Problem]] = None, reference: bool = False,
             cache_dir: Optional[str] = None, rerun_reference: bool = False, mesh: str = "?",
             show_progress: bool = False, release_before_reference: bool = False) -> dict:
    """Evaluate ``model`` on ``problems``; with ``reference`` also the PyTorch model. Returns the report.
    ``release_before_reference`` frees the JAX model's buffers before PyTorch loads its copy (for
    models that fit the host once, not twice)."""
    tokenizer.padding_side = "left"
    stops = stop_ids(tokenizer, model.config)
    pad = pad_id(tokenizer, stops)
    prompts = build_prompts(problems, settings.protocol, tokenizer, train)
    encoded = encode(tokenizer, prompts)
    progress = None
    if show_progress:
        from tqdm import tqdm
        progress = tqdm(total=len(problems) * (2 if reference else 1), desc=f"GSM8K mesh {mesh}", unit="problem")
    tokens, seconds = generate_jax(model, encoded, settings, stops, pad, progress)
    records = score(problems, tokens, tokenizer, settings.protocol, [len(e) for e in encoded], stops)
    generated = sum(len(t) for t in tokens)
    report = {
        "checkpoint": os.path.abspath(checkpoint_dir), "mesh": mesh, "settings": settings.describe(),
        "tokenizer": describe_tokenizer(tokenizer), "stop_ids": stops, "problems": len(problems), "correct": sum(r["correct"] for r in records),
        "accuracy": accuracy(records), "generated_tokens": generated, "seconds": seconds,
        "tokens_per_second": generated / seconds if seconds else None, "records": records,
    }
    if reference:
        if release_before_reference:
            model.release()
        ref = generate_reference(checkpoint_dir, encoded, settings, stops, pad, [p.id for p in problems],
                                 cache_dir, rerun_reference, progress)
        ref_records = score(problems, ref["tokens"], tokenizer, settings.protocol, [len(e) for e in encoded], stops)
        report["reference"] = {"accuracy": accuracy(ref_records), "correct": sum(r["correct"] for r in ref_records),
                               "seconds": ref["seconds"], "cached": ref["cached"], "cache_file": ref["cache_file"],
                               **compare(records, ref_records, tokens, ref["tokens"])}
    if progress is not None:
        progress.close()
    return report


def write_report(report: dict, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    return path


def summary_line(report: dict) -> str:
    line = (f"mesh {report['mesh']:5} {report['settings']['dtype']:8} {report['settings']['protocol']['name']:7} "
            f"n={report['problems']:4} acc {report['accuracy']:5.1f}%")
    ref = report.get("reference")
    if ref:
        line += (f"  ref {ref['accuracy']:5.1f}%  agreement {ref['answer_agreement']:5.1f}%  "
                 f"identical {ref['identical_completions']}/{report['problems']}")
    if report.get("tokens_per_second"):
        line += f"  {report['tokens_per_second']:.1f} tok/s"
    return line
