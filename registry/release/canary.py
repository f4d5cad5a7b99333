"""The canary: candidate and Production on the same live-like traffic, one pre-declared test.

Both models score every labelled row of the traffic (shadow replay with labels that
arrived later), so each row is a pair: did the candidate err, did Production err.
Rows on which both agree carry no information about which is better; the decision
rests on the discordant pairs::

    b = rows the candidate gets wrong and Production right
    c = rows the candidate gets right and Production wrong
    n = paired rows,   d = p_candidate - p_production = (b - c) / n

and is a one-sided non-inferiority test of the error-rate difference, with the
margin, alpha and minimum sample declared beforehand (``CanaryParams``)::

    H0: d >= margin   (the candidate is worse by the margin or more)
    H1: d <  margin

The candidate passes when ``n >= min_samples`` and ``p < alpha``.

Which test, and why:

- ``margin == 0``: McNemar's exact test. Conditional on the ``b + c`` discordant
  pairs, ``b ~ Binomial(b + c, 1/2)`` at the null boundary, and the one-sided p is
  ``P(B <= b)`` (``scipy.stats.binomtest(..., alternative="less")``). Exact, so it
  is valid however few discordant pairs there are. With no discordant pair at all
  there is no evidence either way and p = 1.
- ``margin > 0``: the score test of Tango (1998; the same statistic as Nam 1997) for
  a difference of paired proportions::

      z = (b - c - n*margin) / sqrt(n * (2*q + margin*(1 - margin)))

  where ``q`` is the maximum-likelihood estimate of P(candidate right, Production
  wrong) under the constraint ``d = margin`` (the root of a quadratic), and
  ``p = Phi(z)``. Conditioning no longer removes the nuisance parameter once the
  margin is not zero, so there is no exact binomial test to fall back on. The Wald
  test estimates the variance at the observed rates: it is zero when ``b = c = 0``
  (the statistic is infinite exactly when two models agree everywhere) and the test
  is known to be anti-conservative for few discordant pairs. The score test takes
  the variance under H0, stays finite for every table, and keeps its size close to
  nominal in the simulations of Tango (1998) and Liu et al. (2002); a continuity
  correction would only make it more conservative. At ``margin = 0`` the score
  statistic is McNemar's ``(b - c) / sqrt(b + c)``, which is what ``statistic``
  records there too, with the exact p.

This module is generic: the feature names and target come from the candidate's
``Signature``, never from a particular workload.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, FiniteFloat, NonNegativeInt
from threadpoolctl import threadpool_limits

from registry.errors import InvalidInput
from registry.modelio import load_model
from registry.models import Signature
from registry.release.policy import CanaryParams

EXACT_TEST = "one-sided exact McNemar test on discordant pairs (margin 0)"
SCORE_TEST = "one-sided paired non-inferiority score test on discordant pairs (Tango 1998)"
NO_TEST = "none (no production baseline)"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelFile(_Frozen):
    """A model file to replay and the checksum it must have before it is parsed."""

    path: Path
    sha256: str
    size: NonNegativeInt


class CanaryEvidence(_Frozen):
    """Everything the decision was made on; ``model_dump(mode="json")`` is what is stored."""

    passed: bool
    decision: str
    n: NonNegativeInt  # labelled rows, scored by both models
    candidate_errors: NonNegativeInt
    production_errors: NonNegativeInt | None  # None: no baseline to compare with
    discordant_candidate_worse: NonNegativeInt | None  # b
    discordant_candidate_better: NonNegativeInt | None  # c
    error_candidate: FiniteFloat
    error_production: FiniteFloat | None
    statistic: FiniteFloat | None
    p_value: FiniteFloat | None
    alpha: FiniteFloat
    margin: FiniteFloat
    min_samples: int
    test: str
    baseline_version: int | None  # the Production version the candidate was compared with


def paired_non_inferiority(b: int, c: int, n: int, margin: float) -> tuple[float, float]:
    """(statistic, one-sided p) for H0: p_candidate - p_production >= margin.

    ``b``: pairs only the candidate gets wrong, ``c``: pairs only Production gets
    wrong, ``n``: all pairs. Exact McNemar at margin 0, Tango's score test above it
    (see the module docstring). A small p shows the candidate non-inferior.
    """
    if min(b, c) < 0 or b + c > n or n < 1:
        raise InvalidInput(f"invalid paired counts b={b}, c={c}, n={n}")
    if not 0.0 <= margin < 1.0:
        raise InvalidInput(f"invalid non-inferiority margin {margin}")
    if margin == 0.0:
        return _mcnemar(b, c)
    q = _restricted_better(b, c, n, margin)
    z = (b - c - n * margin) / math.sqrt(n * (2.0 * q + margin * (1.0 - margin)))
    return z, NormalDist().cdf(z)


def _mcnemar(b: int, c: int) -> tuple[float, float]:
    if b + c == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    p = float(binomtest(b, b + c, 0.5, alternative="less").pvalue)
    return (b - c) / math.sqrt(b + c), p


def _restricted_better(b: int, c: int, n: int, margin: float) -> float:
    """MLE of P(candidate right, Production wrong) given p_cand - p_prod == margin:
    the non-negative root of 2n q^2 + (2n - b + c) margin q - (b + c) q - c margin (1 - margin)."""
    lin = -(b + c) + (2 * n - b + c) * margin
    const = -c * margin * (1.0 - margin)
    return (-lin + math.sqrt(lin * lin - 8.0 * n * const)) / (4.0 * n)


def method(margin: float) -> str:
    """The name of the test ``paired_non_inferiority`` runs at this margin."""
    return EXACT_TEST if margin == 0.0 else SCORE_TEST


def judge(
    candidate_wrong: np.ndarray,
    production_wrong: np.ndarray | None,
    params: CanaryParams,
    baseline_version: int | None,
) -> CanaryEvidence:
    """The canary's decision from each row's errors (one boolean per paired row)."""
    n = len(candidate_wrong)
    candidate_errors = int(np.count_nonzero(candidate_wrong))
    b = c = production_errors = None
    statistic = p_value = error_production = None
    if production_wrong is None:
        passed, decision, test = True, "no production baseline", NO_TEST
    else:
        if len(production_wrong) != n:
            raise InvalidInput(f"paired rows differ: {n} candidate, {len(production_wrong)}")
        b = int(np.count_nonzero(candidate_wrong & ~production_wrong))
        c = int(np.count_nonzero(~candidate_wrong & production_wrong))
        production_errors = int(np.count_nonzero(production_wrong))
        error_production = production_errors / n if n else 0.0
        if n:  # the statistic is recorded even when the sample is too small to decide
            statistic, p_value = paired_non_inferiority(b, c, n, params.margin)
        test = method(params.margin)
        if n < params.min_samples:
            passed, decision = False, f"insufficient samples ({n} < {params.min_samples})"
        elif p_value is not None and p_value < params.alpha:
            passed, decision = True, "non-inferior"
        else:
            passed, decision = False, "not shown non-inferior"
    return CanaryEvidence(
        passed=passed,
        decision=decision,
        n=n,
        candidate_errors=candidate_errors,
        production_errors=production_errors,
        discordant_candidate_worse=b,
        discordant_candidate_better=c,
        error_candidate=candidate_errors / n if n else 0.0,
        error_production=error_production,
        statistic=statistic,
        p_value=p_value,
        alpha=params.alpha,
        margin=params.margin,
        min_samples=params.min_samples,
        test=test,
        baseline_version=baseline_version,
    )


def run_canary(
    candidate: ModelFile,
    production: ModelFile | None,
    traffic: pd.DataFrame,
    *,
    signature: Signature,
    params: CanaryParams,
    baseline_version: int | None,
) -> CanaryEvidence:
    """Replay ``traffic`` to both models and decide with the pre-declared paired test.

    ``signature`` (the candidate's) names the feature columns, in order, and the
    target; ``baseline_version`` is the Production version ``production`` holds.
    """
    if production is None and baseline_version is not None:
        raise InvalidInput(f"baseline version {baseline_version} given without its model")
    features, labels = _traffic(traffic, signature)
    candidate_wrong = _errors(candidate, features, labels)
    production_wrong = None if production is None else _errors(production, features, labels)
    return judge(candidate_wrong, production_wrong, params, baseline_version)


def _traffic(frame: pd.DataFrame, signature: Signature) -> tuple[pd.DataFrame, np.ndarray]:
    if signature.target is None:
        raise InvalidInput("the canary needs labels: the signature names no target")
    names = [f.name for f in signature.features]
    target = signature.target.name
    missing = [c for c in [*names, target] if c not in frame.columns]
    if missing:
        raise InvalidInput(f"canary traffic lacks columns {', '.join(missing)}")
    labelled = frame[frame[target].notna()]
    return labelled[names], labelled[target].to_numpy().astype(np.int64)


def _errors(model_file: ModelFile, features: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    if len(labels) == 0:
        return np.zeros(0, dtype=bool)
    model = load_model(model_file.path, sha256=model_file.sha256, size=model_file.size)
    with threadpool_limits(limits=1):  # small matrices: threads only add contention
        decisions = np.asarray(model.predict(features)).astype(np.int64)
    return np.asarray(decisions != labels)
