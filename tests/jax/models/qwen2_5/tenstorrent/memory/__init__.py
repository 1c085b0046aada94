"""Budgeting device memory: per mesh, target and program set, what a chip holds (weights, const-eval cache
shared between programs, KV cache and I/O, transient peaks) against its DRAM, from the compiled TTNN
modules (``budget``), and the ``tt-memory`` command that compiles and prints them (``command``).

May import: ``model``, ``cli``, ``synthetic``, ``tenstorrent.ttnn`` and ``tenstorrent.compile``.

Public names: ``budget.budgets``, ``budget.PROGRAM_SETS``, ``command.main``.
"""
