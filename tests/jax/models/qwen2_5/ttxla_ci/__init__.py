"""The suite's place in tt-xla's CI: its test-matrix entries, one file per tt-xla preset they belong to
(``basic-test.json``, ``basic-test-nightly.json``: tt-xla's preset format, appended to the presets of the same
name), the duration of every test under tt-xla's test ids (``test_durations.json``, a ``.test_durations``
fragment) with the rule that estimates a Tenstorrent runner's time from a CPU run (``durations``: the
``ci-durations`` command, which remeasures the fragment from a junit file and merges it into a tt-xla
``.test_durations``), and the replay of tt-xla's CI job on a copy of its harness (``replay``: entries expanded
by tt-xla's ``generate_test_matrix.py``, each entry's collect-only command as ``call-test.yml`` builds it,
``calculate_test_timeout.py``'s figure, pytest-split groups; run by ``.ci/run``).

May import: ``cli``; the standard library (it reads junit files and runs pytest and tt-xla's scripts in
subprocesses).

Public names: ``durations.main`` (the ``ci-durations`` command), ``durations.estimate``, ``durations.node_ids``,
``durations.merge``, ``replay.main`` (the ``ci-replay`` command), ``replay.entries``, ``replay.pytest_args``,
``ENTRY_FILES``, ``DURATIONS_FILE``.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
# tt-xla preset file -> the suite's entries for it (the same name, inside this folder)
ENTRY_FILES = {name: os.path.join(HERE, name) for name in ("basic-test.json", "basic-test-nightly.json")}
DURATIONS_FILE = os.path.join(HERE, "test_durations.json")
