"""``python -m tests.jax.models.qwen2_5.bench``: the decode benchmark (see ``decode.py``)."""

import sys

from .decode import main

if __name__ == "__main__":
    sys.exit(main())
