"""Root pytest configuration: platform selection and device set-up.

``--platform auto|tt|cpu`` picks where the meshes live. ``auto`` is ``tt`` when the
Tenstorrent PJRT plugin (``pjrt-plugin-tt``) is installed, else ``cpu``. On ``cpu`` the
suite creates 32 fake host devices; that has to happen before JAX starts its backend, so
it is done here in ``pytest_configure`` (which also runs in every pytest-xdist worker)
and nothing in this file imports JAX at module level (see ``devices.py``).
"""

from __future__ import annotations

import glob
import json
import os
import time

import pytest

FAKE_CPU_DEVICES = 32


def _add_option(parser, *names, **kwargs):
    """Register an option, tolerating its registration by another plugin (tt-xla's conftest)."""
    try:
        parser.addoption(*names, **kwargs)
    except ValueError:
        pass


def pytest_addoption(parser):
    _add_option(parser, "--platform", choices=("auto", "tt", "cpu"), default=os.environ.get("QWEN2_5_PLATFORM", "auto"),
                help="device platform for the meshes: tt (Tenstorrent PJRT plugin), cpu (32 fake host "
                     "devices) or auto (tt when pjrt-plugin-tt is installed). Env: QWEN2_5_PLATFORM")
    # Real checkpoint and GSM8K (tests/jax/models/qwen2_5/test_gsm8k.py).
    _add_option(parser, "--model-path", default=os.environ.get("QWEN2_5_MODEL_PATH"),
                help="a real Qwen2.5 Hugging Face checkpoint directory for the real-checkpoint GSM8K tests "
                     "(env QWEN2_5_MODEL_PATH); those tests skip without it")
    _add_option(parser, "--gsm8k-path", default=os.environ.get("GSM8K_PATH"),
                help="GSM8K data: a directory with test.jsonl and train.jsonl, or one .jsonl file (env GSM8K_PATH); "
                     "default: the Hugging Face dataset openai/gsm8k")
    _add_option(parser, "--gsm8k-samples", default=None,
                help="first N test problems, or 'all' (default: 8 on random checkpoints, 100 on a real one)")
    _add_option(parser, "--gsm8k-batch-size", type=int, default=8, help="prompts per generate call")
    _add_option(parser, "--gsm8k-max-new-tokens", type=int, default=256, help="greedy tokens per problem")
    _add_option(parser, "--gsm8k-protocol", choices=("auto", "chat", "fewshot"), default="auto",
                help="prompting protocol (auto: chat when the tokenizer has a chat template, else 4-shot)")
    _add_option(parser, "--gsm8k-tolerance", type=float, default=2.0,
                help="allowed accuracy gap to the PyTorch reference on a real checkpoint, in points")
    _add_option(parser, "--gsm8k-rerun-reference", action="store_true", default=False,
                help="recompute the cached PyTorch reference completions")
    _add_option(parser, "--gsm8k-reference-cache",
                default=os.path.join(os.path.expanduser("~"), ".cache", "qwen2_5_gsm8k"),
                help="directory of cached PyTorch reference runs (real checkpoints)")
    _add_option(parser, "--gsm8k-report-dir", default=os.path.join("reports", "gsm8k"),
                help="where each GSM8K evaluation writes its JSON report")
    _add_option(parser, "--qwen-tokenizer", default=None,
                help="a directory with Qwen's tokenizer.json for the rehearsal tests (env QWEN2_5_TOKENIZER); "
                     "they skip without it")
    # Tenstorrent compile-only checks (tests/jax/models/qwen2_5/test_tt_compile.py).
    _add_option(parser, "--tt-python", default=None,
                help="a Python with a Tenstorrent PJRT plugin for the compile checks (env QWEN2_5_TT_PYTHON; "
                     "default: .venv-tt/bin/python, else this Python when it has one)")
    _add_option(parser, "--tt-system-descs", default=None,
                help="more directories of Tenstorrent system descriptors (.ttsys), os.pathsep-separated "
                     "(env QWEN2_5_TT_SYSTEM_DESCS), e.g. ../shared/tt_system_descs or tt-xla's "
                     "tests/cpu_compile_only/system_descs")
    # Options tt-xla's CI passes to every pytest run; accepted here so the suite runs under it.
    _add_option(parser, "--log-memory", action="store_true", default=False,
                help="(tt-xla) log device memory usage")
    _add_option(parser, "--perf-report-dir", action="store", default=None,
                help="(tt-xla) directory for performance reports")
    _add_option(parser, "--perf-id", action="store", default=None, help="(tt-xla) performance run id")


def pytest_configure(config):
    config.qwen_session_start = time.time()
    # Imports jax (and the package) but does not start a backend, so the flags still apply.
    from tests.jax.models.qwen2_5.devices import prepare_platform, resolve_platform

    try:
        platform = resolve_platform(config.getoption("--platform"))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from e
    config.qwen_platform = platform
    prepare_platform(platform, FAKE_CPU_DEVICES)


def pytest_report_header(config):
    return f"qwen2_5: platform={getattr(config, 'qwen_platform', '?')}"


def gsm8k_report_dir(config) -> str:
    path = config.getoption("--gsm8k-report-dir")
    return path if os.path.isabs(path) else os.path.join(str(config.rootpath), path)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A table of this session's GSM8K results (read back from the JSON reports, so it also
    works under pytest-xdist)."""
    report_dir = gsm8k_report_dir(config)
    start = getattr(config, "qwen_session_start", 0)
    rows = []
    for path in sorted(glob.glob(os.path.join(report_dir, "*.json"))):
        if os.path.getmtime(path) < start:
            continue
        try:
            with open(path) as f:
                report = json.load(f)
        except (OSError, ValueError):
            continue
        ref = report.get("reference") or {}
        rows.append((report.get("label", "?"), report["mesh"], report["settings"]["dtype"],
                     report["settings"]["protocol"]["name"], report["problems"], report["accuracy"],
                     ref.get("accuracy"), ref.get("answer_agreement"), ref.get("identical_completions"),
                     report.get("tokens_per_second") or 0.0))
    if not rows:
        return
    tr = terminalreporter
    tr.section("GSM8K results")
    tr.write_line(f"{'checkpoint':12} {'mesh':5} {'dtype':8} {'protocol':8} {'n':>4} {'acc %':>6} {'ref %':>6} "
                  f"{'agree %':>7} {'identical':>9} {'tok/s':>7}")
    for label, mesh, dtype, proto, n, acc, ref_acc, agree, same, tps in rows:
        fmt = lambda v: "-" if v is None else f"{v:.1f}"
        tr.write_line(f"{label:12} {mesh:5} {dtype:8} {proto:8} {n:4d} {acc:6.1f} {fmt(ref_acc):>6} "
                      f"{fmt(agree):>7} {('-' if same is None else f'{same}/{n}'):>9} {tps:7.1f}")
