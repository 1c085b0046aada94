"""GSM8K problems: a local copy (``--gsm8k-path`` / ``GSM8K_PATH``) or the Hugging Face dataset."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import List, Optional

from .answers import gold_answer

ENV_VAR = "GSM8K_PATH"
HF_DATASET = ("openai/gsm8k", "main")


class GSM8KUnavailable(RuntimeError):
    """Neither a local copy nor the Hugging Face dataset could be read."""


class GSM8KFormatError(ValueError):
    """A malformed line in a GSM8K file (the message names the file and line)."""


@dataclasses.dataclass(frozen=True)
class Problem:
    id: str          # "<split>-<index>", index into the split's file
    question: str
    answer: str      # the worked solution ending in "#### N"
    gold: str        # the normalized N


def read_jsonl(path: str, split: str) -> List[Problem]:
    problems = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise GSM8KFormatError(f"{where}: not valid JSON ({e.msg})") from e
            if not isinstance(row, dict) or not isinstance(row.get("question"), str) \
                    or not isinstance(row.get("answer"), str):
                raise GSM8KFormatError(f"{where}: expected an object with string 'question' and 'answer'")
            problems.append(_problem(split, len(problems), row, where))
    return problems


def _problem(split: str, index: int, row: dict, where: str) -> Problem:
    try:
        gold = gold_answer(row["answer"])
    except ValueError as e:
        raise GSM8KFormatError(f"{where}: the answer lacks its final '#### N'") from e
    return Problem(f"{split}-{index:04d}", row["question"], row["answer"], gold)


def resolve_path(path: Optional[str], split: str) -> Optional[str]:
    """The .jsonl file for ``split`` under ``path`` (a directory or one file), or None."""
    path = path or os.environ.get(ENV_VAR) or None
    if path is None:
        return None
    if os.path.isdir(path):
        candidate = os.path.join(path, f"{split}.jsonl")
        if not os.path.isfile(candidate):
            raise GSM8KUnavailable(f"{path} has no {split}.jsonl (GSM8K's {split} split)")
        return candidate
    if not os.path.isfile(path):
        raise GSM8KUnavailable(f"GSM8K path {path!r} does not exist (--gsm8k-path / {ENV_VAR})")
    if split == "test":
        return path
    sibling = os.path.join(os.path.dirname(path), f"{split}.jsonl")
    if os.path.isfile(sibling):
        return sibling
    raise GSM8KUnavailable(f"few-shot exemplars need GSM8K's {split} split: put {split}.jsonl beside {path} "
                           f"or pass a directory holding test.jsonl and train.jsonl")


def load_split(split: str = "test", path: Optional[str] = None) -> List[Problem]:
    """Every problem of ``split``, from the local copy when given, else from the Hugging Face hub."""
    local = resolve_path(path, split)
    if local is not None:
        return read_jsonl(local, split)
    try:
        import datasets

        rows = datasets.load_dataset(*HF_DATASET, split=split)
    except Exception as e:  # offline, no cache, hub unreachable
        raise GSM8KUnavailable(
            f"GSM8K is not available: no --gsm8k-path / {ENV_VAR} was given and the Hugging Face dataset "
            f"{HF_DATASET[0]} ({HF_DATASET[1]}) could not be loaded ({type(e).__name__}: {str(e)[:200]})") from e
    return [_problem(split, i, row, f"{HF_DATASET[0]} {split} row {i}") for i, row in enumerate(rows)]


def select(problems: List[Problem], samples) -> List[Problem]:
    """The first ``samples`` problems (an int, or "all")."""
    if samples in (None, "all"):
        return list(problems)
    n = int(samples)
    if n < 1:
        raise ValueError(f"samples must be a positive integer or 'all', got {samples!r}")
    return list(problems[:n])
