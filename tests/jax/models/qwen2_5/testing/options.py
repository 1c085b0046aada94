"""The suite's pytest options and tt-xla's, as tables: registered once whoever comes first, and read
with their defaults wherever the command line could not give them.

Inside tt-xla the package's conftest may be found only during collection (``pytest -m push tests/``):
pytest then runs its ``pytest_addoption`` after parsing the command line, and each option holds its
default (pytest sets it on registration). tt-xla's own conftest registers its eight options with a
plain ``addoption`` (a second registration fails), so the suite registers those only standalone
(``ttxla_standin.py``, loaded by the repository's root conftest); ``get`` reads any of them with
its default when nobody registered it.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class Option(NamedTuple):
    name: str
    kwargs: dict

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")

    @property
    def default(self):
        return self.kwargs.get("default", False if self.kwargs.get("action") == "store_true" else None)


def _opt(name: str, **kwargs) -> Option:
    return Option(name, kwargs)


# The suite's own options (environment defaults read when the table is built, at the first import).
SUITE = (
    _opt("--platform", choices=("auto", "tt", "cpu", "tt-emulated"), default=os.environ.get("QWEN2_5_PLATFORM", "auto"),
         help="device platform for the meshes: tt (Tenstorrent PJRT plugin), cpu (32 fake host devices), "
              "tt-emulated (every model program compiled by tt-mlir for a Tenstorrent target and run by the TTNN "
              "executor on 32 fake host devices) or auto (tt when pjrt-plugin-tt is installed). Env: QWEN2_5_PLATFORM"),
    _opt("--tt-emulated-targets", default=os.environ.get("QWEN2_5_TT_EMULATED_TARGETS", ""),
         help="tt-emulated: comma-separated targets, each for the meshes of its chip count (default "
              "blackhole_p150 for 1x1, wormhole_n300-llmbox for 1x8 and 2x4, blackhole_galaxy for 1x32 and 8x4; "
              "blackhole_8xp150 for 8 chips on Blackhole). Env: QWEN2_5_TT_EMULATED_TARGETS"),
    _opt("--tt-arithmetic", choices=("exact", "chip"), default=os.environ.get("QWEN2_5_TT_ARITHMETIC"),
         help="tt-emulated: the executor's arithmetic: exact (float32, rounded to each declared type; the default) or "
              "chip (math fidelity, Dst width, the SFPU's exp/reciprocal/rsqrt as the modules' compute settings say; "
              "docs/chip_arithmetic.md). Env: QWEN2_5_TT_ARITHMETIC"),
    _opt("--tt-compile-cache", default=None,
         help="tt-emulated: where each compiled TTNN module is kept, keyed by its StableHLO, target and options "
              "(env QWEN2_5_TT_COMPILE_CACHE; default ~/.cache/qwen2_5_tt_compile)"),
    # Real checkpoint and GSM8K (test_gsm8k.py).
    _opt("--model-path", default=os.environ.get("QWEN2_5_MODEL_PATH"),
         help="a real Qwen2.5 Hugging Face checkpoint directory for the real-checkpoint GSM8K tests "
              "(env QWEN2_5_MODEL_PATH); those tests skip without it"),
    _opt("--gsm8k-path", default=os.environ.get("GSM8K_PATH"),
         help="GSM8K data: a directory with test.jsonl and train.jsonl, or one .jsonl file (env GSM8K_PATH); "
              "default: the Hugging Face dataset openai/gsm8k"),
    _opt("--gsm8k-samples", default=None,
         help="first N test problems, or 'all' (default: 8 on random checkpoints, 100 on a real one)"),
    _opt("--gsm8k-batch-size", type=int, default=8, help="prompts per generate call"),
    _opt("--gsm8k-max-new-tokens", type=int, default=256, help="greedy tokens per problem"),
    _opt("--gsm8k-protocol", choices=("auto", "chat", "fewshot"), default="auto",
         help="prompting protocol (auto: chat when the tokenizer has a chat template, else 4-shot)"),
    _opt("--gsm8k-tolerance", type=float, default=2.0,
         help="the parity margin on a real checkpoint, in accuracy points: the paired 95%% interval of the "
              "difference to the PyTorch reference must lie within it (the GSM8K command's --margin)"),
    _opt("--gsm8k-rerun-reference", action="store_true", default=False,
         help="recompute the cached PyTorch reference completions"),
    _opt("--gsm8k-reference-cache", default=os.path.join(os.path.expanduser("~"), ".cache", "qwen2_5_gsm8k"),
         help="directory of cached PyTorch reference runs (real checkpoints)"),
    _opt("--gsm8k-report-dir", default=os.path.join("reports", "gsm8k"),
         help="where each GSM8K evaluation writes its JSON report"),
    _opt("--qwen-tokenizer", default=None,
         help="a directory with Qwen's tokenizer.json for the rehearsal tests (env QWEN2_5_TOKENIZER); "
              "they skip without it"),
    _opt("--rehearsal-checkpoint", default=None,
         help="a full-size synthetic checkpoint (python -m tests.jax.models.qwen2_5 synthetic) for the full-scale "
              "rehearsal, -m large (env QWEN2_5_REHEARSAL_CHECKPOINT); those tests skip without it"),
    # Tenstorrent compile-only checks (test_tt_compile.py).
    _opt("--tt-python", default=None,
         help="a Python with a Tenstorrent PJRT plugin for the compile checks (env QWEN2_5_TT_PYTHON; "
              "default: .venv-tt/bin/python, else this Python when it has one)"),
    _opt("--tt-system-descs", default=None,
         help="more directories of Tenstorrent system descriptors (.ttsys), os.pathsep-separated "
              "(env QWEN2_5_TT_SYSTEM_DESCS), e.g. ../shared/tt_system_descs or tt-xla's "
              "tests/cpu_compile_only/system_descs"),
    # tt-mlir's compile options, for every compile check and for the model's programs on --platform tt and tt-emulated
    _opt("--tt-optimization-level", type=int, choices=(0, 1, 2), default=None,
         help="tt-mlir's optimization_level (default: the plugin's, 0); tt-xla measured Qwen2.5-7B one-chip PCC "
              "0.947 at 0, 0.920 at 1, 0.788 at 2 (tt-xla #3964)"),
    _opt("--tt-weight-dtype", choices=("bf16", "bfp_bf8", "bfp_bf4"), default="bf16",
         help="the weights' device dtype (experimental_weight_dtype): bf16 as loaded, or block floats"),
    _opt("--tt-math-fidelity", choices=("lofi", "hifi2", "hifi3", "hifi4"), default=None,
         help="the kernels' math_fidelity (default: the plugin's, hifi4)"),
    _opt("--tt-fp32-dest-acc", action="store_true", default=False,
         help="fp32_dest_acc_en: float32 accumulation in every kernel, with math_fidelity hifi4 unless "
              "--tt-math-fidelity names one (alone it would mean LoFi); at optimization level 1 this restores "
              "level 0's accuracy (docs/chip_arithmetic.md)"),
    _opt("--partitioner", choices=("shardy", "gspmd"), default=os.environ.get("QWEN2_5_PARTITIONER"),
         help="jax's partitioner (jax_use_shardy_partitioner) for the whole run (env QWEN2_5_PARTITIONER; "
              "default: jax's own default). test_logits.py also runs the float32 parity under both"),
)

# Every option tt-xla's root conftest registers, as the suite reads them (help says what they do here).
TTXLA = (
    _opt("--log-memory", action="store_true", default=False, help="(tt-xla) print each test's peak host memory"),
    _opt("--serialize", action="store_true", default=False,
         help="(tt-xla) write each test's compiled programs' IR under reports/ir/<test> (StableHLO on the CPU; "
              "TTIR and TTNN for the Tenstorrent compile checks)"),
    _opt("--dump-irs", action="store_true", default=False, help="(tt-xla) the same as --serialize"),
    _opt("--log-pid", action="store_true", default=False,
         help="(tt-xla) append the process id to the file names in TTXLA_LOGGER_FILE, TT_LOGGER_FILE and "
              "TTMLIR_RUNTIME_LOGGER_FILE (also seen by the compile workers)"),
    _opt("--disable-perf-measurement", action="store_true", default=False, help="(tt-xla) write no performance reports"),
    _opt("--perf-report-dir", action="store", default=None,
         help="(tt-xla) write the figures the suite measures (compile seconds, GSM8K tokens/s, decode tok/s) "
              "there as JSON, one file per test"),
    _opt("--perf-id", action="store", default=None, help="(tt-xla) an id that prefixes the performance report files"),
    _opt("--enable-chisel", action="store_true", default=False,
         help="(tt-xla) op-by-op accuracy with tt-mlir's chisel; needs hardware and a debug build, so it is "
              "accepted and ignored here (the suite prints a warning)"),
)

_BY_NAME = {o.name: o for o in SUITE + TTXLA}


def register(parser, table) -> None:
    """Add each option of ``table`` that no plugin registered yet."""
    for option in table:
        try:
            parser.addoption(option.name, **option.kwargs)
        except ValueError:  # registered already (by this plugin loaded under the other hook path, or tt-xla)
            pass


def get(config, name: str):
    """The option's value, or the table's default when nobody registered it."""
    option = _BY_NAME[name]
    return getattr(config.option, option.dest, option.default)


def on_chip(config) -> bool:
    """Whether the session's models compute as a Tenstorrent chip does: ``--platform tt``, or tt-emulated with
    ``--tt-arithmetic chip`` (float32 matmuls then read tf32 operands: testing/parity.py F32_CHIP_REL_TOL)."""
    platform = getattr(config, "qwen_platform", None)
    return platform == "tt" or (platform == "tt-emulated" and get(config, "--tt-arithmetic") == "chip")
