"""GSM8K evaluation of the tensor-parallel Qwen2.5 model (see the README, "GSM8K")."""

from .answers import extract_answer, gold_answer, is_correct

__all__ = ["extract_answer", "gold_answer", "is_correct"]
