"""What exists only to serve the test suite: the pytest plugin (options, markers, platform set-up,
tt-xla's properties), the stand-in for tt-xla's root conftest used standalone, the meshes with their
marks, parity metrics, compile counting, report writing and the GSM8K test run.

May import: every other sub-package. Imported only by the tests, the package's conftest and the
repository's root conftest; nothing else of the package imports it.

Public names: ``plugin`` (the plugin module), ``meshes.MESH_PARAMS``, ``meshes.build_mesh``,
``parity.logits_report``, ``reports.record_model``, ``gsm8k_run.run_gsm8k``.
"""
