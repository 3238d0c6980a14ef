"""Tweedie, gamma and Poisson deviances, with scikit-learn's numerics.

Each is the weighted mean of a per-row kernel: the unit deviance of
:func:`tweedie_deviance`, averaged over the row's columns. Their domains
(positive predictions, non-negative or positive targets) are checked chunk by
chunk, naming the first row outside them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lossctl.batch import F64, Batch, row_mean
from lossctl.errors import ValueProblem
from lossctl.metrics._sklearn_inputs import first_row, first_value
from lossctl.params import Param
from lossctl.registry import Example, kernel

_SAME = "y_true and y_pred of the same shape: (N,) or (N, D); real values"


def tweedie_deviance(y_true: F64, y_pred: F64, power: float) -> F64:
    """Unit Tweedie deviance per element, exactly as scikit-learn writes it.

    Formula: ``2 * (max(y, 0) ** (2 - p) / ((1 - p) * (2 - p)) - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))``
    with the limits ``(y - mu) ** 2`` (p = 0), ``2 * (y * log(y / mu) - y + mu)`` (p = 1) and
    ``2 * (log(mu / y) + y / mu - 1)`` (p = 2).
    """
    t, p = y_true, y_pred
    if power < 0:
        return 2.0 * (
            np.power(np.where(t > 0, t, 0.0), 2.0 - power) / ((1.0 - power) * (2.0 - power))
            - t * np.power(p, 1.0 - power) / (1.0 - power)
            + np.power(p, 2.0 - power) / (2.0 - power)
        )
    if power == 0:
        return (t - p) ** 2
    if power == 1:
        # xlogy: a zero count contributes 0.
        ratio = np.where(t == 0, 1.0, t / p)
        return 2.0 * (np.where(t == 0, 0.0, t * np.log(ratio)) - t + p)
    if power == 2:
        return 2.0 * (np.log(p / t) + t / p - 1.0)
    return 2.0 * (
        np.power(t, 2.0 - power) / ((1.0 - power) * (2.0 - power))
        - t * np.power(p, 1.0 - power) / (1.0 - power)
        + np.power(p, 2.0 - power) / (2.0 - power)
    )


def validate_tweedie(b: Batch, *, power: float = 0.0, **_: Any) -> None:
    """scikit-learn's domain: p < 0 needs y_pred > 0; 1 <= p < 2 also y_true >= 0; p >= 2 y_true > 0."""
    if power == 0.0:
        return
    bad = b.y_pred <= 0
    if bad.any():
        raise ValueProblem(
            "y_pred",
            first_row(bad),
            f"{first_value(b.y_pred, bad):g} is not > 0 (Tweedie power {power:g} needs y_pred > 0)",
        )
    if power >= 2.0:
        bad = b.y_true <= 0
        need = "> 0"
    elif power >= 1.0:
        bad = b.y_true < 0
        need = ">= 0"
    else:
        return
    if bad.any():
        raise ValueProblem(
            "y_true",
            first_row(bad),
            f"{first_value(b.y_true, bad):g} is not {need} (Tweedie power {power:g} needs y_true {need})",
        )


_DEVIANCE_INPUTS = _SAME + "; a column per row in scikit-learn (several are averaged per row here)"


@kernel(
    name="mean_tweedie_deviance",
    aliases=("tweedie_deviance",),
    kind="metric",
    task="regression",
    direction="min",
    formula=(
        "mean(2 * (max(y_true, 0) ** (2 - power) / ((1 - power) * (2 - power)) - y_true * y_pred ** (1 - power) "
        "/ (1 - power) + y_pred ** (2 - power) / (2 - power)), axis=-1); power 0: squared error, 1: Poisson, "
        "2: gamma deviance"
    ),
    summary="Mean Tweedie deviance (power 0 squared error, 1 Poisson, 2 gamma).",
    inputs=_DEVIANCE_INPUTS + "; power < 0: y_pred > 0; 1 <= power < 2: y_true >= 0, y_pred > 0; power >= 2: both > 0",
    params=(Param("power", 0.0, float, "Tweedie power: <= 0 or >= 1", excluded=(0.0, 1.0)),),
    keras=None,
    sklearn="sklearn.metrics.mean_tweedie_deviance",
    validate=validate_tweedie,
    example=Example([1.0, 2.0], [2.0, 0.0], (1.0 + 4.0) / 2.0),
)
def mean_tweedie_deviance(b: Batch, *, power: float = 0.0) -> F64:
    """Per-row mean Tweedie deviance (see :func:`tweedie_deviance`).

    Formula: ``mean(tweedie_deviance(y_true, y_pred, power), axis=-1)``.
    """
    return row_mean(tweedie_deviance(b.y_true, b.y_pred, power))


def validate_gamma(b: Batch, **_: Any) -> None:
    """Gamma deviance needs y_true > 0 and y_pred > 0."""
    validate_tweedie(b, power=2.0)


def validate_poisson(b: Batch, **_: Any) -> None:
    """Poisson deviance needs y_true >= 0 and y_pred > 0."""
    validate_tweedie(b, power=1.0)


@kernel(
    name="mean_gamma_deviance",
    aliases=("gamma_deviance",),
    kind="metric",
    task="regression",
    direction="min",
    formula="mean(2 * (log(y_pred / y_true) + y_true / y_pred - 1), axis=-1)",
    summary="Mean gamma deviance (Tweedie power 2): scale-invariant errors of positive targets.",
    inputs=_DEVIANCE_INPUTS + "; y_true > 0 and y_pred > 0",
    keras=None,
    sklearn="sklearn.metrics.mean_gamma_deviance",
    validate=validate_gamma,
    # Row 1: 2 * (log 2 + 1/2 - 1); row 2: 0.
    example=Example([1.0, 2.0], [2.0, 2.0], math.log(2.0) - 0.5),
)
def mean_gamma_deviance(b: Batch) -> F64:
    """Per-row mean gamma deviance.

    Formula: ``mean(2 * (log(y_pred / y_true) + y_true / y_pred - 1), axis=-1)``.
    """
    return row_mean(tweedie_deviance(b.y_true, b.y_pred, 2.0))


@kernel(
    name="mean_poisson_deviance",
    aliases=("poisson_deviance",),
    kind="metric",
    task="regression",
    direction="min",
    formula="mean(2 * (y_true * log(y_true / y_pred) - y_true + y_pred), axis=-1), 0 * log(0) = 0",
    summary="Mean Poisson deviance (Tweedie power 1), not Keras's poisson loss.",
    inputs=_DEVIANCE_INPUTS + "; y_true >= 0 (counts) and y_pred > 0",
    keras=None,
    sklearn="sklearn.metrics.mean_poisson_deviance",
    validate=validate_poisson,
    # Row 1: 2 * (log(1/2) - 1 + 2); row 2: 2 * (0 - 0 + 1).
    example=Example([1.0, 0.0], [2.0, 1.0], 2.0 - math.log(2.0)),
)
def mean_poisson_deviance(b: Batch) -> F64:
    """Per-row mean Poisson deviance.

    Formula: ``mean(2 * (y_true * log(y_true / y_pred) - y_true + y_pred), axis=-1)``.
    """
    return row_mean(tweedie_deviance(b.y_true, b.y_pred, 1.0))
