"""The parity rule on hand-made paired outcomes with known answers: identical runs, a 3-point drop,
a few discordant problems either way, and the interval's coverage."""

import numpy as np
import pytest

from .gsm8k.parity import DEFAULT_MARGIN, mcnemar_exact, newcombe_paired, paired

pytestmark = [pytest.mark.cpu, pytest.mark.gsm8k]

N = 1319  # the GSM8K test set


def outcomes(right_both, right_here_only, right_there_only, n=N):
    here = [True] * right_both + [True] * right_here_only + [False] * right_there_only
    there = [True] * right_both + [False] * right_here_only + [True] * right_there_only
    rest = n - len(here)
    return here + [False] * rest, there + [False] * rest


def test_identical_runs_hold_parity():
    here, there = outcomes(1100, 0, 0)
    result = paired(here, there)
    assert result["delta"] == 0 and result["discordant"] == [0, 0] and result["p_value"] == 1.0
    assert result["holds"] and -0.5 < result["ci95"][0] <= 0 <= result["ci95"][1] < 0.5, result


def test_a_three_point_drop_fails_parity():
    here, there = outcomes(1060, 0, 40)  # 40 / 1319 = 3.03 points
    result = paired(here, there)
    assert result["delta"] == pytest.approx(-3.0326, abs=1e-4) and result["discordant"] == [0, 40]
    assert result["ci95"][1] < -2.0 and not result["holds"], result
    assert result["p_value"] == pytest.approx(2 / 2 ** 40)


@pytest.mark.parametrize("b,c", [(5, 3), (3, 5), (20, 20)])
def test_a_few_discordant_problems_either_way_hold_parity(b, c):
    here, there = outcomes(1000, b, c)
    result = paired(here, there)
    assert result["discordant"] == [b, c] and result["delta"] == pytest.approx(100 * (b - c) / N, abs=1e-4)
    assert result["holds"] and result["ci95"][0] < result["delta"] < result["ci95"][1], result


def test_mcnemar_exact_values():
    assert mcnemar_exact(5, 3) == pytest.approx(2 * (1 + 8 + 28 + 56) / 256)  # 2 P[Bin(8, 1/2) <= 3]
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(4, 4) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)


def test_too_few_problems_cannot_show_parity():
    """Eight identical answers say little about a 2-point difference: the interval is wide."""
    here, there = outcomes(0, 0, 0, n=8)
    result = paired(here, there)
    assert result["delta"] == 0 and not result["holds"] and result["ci95"][1] > 20, result


def test_newcombe_interval_covers_at_95_percent():
    rng = np.random.default_rng(0)
    cells = (0.78, 0.04, 0.02, 0.16)  # both right, here only, there only, both wrong
    truth, hits = cells[1] - cells[2], 0
    for _ in range(2000):
        lo, hi = newcombe_paired(*rng.multinomial(200, cells))
        hits += lo <= truth <= hi
    assert 0.93 <= hits / 2000 <= 0.97


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same problems"):
        paired([True], [True, False])
    with pytest.raises(ValueError, match="margin"):
        paired([True], [True], margin=0)
    assert DEFAULT_MARGIN == 2.0
