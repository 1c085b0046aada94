"""GSM8K: answer extraction, data errors, and accuracy parity with the PyTorch reference on every mesh."""

import json
import os

import pytest

from . import load_model
from .testing.gsm8k_run import run_gsm8k
from .testing.meshes import build_mesh, mesh_name
from .testing.options import on_chip
from .gsm8k import extract_answer, is_correct
from .gsm8k.data import GSM8KFormatError, GSM8KUnavailable, Problem, load_split, read_jsonl, select
from .gsm8k.evaluate import Settings, evaluate
from .gsm8k.parity import describe, paired
from .gsm8k.prompts import build_prompts, choose, fewshot_prefix, finish, strip_calculator

pytestmark = pytest.mark.gsm8k


# --- answer extraction ------------------------------------------------------------------------

@pytest.mark.cpu
@pytest.mark.parametrize("text, expected", [
    ("so the total is \\boxed{18}.", "18"),
    ("\\boxed{3} first, then \\boxed{\\$1,450,000.00}", "1450000"),         # last box, $ and commas
    ("\\boxed{\\frac{3}{4}}", "0.75"),
    ("\\boxed{18 \\text{ dollars}} and later 5", "18"),                    # box beats later numbers
    ("Natalia sold 48 clips.\n#### 72", "72"),
    ("#### 1,000\nextra words 7", "1000"),                                # #### beats the last number
    ("The answer is 18.", "18"),                                          # trailing period
    ("So the final answer is: $-3.50.", "-3.5"),                          # negative, decimal, $
    ("He pays 25% more, 12.50 in all", "12.5"),                           # last number
    ("The rate is 40%", "40"),                                            # percent sign
    ("18.00", "18"),
    ("−4 degrees", "-4"),                                                 # unicode minus
    ("no digits at all", None),
    ("", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.cpu
@pytest.mark.parametrize("completion, gold, correct", [
    ("\\boxed{18.00}", "...\n#### 18", True),
    ("The answer is 1,450,000", "...\n#### 1,450,000", True),
    ("#### -2", "...\n#### -2", True),
    ("The answer is 17", "...\n#### 18", False),
    ("nothing here", "...\n#### 18", False),
    ("0.5", "...\n#### .5", True),
])
def test_is_correct(completion, gold, correct):
    assert is_correct(completion, gold) is correct


@pytest.mark.cpu
def test_gold_without_final_answer_raises():
    with pytest.raises(ValueError, match="no final '#### N'"):
        is_correct("18", "she has 18 apples")


# --- data -------------------------------------------------------------------------------------

def write_lines(tmp_path, lines, name="test.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.cpu
def test_malformed_line_names_file_and_line(tmp_path):
    good = json.dumps({"question": "q", "answer": "a\n#### 1"})
    path = write_lines(tmp_path, [good, good, "{not json"])
    with pytest.raises(GSM8KFormatError, match=rf"{path}:3: not valid JSON"):
        read_jsonl(path, "test")


@pytest.mark.cpu
def test_missing_gold_names_file_and_line(tmp_path):
    path = write_lines(tmp_path, [json.dumps({"question": "q", "answer": "a\n#### 1"}),
                                  json.dumps({"question": "q", "answer": "just 5"})])
    with pytest.raises(GSM8KFormatError, match=rf"{path}:2: the answer lacks its final '#### N'"):
        read_jsonl(path, "test")


@pytest.mark.cpu
def test_data_sources(tmp_path):
    row = json.dumps({"question": "q", "answer": "a <<2*3=6>>6\n#### 6"})
    single = write_lines(tmp_path, [row] * 3, "mine.jsonl")
    assert [p.gold for p in load_split("test", single)] == ["6"] * 3
    with pytest.raises(GSM8KUnavailable, match="train.jsonl beside"):
        load_split("train", single)
    with pytest.raises(GSM8KUnavailable, match="does not exist"):
        load_split("test", str(tmp_path / "missing"))
    assert len(select(load_split("test", single), 2)) == 2 and len(select(load_split("test", single), "all")) == 3


@pytest.mark.cpu
def test_fewshot_prompt():
    train = [Problem(f"train-{i}", f"Q{i}?", f"Step <<{i}*2={2 * i}>>{2 * i}.\n#### {2 * i}", str(2 * i))
             for i in range(10)]
    prefix = fewshot_prefix(train, 4, seed=7)
    assert prefix == fewshot_prefix(train, 4, seed=7)  # fixed seed, same exemplars
    assert prefix.count("Question: ") == 4 and prefix.count("#### ") == 4 and "<<" not in prefix
    protocol = choose("fewshot", tokenizer=None, shots=4, seed=7)
    prompt = build_prompts([Problem("test-0", "How many?", "#### 3", "3")], protocol, None, train)[0]
    assert prompt == prefix + "Question: How many?\nAnswer:"
    assert finish(" 2 + 1 = 3\n#### 3\n\nQuestion: next one", protocol) == "2 + 1 = 3\n#### 3"
    assert strip_calculator("a <<1+1=2>>2 b") == "a 2 b"


# --- parity on a random checkpoint -----------------------------------------------------------

@pytest.fixture(scope="session")
def gsm8k_random_checkpoint(gsm8k_splits, tmp_path_factory):
    from .synthetic.random_checkpoint import build_chat_checkpoint

    _, train = gsm8k_splits
    path, _, tokenizer = build_chat_checkpoint(str(tmp_path_factory.mktemp("gsm8k_ckpt")),
                                               [p.question for p in train])
    return path, tokenizer


def samples(config, default):
    value = config.getoption("--gsm8k-samples")
    return default if value is None else value


@pytest.mark.model_test
def test_gsm8k_random_checkpoint_matches_pytorch(request, mesh, gsm8k_splits, gsm8k_random_checkpoint,
                                                 tmp_path_factory):
    """float32: completions token-for-token equal to PyTorch generate, hence equal accuracy. On a chip (its FPU
    reads float32 operands as tf32) a random model's flat distributions part from PyTorch within a few dozen
    tokens (0 of 4 identical at 64 tokens under chip arithmetic): there only the accuracy is held equal, and the
    identical-completion count is printed; test_greedy_tokens_equal_pytorch_generate bounds each parting."""
    path, tokenizer = gsm8k_random_checkpoint
    test, train = gsm8k_splits
    protocol = choose(request.config.getoption("--gsm8k-protocol"), tokenizer)
    problems = select(test, samples(request.config, 8))
    cache = str(tmp_path_factory.getbasetemp() / "gsm8k_reference")
    report = run_gsm8k(request, mesh, path, tokenizer, problems, train, protocol, "float32", cache, "random")
    differing = [r["id"] for r in report["records"] if not r["tokens_identical"]]
    if on_chip(request.config):
        print(f"chip arithmetic: {len(problems) - len(differing)} of {len(problems)} completions identical")
    else:
        assert not differing, f"completions differ from PyTorch for {differing}"
    assert report["accuracy"] == report["reference"]["accuracy"]


@pytest.mark.model_test
@pytest.mark.tensor_parallel
@pytest.mark.llmbox
def test_gsm8k_random_checkpoint_fewshot_matches_pytorch(request, gsm8k_splits, gsm8k_random_checkpoint,
                                                         tmp_path_factory):
    """The few-shot protocol (long prompts, completion cut at the next 'Question:') on 2x4."""
    path, tokenizer = gsm8k_random_checkpoint
    test, train = gsm8k_splits
    protocol = choose("fewshot", tokenizer)
    problems = select(test, 4)
    cache = str(tmp_path_factory.getbasetemp() / "gsm8k_reference")
    report = run_gsm8k(request, build_mesh(request.config, (2, 4)), path, tokenizer, problems, train, protocol,
                       "float32", cache, "random")
    assert all(r["tokens_identical"] for r in report["records"])
    assert report["accuracy"] == report["reference"]["accuracy"]


# --- the real checkpoint (acceptance) ----------------------------------------------------------

@pytest.mark.model_test
@pytest.mark.nightly
@pytest.mark.large
def test_gsm8k_real_checkpoint_accuracy(request, mesh, gsm8k_splits):
    """bfloat16 accuracy at parity with the PyTorch reference (cached on disk), by the command's rule
    (``gsm8k/parity.py``): the paired 95% interval within --gsm8k-tolerance points."""
    path = request.config.getoption("--model-path")
    if not path:
        pytest.skip("no real checkpoint: pass --model-path=DIR or set QWEN2_5_MODEL_PATH (e.g. Qwen2.5-7B-Instruct)")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    test, train = gsm8k_splits
    protocol = choose(request.config.getoption("--gsm8k-protocol"), tokenizer)
    problems = select(test, samples(request.config, 100))
    report = run_gsm8k(request, mesh, path, tokenizer, problems, train, protocol, "bfloat16",
                       request.config.getoption("--gsm8k-reference-cache"), "real")
    rule = paired([r["correct"] for r in report["records"]], [r["reference_correct"] for r in report["records"]],
                  margin=request.config.getoption("--gsm8k-tolerance"))
    request.node.user_properties.append(("gsm8k_parity", json.dumps(rule)))
    print(f"\nmesh_{mesh_name(mesh)} vs PyTorch: {describe(rule)}")
    assert rule["holds"], (f"accuracy {report['accuracy']:.1f}% vs PyTorch {report['reference']['accuracy']:.1f}%: "
                           f"{describe(rule)}")


@pytest.mark.model_test
@pytest.mark.single_device
def test_reference_run_is_cached_and_keyed(gsm8k_splits, gsm8k_random_checkpoint, tmp_path):
    """The PyTorch reference is reused for the same key, recomputed on request or when a key part changes."""
    from . import make_mesh

    path, tokenizer = gsm8k_random_checkpoint
    test, _ = gsm8k_splits
    model = load_model(path, make_mesh((1, 1)))
    protocol = choose("chat", tokenizer)

    def run(problems, max_new_tokens=16, rerun=False):
        settings = Settings(protocol, max_new_tokens, 2, "float32")
        return evaluate(model, path, tokenizer, problems, settings, reference=True, cache_dir=str(tmp_path),
                        rerun_reference=rerun)["reference"]

    first = run(test[:2])
    assert not first["cached"] and os.path.isfile(first["cache_file"])
    again = run(test[:2])
    assert again["cached"] and again["cache_file"] == first["cache_file"]
    assert not run(test[:2], rerun=True)["cached"]           # forced rerun
    assert not run(test[:2], max_new_tokens=17)["cached"]    # other max_new_tokens
    assert not run(test[1:3])["cached"]                      # other problem ids
    assert len(os.listdir(tmp_path)) == 3
