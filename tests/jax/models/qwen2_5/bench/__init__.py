"""The greedy-decoding benchmark: JAX on chosen meshes against Hugging Face PyTorch ``generate``,
each backend in a worker process of its own (``python -m tests.jax.models.qwen2_5 bench``).

May import: ``model``, ``cli``, ``synthetic``.

Public names: ``decode.main`` (the command), ``decode.matmul_floor``.
"""
