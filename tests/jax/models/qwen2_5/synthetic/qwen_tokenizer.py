"""Qwen2.5-Instruct's tokenizer files, written from Qwen's BPE (a local copy or the hub).

Qwen2, Qwen2.5 and Qwen3 share one byte-level BPE (151,643 tokens); they differ in the
special tokens added after it and in the chat template. This writes the Qwen2.5-Instruct
flavour: the 22 special tokens 151643-151664 (``<|endoftext|>`` pad, ``<|im_start|>``,
``<|im_end|>`` eos, ...), and a chat template written here that renders conversations as
Qwen2.5-Instruct's does, including its default system message when none is given.

Source: ``--tokenizer DIR`` (a directory with Qwen's ``tokenizer.json``), else the
environment variable ``QWEN2_5_TOKENIZER``, else the hub's ``Qwen/Qwen2.5-7B-Instruct``.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Optional

ENV_VAR = "QWEN2_5_TOKENIZER"
HUB_TOKENIZER = "Qwen/Qwen2.5-7B-Instruct"
BPE_SIZE = 151643
SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
           "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
           "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>")
CONTROL = 14  # the first 14 are control tokens (skipped when decoding); tool-call and FIM markers are text
ENDOFTEXT, IM_START, IM_END = BPE_SIZE, BPE_SIZE + 1, BPE_SIZE + 2
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# Conversations as Qwen2.5-Instruct renders them: a system turn first (the given one, else the
# default), every turn as <|im_start|>role\ncontent<|im_end|>\n, and the generation prompt opening
# the assistant turn. Tool calls are outside what this suite sends and are refused.
CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' -}}"
    "{%- set turns = messages[1:] -%}"
    "{%- else -%}"
    "{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' -}}"
    "{%- set turns = messages -%}"
    "{%- endif -%}"
    "{%- for m in turns -%}"
    "{%- if m.get('tool_calls') or tools -%}{{- raise_exception('tool calls are not supported here') -}}{%- endif -%}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


class TokenizerSourceError(ValueError):
    pass


def resolve_source(option: Optional[str]) -> str:
    """``--tokenizer``, else ``$QWEN2_5_TOKENIZER``, else the hub id."""
    return option or os.environ.get(ENV_VAR) or HUB_TOKENIZER


def _fetch(source: str) -> str:
    """A local directory holding ``tokenizer.json`` for ``source`` (a directory or a hub id)."""
    if os.path.isdir(source):
        if not os.path.isfile(os.path.join(source, "tokenizer.json")):
            raise TokenizerSourceError(f"{source} has no tokenizer.json (Qwen's BPE)")
        return source
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(source, allow_patterns=["tokenizer.json", "vocab.json", "merges.txt"])
    except Exception as e:  # offline, unknown repo
        raise TokenizerSourceError(f"could not fetch the tokenizer {source!r} from the hub "
                                   f"({type(e).__name__}: {str(e)[:160]})") from e


def write(source: str, out_dir: str) -> dict:
    """Write Qwen2.5-Instruct's tokenizer files into ``out_dir``; returns what was written."""
    src = _fetch(source)
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    vocab = tok.get("model", {}).get("vocab", {})
    if tok.get("model", {}).get("type") != "BPE" or len(vocab) != BPE_SIZE:
        raise TokenizerSourceError(f"{src}/tokenizer.json is not Qwen's BPE ({len(vocab)} tokens, expected {BPE_SIZE})")
    base = {t["content"]: t for t in tok.get("added_tokens", [])}
    added = []
    for i, content in enumerate(SPECIAL):
        entry = dict(base.get(content, {}), id=BPE_SIZE + i, content=content, single_word=False, lstrip=False,
                     rstrip=False, normalized=False, special=i < CONTROL)
        if content in base and base[content]["id"] != entry["id"]:
            raise TokenizerSourceError(f"{content} has id {base[content]['id']} in {src}, Qwen2.5 uses {entry['id']}")
        added.append(entry)
    tok["added_tokens"] = added
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    for name in ("vocab.json", "merges.txt"):
        if os.path.isfile(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(out_dir, name))
    config = {
        "add_bos_token": False, "add_prefix_space": False, "bos_token": None, "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>", "errors": "replace",
        "model_max_length": 131072, "pad_token": "<|endoftext|>", "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
        "additional_special_tokens": list(SPECIAL[1:CONTROL]),
        "added_tokens_decoder": {str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip",
                                                                  "single_word", "special")} for t in added},
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
    return {"kind": "qwen", "source": source, "vocab": BPE_SIZE + len(SPECIAL), "eos_token_id": IM_END,
            "pad_token_id": ENDOFTEXT}
