"""Standalone only: what tt-xla's root conftest does for the suite, so that its CI command lines
work in this repository too. The repository's root conftest loads this plugin; inside tt-xla its own
conftest does all of it, and loading this there would register its options twice.

* registers tt-xla's eight options (``options.TTXLA``);
* ``--log-pid``: appends the process id to the logger file names, as tt-xla does;
* ``--log-memory``: prints each test's peak host memory;
* ``--enable-chisel``: accepted, with a warning (chisel needs hardware and a tt-mlir debug build).

tt-xla's junit conversion of the ``record_test_properties`` markers is made by the suite's plugin
for items nobody converted (``properties.add_tags``), so it does not live here.
"""

from __future__ import annotations

import os
import resource
import warnings

import pytest

from . import options


def pytest_addoption(parser):
    options.register(parser, options.TTXLA)


def pytest_configure(config):
    if options.get(config, "--log-pid"):
        for var in ("TTXLA_LOGGER_FILE", "TT_LOGGER_FILE", "TTMLIR_RUNTIME_LOGGER_FILE"):
            if os.environ.get(var):
                root, ext = os.path.splitext(os.environ[var])
                os.environ[var] = f"{root}.{os.getpid()}{ext}"
    if options.get(config, "--enable-chisel"):
        warnings.warn("--enable-chisel is ignored: chisel needs Tenstorrent hardware and a tt-mlir debug build")


@pytest.fixture(autouse=True)
def _qwen_log_memory(request):
    """--log-memory: the test's peak host memory (the process's peak so far) and its growth."""
    if not options.get(request.config, "--log-memory"):
        yield
        return
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\n[memory] {request.node.nodeid}: peak RSS {after / 2**20:.2f} GiB (+{(after - before) / 2**20:.2f} GiB "
          f"during this test)")
