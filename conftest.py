"""Root conftest: loads the suite's pytest plugin (options, devices, tt-xla's test properties).

Inside tt-xla, where its own root conftest runs, load the plugin with
``pytest -p tests.jax.models.qwen2_5.plugin`` instead.
"""

pytest_plugins = ("tests.jax.models.qwen2_5.plugin",)
