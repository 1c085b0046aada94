"""Tenstorrent's compiler (tt-mlir) without hardware, in four rooms by job, each a sub-package:

* ``ttnn/``: reading what tt-mlir compiled: the one reader of TTNN modules (``module``, ``attributes``), the op
  audits and FileCheck with its patterns, the device memory a module needs, the decode step's cost;
* ``compile/``: compiling for a target: targets and their system descriptors, every program lowered from
  abstract inputs, the op-level cases, the compile worker and its launcher;
* ``memory/``: device memory budgets per mesh, target and program set, and the ``tt-memory`` command;
* ``executor/``: running a compiled module on the CPU chip by chip, and the ``tt-run`` command;
* ``emulated/``: the emulated Tenstorrent platform: every program of a model compiled for a target (the compile
  service: a kept-up server per target and an on-disk cache) and run by the executor, ``load_model(...,
  tt_target=...)`` and the ``tt-emulated-bench`` command.

Inside this package a room imports only those before it in this order: ``ttnn`` (none), ``compile``
(``ttnn``), then ``memory`` and ``executor`` (``ttnn``, ``compile``; neither imports the other), then
``emulated`` (all but ``memory``). This ``__init__`` imports nothing.

May import: ``model``, ``cli``, ``synthetic``. The compile worker runs in the Tenstorrent plugin's own venv;
the rest needs no plugin.

Public names: ``compile.targets.TARGETS``, ``compile.programs.lower``, ``compile.jobs.run_all``,
``ttnn.module.parse``, ``ttnn.audit.histogram``, ``ttnn.memory.read``, ``ttnn.step_cost.step_cost``,
``ttnn.filecheck.check``, ``memory.budget.budgets``, ``executor.runner.bind``, ``compile.service.CompileService``,
``emulated.platform.EmulatedPlatform``, ``emulated.api.load_model``.
"""
