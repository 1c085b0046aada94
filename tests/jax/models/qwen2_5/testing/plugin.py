"""The suite's pytest plugin: its options, markers, platform and device set-up, tt-xla's test
properties, ``--serialize`` for its tests and the GSM8K summary table.

Whoever comes first registers it, once: the repository's root ``conftest.py``, ``-p
tests.jax.models.qwen2_5.testing.plugin``, or else the package's conftest (inside tt-xla, run by
path or markers). It registers only the suite's own options (``options.SUITE``); tt-xla's eight
are tt-xla's conftest's, or standalone ``ttxla_standin.py``'s.

``--platform auto|tt|cpu`` picks where the meshes live. ``auto`` is ``tt`` when the
Tenstorrent PJRT plugin (``pjrt-plugin-tt``) is installed, else ``cpu``. On ``cpu`` the
suite asks for 32 fake host devices; that has to happen before JAX starts its backend, so
it is done here in ``pytest_configure`` (which also runs in every pytest-xdist worker).
Importing JAX is harmless; nothing here asks it for devices before then (see ``cli/devices.py``).
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time

import pytest

from . import options, properties
from .reports import gsm8k_report_dir, report_dir_for

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


NAME = "qwen2_5"  # the plugin's registration name when the package's conftest registers it


def pytest_addoption(parser):
    options.register(parser, options.SUITE)


def pytest_configure(config):
    config.qwen_session_start = time.time()
    # Imports jax but does not start a backend, so the flags still apply.
    from ..cli.devices import prepare_platform, resolve_platform

    try:
        platform = resolve_platform(options.get(config, "--platform"))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from e
    config.qwen_platform = platform
    prepare_platform(platform, FAKE_CPU_DEVICES)
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if platform in ("tt", "tt-emulated"):  # the model's programs compile with the session's tt-mlir options
        from ..model import causal_lm
        from .tt_workers import compiler_options

        causal_lm.TT_COMPILER_OPTIONS.update(dict(compiler_options(config)))
    if platform == "tt-emulated":
        from .emulated import configure

        configure(config)
    elif options.get(config, "--tt-arithmetic"):
        raise pytest.UsageError("--tt-arithmetic (QWEN2_5_TT_ARITHMETIC) applies to --platform tt-emulated")
    partitioner = options.get(config, "--partitioner")
    if partitioner:
        import jax

        jax.config.update("jax_use_shardy_partitioner", partitioner == "shardy")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    properties.mark_items(items, pytest)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    # After every pytest_collection_modifyitems (tt-xla's included): tags for items nobody tagged.
    properties.add_tags(session.items)


@pytest.fixture(autouse=True)
def _qwen_serialize_ir(request):
    """--serialize / --dump-irs: every program this suite's test lowers is dumped as StableHLO."""
    config = request.config
    if not (options.get(config, "--serialize") or options.get(config, "--dump-irs")) or not properties.ours(request.node):
        yield
        return
    import jax

    jax.config.update("jax_dump_ir_to", report_dir_for(request.config, "ir", request.node.nodeid))
    try:
        yield
    finally:
        jax.config.update("jax_dump_ir_to", "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _counting_compiles(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    emulated = getattr(item.config, "qwen_emulated", None)
    before = emulated.snapshot() if emulated is not None and properties.ours(item) else None
    yield from _counting_compiles(item)
    if properties.ours(item):  # XLA programs compiled in set-up and call: the CI durations' estimate (ttxla_ci/)
        item.user_properties.append(("xla_compiles", getattr(item, "_qwen_xla_compiles", 0)))
    if before is not None:  # tt-emulated: the targets the test's programs ran on and the ops executed there
        for key, value in emulated.properties(before).items():
            item.user_properties.append((key, value))


def _counting_compiles(item):
    if not properties.ours(item) or "jax" not in sys.modules:
        yield  # JAX not imported yet (pytest_configure imports it): nothing compiles before it is
        return
    from .compile_count import count_compiles

    with count_compiles() as compiled:
        yield
    item._qwen_xla_compiles = getattr(item, "_qwen_xla_compiles", 0) + compiled()


def pytest_report_header(config):
    line = f"qwen2_5: platform={getattr(config, 'qwen_platform', '?')}"
    emulated = getattr(config, "qwen_emulated", None)
    if emulated is not None:
        line += " (" + ", ".join(f"{n} chips: {t.name}" for n, t in sorted(emulated.targets.items())) + ")"
    return line


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A table of this session's GSM8K results (read back from the JSON reports, so it also
    works under pytest-xdist)."""
    from .emulated import summary

    line = summary(config)
    if line:
        terminalreporter.write_line(line)
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
