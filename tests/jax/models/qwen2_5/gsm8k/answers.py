"""Answer extraction and scoring for GSM8K completions.

``extract_answer`` looks, in order, for the last ``\\boxed{...}``, then ``#### N``, then
``The answer is N``, then the last number anywhere, and returns that number normalized
(thousands commas, ``$``, ``%`` and a trailing period dropped; ``18.00`` -> ``18``).
``is_correct`` compares it numerically with the gold ``#### N`` of a GSM8K answer field.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Optional

_NUMBER = re.compile(r"-?\s?\$?\s?(?:\d[\d,]*(?:\.\d+)?|\.\d+)")
_HASHES = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS = re.compile(r"the (?:final )?answer is[:\s]*([^\n]*)", re.IGNORECASE)


def _boxed_contents(text: str) -> list:
    """Contents of every ``\\boxed{...}`` (balanced braces), in order."""
    found = []
    for m in re.finditer(r"\\boxed\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found.append(text[m.end(): i - 1])
    return found


_FRAC = re.compile(r"(-?)\\d?frac\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}")


def _canonical(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def normalize_number(text: str) -> Optional[str]:
    """The first number in ``text`` as a canonical decimal string, or None."""
    text = text.replace("\u2212", "-").replace("\\$", "$").replace("\\%", "%").replace("\\!", "")
    frac = _FRAC.search(text)
    if frac and frac.start() <= (_NUMBER.search(text).start() if _NUMBER.search(text) else len(text)):
        sign, num, den = frac.groups()
        if Decimal(den) != 0:
            value = Decimal(num) / Decimal(den)
            return _canonical(-value if sign else value)
    m = _NUMBER.search(text)
    if m is None:
        return None
    raw = re.sub(r"[\s$,]", "", m.group(0))
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return _canonical(value)


def _last_number(text: str) -> Optional[str]:
    matches = list(_NUMBER.finditer(text.replace("\u2212", "-")))
    return normalize_number(matches[-1].group(0)) if matches else None


def extract_answer(text: str) -> Optional[str]:
    """The model's final numeric answer in ``text``, normalized; None when there is none."""
    if not text:
        return None
    for contents in reversed(_boxed_contents(text)):
        value = normalize_number(contents)
        if value is not None:
            return value
    for pattern in (_HASHES, _ANSWER_IS):
        for m in reversed(list(pattern.finditer(text))):
            value = normalize_number(m.group(1))
            if value is not None:
                return value
    return _last_number(text)


def gold_answer(answer_field: str) -> str:
    """The normalized number after ``####`` in a GSM8K answer field."""
    m = list(_HASHES.finditer(answer_field or ""))
    value = normalize_number(m[-1].group(1)) if m else None
    if value is None:
        raise ValueError(f"gold answer has no final '#### N': {answer_field[-80:]!r}")
    return value


def same_number(a: Optional[str], b: Optional[str]) -> bool:
    if a is None or b is None:
        return False
    try:
        return Decimal(a) == Decimal(b)
    except InvalidOperation:
        return False


def is_correct(completion: str, gold_answer_field: str) -> bool:
    """Whether ``completion``'s extracted answer equals the gold ``#### N`` numerically."""
    return same_number(extract_answer(completion), gold_answer(gold_answer_field))
