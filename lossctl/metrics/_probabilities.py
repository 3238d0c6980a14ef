"""Shared by the probabilistic families: value checks, warnings, label smoothing, sigmoid.

Probability inputs are validated chunk by chunk: a prediction or a target
outside ``[0, 1]`` (by more than :data:`PROBABILITY_TOLERANCE`) or a sparse
label that is not an integer in ``[0, C)`` is a data error naming the row.
The cross-entropy, focal, divergence and overlap families and
``lossctl.metrics.accuracy`` use these checks; the arithmetic below
(smoothing, ``sigmoid``, the binary cross-entropy of clipped probabilities)
is Keras's, shared by the binary cross-entropy and its focal variant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lossctl.batch import F64, Batch, as_rows
from lossctl.errors import DataError, ValueProblem
from lossctl.metrics import _labels as labels
from lossctl.params import Param

# How far outside [0, 1] a probability may stray before it is an error.
# Float32 model outputs, and sums like 1 - p written back to a file, land a
# few ulps outside the interval; Keras clips them silently, so rejecting them
# would only be noise. 1e-6 is ~10 float32 ulps at 1.0 and far below any real
# mistake (logits, percentages, class indices).
PROBABILITY_TOLERANCE = 1e-6

# A row of probabilities further than this from summing to 1 is reported as
# a warning (Keras renormalises it silently).
ROW_SUM_TOLERANCE = 1e-3

FROM_LOGITS = Param(
    "from_logits",
    False,
    bool,
    "y_pred holds logits (sigmoid/softmax is applied first) instead of probabilities",
)
LABEL_SMOOTHING = Param(
    "label_smoothing",
    0.0,
    float,
    "squeeze the targets towards uniform by this fraction",
    low=0.0,
    high=1.0,
)

BINARY_INPUTS = (
    "y_true targets in [0, 1] (usually 0/1) and y_pred probabilities in [0, 1] "
    "(logits with from_logits=true), same shape: (N,) or (N, D)"
)
CATEGORICAL_INPUTS = (
    "y_true one-hot (or soft) rows (N, C) and y_pred probability rows (N, C) "
    "(logits with from_logits=true)"
)
SPARSE_INPUTS = (
    "y_true integer class labels in [0, C), shape (N,), and y_pred probability "
    "rows (N, C) (logits with from_logits=true)"
)


# --- value checks (validate hooks) and warnings -------------------------------


def check_unit_interval(values: F64, role: str, what: str, hint: str = "") -> None:
    """Raise ValueProblem for the first row holding a value outside ``[0, 1]``.

    NaN compares false and passes: the ``--nan`` policy has dealt with it.
    """
    flat = values.ravel(order="K")  # memory order: a view of a row- or column-major matrix
    if flat.size and -PROBABILITY_TOLERANCE <= flat.min() and flat.max() <= 1.0 + PROBABILITY_TOLERANCE:
        return  # two fast whole-array reductions; the row scan below is for the error message
    bad = (values < -PROBABILITY_TOLERANCE) | (values > 1.0 + PROBABILITY_TOLERANCE)
    rows = bad.any(axis=1) if bad.ndim == 2 else bad
    if rows.any():
        i = int(np.argmax(rows))
        v = values[i, int(np.argmax(bad[i]))] if values.ndim == 2 else values[i]
        raise ValueProblem(role, i, f"{what} {float(v):.10g} is outside [0, 1]{hint}")


def check_sparse_shapes(batch: Batch, name: str) -> None:
    """Integer labels ``(N,)`` against a score matrix ``(N, C)``, or a DataError."""
    # `scores`, not `y_pred`: the shape, without making the row-major copy.
    if batch.y_true.ndim != 1:
        raise DataError(
            f"{name} needs one integer class label per row in y_true, but y_true has "
            f"{batch.y_true.shape[1]} values per row (for one-hot labels use the "
            "non-sparse variant, e.g. categorical_crossentropy or categorical_accuracy)"
        )
    if batch.scores.ndim != 2:
        raise DataError(
            f"{name} needs a matrix of class scores in y_pred (one column per class), "
            "but y_pred has one value per row (for one probability column use "
            "binary_crossentropy or binary_accuracy)"
        )


def check_class_labels(batch: Batch, name: str, ignore_class: int | None = None) -> None:
    """Sparse labels must be integers in ``[0, C)`` (the ignored class excepted).

    Checked once per chunk however many sparse metrics ask.
    """
    batch.once(("class_labels", ignore_class), lambda: _check_class_labels(batch, name, ignore_class))


def _check_class_labels(batch: Batch, name: str, ignore_class: int | None) -> None:
    check_sparse_shapes(batch, name)
    labels.check_class_labels(batch.y_true, int(batch.scores.shape[1]), name, ignore=ignore_class, skip_nonfinite=True)


def _check_pred_unit_interval(batch: Batch, hint: str) -> None:
    batch.once("pred_unit_interval", lambda: check_unit_interval(batch.scores, "y_pred", "probability", hint))


def check_both_unit_interval(batch: Batch) -> None:
    """Targets and predictions both in [0, 1] (no logits): KL divergence, Dice, Tversky."""
    check_unit_interval(batch.y_true, "y_true", "target")
    check_unit_interval(batch.y_pred, "y_pred", "probability")


def _logit_hint(name: str) -> str:
    return f"; if y_pred holds logits, use {name}:from_logits=true"


def _check_probability_rows(batch: Batch) -> None:
    """Rows that sum to 0 cannot be renormalised (Keras would return NaN)."""
    zero = batch.pred_row_sum == 0.0
    if zero.any():
        raise ValueProblem(
            "y_pred",
            int(np.argmax(zero)),
            "the predicted probabilities sum to 0, so the row cannot be renormalised as Keras does",
        )


def binary_validator(name: str) -> Callable[..., None]:
    """Targets in [0, 1] always; predictions in [0, 1] unless ``from_logits``."""

    def validate(batch: Batch, *, from_logits: bool = False, **_: Any) -> None:
        check_unit_interval(batch.y_true, "y_true", "target")
        if not from_logits:
            check_unit_interval(batch.y_pred, "y_pred", "probability", _logit_hint(name))

    return validate


def categorical_validator(name: str) -> Callable[..., None]:
    """Soft or one-hot targets in [0, 1]; probability rows in [0, 1] with a non-zero sum."""

    def validate(batch: Batch, *, from_logits: bool = False, **_: Any) -> None:
        check_unit_interval(batch.y_true, "y_true", "target")
        if not from_logits:
            check_unit_interval(batch.y_pred, "y_pred", "probability", _logit_hint(name))
            _check_probability_rows(batch)

    return validate


def sparse_validator(name: str, logits: bool = True) -> Callable[..., None]:
    """Integer labels in range (the ignored class excepted); probabilities in [0, 1]."""

    def validate(batch: Batch, *, from_logits: bool = False, ignore_class: int | None = None, **_: Any) -> None:
        check_class_labels(batch, name, ignore_class)
        if not from_logits:
            _check_pred_unit_interval(batch, _logit_hint(name) if logits else "")
            if logits:
                batch.once("probability_rows", lambda: _check_probability_rows(batch))

    return validate


def looks_like_probabilities(batch: Batch, *, from_logits: bool = False, **_: Any) -> str | None:
    """Warn when ``from_logits=true`` is given values that all lie in [0, 1]."""
    p = batch.y_pred
    finite = p[np.isfinite(p)]
    if from_logits and finite.size >= 2 and finite.min() >= 0.0 and finite.max() <= 1.0:
        return "from_logits=true but every y_pred lies in [0, 1]: these look like probabilities, not logits"
    return None


def rows_not_normalised(batch: Batch, *, from_logits: bool = False, **_: Any) -> str | None:
    """Warn about probability rows that do not sum to 1, or about logits given as probabilities."""
    if from_logits:
        return looks_like_probabilities(batch, from_logits=True)
    if batch.scores.ndim == 1:
        return (
            "y_pred has one column: a categorical loss over one class is always ~0; "
            "for one probability column use the binary variant"
        )
    return _row_sums_off(batch, "Keras divides each row by its sum first, so independent sigmoid outputs are mistreated")


def distributions_not_normalised(batch: Batch, **_: Any) -> str | None:
    """Warn when rows of a probability matrix do not sum to 1 (KL divergence, GCE)."""
    return _row_sums_off(batch, "each row should be a probability distribution")


def _row_sums_off(batch: Batch, consequence: str) -> str | None:
    if batch.scores.ndim == 1:
        return None
    sums = batch.pred_row_sum  # shared with the cross-entropies' renormalisation
    off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if off.any():
        s = float(sums[int(np.argmax(off))])
        return f"y_pred rows do not sum to 1 (one sums to {s:.6g}); {consequence}"
    return None


# --- shared arithmetic -------------------------------------------------------


def smooth_binary(y_true: F64, label_smoothing: float) -> F64:
    """Keras's binary label smoothing: ``y * (1 - ls) + 0.5 * ls``."""
    if label_smoothing:
        return y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return y_true


def smooth_categorical(y_true: F64, label_smoothing: float) -> F64:
    """Keras's categorical label smoothing: ``y * (1 - ls) + ls / C``, ``(N, C)``."""
    t = as_rows(y_true)
    if label_smoothing:
        return t * (1.0 - label_smoothing) + label_smoothing / t.shape[-1]
    return t


def sigmoid(x: F64) -> F64:
    """``1 / (1 + exp(-x))`` without overflow for large ``|x|``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def binary_ce(t: F64, p: F64) -> F64:
    """Element-wise ``-(t log p + (1 - t) log(1 - p))`` of clipped probabilities.

    With hard 0/1 targets (the usual case) one of the two terms is zero: the
    same number comes from one logarithm, ``-log(p if t == 1 else 1 - p)``.
    """
    hard = (t == 1.0) | (t == 0.0)
    if hard.all():
        # t * p + (1 - t) * (1 - p) is exactly p or exactly 1 - p for t in {0, 1};
        # arithmetic instead of np.where, whose branches mispredict on mixed labels.
        chosen = np.subtract(1.0, p)
        chosen *= 1.0 - t
        chosen += t * p
        np.log(chosen, out=chosen)
        np.negative(chosen, out=chosen)
        return chosen
    return -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))

