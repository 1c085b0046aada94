"""The TTNN module executor: a compiled TTNN module, read by ``tenstorrent.ttnn.module``, run on the CPU with
one virtual device per chip of its mesh (``values``: element types and storage; ``arithmetic``: how a chip
computes, op by op (math fidelity, Dst width, the SFPU's functions); ``ops``: the ops local to a
chip; ``collectives``: the ops that combine chips; ``executor``: lockstep execution, const-eval cache, loops;
``runner``: a module bound to the JAX program it was compiled from, and greedy generation through it;
``command``: the ``tt-run`` command, which compiles the programs and runs them here).

May import: ``model`` (``runner``, ``command``), ``cli`` (``command``), ``tenstorrent.ttnn``,
``tenstorrent.compile`` (``command``), numpy and ml_dtypes; never a Tenstorrent plugin: it runs in the
suite's main venv from the module text alone.

Public names: ``arithmetic`` (its functions), ``executor.Executor``, ``executor.ExecutionError``, ``executor.known_ops``, ``runner.bind``,
``runner.generate``, ``command.main``.
"""
