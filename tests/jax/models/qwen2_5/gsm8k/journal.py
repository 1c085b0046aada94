"""The run journal: what an acceptance run has finished, one JSON line per batch, safe against a kill.

``DIR/journal.jsonl`` opens with a header line (the settings, problems, tokenizer and checkpoint
fingerprint the run is bound to); every finished batch of every run (``reference`` or a mesh such as
``2x4``) is then appended as one line, written in one ``write`` call, flushed and fsynced before the
next batch starts. A kill can therefore only tear the last line: ``read`` drops a torn last line
(and ``repair`` truncates it), so that batch runs again; a damaged line before the last is an error.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

NAME = "journal.jsonl"
VERSION = 1


class JournalError(ValueError):
    """The journal cannot be used for this run (its header differs, or it is damaged)."""


def path_in(run_dir: str) -> str:
    return os.path.join(run_dir, NAME)


def _append(path: str, record: dict) -> None:
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def start(path: str, header: dict) -> None:
    """A new journal holding only ``header`` (fsynced, and its directory too)."""
    _append(path, {"kind": "header", "version": VERSION, **header})
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_batch(path: str, run: str, batch: int, problem_ids: List[str], tokens: List[List[int]],
                 seconds: float) -> None:
    _append(path, {"kind": "batch", "run": run, "batch": batch, "ids": problem_ids, "tokens": tokens,
                   "seconds": seconds})


def read(path: str) -> tuple:
    """(header, batches, torn): the header, every complete batch line in order, and whether a torn
    last line was dropped. Raises ``JournalError`` for a damaged line before the last."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    torn = lines[-1] != b""  # the last line was written without its newline
    complete, tail = lines[:-1], lines[-1]
    records = []
    for number, raw in enumerate(complete, 1):
        try:
            records.append(json.loads(raw))
        except ValueError:
            if number == len(complete) and not tail:
                torn = True  # a newline made it but the line is cut: still the last write
                break
            raise JournalError(f"{path}: line {number} is damaged (not JSON); the journal cannot be resumed")
    if not records or records[0].get("kind") != "header":
        raise JournalError(f"{path}: no header line; the journal cannot be resumed")
    header = records[0]
    if header.get("version") != VERSION:
        raise JournalError(f"{path}: journal version {header.get('version')}, this command writes {VERSION}")
    return header, [r for r in records[1:] if r.get("kind") == "batch"], torn


def repair(path: str) -> bool:
    """Truncate a torn last line (the batch it held runs again). True when something was cut."""
    with open(path, "rb") as f:
        data = f.read()
    keep = len(data)
    if not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
    else:
        last_start = data.rfind(b"\n", 0, len(data) - 1) + 1
        try:
            json.loads(data[last_start:])
        except ValueError:
            keep = last_start
    if keep == len(data):
        return False
    with open(path, "r+b") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return True


def difference(header: dict, wanted: dict) -> Optional[str]:
    """The first field in which a journal's header differs from this run's, as a sentence; None if
    they agree on everything the run is bound to."""
    for key in sorted(set(wanted) | (set(header) - {"kind", "version"})):
        if key in ("kind", "version"):
            continue
        have, want = header.get(key), wanted.get(key)
        if have != want:
            if isinstance(have, dict) and isinstance(want, dict):
                sub = difference(have, want)
                return f"{key}.{sub}" if sub else f"{key} differs"
            if isinstance(have, list) and isinstance(want, list) and len(have) != len(want):
                return f"{key}: the journal has {len(have)} entries, this run {len(want)}"
            return f"{key}: the journal has {_short(have)}, this run {_short(want)}"
    return None


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def done_batches(batches: List[dict]) -> Dict[str, Dict[int, dict]]:
    """{run: {batch index: batch line}} (a batch journaled twice keeps its first line)."""
    out: Dict[str, Dict[int, dict]] = {}
    for b in batches:
        out.setdefault(b["run"], {}).setdefault(int(b["batch"]), b)
    return out
