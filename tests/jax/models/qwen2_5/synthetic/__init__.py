"""Checkpoints and tokenizers made here (no weights can be downloaded): the published Qwen2.5
configurations (``presets``), full-size synthetic checkpoints with Qwen2.5-Instruct's tokenizer
(``builder``, ``qwen_tokenizer``), the small random test checkpoints and their BPE
(``random_checkpoint``, ``random_tokenizer``), and the full-scale rehearsal workers (``rehearsal``).

May import: ``model``, ``cli``, ``gsm8k`` (torch and transformers only inside functions).

Public names: ``builder.build``, ``presets.PRESETS``, ``qwen_tokenizer.write``,
``random_checkpoint.build_checkpoint``, ``random_checkpoint.build_chat_checkpoint``,
``random_checkpoint.GEOMETRIES``, ``random_tokenizer.train_tokenizer``.
"""
