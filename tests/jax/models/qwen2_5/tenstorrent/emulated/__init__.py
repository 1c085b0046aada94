"""The emulated Tenstorrent platform: every program the model builds is compiled by tt-mlir for a Tenstorrent
target (compile-only, in the plugin's interpreter, through ``compile.service``) and executed chip by chip by
the TTNN executor on the CPU, in place of XLA:CPU (``platform``: the targets per chip count and the program
backend the model calls; ``program``: one jitted function standing in for ``jax.jit``; ``api``: the package's
``load_model(..., tt_target=...)``).

May import: ``model``, ``cli``, ``tenstorrent.ttnn``, ``tenstorrent.compile``, ``tenstorrent.executor``, jax and
numpy; never a Tenstorrent plugin (the compile server runs in the plugin's own interpreter).

Public names: ``platform.EmulatedPlatform``, ``platform.DEFAULT_TARGETS``, ``platform.EmulationUnavailable``,
``api.load_model``.
"""
