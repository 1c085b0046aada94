"""``load_model(..., tt_target=NAME)``: a model whose programs run on the emulated Tenstorrent platform."""

from __future__ import annotations

from typing import Optional

from ...model.causal_lm import load_model as load_on_mesh
from ..compile.targets import BY_NAME, TARGETS
from .platform import EmulatedPlatform


def load_model(checkpoint_dir: str, mesh, dtype: str = "float32", max_cache_length: Optional[int] = None,
               compiler_options: Optional[dict] = None, tt_target: Optional[str] = None,
               tt_python: Optional[str] = None, compile_cache: Optional[str] = None, tt_arithmetic: str = "exact",
               attention: Optional[str] = None):
    """The model on ``mesh`` (CPU devices, at most the target's chip count) with every program compiled by
    tt-mlir for ``tt_target`` and run by the TTNN executor. Raises ``EmulationUnavailable`` without a plugin
    interpreter or the target's descriptor, ValueError for an unknown target or a mesh larger than it.
    ``tt_arithmetic``: ``exact`` (float32, rounded to each declared type) or ``chip`` (math fidelity, Dst width
    and the SFPU's functions as the module's compute settings say: docs/chip_arithmetic.md)."""
    if tt_target not in BY_NAME:
        raise ValueError(f"tt_target must be one of {', '.join(t.name for t in TARGETS)}, got {tt_target!r}")
    target = BY_NAME[tt_target]
    if mesh.size > target.chips:
        raise ValueError(f"a {'x'.join(map(str, mesh.devices.shape))} mesh needs {mesh.size} chips; "
                         f"{tt_target} has {target.chips}")
    if any(d.platform != "cpu" for d in mesh.devices.flat):
        raise ValueError("the emulated platform runs on a mesh of CPU devices (make_mesh(shape, platform='cpu'))")
    platform = EmulatedPlatform({target.chips: target}, tt_python=tt_python, compile_cache=compile_cache,
                                arithmetic=tt_arithmetic)
    platform.check(mesh.size)
    return load_on_mesh(checkpoint_dir, mesh, dtype, max_cache_length, compiler_options, programs=platform,
                        attention=attention)
