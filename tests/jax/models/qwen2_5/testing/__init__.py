"""What exists only to serve the test suite: the pytest plugin (options, markers, platform set-up,
tt-xla's properties), the option tables, the stand-in for tt-xla's root conftest used standalone,
the meshes with their marks, parity metrics, compile counting, report writing, the GSM8K test run,
the compile workers as the Tenstorrent tests start them, and the junit check CI runs on tt-xla's
property rules (``python -m tests.jax.models.qwen2_5.testing.junit_check``).

May import: every other sub-package. Imported only by the tests, the package's conftest and the
repository's root conftest; nothing else of the package imports it.

Public names: ``plugin`` (the plugin module), ``meshes.MESH_PARAMS``, ``meshes.build_mesh``,
``parity.logits_report``, ``reports.record_model``, ``gsm8k_run.run_gsm8k``.
"""
