"""What every command and the pytest session do before any work: the argument parser whose usage
errors are one line with exit status 2 (``parser``), and the platform choice and fake CPU devices
that must be set before JAX starts its backend (``devices``).

May import: ``model`` and the standard library (jax only inside functions, never at import).

Public names: ``parser.Parser``, ``parser.positive_int``, ``parser.non_negative_int``,
``parser.positive_float``, ``parser.mesh_shape``, ``parser.die``; ``devices.resolve_platform``,
``devices.prepare_platform``, ``devices.parse_mesh``, ``devices.mesh_text``, ``devices.tt_plugin_installed``.
"""
