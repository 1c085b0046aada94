"""Root pytest configuration: platform selection and device set-up.

``--platform auto|tt|cpu`` picks where the meshes live. ``auto`` is ``tt`` when the
Tenstorrent PJRT plugin (``pjrt-plugin-tt``) is installed, else ``cpu``. On ``cpu`` the
suite creates 32 fake host devices; that has to happen before JAX starts its backend, so
it is done here in ``pytest_configure`` (which also runs in every pytest-xdist worker)
and nothing in this file imports JAX at module level.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

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
    # Options tt-xla's CI passes to every pytest run; accepted here so the suite runs under it.
    _add_option(parser, "--log-memory", action="store_true", default=False,
                help="(tt-xla) log device memory usage")
    _add_option(parser, "--perf-report-dir", action="store", default=None,
                help="(tt-xla) directory for performance reports")
    _add_option(parser, "--perf-id", action="store", default=None, help="(tt-xla) performance run id")


def tt_plugin_installed() -> bool:
    """True when the Tenstorrent PJRT plugin (distribution ``pjrt-plugin-tt``) is installed."""
    try:
        importlib.metadata.distribution("pjrt-plugin-tt")
        return True
    except importlib.metadata.PackageNotFoundError:
        return importlib.util.find_spec("pjrt_plugin_tt") is not None


def resolve_platform(choice: str) -> str:
    if choice == "auto":
        return "tt" if tt_plugin_installed() else "cpu"
    if choice == "tt" and not tt_plugin_installed():
        raise pytest.UsageError("--platform tt needs the Tenstorrent PJRT plugin: pip install pjrt-plugin-tt")
    return choice


def _set_fake_cpu_devices(count: int) -> None:
    flag = f"--xla_force_host_platform_device_count={count}"
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
    os.environ["XLA_FLAGS"] = " ".join(flags + [flag])
    import jax  # imported only now, after the flag is in the environment

    try:
        jax.config.update("jax_num_cpu_devices", count)
    except (AttributeError, RuntimeError, ValueError):
        pass  # older jax without the option, or a backend already started (the mesh fixture then skips)


def pytest_configure(config):
    platform = resolve_platform(config.getoption("--platform"))
    config.qwen_platform = platform
    if platform == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        _set_fake_cpu_devices(FAKE_CPU_DEVICES)
    else:
        # TT devices for the meshes; one CPU device for the single-device reference.
        os.environ.setdefault("JAX_PLATFORMS", "tt,cpu")
        _set_fake_cpu_devices(1)


def pytest_report_header(config):
    return f"qwen2_5: platform={getattr(config, 'qwen_platform', '?')}"
