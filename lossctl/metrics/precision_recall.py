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
from typing import Any

import numpy as np

from lossctl.accumulate import Value
from lossctl.batch import F64, Batch
from lossctl.metrics._labels import check_labels, classes_text
from lossctl.metrics.confusion import Counts, Decision
from lossctl.params import Applies, Param, several_columns
from lossctl.registry import Example, MetricDef, register


def _several_classes(params: Mapping[str, Any], true_width: int, pred_width: int) -> bool:
    return several_columns(params, true_width, pred_width) and params.get("class_id") is None


AVERAGE = Param(
    "average",
    "macro",
    str,
    "how per-class values combine on a probability matrix: macro (mean over classes), "
    "micro (pooled counts), weighted (by support)",
    choices=("macro", "micro", "weighted"),
    applies=Applies(
        _several_classes,
        "several classes: a probability matrix, one-hot or multilabel columns, without class_id",
        "on one probability column the value is the positive class's, as Keras computes it; for "
        "scikit-learn's average over both classes, give both classes' probabilities (--pred p0,p1)",
    ),
)


def averaged(label: str, num: F64, den: F64, tp: F64, fp: F64, fn: F64, average: str, why: str) -> Value:
    """Combine per-class ratios ``num / den`` as ``average`` says.

    A class absent from both y_true and the predictions (tp + fp + fn = 0) is
    left out of the macro average, as scikit-learn's default label set does;
    any other 0/0 makes the value undefined, never 0.

    Args:
        label: metric name for notes (``precision``).
        num, den: per-class numerators and denominators, shape ``(K,)``.
        tp, fp, fn: the per-class counts (for support and presence).
        average: ``macro``, ``micro`` or ``weighted``.
        why: what a zero denominator means (``no positive predictions``).

    Returns:
        The value, with ``per_class`` values and each class's ``support``
        (its weighted count in y_true, tp + fn) in ``extra`` when ``K > 1``.
    """
    defined = den > 0
    per = np.divide(num, np.where(defined, den, 1.0))
    extra: dict[str, Any] = {}
    if len(num) > 1:
        extra["per_class"] = [float(v) if d else None for v, d in zip(per, defined, strict=True)]
        extra["support"] = [float(v) for v in tp + fn]
    if len(num) == 1:
        if not defined[0]:
            return Value.undefined(f"{label} is undefined: {why} (Keras reports 0)")
        return Value.of(per[0])
    if average == "micro":
        total = float(den.sum())
        if total == 0.0:
            return Value.undefined(f"{label} is undefined: {why} in every class (Keras reports 0)", **extra)
        return Value.of(float(num.sum()) / total, **extra)
    if average == "weighted":
        support = tp + fn
        weight_sum = float(support.sum())
        if weight_sum == 0.0:
            return Value.undefined(f"{label} is undefined: no positive labels in any class", **extra)
        missing = np.flatnonzero((support > 0) & ~defined)
        if missing.size:
            return Value.undefined(
                f"{label} is undefined for {classes_text(missing)}: {why} "
                "(Keras and scikit-learn count it as 0)",
                **extra,
            )
        used = support > 0
        return Value.of(float(np.dot(support[used], per[used]) / weight_sum), **extra)
    present = (tp + fp + fn) > 0
    if not present.any():
        return Value.undefined(f"{label} is undefined: no positive labels or predictions", **extra)
    missing = np.flatnonzero(present & ~defined)
    if missing.size:
        return Value.undefined(
            f"{label} is undefined for {classes_text(missing)}: {why} "
            "(Keras and scikit-learn count it as 0)",
            **extra,
        )
    value = Value.of(float(per[present].mean()), **extra)
    absent = np.flatnonzero(~present)
    if absent.size and value.value is not None:
        note = (
            f"{classes_text(absent)} absent from y_true and predictions: left out of the "
            "macro average (as scikit-learn does; Keras counts it as 0)"
        )
        return Value(value.value, note, value.extra)
    return value


class Total(Counts):
    """One of the four counts, summed over every column (Keras flattens a matrix)."""

    def __init__(self, decision: Decision, position: int) -> None:
        super().__init__(decision, "confusion counts")
        self.position = position

    def score(self, tp: F64, fp: F64, fn: F64, tn: F64) -> Value:
        return Value.of(float((tp, fp, fn, tn)[self.position].sum()))


class Precision(Counts):
    """``tp / (tp + fp)`` per class, then averaged."""

    def __init__(self, decision: Decision, owner: str, average: str) -> None:
        super().__init__(decision, owner)
        self.average = average

    def score(self, tp: F64, fp: F64, fn: F64, tn: F64) -> Value:
        why = "no positive predictions (tp + fp = 0)"
        return averaged("precision", tp, tp + fp, tp, fp, fn, self.average, why)


class Recall(Precision):
    """``tp / (tp + fn)`` per class, then averaged."""

    def score(self, tp: F64, fp: F64, fn: F64, tn: F64) -> Value:
        return averaged("recall", tp, tp + fn, tp, fp, fn, self.average, "no positive labels (tp + fn = 0)")


class FScore(Precision):
    """``(1 + b2) tp / ((1 + b2) tp + b2 fn + fp)`` per class, then averaged."""

    def __init__(self, decision: Decision, owner: str, average: str, beta: float) -> None:
        super().__init__(decision, owner, average)
        self.b2 = beta * beta

    def score(self, tp: F64, fp: F64, fn: F64, tn: F64) -> Value:
        num = (1.0 + self.b2) * tp
        why = "no positive labels or predictions (tp + fp + fn = 0)"
        return averaged(self.owner, num, num + self.b2 * fn + fp, tp, fp, fn, self.average, why)


def _check_once(batch: Batch, owner: str) -> None:
    # Every entry here checks the same: once per chunk, however many ask (a
    # failure names the first entry checked, which is where it failed before).
    batch.once("confusion_labels", lambda: check_labels(batch, owner))


def _validate_classification(owner: str) -> Callable[..., None]:
    def validate(batch: Batch, **params: Any) -> None:
        _check_once(batch, owner)

    return validate


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


def _pr_state(owner: str, cls: type[Precision]) -> Callable[[Mapping[str, Any]], Precision]:
    def make(params: Mapping[str, Any]) -> Precision:
        decision = Decision.of(params["thresholds"], params["top_k"], params["class_id"])
        return cls(decision, owner, params["average"])

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
)

_CLASS_INPUTS = (
    "binary: y_true 0/1 (N,), y_pred probabilities (N,); multiclass: integer labels (N,) "
    "or one-hot (N, C) against probabilities (N, C); multilabel: 0/1 (N, C) against (N, C)"
)

_PR_DEVIATIONS = (
    "On a probability matrix lossctl decides by argmax and averages per class "
    "(average=macro by default; per_class lists each class); Keras thresholds every "
    "cell at 0.5 and pools the cells: thresholds=0.5:average=micro reproduces it, as does "
    "average=micro with top_k. An undefined value (0/0) is null where Keras's divide_no_nan "
    "reports 0; in a macro or weighted average a class with 0/0 makes the value null "
    "(classes absent from y_true and the predictions are left out of the macro average). "
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


def _f_state(owner: str, fixed_beta: float | None) -> Callable[[Mapping[str, Any]], FScore]:
    def make(params: Mapping[str, Any]) -> FScore:
        beta = float(params["beta"]) if fixed_beta is None else fixed_beta
        # threshold=None: 0.5 on one column, the argmax of a matrix (never top_k).
        return FScore(Decision.of(params["threshold"]), owner, params["average"], beta)

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
    "tp + fp + fn = 0 is null. threshold=None on one probability column means 0.5 "
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
        params=(AVERAGE, _F_THRESHOLD),
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
