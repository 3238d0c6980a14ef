"""Keras's bucketed confusion counts: weighted histograms of scores over fixed thresholds.

Keras's ``AUC`` and its ``SensitivitySpecificityBase`` metrics compare every
score with ``num_thresholds`` evenly spaced thresholds. A score counts as
positive at every threshold below it, so the per-threshold counts are reverse
cumulative sums of a histogram of the index of the highest threshold each
score exceeds. :class:`Buckets` keeps those histograms (constant memory);
:class:`BucketedAUC` finishes them into Keras's Riemann sums.
"""

from __future__ import annotations

import numpy as np

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import F64, Batch
from lossctl.errors import DataError
from lossctl.metrics._curve_math import (
    binary_columns,
    divide_no_nan,
    flat_label_weights,
    label_weighted_mean,
)
from lossctl.metrics._labels import colsum
from lossctl.metrics._probabilities import sigmoid
from lossctl.state import State


class Buckets(Accumulator):
    """Weighted histograms of scores by class over Keras's thresholds.

    Arrays (all ``sum``): ``pos`` and ``neg`` ``(num_thresholds, K)``, the
    weight of positive / negative cells by the highest threshold their score
    exceeds; ``pos_total`` and ``neg_total`` ``(K,)``, the weight of each
    class (cells exceeding no threshold included). Memory: 2 *
    num_thresholds floats per label column, whatever the number of rows.

    Everything that changes the histograms is in the key (the thresholds and
    their end points, from_logits, multi_label, class_id); what a subclass
    computes from the counts (:meth:`at_thresholds`) is not, so the bucketed
    ROC and PR AUC, or the four operating-point metrics, share one state.
    """

    fields = {"pos": "sum", "neg": "sum", "pos_total": "sum", "neg_total": "sum"}

    def __init__(
        self,
        owner: str,
        num_thresholds: int,
        *,
        epsilon_ends: bool,
        from_logits: bool = False,
        multi_label: bool = False,
        class_id: int | None = None,
        thresholds: tuple[float, ...] | None = None,
        label_weights: tuple[float, ...] | None = None,
    ) -> None:
        self.owner = owner
        # Keras's thresholds=[...]: those, between -eps and 1 + eps, instead of evenly spaced ones.
        self.thresholds = None if thresholds is None else tuple(sorted(thresholds))
        self.n = num_thresholds if thresholds is None else len(thresholds) + 2
        # Keras's label_weights on flattened cells (multi_label weighs the columns' AUCs instead).
        self.label_weights = None if multi_label else label_weights
        self.epsilon_ends = epsilon_ends
        self.from_logits = from_logits
        self.multi_label = multi_label
        self.class_id = class_id
        self.key = state_key(
            "buckets",
            "keras_thresholds",
            {
                "num_thresholds": num_thresholds,
                "epsilon_ends": epsilon_ends,
                "from_logits": from_logits,
                "multi_label": multi_label,
                "class_id": class_id,
                **({} if thresholds is None else {"thresholds": self.thresholds}),
                **({} if self.label_weights is None else {"label_weights": tuple(self.label_weights)}),
            },
        )

    def _buckets(self, scores: F64) -> np.ndarray:
        """Index of the highest threshold each score exceeds (-1: none)."""
        if self.thresholds is not None:
            eps = 1e-7
            edges = np.array([0.0 - eps, *self.thresholds, 1.0 + eps])
            # The highest threshold each score exceeds: Keras compares y_pred > threshold.
            b = np.searchsorted(edges, scores, side="left").astype(np.float64) - 1
            return np.where(np.isnan(scores), -1, b).astype(np.intp)
        if self.n == 1:
            # Keras's single threshold is 0.5, compared without clipping.
            return np.where(scores > 0.5, 0, -1)
        p = np.clip(scores, 0.0, 1.0)
        # Keras: ceil(p * (n - 1)) - 1, i.e. p > t_i for i up to that index.
        # With the -eps end threshold every score exceeds threshold 0.
        b = np.ceil(p * (self.n - 1)) - 1
        if self.epsilon_ends:
            b = np.maximum(b, 0)
        # A NaN score (under --nan propagate) exceeds no threshold.
        return np.where(np.isnan(b), -1, b).astype(np.intp)

    def update(self, state: State, batch: Batch) -> None:
        truth, scores, w = binary_columns(
            batch, self.owner, multi_label=self.multi_label, class_id=self.class_id
        )
        if self.label_weights is not None:
            w = flat_label_weights(batch, w, self.label_weights, self.owner)
        if self.from_logits:
            scores = sigmoid(scores)
        k = truth.shape[1]
        seen = state.get("pos")
        if seen is not None and seen.shape[2] != k:
            raise DataError(f"{self.owner}: cannot combine {seen.shape[2]} label columns with {k}")
        b = self._buckets(scores)
        weights = np.ones(len(truth)) if w is None else w
        # A weight per row, or per cell (Keras's per-element sample_weight with multi_label).
        wmat = weights if weights.ndim == 2 else np.broadcast_to(weights[:, None], truth.shape)
        hit = b >= 0
        # One bincount for all columns: column j's buckets are offset by j * n.
        idx = b + np.arange(k) * self.n
        pos = np.bincount(idx[truth & hit], weights=wmat[truth & hit], minlength=k * self.n)
        neg = np.bincount(idx[~truth & hit], weights=wmat[~truth & hit], minlength=k * self.n)
        s = batch.slot
        state.declare("pos", "sum", (self.n, k))[s] += pos.reshape(k, self.n).T
        state.declare("neg", "sum", (self.n, k))[s] += neg.reshape(k, self.n).T
        state.declare("pos_total", "sum", (k,))[s] += colsum(truth, weights)
        state.declare("neg_total", "sum", (k,))[s] += colsum(~truth, weights)
        self.count(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0 or state.get("pos") is None:
            return Value.undefined("no rows")
        pos, neg = state.data["pos"][slot], state.data["neg"][slot]
        # Reverse cumulative sums: a score in bucket b counts at thresholds 0..b.
        tp = np.cumsum(pos[::-1], axis=0)[::-1]
        fp = np.cumsum(neg[::-1], axis=0)[::-1]
        fn = state.data["pos_total"][slot] - tp
        tn = state.data["neg_total"][slot] - fp
        return self.at_thresholds(tp, fp, tn, fn)

    def at_thresholds(self, tp: F64, fp: F64, tn: F64, fn: F64) -> Value:
        """The value from the ``(num_thresholds, K)`` confusion counts at every threshold."""
        raise NotImplementedError


class BucketedAUC(Buckets):
    """Keras's ``AUC``: a Riemann sum over the bucketed ROC or PR curve, averaged over label columns."""

    def __init__(
        self,
        num_thresholds: int,
        curve: str,
        summation_method: str,
        *,
        from_logits: bool,
        multi_label: bool,
        thresholds: tuple[float, ...] | None = None,
        label_weights: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__(
            "auc", num_thresholds, epsilon_ends=True, from_logits=from_logits, multi_label=multi_label,
            thresholds=thresholds, label_weights=label_weights,
        )
        self.curve = curve
        self.summation_method = summation_method
        self.column_weights = label_weights if multi_label else None

    def at_thresholds(self, tp: F64, fp: F64, tn: F64, fn: F64) -> Value:
        positives, negatives = tp[0] + fn[0], fp[0] + tn[0]
        for j in range(tp.shape[1]):
            where = f" for label column {j}" if tp.shape[1] > 1 else ""
            if positives[j] == 0:
                return Value.undefined(f"AUC is undefined{where}: no positive labels (Keras reports 0)")
            if self.curve == "ROC" and negatives[j] == 0:
                return Value.undefined(f"AUC is undefined{where}: no negative labels (Keras reports 0)")
        per_column = keras_auc(tp, fp, tn, fn, self.curve, self.summation_method)
        if self.column_weights is not None:
            return Value.of(label_weighted_mean(list(per_column), self.column_weights, self.owner))
        return Value.of(float(np.mean(per_column)))


def keras_auc(tp: F64, fp: F64, tn: F64, fn: F64, curve: str, summation_method: str) -> F64:
    """Keras ``AUC.result`` per label column, from ``(num_thresholds, K)`` counts.

    Formula: ROC: sum over consecutive thresholds of ``(fpr[i] - fpr[i+1]) *
    height(tpr)``; PR with interpolation: Keras's ``interpolate_pr_auc``
    (Davis & Goadrich); PR otherwise: ``(recall[i] - recall[i+1]) *
    height(precision)``, height being the mean (interpolation), minimum
    (minoring) or maximum (majoring) of the two ends.
    """
    if curve == "PR" and summation_method == "interpolation":
        return interpolate_pr_auc(tp, fp, fn)
    recall = divide_no_nan(tp, tp + fn)
    if curve == "ROC":
        x, y = divide_no_nan(fp, fp + tn), recall
    else:
        x, y = recall, divide_no_nan(tp, tp + fp)
    if summation_method == "interpolation":
        heights = (y[:-1] + y[1:]) / 2.0
    elif summation_method == "minoring":
        heights = np.minimum(y[:-1], y[1:])
    else:
        heights = np.maximum(y[:-1], y[1:])
    return np.sum((x[:-1] - x[1:]) * heights, axis=0)


def interpolate_pr_auc(tp: F64, fp: F64, fn: F64) -> F64:
    """Keras's ``AUC.interpolate_pr_auc``, term for term.

    Formula: per interval, ``slope * (dtp + intercept * log(p_a / p_b)) / (tp_b + fn_b)``
    with ``p = tp + fp``, ``slope = dtp / dp``, ``intercept = tp_b - slope * p_b``.
    """
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = divide_no_nan(dtp, np.maximum(dp, 0.0))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = np.where(both, divide_no_nan(p[:-1], np.maximum(p[1:], 0.0)), 1.0)
    with np.errstate(divide="ignore"):
        log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
    terms = divide_no_nan(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0.0))
    return np.sum(terms, axis=0)
