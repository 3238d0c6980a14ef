"""How per-class values combine, with scikit-learn's parameters (SPEC section 3).

``average`` (macro, micro, weighted, samples), ``zero_division``, ``labels``
and ``pos_label`` for precision, recall and the F-scores: the per-class
ratios of :mod:`lossctl.metrics.precision_recall` are combined here, and
:class:`Samples` is the per-row average of multilabel input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import F64, Batch
from lossctl.errors import DataError
from lossctl.metrics._labels import classes_text
from lossctl.params import Applies, ClassIdsParam, Param, class_ids, several_columns
from lossctl.state import State


def _several_classes(params: Mapping[str, Any], true_width: int, pred_width: int) -> bool:
    return several_columns(params, true_width, pred_width) and params.get("class_id") is None


def _one_column(params: Mapping[str, Any], true_width: int, pred_width: int) -> bool:
    return not several_columns(params, true_width, pred_width)


ZERO_DIVISION = Param(
    "zero_division",
    None,
    float,
    "the value of a 0/0 (no predicted or no true positives): none gives null with a note; "
    "0 or 1 reproduce scikit-learn's zero_division (0 is also Keras's divide_no_nan)",
    low=0.0,
    high=1.0,
    optional=True,
)
LABELS = ClassIdsParam(
    "labels",
    None,
    tuple,
    "the classes (columns) averaged, joined by '+' (e.g. 0+2), as scikit-learn's labels; none: all",
    optional=True,
    applies=Applies(
        _several_classes,
        "several classes: a probability matrix, one-hot or multilabel columns, without class_id",
        "on one probability column there is one class; pos_label chooses it",
    ),
)
POS_LABEL = Param(
    "pos_label",
    1,
    int,
    "on one column, the class reported: 1 (the positive class) or 0, as scikit-learn's pos_label",
    low=0,
    high=1,
    applies=Applies(
        _one_column,
        "one column of binary labels and scores",
        "on several columns every class is reported (per_class); labels chooses among them",
    ),
)
SKLEARN_PARAMS = (ZERO_DIVISION, LABELS, POS_LABEL)

AVERAGE = Param(
    "average",
    "macro",
    str,
    "how per-class values combine on a probability matrix: macro (mean over classes), "
    "micro (pooled counts), weighted (by support), samples (per row of multilabel input, "
    "then the weighted mean of the rows, as scikit-learn's average='samples')",
    choices=("macro", "micro", "weighted", "samples"),
    applies=Applies(
        _several_classes,
        "several classes: a probability matrix, one-hot or multilabel columns, without class_id",
        "on one probability column the value is the positive class's, as Keras computes it; for "
        "scikit-learn's average over both classes, give both classes' probabilities (--pred p0,p1)",
    ),
)


def averaged(
    label: str,
    num: F64,
    den: F64,
    tp: F64,
    fp: F64,
    fn: F64,
    average: str,
    why: str,
    zero_division: float | None = None,
    every_class: bool = False,
) -> Value:
    """Combine per-class ratios ``num / den`` as ``average`` says.

    A class absent from both y_true and the predictions (tp + fp + fn = 0) is
    left out of the macro average, as scikit-learn's default label set does;
    any other 0/0 makes the value undefined, never 0, unless
    ``zero_division`` gives the value of a 0/0 (scikit-learn's parameter;
    0 is Keras's ``divide_no_nan``). ``every_class``: the classes were named
    (scikit-learn's ``labels``): absent ones count in the macro average too.

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
    if zero_division is not None:
        return _with_zero_division(num, den, tp, fp, fn, average, float(zero_division), every_class)
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
    if every_class:
        present[:] = True
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


def _with_zero_division(
    num: F64, den: F64, tp: F64, fp: F64, fn: F64, average: str, z: float, every_class: bool
) -> Value:
    """:func:`averaged` where a 0/0 is ``z``, as scikit-learn's ``zero_division=z`` computes it."""
    defined = den > 0
    per = np.where(defined, np.divide(num, np.where(defined, den, 1.0)), z)
    extra: dict[str, Any] = {}
    if len(num) > 1:
        extra["per_class"] = [float(v) for v in per]
        extra["support"] = [float(v) for v in tp + fn]
    if len(num) == 1:
        return Value.of(per[0], **extra)
    if average == "micro":
        total = float(den.sum())
        return Value.of(float(num.sum()) / total if total > 0 else z, **extra)
    if average == "weighted":
        support = tp + fn
        weight_sum = float(support.sum())
        return Value.of(float(np.dot(support, per)) / weight_sum if weight_sum > 0 else z, **extra)
    present = (tp + fp + fn) > 0
    if every_class:
        present[:] = True
    if not present.any():
        return Value.of(z, **extra)
    return Value.of(float(per[present].mean()), **extra)


def select(counts: tuple[F64, F64, F64, F64], labels: tuple[int, ...] | None, pos_label: int) -> tuple[F64, ...]:
    """The counts of the classes asked for: ``labels`` (columns), or on one column the ``pos_label`` class."""
    tp, fp, fn, tn = counts
    if len(tp) == 1:
        # One column is class 1 against class 0: class 0's counts are the others, swapped.
        return (tn, fn, fp, tp) if pos_label == 0 else counts
    if labels is not None:
        if max(labels) >= len(tp):
            raise DataError(f"labels: class {max(labels)} is out of range for {len(tp)} classes")
        idx = np.asarray(labels, dtype=np.intp)
        return tuple(a[idx] for a in counts)
    return counts


@dataclass(frozen=True)
class Choice:
    """scikit-learn's parameters of a class-decision score: how the per-class values combine.

    Attributes:
        average: ``macro``, ``micro`` or ``weighted``.
        zero_division: the value of a 0/0 (``None``: undefined, with a note).
        labels: the classes (columns) to average over, in order (``None``: all).
        pos_label: on one column, which class is positive (1, or 0).
    """

    average: str = "macro"
    zero_division: float | None = None
    labels: tuple[int, ...] | None = None
    pos_label: int = 1

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Choice:
        labels = params.get("labels")
        return cls(
            params.get("average", "macro"),
            params.get("zero_division"),
            None if labels is None else class_ids(labels),
            int(params.get("pos_label", 1)),
        )




# --------------------------------------------------------------------------
# average=samples: one value per row of multilabel input, then their mean


class Samples(Accumulator):
    """scikit-learn's ``average='samples'``: each row's ratio over its labels, weighted mean over rows.

    ``ratio`` is ``precision`` (tp / predicted), ``recall`` (tp / true) or
    ``fscore`` (with ``beta``). Arrays (``sum``): ``total`` (weighted sum of
    the defined row values), ``weight`` (every row's weight), ``zero`` (the
    weight of rows whose value is 0/0, which ``zero_division`` gives, or
    which make the value undefined) and ``zero_rows`` (their number). One
    label column has one class: ``inner``, the accumulator of the other
    averages, gives its value (the average cannot apply; a warning says so).
    """

    def __init__(self, inner: Accumulator, decision: Any, owner: str, ratio: str, choice: Choice, beta: float = 1.0) -> None:
        self.inner = inner
        self.decision = decision
        self.owner = owner
        self.ratio = ratio
        self.choice = choice
        self.b2 = beta * beta
        self.fields = {**inner.fields, "total": "sum", "weight": "sum", "zero": "sum", "zero_rows": "sum"}
        self.key = state_key(f"samples.{ratio}", "decision", {"inner": inner.key, "beta": beta})

    def update(self, state: State, batch: Batch) -> None:
        if batch.y_true.ndim == 1 and batch.y_pred.ndim == 1:
            self.inner.update(state, batch)
            return
        truth, pred = self.decision.decide(batch, self.owner)
        tp = np.count_nonzero(truth & pred, axis=1).astype(np.float64)
        fp = np.count_nonzero(~truth & pred, axis=1).astype(np.float64)
        fn = np.count_nonzero(truth & ~pred, axis=1).astype(np.float64)
        if self.ratio == "precision":
            num, den = tp, tp + fp
        elif self.ratio == "recall":
            num, den = tp, tp + fn
        else:
            num = (1.0 + self.b2) * tp
            den = num + self.b2 * fn + fp
        zero = den == 0
        values = np.divide(num, np.where(zero, 1.0, den))
        w = np.ones(len(values)) if batch.weight is None else batch.weight
        if w.ndim == 2:
            raise DataError(f"{self.owner}: average=samples takes one weight per row")
        s = batch.slot
        state.declare("total", "sum")[s] += float(np.dot(w, np.where(zero, 0.0, values)))
        state.declare("weight", "sum")[s] += float(w.sum())
        state.declare("zero", "sum")[s] += float(w[zero].sum())
        state.declare("zero_rows", "sum")[s] += float(np.count_nonzero(zero & (w > 0)))
        self.count(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if "total" not in state.data:
            return self.inner.finish(state, slot)
        if state.rows(slot) == 0:
            return Value.undefined("no rows")
        weight = float(state.data["weight"][slot])
        if weight == 0.0:
            return Value.undefined("sum of weights is zero")
        total, zero = float(state.data["total"][slot]), float(state.data["zero"][slot])
        z = self.choice.zero_division
        if z is None:
            rows = int(state.data["zero_rows"][slot])
            if rows:
                return Value.undefined(
                    f"{self.ratio} is undefined: {rows} row(s) with 0/0 (no predicted or no true labels); "
                    "zero_division=0 or 1 gives scikit-learn's value"
                )
            return Value.of(total / weight)
        return Value.of((total + float(z) * zero) / weight)
