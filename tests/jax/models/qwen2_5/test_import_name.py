"""One copy of each module, whatever name pytest imports the package under.

Inside tt-xla the package is imported as ``qwen2_5`` (pytest's rootdir-based names for the conftest
and tests, as tt-xla's ``tests/jax`` has no ``__init__.py``) and as ``tests.jax.models.qwen2_5`` (a
``-p`` plugin, the command modules). The package's ``__init__`` makes the name imported second an
alias of the first, module by module, so state the plugin sets is the state the tests read."""

import importlib
import os
import sys

import pytest

from .testing import plugin

pytestmark = pytest.mark.cpu

PACKAGE = "tests.jax.models.qwen2_5"


def test_the_registered_plugin_is_the_module_the_tests_import(request):
    registered = [p for p in request.config.pluginmanager.get_plugins() if getattr(p, "__file__", None)
                  and os.path.samefile(p.__file__, plugin.__file__)]
    assert registered and all(p is plugin for p in registered), [getattr(p, "__name__", p) for p in registered]
    assert request.config.qwen_platform in ("cpu", "tt", "tt-emulated")  # set by that plugin's pytest_configure


def test_both_import_names_give_the_same_module_objects():
    names = sorted(n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")
                   or n == "qwen2_5" or n.startswith("qwen2_5."))
    by_file = {}
    for name in names:
        module = sys.modules[name]
        path = getattr(module, "__file__", None)
        if path:
            by_file.setdefault(os.path.realpath(path), set()).add(id(module))
    twice = [path for path, ids in by_file.items() if len(ids) > 1]
    assert not twice, f"modules loaded twice under two names: {twice}"
    # the other spelling of this very module resolves to the same object
    other = "qwen2_5" if __name__.startswith(PACKAGE) else PACKAGE
    suffix = __name__.split("qwen2_5", 1)[1]
    assert importlib.import_module(other + ".testing.plugin") is plugin
    assert importlib.import_module(other + suffix) is sys.modules[__name__]
