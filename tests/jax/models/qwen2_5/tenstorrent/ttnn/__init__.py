"""Reading what tt-mlir compiled: the one reader of TTNN modules and everything that reads its object.

``module`` parses the module text (layouts, system descriptor, mesh, functions, ops, arguments, typed values)
and ``attributes`` reads attribute values: they are the only modules that apply regular expressions to TTNN
module text. ``audit`` counts ops (histograms, per-layer figures, argument types); ``memory`` gives the device
memory a module needs per chip and its const-eval cache entries; ``step_cost`` the decode step's DRAM and link
bytes per chip and its estimated time; ``filecheck`` checks the ``patterns/`` files against module text (it
matches text by design, as LLVM's FileCheck does).

May import: numpy and ml_dtypes (``attributes``); nothing else of the package: it reads text only, in any venv
(the compile worker runs it inside the Tenstorrent plugin's venv).

Public names: ``module.parse``, ``module.Module``, ``module.ModuleFormatError``, ``attributes.number``,
``attributes.dense``, ``audit.histogram``, ``audit.per_layer``, ``audit.argument_types``, ``memory.read``,
``memory.const_eval_entries``, ``step_cost.step_cost``, ``step_cost.estimate``, ``filecheck.check``.
"""
