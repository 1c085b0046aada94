"""Tensor-parallel JAX/Flax Qwen2.5 (any Qwen2-family checkpoint) for tt-xla.

Public API::

    from tests.jax.models.qwen2_5 import make_mesh, load_model
    mesh = make_mesh((2, 4))                       # axes ("batch", "model")
    model = load_model(checkpoint_dir, mesh, dtype="float32")
    logits = model.forward(input_ids, attention_mask)
    tokens = model.generate(input_ids, attention_mask, max_new_tokens)

Sub-packages, each lower one imported by the higher ones only (``test_layering.py`` checks it):
``model`` (what a user imports), ``cli`` (command-line and platform set-up), ``gsm8k`` (the
evaluator), ``synthetic`` (checkpoints and tokenizers made here, the full-scale rehearsal),
``tenstorrent`` (tt-mlir compile checks, TTNN module reading, the executor and the emulated Tenstorrent platform that
``load_model(..., tt_target=...)`` loads on), ``bench`` (the benchmark) and
``testing`` (the pytest plugin and helpers, imported by the tests only). ``python -m
tests.jax.models.qwen2_5 --help`` lists the commands.
"""



def _one_import_name() -> None:
    """Make the package's other import name an alias of this one, module by module.

    Inside tt-xla the package has two names: ``tests.jax.models.qwen2_5`` (a ``-p`` plugin, ``python
    -m``) and ``qwen2_5`` (pytest imports the conftest and tests under it, as ``tests/jax`` has no
    ``__init__.py``). Imported under both, every module would exist twice with its state split. The
    name imported first is the real one; the other then resolves to the same module objects.
    """
    import importlib
    import importlib.abc
    import importlib.util
    import sys

    short = __name__.rpartition(".")[2]
    other = {short: "tests.jax.models." + short, "tests.jax.models." + short: short}.get(__name__)
    if other is None or other in sys.modules:
        return
    real = __name__

    class Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name == other or name.startswith(other + "."):
                return importlib.util.spec_from_loader(name, self)
            return None

        def create_module(self, spec):  # the real module (its __name__, __file__ and __spec__ stay)
            return importlib.import_module(real + spec.name[len(other):])

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Alias())


_one_import_name()

from .model import (CheckpointError, PARTITION_RULES, Qwen2Config, Qwen2TP, TPLayout,  # noqa: E402
                    UnsupportedConfigError, UnsupportedParallelismError, make_mesh, supported_tp_degrees)
from .model import load_model as _load_on_mesh  # noqa: E402


def load_model(checkpoint_dir, mesh, dtype="float32", max_cache_length=None, compiler_options=None,
               tt_target=None, tt_python=None, compile_cache=None, tt_arithmetic=None, attention=None):
    """Load a Hugging Face Qwen2-family checkpoint sharded over ``mesh`` (``model.load_model``).

    ``tt_target`` (e.g. ``"wormhole_n300-llmbox"``): run every program on the emulated Tenstorrent platform
    instead: compiled by tt-mlir for that target (compile-only, in the plugin's interpreter: ``tt_python``,
    default ``.venv-tt``; each program once, kept in ``compile_cache``) and executed chip by chip by the TTNN
    executor on ``mesh``'s CPU devices (docs/emulated.md). Without the plugin or the target's descriptor it
    raises, naming what is missing; it never falls back to XLA:CPU. ``tt_arithmetic="chip"`` computes matmul,
    softmax and rms_norm as the chip does (docs/chip_arithmetic.md); default ``"exact"``. ``attention``:
    ``"plain"`` or ``"fused"`` (the forms tt-mlir fuses into its SDPA and RoPE kernels); default fused for programs
    tt-mlir compiles at optimization level >= 1, else plain (docs/fused_attention.md).
    """
    if tt_target is None:
        if tt_python is not None or compile_cache is not None or tt_arithmetic is not None:
            raise ValueError("tt_python, compile_cache and tt_arithmetic apply to the emulated platform: pass tt_target")
        return _load_on_mesh(checkpoint_dir, mesh, dtype, max_cache_length, compiler_options, attention=attention)
    from .tenstorrent.emulated.api import load_model as load_emulated

    return load_emulated(checkpoint_dir, mesh, dtype, max_cache_length, compiler_options, tt_target=tt_target,
                         tt_python=tt_python, compile_cache=compile_cache, tt_arithmetic=tt_arithmetic or "exact",
                         attention=attention)


__all__ = [
    "CheckpointError", "PARTITION_RULES", "Qwen2Config", "Qwen2TP", "TPLayout",
    "UnsupportedConfigError", "UnsupportedParallelismError", "load_model", "make_mesh",
    "supported_tp_degrees",
]
