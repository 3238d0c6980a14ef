"""Confusion-matrix metrics of scikit-learn: balanced accuracy, Matthews correlation, Cohen's kappa.

Whole-table metrics over a mergeable confusion matrix of the labels seen so
far. Class-decision metrics given probabilities decide as Keras does: ``p >
0.5`` for one probability column, argmax for a probability matrix; integer
values are taken as class labels, so label-vs-label input works too (see
``lossctl.metrics._sklearn_inputs``).

The rest of the scikit-learn family lives in modules named by what they
compute: ``log_loss`` (log loss, Brier score), ``calibration`` (expected
calibration error), ``correlation`` (explained variance), ``errors_robust``
(median and max error, pinball loss) and ``deviance`` (Tweedie, gamma,
Poisson).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Self

import numpy as np

from lossctl.batch import F64, Batch
from lossctl.errors import DataError
from lossctl.metrics._sklearn_inputs import I64, predicted_classes, true_classes, validate_classes
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, register
from lossctl.state import Value

# A confusion matrix is (labels x labels) float64: 4096 labels are 128 MiB.
MAX_LABELS = 4096

_CLASSES = (
    "y_true integer labels (N,) or one-hot (N, C); y_pred a probability column (N,) (decided p > 0.5), "
    "a probability matrix (N, C) (decided by argmax) or integer labels (N,)"
)


# --- confusion-matrix metrics -----------------------------------------------------------


class ConfusionState:
    """Weighted confusion matrix over the labels seen so far (in ``y_true`` or the decisions).

    ``labels`` is the sorted set of labels seen, as scikit-learn's
    ``unique_labels`` gives it (rows of weight zero included); ``matrix[i, j]``
    is the weight of rows with true label ``labels[i]`` decided as
    ``labels[j]``. The label set may grow from chunk to chunk; merging maps
    both matrices onto the union. Memory is ``len(labels) ** 2`` floats.
    """

    __slots__ = ("labels", "matrix", "params", "rows")

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)
        self.labels: I64 = np.zeros(0, dtype=np.int64)
        self.matrix: F64 = np.zeros((0, 0))
        self.rows = 0

    def update(self, batch: Batch) -> None:
        t = true_classes(batch.y_true)
        p = predicted_classes(batch.y_pred)
        labels = np.union1d(t, p)
        k = len(labels)
        cells = np.searchsorted(labels, t) * k + np.searchsorted(labels, p)
        w = np.ones(len(t)) if batch.weight is None else batch.weight
        matrix = np.asarray(np.bincount(cells, weights=w, minlength=k * k), dtype=np.float64).reshape(k, k)
        self._fold(labels, matrix, len(t))

    def _fold(self, labels: I64, matrix: F64, rows: int) -> None:
        union = np.union1d(self.labels, labels)
        if len(union) > MAX_LABELS:
            raise DataError(
                f"more than {MAX_LABELS} distinct class labels; "
                "a confusion-matrix metric needs class labels, not a continuous target"
            )
        out = np.zeros((len(union), len(union)))
        for part_labels, part in ((self.labels, self.matrix), (labels, matrix)):
            at = np.searchsorted(union, part_labels)
            out[np.ix_(at, at)] += part
        self.labels, self.matrix = union, out
        self.rows += rows

    def merge(self, other: Self) -> Self:
        out = type(self)(self.params)
        out._fold(self.labels, self.matrix, self.rows)
        out._fold(other.labels, other.matrix, other.rows)
        return out

    def result(self) -> Value:
        if self.rows == 0:
            return Value.undefined("no rows")
        if float(self.matrix.sum()) == 0.0:
            return Value.undefined("sum of weights is zero")
        return self.score()

    def score(self) -> Value:
        """The metric from a non-empty matrix."""
        raise NotImplementedError


class BalancedAccuracyState(ConfusionState):
    """Mean recall over the classes present in ``y_true`` (scikit-learn's ``balanced_accuracy_score``)."""

    __slots__ = ()

    def score(self) -> Value:
        support = self.matrix.sum(axis=1)
        present = support > 0
        # Classes only ever predicted have no recall; scikit-learn drops them too.
        recall = np.diag(self.matrix)[present] / support[present]
        score = float(np.mean(recall))
        if self.params["adjusted"]:
            n = int(present.sum())
            if n < 2:
                return Value.undefined("adjusted balanced accuracy needs two classes in y_true")
            chance = 1.0 / n
            score = (score - chance) / (1.0 - chance)
        return Value.of(score)


class MatthewsState(ConfusionState):
    """Matthews correlation, multiclass form (scikit-learn's ``matthews_corrcoef``)."""

    __slots__ = ()

    def score(self) -> Value:
        c = self.matrix
        t_sum = c.sum(axis=1)
        p_sum = c.sum(axis=0)
        n_correct = float(np.trace(c))
        n = float(p_sum.sum())
        cov_tp = n_correct * n - float(np.dot(t_sum, p_sum))
        cov_pp = n * n - float(np.dot(p_sum, p_sum))
        cov_tt = n * n - float(np.dot(t_sum, t_sum))
        if cov_pp * cov_tt == 0:
            return Value.undefined(
                "y_true or the predictions hold a single class, so MCC is 0/0 (scikit-learn reports 0)"
            )
        return Value.of(cov_tp / math.sqrt(cov_pp * cov_tt))


class KappaState(ConfusionState):
    """Cohen's kappa between ``y_true`` and the decisions (scikit-learn's ``cohen_kappa_score``).

    With ``weights``, disagreement costs ``|i - j|`` or ``(i - j) ** 2`` where
    ``i, j`` are positions in the sorted set of labels seen, as in scikit-learn.
    """

    __slots__ = ()

    def score(self) -> Value:
        c = self.matrix
        k = len(self.labels)
        sum0 = c.sum(axis=0)
        sum1 = c.sum(axis=1)
        expected = np.outer(sum0, sum1) / sum0.sum()
        weights = self.params["weights"]
        if weights is None:
            cost = np.ones((k, k)) - np.eye(k)
        else:
            position = np.arange(k, dtype=np.float64)
            gap = position[None, :] - position[:, None]
            cost = np.abs(gap) if weights == "linear" else gap * gap
        denominator = float(np.sum(cost * expected))
        if denominator == 0.0:
            return Value.undefined("only one class occurs, so kappa is 0/0")
        return Value.of(1.0 - float(np.sum(cost * c)) / denominator)


_WHOLE_TABLE = "over the whole table, from a mergeable confusion matrix"

register(
    MetricDef(
        name="balanced_accuracy_score",
        aliases=("balanced_accuracy",),
        kind="metric",
        task="binary|multiclass",
        direction="max",
        formula=(
            "mean over classes c in y_true of sum(w * (y_true == c) * (decision == c)) / sum(w * (y_true == c)); "
            "adjusted: (score - 1/K) / (1 - 1/K); " + _WHOLE_TABLE
        ),
        summary="Mean per-class recall, robust to class imbalance.",
        inputs=_CLASSES,
        params=(Param("adjusted", False, bool, "rescale so that chance scores 0 and perfect 1"),),
        keras=None,
        sklearn="sklearn.metrics.balanced_accuracy_score",
        state=BalancedAccuracyState,
        memory="constant (a confusion matrix: labels ** 2 floats)",
        shapes="any",
        validate=validate_classes,
        # Recall of class 0 is 1/2, of class 1 is 2/3.
        example=Example([0.0, 0.0, 1.0, 1.0, 1.0], [0.2, 0.7, 0.9, 0.6, 0.1], (0.5 + 2.0 / 3.0) / 2.0),
    )
)

register(
    MetricDef(
        name="matthews_corrcoef",
        aliases=("mcc",),
        kind="metric",
        task="binary|multiclass",
        direction="max",
        formula=(
            "(trace(C) * n - t . p) / sqrt((n ** 2 - p . p) * (n ** 2 - t . t)), C the weighted confusion "
            "matrix, t its row sums, p its column sums, n its total; " + _WHOLE_TABLE
        ),
        summary="Matthews correlation coefficient between labels and decisions.",
        inputs=_CLASSES,
        keras=None,
        sklearn="sklearn.metrics.matthews_corrcoef",
        state=MatthewsState,
        memory="constant (a confusion matrix: labels ** 2 floats)",
        shapes="any",
        validate=validate_classes,
        deviations="A single class on either side gives null (0/0) where scikit-learn reports 0.",
        # TP=2, TN=1, FP=1, FN=0: (2*1 - 1*0) / sqrt(3*2*2*1).
        example=Example([0.0, 0.0, 1.0, 1.0], [0.3, 0.8, 0.9, 0.7], 2.0 / math.sqrt(12.0)),
    )
)

register(
    MetricDef(
        name="cohen_kappa_score",
        aliases=("cohen_kappa", "kappa"),
        kind="metric",
        task="binary|multiclass",
        direction="max",
        formula=(
            "1 - sum(W * C) / sum(W * E), C the weighted confusion matrix, E = outer(col sums, row sums) / total, "
            "W = 1 - I (weights=None), |i - j| (linear) or (i - j) ** 2 (quadratic); " + _WHOLE_TABLE
        ),
        summary="Cohen's kappa: agreement between labels and decisions beyond chance.",
        inputs=_CLASSES,
        params=(
            Param(
                "weights",
                None,
                str,
                "disagreement weighting: none, linear or quadratic (by position in the sorted labels)",
                choices=("linear", "quadratic"),
                optional=True,
            ),
        ),
        keras=None,
        sklearn="sklearn.metrics.cohen_kappa_score",
        state=KappaState,
        memory="constant (a confusion matrix: labels ** 2 floats)",
        shapes="any",
        validate=validate_classes,
        # Observed agreement 3/4, chance agreement 1/2.
        example=Example([0.0, 0.0, 1.0, 1.0], [0.3, 0.8, 0.9, 0.7], 0.5),
    )
)
