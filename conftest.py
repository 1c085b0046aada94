"""Root conftest of the standalone repository: loads the suite's pytest plugin, and the stand-in for
what tt-xla's own root conftest does (its eight options, --log-pid, --log-memory).

Inside tt-xla this file is absent: tt-xla's root conftest does the stand-in's part, and the package's
conftest (tests/jax/models/qwen2_5/conftest.py) registers the plugin.
"""

pytest_plugins = ("tests.jax.models.qwen2_5.testing.plugin", "tests.jax.models.qwen2_5.testing.ttxla_standin")
