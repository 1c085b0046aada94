"""Platform selection and fake CPU devices, shared by the conftest, the benchmark and the CLI.

Everything here must run before JAX starts its backend: importing jax is fine, asking it
for devices is not.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

PLATFORMS = ("auto", "tt", "cpu", "tt-emulated")
# tt-emulated: the meshes are fake CPU devices and every model program runs on tt-mlir's compiled program for a
# Tenstorrent target, in the TTNN executor (tenstorrent/emulated/); JAX itself sees only the CPU.
HOST_PLATFORMS = ("cpu", "tt-emulated")
_COUNT_FLAG = "--xla_force_host_platform_device_count"
_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
_DISABLED_PASSES = "--xla_disable_hlo_passes"


def tt_plugin_installed() -> bool:
    """True when the Tenstorrent PJRT plugin (distribution ``pjrt-plugin-tt``) is installed."""
    try:
        importlib.metadata.distribution("pjrt-plugin-tt")
        return True
    except importlib.metadata.PackageNotFoundError:
        return importlib.util.find_spec("pjrt_plugin_tt") is not None


def resolve_platform(choice: str) -> str:
    """``auto`` -> ``tt`` when the plugin is installed, else ``cpu``; ``tt`` without it raises; ``tt-emulated``
    is checked where its platform is built (it needs a plugin interpreter of its own, not this one's)."""
    if choice not in PLATFORMS:
        raise ValueError(f"platform must be one of {PLATFORMS}, got {choice!r}")
    if choice == "auto":
        return "tt" if tt_plugin_installed() else "cpu"
    if choice == "tt" and not tt_plugin_installed():
        raise ValueError("platform tt needs the Tenstorrent PJRT plugin: pip install pjrt-plugin-tt")
    return choice


def jax_platform(platform: str) -> str:
    """The JAX platform a suite platform's meshes live on (``tt-emulated``: the CPU)."""
    return "cpu" if platform == "tt-emulated" else platform


def prepare_platform(platform: str, cpu_devices: int) -> None:
    """Before JAX's backend starts: pick the platforms and the number of host (CPU) devices.

    On ``cpu`` and ``tt-emulated`` the meshes use ``cpu_devices`` fake devices; on ``tt`` one CPU device
    remains for the single-device reference.
    """
    host = platform in HOST_PLATFORMS
    os.environ.setdefault("JAX_PLATFORMS", "cpu" if host else "tt,cpu")
    count = cpu_devices if host else 1
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(_COUNT_FLAG)]
    # XLA:CPU computes bfloat16 products in float32, converting each weight. Two of its defaults make
    # all converted weights of a program live at once, so a 28-layer bfloat16 7B cannot fit 24 GiB:
    # the concurrency-optimized scheduler runs every conversion first (a 4-layer 7B-width forward grew
    # by 2.6x its layer weights), and loop-invariant code motion hoists them out of the generate
    # loop (its peak doubled). The memory-minimizing order and no hoisting keep one layer's at a time.
    if not any(f.startswith(_SCHEDULER_FLAG) for f in flags):
        flags.append(f"{_SCHEDULER_FLAG}=false")
    if not any(f.startswith(_DISABLED_PASSES) for f in flags):
        flags.append(f"{_DISABLED_PASSES}=while-loop-invariant-code-motion")
    os.environ["XLA_FLAGS"] = " ".join(flags + [f"{_COUNT_FLAG}={count}"])
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", count)
    except (AttributeError, RuntimeError, ValueError):
        pass  # older jax without the option, or a backend already started (meshes then report the shortfall)


def mesh_text(shape) -> str:
    """(2, 4) -> ``"2x4"``, the inverse of ``parse_mesh``."""
    return "x".join(str(int(n)) for n in shape)


def parse_mesh(text: str) -> tuple:
    """``"2x4"`` -> (2, 4): 2 devices on "batch", 4 on "model"."""
    a, _, b = text.strip().partition("x")
    if not (a.isdigit() and b.isdigit() and int(a) > 0 and int(b) > 0):
        raise ValueError(f"a mesh is written BxM with positive sizes, e.g. 2x4; got {text!r}")
    return int(a), int(b)
