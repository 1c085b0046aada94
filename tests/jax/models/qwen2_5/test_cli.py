"""Command-line tools fail as a new user needs: one line on stderr, exit status 2, before any data,
weight or dataset hub is touched (no GSM8K_PATH is set here, so a late check would first spend
its time retrying the hub and print a traceback)."""

import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.cpu

ROOT = pathlib.Path(__file__).resolve().parents[4]

GSM8K = "tests.jax.models.qwen2_5.gsm8k"
BENCH = "tests.jax.models.qwen2_5.bench"
SYNTHETIC = "tests.jax.models.qwen2_5.synthetic"
MEMORY = "tests.jax.models.qwen2_5.tenstorrent.memory.command"
DURATIONS = "tests.jax.models.qwen2_5.ttxla_ci.durations"
REPLAY = "tests.jax.models.qwen2_5.ttxla_ci.replay"
# each command module's name in the test ids
NAMES = {GSM8K: "gsm8k", BENCH: "bench", SYNTHETIC: "synthetic", MEMORY: "memory_command", DURATIONS: "ci_durations",
         REPLAY: "ci_replay"}
CASES = [
    (GSM8K, ["--model-path", "/nonexistent"], "is not a directory"),
    (GSM8K, ["--mesh", "3x3"], "Supported 'model' axis sizes"),
    (GSM8K, ["--mesh", "2*4"], "BxM"),
    (GSM8K, ["--samples", "-1"], "--samples"),
    (GSM8K, ["--samples", "many"], "--samples"),
    (GSM8K, ["--max-new-tokens", "100000"], "cache positions"),
    (GSM8K, ["--batch-size", "0"], "--batch-size"),
    (GSM8K, ["--gsm8k-path", "/nonexistent.jsonl"], "does not exist"),
    (GSM8K, ["--report", "/nonexistent/report.json"], "--report"),
    (GSM8K, ["--protocol", "zeroshot"], "--protocol"),
    (GSM8K, ["--meshes", "1x1,2x4"], "--meshes needs --run-dir"),
    (GSM8K, ["--meshes", "1x1,3x3", "--run-dir", "/tmp/qwen2_5_cli_run"], "--meshes 3x3"),
    (GSM8K, ["--meshes", "1x1,1x1", "--run-dir", "/tmp/qwen2_5_cli_run"], "listed twice"),
    (GSM8K, ["--run-dir", "/nonexistent/run", "--resume"], "does not exist"),
    (GSM8K, ["--run-dir", "/tmp/qwen2_5_cli_run_none", "--resume"], "holds no journal"),
    (GSM8K, ["--run-dir", "/dev/null"], "is a file"),
    (GSM8K, ["--margin", "0", "--run-dir", "/tmp/qwen2_5_cli_run"], "--margin"),
    (BENCH, ["--meshes", "1x1,3x3"], "Supported 'model' axis sizes"),
    (BENCH, ["--batch", "-2"], "--batch"),
    (BENCH, ["--heads", "8", "--kv-heads", "3"], "multiple of num_key_value_heads"),
    (SYNTHETIC, ["--preset", "qwen2.5-70b", "/tmp/x"], "--preset"),
    (SYNTHETIC, ["--preset", "qwen2.5-7b-instruct", "--layers", "0", "/tmp/x"], "--layers"),
    (SYNTHETIC, ["--preset", "qwen2.5-7b-instruct", "--tokenizer", "/nonexistent", "/tmp/x"], "--tokenizer"),
    (SYNTHETIC, ["--preset", "qwen2.5-7b-instruct"], "OUT"),
    (MEMORY, ["--preset", "qwen2.5-70b", "--mesh", "1x8", "--target", "blackhole_8xp150"], "--preset"),
    (MEMORY, ["--preset", "qwen2.5-7b-instruct", "--mesh", "1x8", "--target", "tpu"], "--target"),
    (MEMORY, ["--preset", "qwen2.5-7b-instruct", "--mesh", "2x4", "--target", "blackhole_galaxy"], "does not fit"),
    (MEMORY, ["--preset", "qwen2.5-7b-instruct", "--mesh", "1x8", "--target", "blackhole_8xp150", "--programs",
              "training"], "--programs"),
    (MEMORY, ["--preset", "qwen2.5-7b-instruct", "--mesh", "1x8", "--target", "blackhole_8xp150", "--cache-length",
              "100"], "--cache-length"),
    (MEMORY, ["--config", "/nonexistent/config.json", "--mesh", "1x8", "--target", "blackhole_8xp150"], "--config"),
    (MEMORY, ["--preset", "qwen2.5-7b-instruct", "--mesh", "1x8"], "--target"),
    (DURATIONS, ["/nonexistent/junit.xml"], "no junit file"),
    (DURATIONS, [], "junit"),
    (REPLAY, ["--harness", "/nonexistent", "--tree", "/tmp/x"], "--harness"),
    (REPLAY, ["--harness", "../shared/ttxla_harness", "--tree", "/tmp/x", "--run", "basic-test.json:tpu"], "--run"),
]


@pytest.mark.parametrize("module,args,words", CASES, ids=[f"{NAMES[m]}{' '.join(a)}" for m, a, _ in CASES])
def test_usage_error_is_one_line_and_exit_2(module, args, words, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("GSM8K_PATH", "QWEN2_5_MODEL_PATH", "XLA_FLAGS")}
    out = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert len(lines) == 1 and "error:" in lines[0] and words in lines[0], out.stderr[-3000:]
    assert "Traceback" not in out.stderr and not out.stdout.strip(), out.stdout[-2000:]


MAIN = "tests.jax.models.qwen2_5"


def _main(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("GSM8K_PATH", "QWEN2_5_MODEL_PATH", "XLA_FLAGS")}
    return subprocess.run([sys.executable, "-m", MAIN, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_one_entry_point_lists_every_command_with_one_line_each():
    from .__main__ import COMMANDS

    out = _main("--help")
    assert out.returncode == 0, out.stderr[-3000:]
    listed = [line.split()[0] for line in out.stdout.split("commands:\n", 1)[1].splitlines() if line.strip()]
    assert listed == list(COMMANDS) and {"gsm8k", "synthetic", "bench", "tt-descriptors"} <= set(listed), out.stdout
    for name in COMMANDS:  # each command's own help comes through the entry point
        sub = _main(name, "--help")
        assert sub.returncode == 0 and "usage:" in sub.stdout, (name, sub.stdout[-1000:], sub.stderr[-2000:])


@pytest.mark.parametrize("args,words", [([], "usage:"), (["frobnicate"], "unknown command 'frobnicate'"),
                                        (["gsm8k", "--samples", "-1"], "--samples"),
                                        (["synthetic", "--preset", "qwen2.5-70b", "/tmp/x"], "--preset"),
                                        (["bench", "--batch", "-2"], "--batch")],
                         ids=["no-command", "unknown", "gsm8k", "synthetic", "bench"])
def test_entry_point_usage_errors_exit_2(args, words):
    out = _main(*args)
    assert out.returncode == 2 and words in out.stdout + out.stderr, (out.returncode, out.stdout, out.stderr[-2000:])
    if args:
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in out.stderr, out.stderr[-2000:]
