"""The canary's paired non-inferiority test, as a pure function of (b, c, n, margin).

Expected values are computed here from first principles (binomial sums with
``math.comb``, a numerical maximum of the constrained likelihood), not copied from
the implementation's output.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import binom

from registry.errors import InvalidInput
from registry.release.canary import paired_non_inferiority


def _exact_mcnemar_p(b: int, c: int) -> float:
    """P(B <= b) for B ~ Binomial(b + c, 1/2), summed by hand."""
    m = b + c
    return sum(math.comb(m, k) for k in range(b + 1)) / 2**m


def _score_z_by_optimisation(b: int, c: int, n: int, margin: float) -> float:
    """Tango's z with the constrained MLE found numerically instead of by the quadratic."""

    def negative_log_likelihood(q: float) -> float:
        worse, same = q + margin, 1.0 - 2.0 * q - margin
        return -(b * math.log(worse) + c * math.log(q) + (n - b - c) * math.log(same))

    upper = (1.0 - margin) / 2.0
    q = minimize_scalar(
        negative_log_likelihood,
        bounds=(1e-12, upper - 1e-12),
        method="bounded",
        options={"xatol": 1e-13},
    ).x
    return (b - c - n * margin) / math.sqrt(n * (2 * q + margin * (1 - margin)))


@pytest.mark.parametrize(("b", "c"), [(0, 1), (1, 0), (3, 9), (9, 3), (10, 10), (40, 71)])
def test_margin_zero_is_the_exact_mcnemar_test(b: int, c: int) -> None:
    statistic, p = paired_non_inferiority(b, c, 500, 0.0)

    assert p == pytest.approx(_exact_mcnemar_p(b, c), rel=1e-12)
    assert p == pytest.approx(binom.cdf(b, b + c, 0.5), rel=1e-12)
    assert statistic == pytest.approx((b - c) / math.sqrt(b + c))


def test_agresti_presidential_approval_table() -> None:
    # Agresti, Categorical Data Analysis, table 10.1: 1,600 people asked twice;
    # 150 approve then disapprove, 86 the reverse; McNemar's z is 4.17 in size.
    statistic, p = paired_non_inferiority(86, 150, 1600, 0.0)

    assert statistic == pytest.approx(-4.17, abs=0.005)
    assert p == pytest.approx(_exact_mcnemar_p(86, 150), rel=1e-12)
    assert p < 1e-4


def test_no_discordant_pair_at_margin_zero_is_no_evidence() -> None:
    assert paired_non_inferiority(0, 0, 10_000, 0.0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("b", "c", "n", "margin"),
    [(30, 20, 1000, 0.01), (20, 30, 1000, 0.01), (0, 0, 2000, 0.01), (5, 0, 300, 0.05),
     (0, 7, 300, 0.05), (120, 100, 5000, 0.002), (400, 380, 800, 0.1)],
)  # fmt: skip
def test_positive_margin_is_the_score_test(b: int, c: int, n: int, margin: float) -> None:
    statistic, p = paired_non_inferiority(b, c, n, margin)

    expected = _score_z_by_optimisation(b, c, n, margin)
    assert statistic == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert p == pytest.approx(NormalDist().cdf(expected), rel=1e-6)


def test_identical_models_without_discordant_pairs_have_the_closed_form() -> None:
    # b = c = 0: the constrained MLE of c's probability is 0, so z = -sqrt(n m / (1 - m)).
    statistic, p = paired_non_inferiority(0, 0, 2000, 0.01)
    assert statistic == pytest.approx(-math.sqrt(2000 * 0.01 / 0.99))
    assert p < 1e-4


def test_a_tiny_margin_approaches_mcnemars_statistic() -> None:
    statistic, _ = paired_non_inferiority(40, 71, 500, 1e-12)
    assert statistic == pytest.approx((40 - 71) / math.sqrt(111), rel=1e-6)


@pytest.mark.parametrize("margin", [0.0, 0.01, 0.05])
def test_more_errors_of_the_candidate_never_help_it(margin: float) -> None:
    p_values = [paired_non_inferiority(b, 25, 1000, margin)[1] for b in range(0, 80, 4)]
    assert p_values == sorted(p_values)
    assert p_values[0] < p_values[-1]


@pytest.mark.parametrize("margin", [0.0, 0.01, 0.05])
def test_more_errors_of_production_never_hurt_the_candidate(margin: float) -> None:
    p_values = [paired_non_inferiority(25, c, 1000, margin)[1] for c in range(0, 80, 4)]
    assert p_values == sorted(p_values, reverse=True)
    assert p_values[0] > p_values[-1]


def test_a_wider_margin_is_easier_to_pass() -> None:
    p_values = [paired_non_inferiority(30, 20, 1000, m)[1] for m in (0.005, 0.01, 0.02, 0.05)]
    assert p_values == sorted(p_values, reverse=True)


def test_a_clearly_worse_candidate_is_far_from_non_inferior() -> None:
    # 10 percentage points more errors against a margin of 1.
    statistic, p = paired_non_inferiority(220, 20, 2000, 0.01)
    assert statistic > 5 and p > 0.999


def test_a_candidate_within_the_margin_passes_with_enough_rows() -> None:
    # 0.2 points more errors, margin 1 point, 5,000 rows.
    _, p = paired_non_inferiority(60, 50, 5000, 0.01)
    assert p < 0.05


@pytest.mark.parametrize(
    ("b", "c", "n", "margin"),
    [(-1, 0, 10, 0.0), (0, -1, 10, 0.0), (6, 5, 10, 0.0), (0, 0, 0, 0.0), (1, 1, 10, -0.01),
     (1, 1, 10, 1.0)],
)  # fmt: skip
def test_impossible_counts_or_margins_are_refused(b: int, c: int, n: int, margin: float) -> None:
    with pytest.raises(InvalidInput):
        paired_non_inferiority(b, c, n, margin)
