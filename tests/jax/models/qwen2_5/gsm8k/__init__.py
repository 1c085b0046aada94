"""GSM8K evaluation of the tensor-parallel Qwen2.5 model (see docs/gsm8k.md): the problems
(``data``), the prompting protocols (``prompts``), answer extraction and scoring (``answers``), the
evaluation with its PyTorch reference and report (``evaluate``) and the command (``__main__``).

May import: ``model``, ``cli`` (torch, transformers and datasets only inside functions); the
command may also use ``synthetic`` for its default random checkpoint.

Public names: ``extract_answer``, ``gold_answer``, ``is_correct``; ``data.load_split``,
``evaluate.evaluate``, ``evaluate.Settings``, ``prompts.choose``.
"""

from .answers import extract_answer, gold_answer, is_correct

__all__ = ["extract_answer", "gold_answer", "is_correct"]
