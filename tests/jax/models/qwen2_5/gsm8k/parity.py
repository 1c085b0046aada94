"""The parity rule: is this run's GSM8K accuracy the same as another's on the same problems?

The two runs answer the same problems, so the comparison is of paired proportions. Of n problems,
``b`` are right here only and ``c`` right there only (the discordant pairs); the accuracy difference
is delta = (b - c) / n.

* **Interval**: Newcombe's hybrid score interval for a difference of paired proportions (his
  method 10, 1998): Wilson score intervals of both accuracies, combined with the correlation phi of
  the paired outcomes. It stays inside [-1, 1], has close to nominal coverage at small n and at
  accuracies near 0 or 1, where the Wald interval collapses; with phi undefined (a run all right or
  all wrong) phi is taken as 0, which is conservative.
* **Test**: the exact McNemar test, two-sided: under equal accuracy each discordant problem is right
  here with probability 1/2, so p = min(1, 2 P[Bin(b + c, 1/2) <= min(b, c)]); p = 1 without
  discordant problems.
* **Rule**: parity holds when the 95 % interval lies within [-margin, +margin] (default 2 points,
  ``DEFAULT_MARGIN``). The p-value is reported, not used: a run can differ significantly yet
  by less than the margin, or not significantly with too few problems to show parity.
"""

from __future__ import annotations

import math
from typing import Sequence

DEFAULT_MARGIN = 2.0  # accuracy points
Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple:
    """Wilson score interval of a proportion (as fractions)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_paired(a: int, b: int, c: int, d: int, z: float = Z95) -> tuple:
    """95 % interval (fractions) of p_here - p_there from the 2x2 table of paired outcomes:
    a both right, b right here only, c right there only, d both wrong."""
    n = a + b + c + d
    if n == 0:
        return -1.0, 1.0
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, z)
    l2, u2 = wilson(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins else 0.0
    delta = p1 - p2
    low = delta - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = delta + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, low), min(1.0, high)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs."""
    m = b + c
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, k) for k in range(min(b, c) + 1)) / 2 ** m
    return min(1.0, 2 * tail)


def paired(here: Sequence[bool], there: Sequence[bool], margin: float = DEFAULT_MARGIN) -> dict:
    """The rule applied to per-problem correctness of two runs on the same problems, in order.

    Returns ``delta`` (points, here - there), ``ci95`` [low, high] (points), ``discordant``
    [right here only, right there only], ``p_value``, ``margin`` and ``holds``."""
    if len(here) != len(there):
        raise ValueError(f"paired runs must cover the same problems: {len(here)} vs {len(there)}")
    if not here:
        raise ValueError("no problems to compare")
    if not margin > 0:
        raise ValueError(f"the parity margin must be positive, got {margin}")
    a = sum(1 for x, y in zip(here, there) if x and y)
    b = sum(1 for x, y in zip(here, there) if x and not y)
    c = sum(1 for x, y in zip(here, there) if y and not x)
    d = len(here) - a - b - c
    low, high = newcombe_paired(a, b, c, d)
    delta = 100.0 * (b - c) / len(here)
    ci = [round(100.0 * low, 4), round(100.0 * high, 4)]
    return {"n": len(here), "delta": round(delta, 4), "ci95": ci, "discordant": [b, c],
            "p_value": mcnemar_exact(b, c), "margin": margin, "holds": -margin <= ci[0] and ci[1] <= margin}


def describe(result: dict) -> str:
    """One line: delta, interval, discordant counts, p and the verdict."""
    lo, hi = result["ci95"]
    verdict = "holds" if result["holds"] else "does not hold"
    return (f"delta {result['delta']:+.1f} pts, 95% CI [{lo:+.1f}, {hi:+.1f}], discordant "
            f"{result['discordant'][0]}/{result['discordant'][1]}, McNemar p={result['p_value']:.3g}: parity "
            f"(margin {result['margin']:g}) {verdict}")
