"""Acceptance rehearsal, default tier: the published Qwen2.5-7B-Instruct config and vocabulary
(152064 rows, sharded 8 and 32 ways), Qwen's real tokenizer with Qwen2.5-Instruct's special
tokens and chat template, random weights at a narrow width and 2 layers (``synthetic.py``).
The GSM8K chat pipeline gives float32 completions token-for-token identical to PyTorch
``generate``, stopping on the real special ids. The full-size tier is ``rehearsal_full.py``.
"""

import json
import math
import os
import struct

import numpy as np
import pytest

from .synthetic import qwen_tokenizer, builder as synthetic
from .testing.gsm8k_run import run_gsm8k
from .testing.meshes import MESH_PARAMS
from .gsm8k.data import select
from .gsm8k.prompts import choose

pytestmark = [pytest.mark.gsm8k, pytest.mark.model_test]

NARROW = {"hidden_size": 224, "intermediate_size": 300}  # 28 heads of 8 dims; MLP not divisible by 8 or 32
STOP_BOOST = 3.0  # lm_head rows of <|im_end|> and <|endoftext|> scaled up so rows stop at different steps


def scale_rows(checkpoint: str, tensor: str, rows, factor: float) -> None:
    """Multiply rows of a bfloat16 tensor in place in its safetensors shard."""
    import ml_dtypes

    with open(os.path.join(checkpoint, "model.safetensors.index.json")) as f:
        shard = os.path.join(checkpoint, json.load(f)["weight_map"][tensor])
    with open(shard, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    meta = header[tensor]
    assert meta["dtype"] == "BF16"
    data = np.memmap(shard, dtype=ml_dtypes.bfloat16, mode="r+", offset=8 + n + meta["data_offsets"][0],
                     shape=tuple(meta["shape"]))
    for r in rows:
        data[r] = (data[r].astype(np.float32) * factor).astype(ml_dtypes.bfloat16)
    data.flush()


@pytest.fixture(scope="module")
def rehearsal_checkpoint(request, tmp_path_factory):
    source = request.config.getoption("--qwen-tokenizer") or os.environ.get(qwen_tokenizer.ENV_VAR)
    if not source:
        pytest.skip(f"no Qwen tokenizer: pass --qwen-tokenizer=DIR or set {qwen_tokenizer.ENV_VAR}=DIR (a directory "
                    f"with Qwen's tokenizer.json; on the project machines ../shared/data/qwen_tokenizer)")
    out = str(tmp_path_factory.mktemp("rehearsal_7b_narrow"))
    synthetic.build(out, "qwen2.5-7b-instruct", layers=2, tokenizer=source, overrides=NARROW, log=lambda *_: None)
    scale_rows(out, "lm_head.weight", [qwen_tokenizer.IM_END, qwen_tokenizer.ENDOFTEXT], STOP_BOOST)
    return out


def test_rehearsal_checkpoint_is_the_published_shape(rehearsal_checkpoint):
    from .model.config import Qwen2Config

    with open(os.path.join(rehearsal_checkpoint, "config.json")) as f:
        raw = json.load(f)
    config = Qwen2Config.from_checkpoint(rehearsal_checkpoint)
    assert (config.vocab_size, config.num_attention_heads, config.num_key_value_heads) == (152064, 28, 4)
    assert raw["torch_dtype"] == "bfloat16" and raw["rope_theta"] == 1e6 and "rope_parameters" not in raw
    assert raw["eos_token_id"] == qwen_tokenizer.IM_END and raw["bos_token_id"] == qwen_tokenizer.ENDOFTEXT
    with open(os.path.join(rehearsal_checkpoint, "generation_config.json")) as f:
        assert json.load(f)["eos_token_id"] == [qwen_tokenizer.IM_END, qwen_tokenizer.ENDOFTEXT]
    with open(os.path.join(rehearsal_checkpoint, "model.safetensors.index.json")) as f:
        index = json.load(f)
    expected = sum(math.prod(shape) * 2 for _, shape, _ in synthetic.tensor_specs(raw))
    assert index["metadata"]["total_size"] == expected
    assert len(index["weight_map"]) == 2 + 12 * 2 + 1  # embedding, lm_head, 12 per layer, final norm


def test_rehearsal_chat_template_renders_as_qwen2_5_instruct(rehearsal_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rehearsal_checkpoint)
    text = tok.apply_chat_template([{"role": "user", "content": "2+3?"}], tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                    "<|im_end|>\n<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n")
    own = tok.apply_chat_template([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                                  tokenize=False)
    assert own == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    assert (tok.eos_token_id, tok.pad_token_id, len(tok)) == (151645, 151643, 151665)
    assert tok("Hello world!", add_special_tokens=False)["input_ids"] == [9707, 1879, 0]


@pytest.mark.parametrize("mesh", [p for p in MESH_PARAMS if p.id in ("mesh_2x4", "mesh_1x32")], indirect=True)
def test_rehearsal_gsm8k_chat_matches_pytorch(request, mesh, rehearsal_checkpoint, gsm8k_splits, tmp_path_factory):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(rehearsal_checkpoint)
    test, _ = gsm8k_splits
    problems = select(test, 8)
    cache = str(tmp_path_factory.getbasetemp() / "rehearsal_reference")
    report = run_gsm8k(request, mesh, rehearsal_checkpoint, tokenizer, problems, None, choose("chat", tokenizer),
                       "float32", cache, "rehearsal", max_new_tokens=32)
    differing = [r["id"] for r in report["records"] if not r["tokens_identical"]]
    assert not differing, f"completions differ from PyTorch for {differing}"
    assert report["stop_ids"] == [qwen_tokenizer.ENDOFTEXT, qwen_tokenizer.IM_END]
    lengths = [r["completion_tokens"] for r in report["records"]]
    assert min(lengths) < 32, f"no row stopped on a special id: {lengths}"
    assert all(r["prompt_tokens"] > 40 for r in report["records"])  # the default system message is there
    assert report["tokenizer"]["vocab"] == 151665 and report["tokenizer"]["eos_token_id"] == qwen_tokenizer.IM_END
