"""``python -m tests.jax.models.qwen2_5.synthetic``: build a synthetic checkpoint (see ``builder.py``)."""

import sys

from .builder import main

if __name__ == "__main__":
    sys.exit(main())
