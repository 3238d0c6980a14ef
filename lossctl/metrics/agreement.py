"""Agreement between labels and decisions, with scikit-learn's numerics (SPEC section 3).

Balanced accuracy, Matthews correlation and Cohen's kappa finish from one
weighted confusion matrix over the labels seen so far
(:class:`lossctl.metrics.confusion.KeyedMatrix`): requested together, they
share it. Given probabilities, they decide as Keras does: ``p > 0.5`` for one
probability column, argmax for a probability matrix; integer values are
taken as class labels, so label-vs-label input works too.
"""

from __future__ import annotations

import math

import numpy as np

from lossctl.accumulate import Value
from lossctl.batch import F64
from lossctl.metrics._labels import I64
from lossctl.metrics._sklearn_inputs import validate_classes
from lossctl.metrics.confusion import KeyedMatrix
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, register

_CLASSES = (
    "y_true integer labels (N,) or one-hot (N, C); y_pred a probability column (N,) (decided p > 0.5), "
    "a probability matrix (N, C) (decided by argmax) or integer labels (N,)"
)


# --- the metrics ------------------------------------------------------------------------


class BalancedAccuracy(KeyedMatrix):
    """Mean recall over the classes present in ``y_true`` (scikit-learn's ``balanced_accuracy_score``)."""

    def __init__(self, adjusted: bool) -> None:
        self.adjusted = adjusted

    def score(self, labels: I64, matrix: F64) -> Value:
        support = matrix.sum(axis=1)
        present = support > 0
        # Classes only ever predicted have no recall; scikit-learn drops them too.
        recall = np.diag(matrix)[present] / support[present]
        score = float(np.mean(recall))
        if self.adjusted:
            n = int(present.sum())
            if n < 2:
                return Value.undefined("adjusted balanced accuracy needs two classes in y_true")
            chance = 1.0 / n
            score = (score - chance) / (1.0 - chance)
        return Value.of(score)


class Matthews(KeyedMatrix):
    """Matthews correlation, multiclass form (scikit-learn's ``matthews_corrcoef``)."""

    def score(self, labels: I64, matrix: F64) -> Value:
        c = matrix
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


class Kappa(KeyedMatrix):
    """Cohen's kappa between ``y_true`` and the decisions (scikit-learn's ``cohen_kappa_score``).

    With ``weights``, disagreement costs ``|i - j|`` or ``(i - j) ** 2`` where
    ``i, j`` are positions in the sorted set of labels seen, as in scikit-learn.
    """

    def __init__(self, weights: str | None) -> None:
        self.weights = weights

    def score(self, labels: I64, matrix: F64) -> Value:
        c = matrix
        k = len(labels)
        sum0 = c.sum(axis=0)
        sum1 = c.sum(axis=1)
        expected = np.outer(sum0, sum1) / sum0.sum()
        if self.weights is None:
            cost = np.ones((k, k)) - np.eye(k)
        else:
            position = np.arange(k, dtype=np.float64)
            gap = position[None, :] - position[:, None]
            cost = np.abs(gap) if self.weights == "linear" else gap * gap
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
        state=lambda params: BalancedAccuracy(bool(params["adjusted"])),
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
        state=lambda params: Matthews(),
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
        state=lambda params: Kappa(params["weights"]),
        memory="constant (a confusion matrix: labels ** 2 floats)",
        shapes="any",
        validate=validate_classes,
        # Observed agreement 3/4, chance agreement 1/2.
        example=Example([0.0, 0.0, 1.0, 1.0], [0.3, 0.8, 0.9, 0.7], 0.5),
    )
)
