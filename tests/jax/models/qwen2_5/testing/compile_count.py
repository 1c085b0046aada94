"""Counting XLA compilations through JAX's monitoring events."""

from __future__ import annotations

import contextlib

from jax import monitoring

_BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_count = [0]
_installed = [False]


def _listener(event: str, duration: float, **kwargs) -> None:
    if event == _BACKEND_COMPILE_EVENT:
        _count[0] += 1


@contextlib.contextmanager
def count_compiles():
    """``with count_compiles() as n: ...`` then ``n()`` is the compilations inside the block."""
    if not _installed[0]:
        monitoring.register_event_duration_secs_listener(_listener)
        _installed[0] = True
    start = _count[0]
    result = {"n": None}
    yield lambda: _count[0] - start if result["n"] is None else result["n"]
    result["n"] = _count[0] - start
