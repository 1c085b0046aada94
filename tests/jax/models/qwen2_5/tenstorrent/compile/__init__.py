"""Compiling for a Tenstorrent target without its hardware: compile targets and their system descriptors
(``targets``, ``descriptors`` with the ``tt-descriptors`` command, the committed ``system_descs/``), every
program the public API compiles lowered from abstract inputs (``programs``), the executor's op-level cases
(``op_cases``), and the compile-only worker with its launcher (``worker``: the ``tt-compile-worker`` command,
run in the plugin's venv; ``jobs``: one worker process per descriptor, two at a time), and the suite's three compile
options as the pairs a job takes (``options``).

May import: ``model``, ``cli``, ``synthetic``, and ``tenstorrent.ttnn`` (the worker reads each compiled module's
arguments and memory). Only the worker and ``descriptors`` need the plugin.

Public names: ``targets.TARGETS``, ``targets.find_descriptor``, ``targets.parse_target``, ``programs.lower``,
``programs.PROGRAMS``, ``op_cases.CASES``, ``jobs.Job``, ``jobs.run_all``, ``jobs.tt_python``,
``jobs.command_worker``, ``options.option_pairs``.
"""
