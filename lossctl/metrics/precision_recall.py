"""Precision, recall, the F-scores and the TP/FP/TN/FN counts, as Keras 3 computes them (SPEC sections 3-4).

All of them finish from one set of per-column confusion counts
(:class:`lossctl.metrics.confusion.Counts`); specs that decide alike share
it. Class decisions follow the SPEC: ``p > threshold`` (0.5) for one column,
argmax for a probability matrix (Keras ``F1Score``'s rule: every maximum of
the row, none for an all-zero row). An undefined value (0/0) is ``None``
with a note, never the 0 that Keras's ``divide_no_nan`` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import F64, Batch
from lossctl.errors import UsageProblem, ValueProblem
from lossctl.metrics._averaging import (
    AVERAGE,
    SKLEARN_PARAMS,
    Choice,
    Samples,
    averaged,
    select,
)
from lossctl.metrics._labels import check_labels, layout
from lossctl.metrics.confusion import Counts, Decision, add_label_matrix, label_matrix
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, register
from lossctl.state import State


class Total(Counts):
    """One of the four counts, summed over every column (Keras flattens a matrix)."""

    def __init__(self, decision: Decision, position: int) -> None:
        super().__init__(decision, "confusion counts")
        self.position = position

    def score(self, tp: F64, fp: F64, fn: F64, tn: F64) -> Value:
        return Value.of(float((tp, fp, fn, tn)[self.position].sum()))


class Precision(Counts):
    """``tp / (tp + fp)`` per class, then averaged.

    A matrix input fills the per-column counts. One label column against one
    column of scores or predicted labels fills a confusion matrix over the
    labels seen (``matrix``, ``seen``: keyed), as scikit-learn's label set:
    scores decide ``p > threshold``, whole numbers are predicted labels. The
    value is the binary one (class ``pos_label``) when the labels are 0 and
    1 only, else the average over the labels, whatever the chunk size.
    """

    fields = {**Counts.fields, "matrix": "keyed", "seen": "keyed"}

    def __init__(self, decision: Decision, owner: str, choice: Choice) -> None:
        super().__init__(decision, owner)
        self.choice = choice
        self.average = choice.average
        # Not the counts' key: one label column fills a keyed matrix instead of tp/fp/fn/tn.
        self.key = state_key("confusion.counts_or_labels", "decision", asdict(decision))

    def update(self, state: State, batch: Batch) -> None:
        if layout(batch, self.owner) != "column":
            super().update(state, batch)
            return
        if self.decision.top_k is not None or self.decision.class_id is not None:
            raise UsageProblem(f"{self.owner}: top_k and class_id need a probability matrix; y_pred has one column")
        threshold = 0.5 if self.decision.threshold is None else self.decision.threshold
        decided = decided_labels(batch.y_pred, threshold)
        add_label_matrix(state, batch.y_true.astype(np.int64), decided, batch.weight, batch.slot)
        self.count(state, batch)

    ci_cost = (
        "cheap on a matrix of classes (the counts are weighted sums, one matrix product for all replicates); "
        "on one column of labels or scores, B updates per chunk (one per replicate)"
    )

    def linear(self, batch: Batch) -> tuple[list[Any], Any] | None:
        # One label column fills a keyed matrix: reweighted updates.
        return None if layout(batch, self.owner) == "column" else super().linear(batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if "matrix" not in state.data:
            return super().finish(state, slot)
        if state.rows(slot) == 0:
            return Value.undefined("no rows")
        labels, m = label_matrix(state, slot)
        if set(labels.tolist()) <= {0, 1}:
            full = np.zeros((2, 2))
            full[np.ix_(labels, labels)] = m
            counts = tuple(np.array([v]) for v in (full[1, 1], full[0, 1], full[1, 0], full[0, 0]))
            return self.score(*counts)
        tp = np.diag(m)
        fp, fn = m.sum(axis=0) - tp, m.sum(axis=1) - tp
        if self.choice.labels is not None:
            at = {int(v): i for i, v in enumerate(labels)}
            pick = [at.get(v) for v in self.choice.labels]
            tp, fp, fn = (np.array([a[i] if i is not None else 0.0 for i in pick]) for a in (tp, fp, fn))
            labels = np.asarray(self.choice.labels)
        value = self.ratio(tp, fp, fn)
        return Value(value.value, value.note, {**value.extra, "classes": [int(v) for v in labels]})

    def score(self, tp: F64, fp: F64, fn: F64, tn: F64) -> Value:
        tp, fp, fn, tn = select((tp, fp, fn, tn), self.choice.labels, self.choice.pos_label)
        return self.ratio(tp, fp, fn)

    def ratio(self, tp: F64, fp: F64, fn: F64) -> Value:
        why = "no positive predictions (tp + fp = 0)"
        return averaged("precision", tp, tp + fp, tp, fp, fn, self.average, why, self.choice.zero_division, self.choice.labels is not None)


def decided_labels(p: F64, threshold: float) -> NDArray[np.int64]:
    """Whole numbers are predicted labels, other scores decide ``p > threshold`` (0 or 1).

    Within [0, 1] the only whole numbers are 0 and 1, which the threshold
    decides alike, so only the values outside are looked at again.
    """
    if threshold >= 1.0:
        return np.where(p == np.floor(p), p, p > threshold).astype(np.int64)
    decided = (p > threshold).astype(np.int64)
    outside = (p < 0.0) | (p > 1.0)
    if outside.any():
        sub = p[outside]
        decided[outside] = np.where(sub == np.floor(sub), sub, sub > threshold).astype(np.int64)
    return decided


class Recall(Precision):
    """``tp / (tp + fn)`` per class, then averaged."""

    def ratio(self, tp: F64, fp: F64, fn: F64) -> Value:
        why = "no positive labels (tp + fn = 0)"
        return averaged("recall", tp, tp + fn, tp, fp, fn, self.average, why, self.choice.zero_division, self.choice.labels is not None)


class FScore(Precision):
    """``(1 + b2) tp / ((1 + b2) tp + b2 fn + fp)`` per class, then averaged."""

    def __init__(self, decision: Decision, owner: str, choice: Choice, beta: float) -> None:
        super().__init__(decision, owner, choice)
        self.b2 = beta * beta

    def ratio(self, tp: F64, fp: F64, fn: F64) -> Value:
        num = (1.0 + self.b2) * tp
        why = "no positive labels or predictions (tp + fp + fn = 0)"
        return averaged(self.owner, num, num + self.b2 * fn + fp, tp, fp, fn, self.average, why, self.choice.zero_division, self.choice.labels is not None)


def _check_once(batch: Batch, owner: str) -> None:
    # Every entry here checks the same: once per chunk, however many ask (a
    # failure names the first entry checked, which is where it failed before).
    batch.once("confusion_labels", lambda: check_labels(batch, owner))


def _validate_classification(owner: str) -> Callable[..., None]:
    def validate(batch: Batch, **params: Any) -> None:
        if batch.y_true.ndim == 1 and batch.y_pred.ndim == 1:
            batch.once("column_labels", lambda: check_column_labels(batch, owner))
            return
        _check_once(batch, owner)

    return validate


def check_column_labels(batch: Batch, owner: str) -> None:
    """One label column: integer labels; a row with a score (not a whole number) needs a 0/1 label.

    Checked row by row, so that whether a file is an error does not depend on the chunk size.
    """
    t, p = batch.y_true, batch.y_pred
    with np.errstate(invalid="ignore"):
        not_int = np.isfinite(t) & (t != np.floor(t))
        scored = np.isfinite(p) & (p != np.floor(p)) & (t != 0) & (t != 1)
    bad = not_int | scored
    if bad.any():
        i = int(np.argmax(bad))
        what = "is not an integer class label" if not_int[i] else (
            f"is not 0 or 1, but y_pred holds a score ({p[i]:g}) there: give predicted labels, or "
            "binary labels with scores")
        raise ValueProblem("y_true", i, f"label {t[i]:g} {what} ({owner})")


# --------------------------------------------------------------------------
# TP / FP / TN / FN counts


THRESHOLDS = Param(
    "thresholds",
    0.5,
    float,
    "a prediction counts as positive when p > thresholds",
    low=0.0,
    high=1.0,
)


def _validate_counts(batch: Batch, **params: Any) -> None:
    _check_once(batch, "confusion counts")


_COUNT_INPUTS = (
    "y_true 0/1 labels, y_pred scores, both (N,) or both (N, C) (every cell counts, as Keras "
    "flattens); or integer labels (N,) against (N, C) scores (one-hot first)"
)

_COUNTS = {
    "true_positives": ("TruePositives", 0, "max", "sum(w * (y_true == 1) * (y_pred > thresholds))"),
    "false_positives": ("FalsePositives", 1, "min", "sum(w * (y_true == 0) * (y_pred > thresholds))"),
    "false_negatives": ("FalseNegatives", 2, "min", "sum(w * (y_true == 1) * (y_pred <= thresholds))"),
    "true_negatives": ("TrueNegatives", 3, "max", "sum(w * (y_true == 0) * (y_pred <= thresholds))"),
}

_COUNT_EXAMPLES = {
    "true_positives": Example([0, 1, 1, 1], [1, 0, 1, 1], 2.0),
    "false_positives": Example([0, 1, 0, 0], [0, 0, 1, 1], 2.0),
    "false_negatives": Example([0, 1, 1, 1], [0, 1, 0, 0], 2.0),
    "true_negatives": Example([0, 1, 0, 0], [1, 1, 0, 0], 2.0),
}


def _total_state(position: int) -> Callable[[Mapping[str, Any]], Total]:
    def make(params: Mapping[str, Any]) -> Total:
        return Total(Decision(float(params["thresholds"])), position)

    return make


for _name, (_cls, _pos, _direction, _formula) in _COUNTS.items():
    register(
        MetricDef(
            name=_name,
            kind="metric",
            task="binary|multilabel",
            direction=_direction,  # type: ignore[arg-type]  # "min"/"max" from the table above
            formula=_formula,
            summary=f"Weighted count of {_name.replace('_', ' ')} at a threshold.",
            inputs=_COUNT_INPUTS,
            params=(THRESHOLDS,),
            keras=f"keras.metrics.{_cls}",
            sklearn="sklearn.metrics.confusion_matrix (one cell)",
            state=_total_state(_pos),
            shapes="any",
        element_weights=True,
            validate=_validate_counts,
            weighted_sum=True,
            deviations="thresholds is one number (Keras also accepts a list and returns a vector).",
            example=_COUNT_EXAMPLES[_name],
        )
    )


# --------------------------------------------------------------------------
# Precision and recall


def _pr_state(owner: str, cls: type[Precision]) -> Callable[[Mapping[str, Any]], Accumulator]:
    def make(params: Mapping[str, Any]) -> Accumulator:
        decision = Decision.of(params["thresholds"], params["top_k"], params["class_id"])
        inner = cls(decision, owner, Choice.of(params))
        if params["average"] == "samples":
            return Samples(inner, decision, owner, owner, Choice.of(params))
        return inner

    return make


_PR_PARAMS = (
    Param(
        "thresholds",
        None,
        float,
        "positive when p > thresholds; none: 0.5 for one column, argmax for a probability "
        "matrix, no threshold with top_k (as Keras)",
        low=0.0,
        high=1.0,
        optional=True,
    ),
    Param("top_k", None, int, "only the k highest scores of a row can be positive", low=1, optional=True),
    Param("class_id", None, int, "binary metric of this column of a probability matrix", low=0, optional=True),
    AVERAGE,
    *SKLEARN_PARAMS,
)

_CLASS_INPUTS = (
    "binary: y_true 0/1 (N,), y_pred probabilities (N,); multiclass: integer labels (N,) "
    "or one-hot (N, C) against probabilities (N, C), or integer labels (N,) against predicted "
    "labels (N,); multilabel: 0/1 (N, C) against (N, C)"
)

_PR_DEVIATIONS = (
    "On a probability matrix lossctl decides by argmax and averages per class "
    "(average=macro by default; per_class lists each class); Keras thresholds every "
    "cell at 0.5 and pools the cells: thresholds=0.5:average=micro reproduces it, as does "
    "average=micro with top_k. An undefined value (0/0) is null where Keras's divide_no_nan "
    "reports 0; in a macro or weighted average a class with 0/0 makes the value null "
    "(classes absent from y_true and the predictions are left out of the macro average); "
    "zero_division=0 or 1 gives scikit-learn's values (0: Keras's). One label column against "
    "predicted labels (whole numbers) with classes beyond 0 and 1 is scikit-learn's multiclass "
    "case: the average over the labels seen (classes lists them). "
    "thresholds is one number (Keras also accepts a list)."
)

register(
    MetricDef(
        name="precision",
        kind="metric",
        task="binary|multiclass|multilabel",
        direction="max",
        formula="tp / (tp + fp), tp = sum(w * y_true * decided), fp = sum(w * (1 - y_true) * decided); per class, then averaged",
        summary="Fraction of positive decisions that are right.",
        inputs=_CLASS_INPUTS,
        params=_PR_PARAMS,
        keras="keras.metrics.Precision",
        sklearn="sklearn.metrics.precision_score",
        state=_pr_state("precision", Precision),
        shapes="any",
        element_weights=True,
        validate=_validate_classification("precision"),
        deviations=_PR_DEVIATIONS,
        example=Example([0, 1, 1, 1], [1, 0, 1, 1], 2.0 / 3.0),
    )
)

register(
    MetricDef(
        name="recall",
        kind="metric",
        task="binary|multiclass|multilabel",
        direction="max",
        formula="tp / (tp + fn), tp = sum(w * y_true * decided), fn = sum(w * y_true * (1 - decided)); per class, then averaged",
        summary="Fraction of positive labels that are found.",
        inputs=_CLASS_INPUTS,
        params=_PR_PARAMS,
        keras="keras.metrics.Recall",
        sklearn="sklearn.metrics.recall_score",
        state=_pr_state("recall", Recall),
        shapes="any",
        element_weights=True,
        validate=_validate_classification("recall"),
        deviations=_PR_DEVIATIONS,
        example=Example([0, 1, 1, 1], [1, 0, 1, 1], 2.0 / 3.0),
    )
)


# --------------------------------------------------------------------------
# F-scores


def _f_state(owner: str, fixed_beta: float | None) -> Callable[[Mapping[str, Any]], Accumulator]:
    def make(params: Mapping[str, Any]) -> Accumulator:
        beta = float(params["beta"]) if fixed_beta is None else fixed_beta
        # threshold=None: 0.5 on one column, the argmax of a matrix (never top_k).
        inner = FScore(Decision.of(params["threshold"]), owner, Choice.of(params), beta)
        if params["average"] == "samples":
            return Samples(inner, inner.decision, owner, "fscore", Choice.of(params), beta)
        return inner

    return make


_F_THRESHOLD = Param(
    "threshold",
    None,
    float,
    "positive when p > threshold; none: 0.5 for one column, the argmax of a probability matrix",
    low=0.0,
    high=1.0,
    low_open=True,
    optional=True,
)

_F_DEVIATIONS = (
    "Computed from the counts, (1 + b2) tp / ((1 + b2) tp + b2 fn + fp), without Keras's "
    "1e-7 epsilons (about 1e-7 relative). average defaults to macro (Keras: None, a vector); "
    "a class absent from y_true and the predictions is left out of the macro average "
    "(scikit-learn's label set) where Keras counts it as 0, and an F-score with "
    "tp + fp + fn = 0 is null (zero_division=0 or 1 gives scikit-learn's value). threshold=None on one probability column means 0.5 "
    "(Keras's argmax of one column would predict every row positive)."
)

_F_FORMULA = (
    "(1 + beta**2) * tp / ((1 + beta**2) * tp + beta**2 * fn + fp) per class "
    "(= (1 + beta**2) * precision * recall / (beta**2 * precision + recall)), then averaged"
)

register(
    MetricDef(
        name="f1_score",
        aliases=("f1",),
        kind="metric",
        task="binary|multiclass|multilabel",
        direction="max",
        formula="2 * tp / (2 * tp + fn + fp) per class (= 2 * precision * recall / (precision + recall)), then averaged",
        summary="Harmonic mean of precision and recall.",
        inputs=_CLASS_INPUTS,
        params=(AVERAGE, _F_THRESHOLD, *SKLEARN_PARAMS),
        keras="keras.metrics.F1Score",
        sklearn="sklearn.metrics.f1_score",
        state=_f_state("f1_score", 1.0),
        shapes="any",
        element_weights=True,
        validate=_validate_classification("f1_score"),
        deviations=_F_DEVIATIONS,
        # tp = 2, fp = 1, fn = 1: F1 = 4 / (4 + 1 + 1).
        example=Example([0, 1, 1, 1], [1, 0, 1, 1], 2.0 / 3.0),
    )
)

register(
    MetricDef(
        name="fbeta_score",
        aliases=("f_beta_score",),
        kind="metric",
        task="binary|multiclass|multilabel",
        direction="max",
        formula=_F_FORMULA,
        summary="Weighted harmonic mean of precision and recall (recall weighs beta times more).",
        inputs=_CLASS_INPUTS,
        params=(
            AVERAGE,
            Param("beta", 1.0, float, "weight of recall relative to precision", low=0.0, low_open=True),
            _F_THRESHOLD,
            *SKLEARN_PARAMS,
        ),
        keras="keras.metrics.FBetaScore",
        sklearn="sklearn.metrics.fbeta_score",
        state=_f_state("fbeta_score", None),
        shapes="any",
        element_weights=True,
        validate=_validate_classification("fbeta_score"),
        deviations=_F_DEVIATIONS,
        # tp = 2, fp = 0, fn = 1, beta = 2: F = 5 * 2 / (5 * 2 + 4 * 1 + 0) = 5 / 7.
        example=Example([1, 1, 1, 0], [0.9, 0.8, 0.2, 0.1], 5.0 / 7.0, {"beta": 2.0}),
    )
)
