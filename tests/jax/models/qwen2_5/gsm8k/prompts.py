"""GSM8K prompting protocols.

* ``chat`` (default when the tokenizer has a chat template; for Instruct checkpoints):
  zero-shot, the tokenizer's chat template, a system message asking for step-by-step
  reasoning and the final answer in ``\\boxed{}``, the question as the user turn.
* ``fewshot`` (for base checkpoints): ``shots`` worked exemplars from the train split,
  drawn with a fixed seed, as ``Question: ...`` / ``Answer: ...`` pairs (calculator
  annotations ``<<...>>`` removed, each ending in ``#### N``); the completion is cut at
  the next ``Question:``.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import List, Optional, Sequence

from .data import Problem

SYSTEM_PROMPT = ("Work through the problem one step at a time, showing your reasoning. "
                 "Write the final numeric answer inside \\boxed{}.")
PROTOCOLS = ("auto", "chat", "fewshot")


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str                     # "chat" or "fewshot"
    shots: int = 4
    seed: int = 1234
    system_prompt: str = SYSTEM_PROMPT

    def describe(self) -> dict:
        if self.name == "chat":
            return {"name": "chat", "system_prompt": self.system_prompt}
        return {"name": "fewshot", "shots": self.shots, "seed": self.seed}


def choose(requested: str, tokenizer, shots: int = 4, seed: int = 1234) -> Protocol:
    if requested not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {requested!r}")
    if requested == "auto":
        requested = "chat" if getattr(tokenizer, "chat_template", None) else "fewshot"
    if requested == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ValueError("the chat protocol needs a tokenizer with a chat template; use --protocol fewshot "
                         "for base checkpoints")
    if shots < 0:
        raise ValueError(f"shots must be >= 0, got {shots}")
    return Protocol(requested, shots, seed)


def strip_calculator(solution: str) -> str:
    """GSM8K's worked solution without its ``<<48/2=24>>`` calculator annotations."""
    return re.sub(r"<<[^>]*>>", "", solution)


def fewshot_prefix(train: Sequence[Problem], shots: int, seed: int) -> str:
    if shots and len(train) < shots:
        raise ValueError(f"{shots} exemplars requested but the train split has {len(train)} problems")
    exemplars = random.Random(seed).sample(list(train), shots) if shots else []
    return "".join(f"Question: {p.question}\nAnswer: {strip_calculator(p.answer)}\n\n" for p in exemplars)


def build_prompts(problems: Sequence[Problem], protocol: Protocol, tokenizer,
                  train: Optional[Sequence[Problem]] = None) -> List[str]:
    if protocol.name == "chat":
        return [tokenizer.apply_chat_template(
            [{"role": "system", "content": protocol.system_prompt}, {"role": "user", "content": p.question}],
            tokenize=False, add_generation_prompt=True) for p in problems]
    if train is None and protocol.shots:
        raise ValueError("the fewshot protocol needs GSM8K's train split for its exemplars")
    prefix = fewshot_prefix(train or [], protocol.shots, protocol.seed)
    return [f"{prefix}Question: {p.question}\nAnswer:" for p in problems]


def finish(completion: str, protocol: Protocol) -> str:
    """The completion as scored: for fewshot, cut where the model starts the next question."""
    if protocol.name == "fewshot":
        completion = completion.split("Question:", 1)[0]
    return completion.strip()
