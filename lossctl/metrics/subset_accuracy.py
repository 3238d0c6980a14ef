"""scikit-learn's ``accuracy_score``: the share of rows whose every label is right (subset accuracy).

On multilabel input ``(N, C)`` a row counts only when all its labels are
decided right (``p > threshold``; whole numbers are taken as labels). One
label column against scores or predicted labels is the plain accuracy, and
integer labels against a probability matrix compare with the argmax.
"""

from __future__ import annotations

import numpy as np

from lossctl.batch import F64, Batch
from lossctl.errors import ValueProblem
from lossctl.params import Param
from lossctl.registry import Example, kernel


def _decided(p: F64, threshold: float) -> F64:
    return np.where(p == np.floor(p), p, (p > threshold).astype(np.float64))


def _check(batch: Batch, **params: object) -> None:
    yt, yp = batch.y_true, batch.y_pred
    if yt.ndim == 2 and yp.ndim == 2 and yt.shape[1] != yp.shape[1]:
        raise ValueProblem("y_pred", 0, f"y_pred has {yp.shape[1]} columns but y_true {yt.shape[1]}")


@kernel(
    name="accuracy_score",
    aliases=("subset_accuracy",),
    kind="metric",
    task="multilabel|binary|multiclass",
    direction="max",
    formula=(
        "all(y_true == decided, axis=-1), decided = y_pred where it is a whole number, else "
        "(y_pred > threshold); integer labels against a probability matrix: y_true == argmax(y_pred)"
    ),
    summary="Share of rows whose labels are all right (scikit-learn's accuracy_score; subset accuracy on multilabel rows).",
    inputs=(
        "multilabel 0/1 (N, C) against scores or 0/1 predictions (N, C); labels (N,) against "
        "predicted labels or scores (N,); integer labels (N,) against a probability matrix (N, C)"
    ),
    params=(
        Param("threshold", 0.5, float, "a score is decided 1 when y_pred > threshold", low=0.0, high=1.0),
    ),
    sklearn="sklearn.metrics.accuracy_score",
    shapes="any",
    validate=_check,
    deviations=(
        "Not Keras's accuracy (which averages the labels of a row): a multilabel row counts only "
        "when every label is right, as scikit-learn's accuracy_score. Scores are decided at threshold."
    ),
    example=Example([[1, 0, 1], [0, 1, 1]], [[0.9, 0.2, 0.7], [0.1, 0.4, 0.8]], 0.5),
)
def accuracy_score(b: Batch, *, threshold: float = 0.5) -> F64:
    """Per-row subset accuracy: 1 when every label of the row is decided right.

    Returns:
        ``(N,)`` values 0 or 1.
    """
    yt, yp = b.y_true, b.y_pred
    if yt.ndim == 1 and yp.ndim == 2:
        return (np.argmax(yp, axis=1) == yt).astype(np.float64)
    hit = yt == _decided(yp, threshold)
    return (hit.all(axis=1) if hit.ndim == 2 else hit).astype(np.float64)
