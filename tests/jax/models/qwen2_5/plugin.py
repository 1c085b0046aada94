"""The suite's pytest plugin: options, platform and device set-up, tt-xla's test properties.

The repository's root ``conftest.py`` loads it; inside tt-xla, load it with
``-p tests.jax.models.qwen2_5.plugin`` (every option tt-xla's own conftest registers too is
registered only once, and tt-xla's conftest makes the junit properties from our markers).

``--platform auto|tt|cpu`` picks where the meshes live. ``auto`` is ``tt`` when the
Tenstorrent PJRT plugin (``pjrt-plugin-tt``) is installed, else ``cpu``. On ``cpu`` the
suite creates 32 fake host devices; that has to happen before JAX starts its backend, so
it is done here in ``pytest_configure`` (which also runs in every pytest-xdist worker).
Importing JAX is harmless; nothing here asks it for devices before then (see ``devices.py``).
"""

from __future__ import annotations

import glob
import json
import os
import resource
import time

import pytest

from . import properties

FAKE_CPU_DEVICES = 32

# Markers, in step with tt-xla's pytest.ini where they apply (registered here, so also inside tt-xla).
MARKERS = (
    'push: runs on every push in tt-xla CI',
    "nightly: runs in tt-xla's nightly job",
    'model_test: a whole-model test',
    'large: needs large weights or memory (the 7B geometry, real checkpoints)',
    'tensor_parallel: shards the model over the "model" mesh axis',
    'single_device: runs on one device (the 1x1 reference mesh)',
    'llmbox: a mesh of an 8-chip LLMBox (1x8, 2x4)',
    'galaxy: a mesh of a 32-chip Galaxy (1x32, 8x4)',
    'cpu: runs on the CPU (no accelerator needed)',
    'galaxy_bh: targets a Blackhole Galaxy (32 chips)',
    'inference: runs the model in inference mode (tt-xla)',
    'expected_passing: tt-xla status: expected to pass',
    "record_test_properties(key_value_pairs): tt-xla's junit properties of a test",
    'no_auto_properties: tt-xla: properties filled in at run time',
    'gsm8k: GSM8K evaluation tests',
    'tt_compile: compiles for Tenstorrent chips with tt-mlir, without hardware (compile-only mode)',
    "filecheck: checks patterns in compiled IR (tt-xla's FileCheck-style tests)",
)


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
    _add_option(parser, "--rehearsal-checkpoint", default=None,
                help="a full-size synthetic checkpoint (synthetic.py) for the full-scale rehearsal, -m large "
                     "(env QWEN2_5_REHEARSAL_CHECKPOINT); those tests skip without it")
    # Tenstorrent compile-only checks (tests/jax/models/qwen2_5/test_tt_compile.py).
    _add_option(parser, "--tt-python", default=None,
                help="a Python with a Tenstorrent PJRT plugin for the compile checks (env QWEN2_5_TT_PYTHON; "
                     "default: .venv-tt/bin/python, else this Python when it has one)")
    _add_option(parser, "--tt-system-descs", default=None,
                help="more directories of Tenstorrent system descriptors (.ttsys), os.pathsep-separated "
                     "(env QWEN2_5_TT_SYSTEM_DESCS), e.g. ../shared/tt_system_descs or tt-xla's "
                     "tests/cpu_compile_only/system_descs")
    _add_option(parser, "--partitioner", choices=("shardy", "gspmd"), default=os.environ.get("QWEN2_5_PARTITIONER"),
                help="jax's partitioner (jax_use_shardy_partitioner) for the whole run (env QWEN2_5_PARTITIONER; "
                     "default: jax's own default). test_logits.py also runs the float32 parity under both")
    # Every option tt-xla's root conftest registers (so its CI command lines work here too).
    _add_option(parser, "--log-memory", action="store_true", default=False,
                help="(tt-xla) print each test's peak host memory")
    _add_option(parser, "--serialize", action="store_true", default=False,
                help="(tt-xla) write each test's compiled programs' IR under reports/ir/<test> (StableHLO on the "
                     "CPU; TTIR and TTNN for the Tenstorrent compile checks)")
    _add_option(parser, "--dump-irs", action="store_true", default=False, help="(tt-xla) the same as --serialize")
    _add_option(parser, "--log-pid", action="store_true", default=False,
                help="(tt-xla) append the process id to the file names in TTXLA_LOGGER_FILE, TT_LOGGER_FILE and "
                     "TTMLIR_RUNTIME_LOGGER_FILE (also seen by the compile workers)")
    _add_option(parser, "--disable-perf-measurement", action="store_true", default=False,
                help="(tt-xla) write no performance reports")
    _add_option(parser, "--perf-report-dir", action="store", default=None,
                help="(tt-xla) write the figures the suite measures (compile seconds, GSM8K tokens/s, decode "
                     "tok/s) there as JSON, one file per test")
    _add_option(parser, "--perf-id", action="store", default=None,
                help="(tt-xla) an id that prefixes the performance report files")
    _add_option(parser, "--enable-chisel", action="store_true", default=False,
                help="(tt-xla) op-by-op accuracy with tt-mlir's chisel; needs hardware and a debug build, so it "
                     "is accepted and ignored here (the suite prints a warning)")


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
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    partitioner = config.getoption("--partitioner")
    if partitioner:
        import jax

        jax.config.update("jax_use_shardy_partitioner", partitioner == "shardy")
    if config.getoption("--log-pid"):
        for var in ("TTXLA_LOGGER_FILE", "TT_LOGGER_FILE", "TTMLIR_RUNTIME_LOGGER_FILE"):
            if os.environ.get(var):
                root, ext = os.path.splitext(os.environ[var])
                os.environ[var] = f"{root}.{os.getpid()}{ext}"
    if config.getoption("--enable-chisel"):
        import warnings

        warnings.warn("--enable-chisel is ignored: chisel needs Tenstorrent hardware and a tt-mlir debug build")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    properties.mark_items(items, pytest)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    # After every pytest_collection_modifyitems (tt-xla's included): tags for items nobody tagged.
    properties.add_tags(session.items)


def report_dir_for(config, kind: str, nodeid: str) -> str:
    """reports/<kind>/<test id as a file name> under the root directory (created)."""
    name = "".join(c if c.isalnum() or c in "._-[]" else "_" for c in nodeid.split("::", 1)[-1])
    path = os.path.join(str(config.rootpath), "reports", kind, name)
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _qwen_serialize_ir(request):
    """--serialize / --dump-irs: every program this test lowers is dumped as StableHLO."""
    if not (request.config.getoption("--serialize") or request.config.getoption("--dump-irs")):
        yield
        return
    import jax

    jax.config.update("jax_dump_ir_to", report_dir_for(request.config, "ir", request.node.nodeid))
    try:
        yield
    finally:
        jax.config.update("jax_dump_ir_to", "")


@pytest.fixture(autouse=True)
def _qwen_log_memory(request):
    """--log-memory: the test's peak host memory (the process's peak so far) and its growth."""
    if not request.config.getoption("--log-memory"):
        yield
        return
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\n[memory] {request.node.nodeid}: peak RSS {after / 2**20:.2f} GiB (+{(after - before) / 2**20:.2f} GiB "
          f"during this test)")


def write_perf_report(config, nodeid: str, figures: dict):
    """--perf-report-dir: one JSON file of a test's measured figures (unless --disable-perf-measurement)."""
    out_dir = config.getoption("--perf-report-dir")
    if not out_dir or config.getoption("--disable-perf-measurement"):
        return None
    os.makedirs(out_dir, exist_ok=True)
    perf_id = config.getoption("--perf-id") or "qwen2_5"
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in nodeid.split("::", 1)[-1])
    path = os.path.join(out_dir, f"{perf_id}_{name}.json")
    with open(path, "w") as f:
        json.dump({"perf_id": perf_id, "test": nodeid, "figures": figures}, f, indent=1, sort_keys=True)
    return path


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
