"""The TTNN module executor: a compiled TTNN module, as the Tenstorrent plugin prints it, run on the CPU
with one virtual device per chip of its mesh (``module``: parsing; ``values``: element types and
attribute values; ``ops``: the ops local to a chip; ``collectives``: the ops that combine chips;
``executor``: lockstep execution, const-eval cache, loops; ``runner``: a module bound to the JAX
program it was compiled from, and greedy generation through it; ``op_cases``: tiny JAX functions for
the op-level tests).

May import: ``model`` (``runner``, ``op_cases``), numpy and ml_dtypes; never a Tenstorrent plugin: it runs
in the suite's main venv from the module text alone.

Public names: ``executor.Executor``, ``executor.ExecutionError``, ``executor.known_ops``, ``module.parse``,
``runner.bind``, ``runner.generate``, ``op_cases.CASES``.
"""
