"""Tenstorrent's compiler (tt-mlir) without hardware: compile targets and their system descriptors
(``targets``, ``descriptors``, the committed ``system_descs/``), every program lowered from abstract
inputs (``programs``), the compile worker and its launcher (``compile_worker``, ``jobs``), reading
compiled TTNN modules (``ttnn_audit``: ops; ``ttnn_memory``: device memory), device memory budgets
and the ``tt-memory`` command (``memory_budget``, ``memory_command``), the TTNN executor that runs the
compiled programs on the CPU and the ``tt-run`` command (``executor/``, ``run_command``), and FileCheck
with its pattern files (``filecheck``, ``patterns/``).

May import: ``model``, ``cli``, ``synthetic``. The compile worker runs in the Tenstorrent plugin's
own venv; the rest needs no plugin.

Public names: ``targets.TARGETS``, ``targets.find_descriptor``, ``programs.lower``,
``programs.PROGRAMS``, ``jobs.run_all``, ``ttnn_audit.main_function``, ``ttnn_memory.read``,
``memory_budget.budgets``, ``filecheck.check``, ``executor.runner.bind``.
"""
