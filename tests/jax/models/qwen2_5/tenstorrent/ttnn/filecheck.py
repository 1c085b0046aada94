"""A small FileCheck for the TTNN audits: pattern files in LLVM FileCheck's notation.

tt-xla checks compiled IR with LLVM FileCheck pattern files (tests marked ``filecheck``).
This implements the subset the patterns under ``patterns/`` use, in pure Python so the
check needs no LLVM install:

* ``CHECK-LABEL: p``: the input is cut into blocks at the lines matching each label; the
  checks after a label search only its block.
* ``CHECK: p``: the next line (from the last match) that contains ``p``.
* ``CHECK-COUNT-N: p``: ``p`` on N successive matching lines.
* ``CHECK-NOT: p``: ``p`` occurs nowhere between the previous match and the next positive
  match (or the end of the block).
* ``IMPLICIT-CHECK-NOT: p``: ``p`` occurs nowhere in any labelled block (FileCheck's
  ``--implicit-check-not``, written in the pattern file here).

``p`` is literal text with ``{{regex}}`` parts. ``$NAME`` is replaced from the caller's
variables before matching (``string.Template``), so one pattern file serves every layer count.
"""

from __future__ import annotations

import os
import re
import string
from typing import List, Tuple

PATTERNS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "patterns")  # the audits' files
_DIRECTIVE = re.compile(r"^\s*//\s*(CHECK-LABEL|CHECK-NOT|CHECK-COUNT-\d+|CHECK|IMPLICIT-CHECK-NOT):\s?(.*)$")


class FileCheckError(AssertionError):
    pass


def _regex(pattern: str) -> re.Pattern:
    parts = re.split(r"\{\{(.*?)\}\}", pattern.strip())
    return re.compile("".join(p if i % 2 else re.escape(p) for i, p in enumerate(parts)))


def parse(patterns: str, variables: dict) -> List[Tuple[str, re.Pattern, str]]:
    text = string.Template(patterns).substitute({k: str(v) for k, v in variables.items()})
    checks = []
    for line in text.splitlines():
        m = _DIRECTIVE.match(line)
        if m:
            checks.append((m.group(1), _regex(m.group(2)), m.group(2).strip()))
    if not checks:
        raise ValueError("the pattern file holds no CHECK directive")
    return checks


def check(patterns: str, text: str, variables: dict = None) -> None:
    """Raise ``FileCheckError`` (saying which directive failed, and where) unless ``text`` matches."""
    checks = parse(patterns, variables or {})
    lines = text.splitlines()
    implicit = [(rx, src) for kind, rx, src in checks if kind == "IMPLICIT-CHECK-NOT"]
    checks = [c for c in checks if c[0] != "IMPLICIT-CHECK-NOT"]

    labels = [i for i, c in enumerate(checks) if c[0] == "CHECK-LABEL"]
    if not labels or labels[0] != 0:
        raise ValueError("pattern files here start with a CHECK-LABEL")
    for n, at in enumerate(labels):
        _, rx, src = checks[at]
        start = next((i for i, line in enumerate(lines) if rx.search(line)), None)
        if start is None:
            raise FileCheckError(f"CHECK-LABEL: {src} matches no line")
        following = labels[n + 1] if n + 1 < len(labels) else None
        end = len(lines)
        if following is not None:
            nxt = checks[following][1]
            end = next((i for i in range(start + 1, len(lines)) if nxt.search(lines[i])), len(lines))
        block = lines[start + 1:end]
        for rx_not, src_not in implicit:
            hits = [i for i, line in enumerate(block) if rx_not.search(line)]
            if hits:
                raise FileCheckError(f"IMPLICIT-CHECK-NOT: {src_not} found in the block of {src!r}: "
                                     f"{block[hits[0]].strip()[:200]}")
        _check_block(checks[at + 1: following], block, src)


def _check_block(checks, block: List[str], label: str) -> None:
    pos, pending_not = 0, []

    def find(rx, src, kind):
        nonlocal pos
        for i in range(pos, len(block)):
            if rx.search(block[i]):
                for rx_not, src_not in pending_not:
                    bad = [j for j in range(pos, i) if rx_not.search(block[j])]
                    if bad:
                        raise FileCheckError(f"CHECK-NOT: {src_not} found before {kind}: {src} "
                                             f"(in {label!r}): {block[bad[0]].strip()[:200]}")
                pending_not.clear()
                pos = i + 1
                return
        raise FileCheckError(f"{kind}: {src} not found (in {label!r}, after line {pos} of its block)")

    for kind, rx, src in checks:
        if kind == "CHECK-NOT":
            pending_not.append((rx, src))
        elif kind == "CHECK":
            find(rx, src, kind)
        else:  # CHECK-COUNT-N
            count = int(kind.rsplit("-", 1)[1])
            for k in range(count):
                try:
                    find(rx, src, kind)
                except FileCheckError as e:
                    raise FileCheckError(f"{e} (found {k} of {count})") from None
    for rx_not, src_not in pending_not:
        bad = [j for j in range(pos, len(block)) if rx_not.search(block[j])]
        if bad:
            raise FileCheckError(f"CHECK-NOT: {src_not} found after the last match (in {label!r}): "
                                 f"{block[bad[0]].strip()[:200]}")
