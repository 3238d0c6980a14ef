"""Log loss and Brier score of predicted probabilities, with scikit-learn's numerics.

Both are weighted means of a per-row kernel. Unlike Keras's cross-entropies,
log loss clips at machine epsilon and does not renormalise rows.
"""

from __future__ import annotations

import math

import numpy as np

from lossctl.batch import F64, Batch
from lossctl.metrics._sklearn_inputs import (
    MACHINE_EPS,
    PROBA_INPUTS,
    validate_probabilities,
    warn_not_normalized,
)
from lossctl.params import Param
from lossctl.registry import Example, kernel


@kernel(
    name="log_loss",
    kind="metric",
    task="binary|multiclass",
    direction="min",
    formula=(
        "-sum(y_true * log(clip(y_pred, eps, 1 - eps)), axis=-1) with eps = machine epsilon (2.2e-16); "
        "one column p stands for [1 - p, p], each clipped"
    ),
    summary="Logistic loss (cross-entropy) as scikit-learn computes it.",
    inputs=PROBA_INPUTS + "; classes are y_pred's columns (scikit-learn's labels=range(C)); rows are not renormalised",
    keras=None,
    sklearn="sklearn.metrics.log_loss",
    shapes="any",
    validate=validate_probabilities,
    warn=warn_not_normalized,
    deviations="Not Keras's binary_crossentropy: probabilities are clipped at machine epsilon, not 1e-7.",
    example=Example([1.0, 0.0], [0.8, 0.4], -(math.log(0.8) + math.log(0.6)) / 2.0),
)
def log_loss(b: Batch) -> F64:
    """Per-row log loss with scikit-learn's clipping.

    Formula: ``-sum(y_true * log(clip(y_pred, eps, 1 - eps)), axis=-1)``, eps = 2.2e-16.

    Args:
        b: ``y_true`` 0/1 with ``y_pred`` (N,) probabilities, or labels (N,) /
            one-hot (N, C) with ``y_pred`` (N, C) probability rows.

    Returns:
        (N,) per-row losses.
    """
    yt, yp = b.y_true, b.y_pred
    if yp.ndim == 1:
        p = np.clip(yp, MACHINE_EPS, 1.0 - MACHINE_EPS)
        q = np.clip(1.0 - yp, MACHINE_EPS, 1.0 - MACHINE_EPS)
        # y is 0 or 1, so one term is exactly 0, as scikit-learn's xlogy gives.
        return -(yt * np.log(p) + (1.0 - yt) * np.log(q))
    clipped = np.clip(yp, MACHINE_EPS, 1.0 - MACHINE_EPS)
    if yt.ndim == 1:
        return -np.log(clipped[np.arange(len(yt)), yt.astype(np.int64)])
    # xlogy: a zero target contributes 0 whatever the probability.
    terms = np.where(yt != 0, yt * np.log(clipped), 0.0)
    return -np.sum(terms, axis=1)


@kernel(
    name="brier_score_loss",
    aliases=("brier", "brier_score"),
    kind="metric",
    task="binary|multiclass",
    direction="min",
    formula=(
        "binary: (y_true - y_pred) ** 2; multiclass: sum((one_hot(y_true) - y_pred) ** 2, axis=-1), "
        "halved when there are 2 columns (scale_by_half=auto)"
    ),
    summary="Mean squared difference between predicted probabilities and outcomes.",
    inputs=PROBA_INPUTS,
    params=(
        Param(
            "scale_by_half",
            "auto",
            str,
            "halve the multiclass sum (auto: for one column or two, which gives (y - p) ** 2)",
            choices=("auto", "true", "false"),
        ),
    ),
    keras=None,
    sklearn="sklearn.metrics.brier_score_loss",
    shapes="any",
    validate=validate_probabilities,
    warn=warn_not_normalized,
    example=Example([1.0, 0.0], [0.8, 0.4], (0.04 + 0.16) / 2.0),
)
def brier_score_loss(b: Batch, *, scale_by_half: str = "auto") -> F64:
    """Per-row Brier score.

    Formula: ``sum((one_hot(y_true) - y_pred) ** 2, axis=-1)``, times 0.5 for
    one or two probability columns (one column p stands for [1 - p, p]).

    Args:
        b: as for :func:`log_loss`.
        scale_by_half: ``auto``, ``true`` or ``false``.

    Returns:
        (N,) per-row scores.
    """
    yt, yp = b.y_true, b.y_pred
    if yp.ndim == 1:
        # [1 - y, y] against [1 - p, p]: twice (y - p) ** 2 before halving.
        sq = 2.0 * (yt - yp) ** 2
        columns = 2
    else:
        columns = yp.shape[1]
        diff = yp.copy()
        if yt.ndim == 1:
            diff[np.arange(len(yt)), yt.astype(np.int64)] -= 1.0
        else:
            diff -= yt
        sq = np.sum(diff * diff, axis=1)
    half = columns < 3 if scale_by_half == "auto" else scale_by_half == "true"
    return 0.5 * sq if half else sq
