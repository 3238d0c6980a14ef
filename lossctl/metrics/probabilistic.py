"""Probabilistic losses (cross-entropies, focal, KL, GCE, Dice, Tversky), Keras-exact.

Every per-row kernel computes what Keras 3 computes for one row (reducing
over the last axis), with Keras's epsilon (1e-7) and clipping:

- binary cross-entropies clip ``y_pred`` to ``[eps, 1 - eps]``; with
  ``from_logits`` they use the stable ``max(x, 0) - x * t + log1p(exp(-|x|))``
  and do not clip (as the torch backend's ``binary_cross_entropy_with_logits``);
- categorical cross-entropies divide each row by its sum, then clip; with
  ``from_logits`` they take a stable ``log_softmax``;
- Dice and Tversky use Keras's default ``axis=None``: one value over every
  element of the table, from mergeable sums.

Probability inputs are validated chunk by chunk: a prediction or a target
outside ``[0, 1]`` (by more than :data:`PROBABILITY_TOLERANCE`) or a sparse
label that is not an integer in ``[0, C)`` is a data error naming the row.
Those checks live here and are shared with ``lossctl.metrics.accuracy``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossctl.batch import EPSILON, F64, Batch, as_rows, row_mean, take_per_row
from lossctl.errors import DataError, ValueProblem
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, kernel, register
from lossctl.state import Accumulator, Mean, State, Value

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

_BINARY_INPUTS = (
    "y_true targets in [0, 1] (usually 0/1) and y_pred probabilities in [0, 1] "
    "(logits with from_logits=true), same shape: (N,) or (N, D)"
)
_CATEGORICAL_INPUTS = (
    "y_true one-hot (or soft) rows (N, C) and y_pred probability rows (N, C) "
    "(logits with from_logits=true)"
)
_SPARSE_INPUTS = (
    "y_true integer class labels in [0, C), shape (N,), and y_pred probability "
    "rows (N, C) (logits with from_logits=true)"
)


# --- value checks (validate hooks) and warnings, shared with accuracy.py ----


def check_unit_interval(values: F64, role: str, what: str, hint: str = "") -> None:
    """Raise ValueProblem for the first row holding a value outside ``[0, 1]``.

    NaN compares false and passes: the ``--nan`` policy has dealt with it.
    """
    if values.size and -PROBABILITY_TOLERANCE <= values.min() and values.max() <= 1.0 + PROBABILITY_TOLERANCE:
        return  # two fast whole-array reductions; the row scan below is for the error message
    bad = (values < -PROBABILITY_TOLERANCE) | (values > 1.0 + PROBABILITY_TOLERANCE)
    rows = bad.any(axis=1) if bad.ndim == 2 else bad
    if rows.any():
        i = int(np.argmax(rows))
        v = values[i, int(np.argmax(bad[i]))] if values.ndim == 2 else values[i]
        raise ValueProblem(role, i, f"{what} {float(v):.10g} is outside [0, 1]{hint}")


def check_sparse_shapes(batch: Batch, name: str) -> None:
    """Integer labels ``(N,)`` against a score matrix ``(N, C)``, or a DataError."""
    if batch.y_true.ndim != 1:
        raise DataError(
            f"{name} needs one integer class label per row in y_true, but y_true has "
            f"{batch.y_true.shape[1]} values per row (for one-hot labels use the "
            "non-sparse variant, e.g. categorical_crossentropy or categorical_accuracy)"
        )
    if batch.y_pred.ndim != 2:
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
    classes = int(batch.y_pred.shape[1])
    y = batch.y_true
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(y) & ((y != np.floor(y)) | (y < 0) | (y >= classes))
    if ignore_class is not None:
        bad &= y != ignore_class
    if bad.any():
        i = int(np.argmax(bad))
        v = float(y[i])
        if v != math.floor(v):
            message = f"label {v:g} is not an integer class index"
        else:
            message = f"label {int(v)} is out of range for {classes} classes (0 to {classes - 1})"
        raise ValueProblem("y_true", i, message)


def _check_pred_unit_interval(batch: Batch, hint: str) -> None:
    batch.once("pred_unit_interval", lambda: check_unit_interval(batch.y_pred, "y_pred", "probability", hint))


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
    if batch.y_pred.ndim == 1:
        return (
            "y_pred has one column: a categorical loss over one class is always ~0; "
            "for one probability column use the binary variant"
        )
    return _row_sums_off(batch, "Keras divides each row by its sum first, so independent sigmoid outputs are mistreated")


def distributions_not_normalised(batch: Batch, **_: Any) -> str | None:
    """Warn when rows of a probability matrix do not sum to 1 (KL divergence, GCE)."""
    return _row_sums_off(batch, "each row should be a probability distribution")


def _row_sums_off(batch: Batch, consequence: str) -> str | None:
    if batch.y_pred.ndim == 1:
        return None
    sums = batch.y_pred.sum(axis=-1)
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


def _binary_ce(t: F64, p: F64) -> F64:
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


# --- binary ------------------------------------------------------------------


@kernel(
    name="binary_crossentropy",
    aliases=("bce",),
    kind="loss",
    task="binary|multilabel",
    direction="min",
    formula=(
        "mean(-(t * log(p) + (1 - t) * log(1 - p)), axis=-1), p = clip(y_pred, eps, 1 - eps), "
        "t = y_true * (1 - label_smoothing) + 0.5 * label_smoothing; "
        "from_logits: mean(max(x, 0) - x * t + log(1 + exp(-|x|)), axis=-1), x = y_pred"
    ),
    summary="Binary cross-entropy (log loss) of probabilities or logits, clipped at eps=1e-7.",
    inputs=_BINARY_INPUTS,
    params=(FROM_LOGITS, LABEL_SMOOTHING),
    keras="keras.losses.binary_crossentropy / keras.losses.BinaryCrossentropy",
    sklearn="sklearn.metrics.log_loss (which clips at machine epsilon, not 1e-7)",
    validate=binary_validator("binary_crossentropy"),
    warn=looks_like_probabilities,
    example=Example([1.0, 0.0], [0.8, 0.4], -(math.log(0.8) + math.log(0.6)) / 2.0),
)
def binary_crossentropy(b: Batch, *, from_logits: bool = False, label_smoothing: float = 0.0) -> F64:
    """Per-row binary cross-entropy, as ``keras.losses.binary_crossentropy``.

    Formula: mean(-(t * log(p) + (1 - t) * log(1 - p)), axis=-1) with
    p = clip(y_pred, eps, 1 - eps) (probabilities in [0, 1]), or for logits x
    mean(max(x, 0) - x * t + log1p(exp(-|x|)), axis=-1).

    Args:
        b: the chunk; ``y_true`` in [0, 1], ``y_pred`` probabilities or logits.
        from_logits: ``y_pred`` holds logits.
        label_smoothing: t = y_true * (1 - ls) + 0.5 * ls.

    Returns:
        ``(N,)`` per-row losses.
    """
    t = smooth_binary(b.y_true, label_smoothing)
    if from_logits:
        x = b.y_pred
        return row_mean(np.maximum(x, 0.0) - x * t + np.log1p(np.exp(-np.abs(x))))
    return row_mean(_binary_ce(t, b.clipped_pred))


@kernel(
    name="binary_focal_crossentropy",
    kind="loss",
    task="binary|multilabel",
    direction="min",
    formula=(
        "mean(a * (1 - p_t) ** gamma * bce, axis=-1), bce = -(t log(pc) + (1 - t) log(1 - pc)), "
        "pc = clip(p, eps, 1 - eps), p_t = t * p + (1 - t) * (1 - p), p = y_pred (sigmoid(y_pred) "
        "from logits), a = t * alpha + (1 - t) * (1 - alpha) with apply_class_balancing, else 1"
    ),
    summary="Binary cross-entropy down-weighting easy examples by (1 - p_t) ** gamma.",
    inputs=_BINARY_INPUTS,
    params=(
        Param("apply_class_balancing", False, bool, "weight class 1 by alpha and class 0 by 1 - alpha"),
        Param("alpha", 0.25, float, "weight of class 1 when apply_class_balancing is true", low=0.0, high=1.0),
        Param("gamma", 2.0, float, "focusing parameter: 0 gives plain binary cross-entropy", low=0.0),
        FROM_LOGITS,
        LABEL_SMOOTHING,
    ),
    keras="keras.losses.binary_focal_crossentropy / keras.losses.BinaryFocalCrossentropy",
    validate=binary_validator("binary_focal_crossentropy"),
    warn=looks_like_probabilities,
    deviations="alpha is ignored unless apply_class_balancing=true, as in Keras.",
    example=Example([1.0], [0.8], -(0.2**2) * math.log(0.8)),
)
def binary_focal_crossentropy(
    b: Batch,
    *,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
) -> F64:
    """Per-row binary focal cross-entropy, as ``keras.losses.binary_focal_crossentropy``.

    Formula: mean(a * (1 - p_t) ** gamma * bce(t, clip(p, eps, 1 - eps)), axis=-1)
    with p_t = t * p + (1 - t) * (1 - p) on the *unclipped* probability p
    (Keras clips only inside the cross-entropy).

    Returns:
        ``(N,)`` per-row losses.
    """
    t = smooth_binary(b.y_true, label_smoothing)
    # Validated probabilities may stray PROBABILITY_TOLERANCE outside [0, 1];
    # clip so that (1 - p_t) ** gamma stays real (a no-op on Keras's inputs).
    if from_logits:
        p = sigmoid(b.y_pred)
        bce = _binary_ce(t, np.clip(p, EPSILON, 1.0 - EPSILON))
    else:
        p = np.clip(b.y_pred, 0.0, 1.0)
        bce = _binary_ce(t, b.clipped_pred)
    p_t = t * p + (1.0 - t) * (1.0 - p)
    focal = np.power(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal = (t * alpha + (1.0 - t) * (1.0 - alpha)) * focal
    return row_mean(focal)


# --- categorical ---------------------------------------------------------------


@kernel(
    name="categorical_crossentropy",
    aliases=("cce",),
    kind="loss",
    task="multiclass",
    direction="min",
    formula=(
        "-sum(t * log(clip(y_pred / sum(y_pred, axis=-1), eps, 1 - eps)), axis=-1), "
        "t = y_true * (1 - label_smoothing) + label_smoothing / C; "
        "from_logits: -sum(t * log_softmax(y_pred), axis=-1)"
    ),
    summary="Categorical cross-entropy of one-hot (or soft) targets; rows renormalised, clipped at eps.",
    inputs=_CATEGORICAL_INPUTS,
    params=(FROM_LOGITS, LABEL_SMOOTHING),
    keras="keras.losses.categorical_crossentropy / keras.losses.CategoricalCrossentropy",
    sklearn="sklearn.metrics.log_loss (with integer labels; clips at machine epsilon)",
    validate=categorical_validator("categorical_crossentropy"),
    warn=rows_not_normalised,
    example=Example(
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]],
        -(math.log(0.95) + math.log(0.1)) / 2.0,
    ),
)
def categorical_crossentropy(b: Batch, *, from_logits: bool = False, label_smoothing: float = 0.0) -> F64:
    """Per-row categorical cross-entropy, as ``keras.losses.categorical_crossentropy``.

    Formula: -sum(t * log(clip(y_pred / sum(y_pred, -1), eps, 1 - eps)), axis=-1)
    (probability rows), or -sum(t * log_softmax(y_pred), axis=-1) (logits).

    Returns:
        ``(N,)`` per-row losses.
    """
    t = smooth_categorical(b.y_true, label_smoothing)
    log_p = b.log_softmax_pred if from_logits else np.log(b.normalized_pred)
    return -np.sum(t * log_p, axis=-1)


def _scce_rows(b: Batch, *, from_logits: bool = False, ignore_class: int | None = None) -> F64:
    """Per-row sparse categorical cross-entropy (0 for rows of the ignored class, as Keras)."""
    if from_logits:
        loss = -take_per_row(b.log_softmax_pred, b.class_index)
    else:
        # Keras clips every renormalised probability, then takes the label's:
        # renormalising and clipping only the label's is the same number, at
        # 1/C of the divisions, clips and logarithms.
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = -np.log(np.clip(b.pred_at_label / b.pred_row_sum, EPSILON, 1.0 - EPSILON))
    if ignore_class is not None:
        loss = np.where(b.y_true == ignore_class, 0.0, loss)
    return loss


class IgnoreClass(Mean):
    """Weighted mean over the rows whose label is not ``ignore_class``.

    Keras masks those rows: a metric averages over the others, a loss with
    ``sum_over_batch_size`` divides by their number (Keras adds eps to that
    count; lossctl does not, which is a 1e-8 relative difference at most).
    ``rows`` counts the rows that entered the mean.
    """

    def __init__(self, params: Mapping[str, Any], reduction: str, ignore_class: int) -> None:
        super().__init__(sparse_categorical_crossentropy, params, reduction)
        self.ignore_class = ignore_class
        self.key = "ignore_class:" + self.key

    def update(self, state: State, batch: Batch) -> None:
        keep = batch.y_true != self.ignore_class
        if not keep.all():
            weight = None if batch.weight is None else batch.weight[keep]
            batch = Batch(batch.y_true[keep], batch.y_pred[keep], weight, batch.slot)
        if len(batch):
            super().update(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0:
            return Value.undefined(f"no rows (every label is the ignored class {self.ignore_class}, or none was read)")
        return super().finish(state, slot)


def _scce_state(params: Mapping[str, Any]) -> Accumulator:
    kernel_params = {k: v for k, v in params.items() if k != "reduction"}
    reduction = params.get("reduction", "mean")
    if params.get("ignore_class") is None:
        return Mean(sparse_categorical_crossentropy, kernel_params, reduction)
    return IgnoreClass(kernel_params, reduction, int(params["ignore_class"]))


def sparse_categorical_crossentropy(b: Batch, *, from_logits: bool = False, ignore_class: int | None = None) -> F64:
    """Per-row sparse categorical cross-entropy, as ``keras.losses.sparse_categorical_crossentropy``.

    Formula: -log(clip(y_pred / sum(y_pred, -1), eps, 1 - eps)[y_true]) for
    probability rows, -log_softmax(y_pred)[y_true] for logits; y_true holds
    integer labels in [0, C). Rows of ``ignore_class`` give 0 (the state
    leaves them out of the mean).

    Returns:
        ``(N,)`` per-row losses.
    """
    return _scce_rows(b, from_logits=from_logits, ignore_class=ignore_class)


register(
    MetricDef(
        name="sparse_categorical_crossentropy",
        aliases=("scce",),
        kind="loss",
        task="multiclass",
        direction="min",
        formula=(
            "-log(clip(y_pred / sum(y_pred, axis=-1), eps, 1 - eps)[y_true]); "
            "from_logits: -log_softmax(y_pred)[y_true]; rows labelled ignore_class are left out of the mean"
        ),
        summary="Categorical cross-entropy with integer labels; rows renormalised, clipped at eps.",
        inputs=_SPARSE_INPUTS,
        params=(
            FROM_LOGITS,
            Param(
                "ignore_class",
                None,
                int,
                "a label (e.g. -1 or 255) whose rows are left out of the mean",
                optional=True,
            ),
        ),
        keras="keras.losses.sparse_categorical_crossentropy / keras.losses.SparseCategoricalCrossentropy",
        sklearn="sklearn.metrics.log_loss (clips at machine epsilon)",
        kernel=sparse_categorical_crossentropy,
        state=_scce_state,
        shapes="sparse",
        validate=sparse_validator("sparse_categorical_crossentropy"),
        warn=rows_not_normalised,
        deviations=(
            "With ignore_class, Keras divides by (number of kept rows + 1e-7); lossctl divides by the "
            "number of kept rows (or their weights)."
        ),
        example=Example([1.0, 2.0], [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], -(math.log(0.95) + math.log(0.1)) / 2.0),
    )
)


@kernel(
    name="categorical_focal_crossentropy",
    kind="loss",
    task="multiclass",
    direction="min",
    formula=(
        "sum(alpha * (1 - p) ** gamma * -t * log(p), axis=-1), "
        "p = clip(y_pred / sum(y_pred, axis=-1), eps, 1 - eps) (softmax(y_pred) first from logits), "
        "t = y_true * (1 - label_smoothing) + label_smoothing / C"
    ),
    summary="Categorical cross-entropy down-weighting confident classes by (1 - p) ** gamma.",
    inputs=_CATEGORICAL_INPUTS,
    params=(
        Param("alpha", 0.25, float, "weight applied to every class", low=0.0),
        Param("gamma", 2.0, float, "focusing parameter: 0 gives alpha * categorical cross-entropy", low=0.0),
        FROM_LOGITS,
        LABEL_SMOOTHING,
    ),
    keras="keras.losses.categorical_focal_crossentropy / keras.losses.CategoricalFocalCrossentropy",
    validate=categorical_validator("categorical_focal_crossentropy"),
    warn=rows_not_normalised,
    deviations="alpha is a single number (Keras also accepts one per class).",
    example=Example([[0.0, 1.0]], [[0.2, 0.8]], -0.25 * 0.2**2 * math.log(0.8)),
)
def categorical_focal_crossentropy(
    b: Batch,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
) -> F64:
    """Per-row categorical focal cross-entropy, as ``keras.losses.categorical_focal_crossentropy``.

    Formula: sum(alpha * (1 - p) ** gamma * -t * log(p), axis=-1) with
    p = clip(y_pred / sum(y_pred, -1), eps, 1 - eps) (softmax of logits first).

    Returns:
        ``(N,)`` per-row losses.
    """
    t = smooth_categorical(b.y_true, label_smoothing)
    if from_logits:
        p = np.clip(np.exp(b.log_softmax_pred), EPSILON, 1.0 - EPSILON)
    else:
        p = b.normalized_pred
    return np.sum(alpha * np.power(1.0 - p, gamma) * (-t * np.log(p)), axis=-1)


@kernel(
    name="kl_divergence",
    aliases=("kld",),
    legacy=("kullback_leibler_divergence",),
    kind="loss",
    task="multiclass",
    direction="min",
    formula="sum(t * log(t / p), axis=-1), t = clip(y_true, eps, 1), p = clip(y_pred, eps, 1)",
    summary="Kullback-Leibler divergence of y_pred from y_true (both distributions, clipped at eps).",
    inputs="y_true and y_pred probability rows of the same shape, (N, C) (or (N,): one term per row)",
    keras="keras.losses.kl_divergence / keras.losses.KLDivergence",
    validate=lambda b, **_: check_both_unit_interval(b),
    warn=distributions_not_normalised,
    example=Example([[0.5, 0.5]], [[0.25, 0.75]], 0.5 * math.log(4.0 / 3.0)),
)
def kl_divergence(b: Batch) -> F64:
    """Per-row KL divergence, as ``keras.losses.kl_divergence``.

    Formula: sum(t * log(t / p), axis=-1), t = clip(y_true, eps, 1),
    p = clip(y_pred, eps, 1); both are probabilities.

    Returns:
        ``(N,)`` per-row divergences.
    """
    t = np.clip(b.y_true, EPSILON, 1.0)
    p = np.clip(b.y_pred, EPSILON, 1.0)
    terms = t * np.log(t / p)
    return terms if terms.ndim == 1 else terms.sum(axis=-1)


@kernel(
    name="categorical_generalized_cross_entropy",
    kind="loss",
    task="multiclass",
    direction="min",
    formula="(1 - y_pred[y_true] ** q) / q, y_true an integer label, y_pred probability rows",
    summary="Noise-robust cross-entropy: between cross-entropy (q -> 0) and MAE (q = 1).",
    inputs="y_true integer class labels in [0, C), shape (N,), and y_pred probability rows (N, C)",
    params=(Param("q", 0.5, float, "0 < q < 1: near 0 behaves like cross-entropy, near 1 like MAE", low=0.0, high=1.0, low_open=True, high_open=True),),
    keras="keras.losses.categorical_generalized_cross_entropy / keras.losses.CategoricalGeneralizedCrossEntropy",
    shapes="sparse",
    validate=sparse_validator("categorical_generalized_cross_entropy", logits=False),
    warn=distributions_not_normalised,
    deviations="Keras takes integer labels here despite the 'categorical' name; so does lossctl.",
    example=Example([1.0, 1.0], [[0.36, 0.64], [0.19, 0.81]], ((1.0 - 0.8) / 0.5 + (1.0 - 0.9) / 0.5) / 2.0),
)
def categorical_generalized_cross_entropy(b: Batch, *, q: float = 0.5) -> F64:
    """Per-row generalized cross-entropy, as ``keras.losses.categorical_generalized_cross_entropy``.

    Formula: (1 - p ** q) / q, p = y_pred[y_true] (no clipping, no
    renormalisation, as in Keras); y_true integer labels.

    Returns:
        ``(N,)`` per-row losses.
    """
    # Clip only the PROBABILITY_TOLERANCE slack below 0, where p ** q is not real.
    p = np.clip(take_per_row(as_rows(b.y_pred), b.class_index), 0.0, None)
    return (1.0 - np.power(p, q)) / q


# --- whole-table overlap losses (Keras's axis=None) ----------------------------


class OverlapState:
    """Weighted sums over every element: ``sum(t * p)``, ``sum(t)``, ``sum(p)``.

    Dice and Tversky are functions of these three sums (Keras's default
    ``axis=None`` reduces over the whole input), so chunks merge exactly.
    A row's weight multiplies each of its elements.
    """

    __slots__ = ("loss", "alpha", "beta", "intersection", "true_sum", "pred_sum", "rows")

    def __init__(self, loss: str, alpha: float = 0.5, beta: float = 0.5) -> None:
        self.loss = loss
        self.alpha = alpha
        self.beta = beta
        self.intersection = 0.0
        self.true_sum = 0.0
        self.pred_sum = 0.0
        self.rows = 0

    def update(self, batch: Batch) -> None:
        t, p = as_rows(batch.y_true), as_rows(batch.y_pred)
        per_row = np.stack([(t * p).sum(axis=-1), t.sum(axis=-1), p.sum(axis=-1)])
        sums = per_row.sum(axis=1) if batch.weight is None else per_row @ batch.weight
        self.intersection += float(sums[0])
        self.true_sum += float(sums[1])
        self.pred_sum += float(sums[2])
        self.rows += len(batch)

    def merge(self, other: OverlapState) -> OverlapState:
        out = OverlapState(self.loss, self.alpha, self.beta)
        out.intersection = self.intersection + other.intersection
        out.true_sum = self.true_sum + other.true_sum
        out.pred_sum = self.pred_sum + other.pred_sum
        out.rows = self.rows + other.rows
        return out

    def result(self) -> Value:
        if self.rows == 0:
            return Value.undefined("no rows")
        if self.loss == "dice":
            return Value.of(dice_score(self.intersection, self.true_sum, self.pred_sum))
        return Value.of(tversky_score(self.intersection, self.true_sum, self.pred_sum, self.alpha, self.beta))


def dice_score(intersection: float, true_sum: float, pred_sum: float) -> float:
    """Formula: 1 - 2 * sum(t * p) / (sum(t) + sum(p) + eps), over every element."""
    return 1.0 - 2.0 * intersection / (true_sum + pred_sum + EPSILON)


def tversky_score(intersection: float, true_sum: float, pred_sum: float, alpha: float, beta: float) -> float:
    """Formula: 1 - I / (I + alpha * sum((1 - p) * t) + beta * sum(p * (1 - t)) + eps), I = sum(t * p).

    Keras names ``sum((1 - p) * t)`` "fp" and weights it by alpha, though it
    counts missed positives; lossctl keeps Keras's arithmetic.
    """
    missed = true_sum - intersection  # sum((1 - p) * t)
    spurious = pred_sum - intersection  # sum(p * (1 - t))
    return 1.0 - intersection / (intersection + alpha * missed + beta * spurious + EPSILON)


_OVERLAP_INPUTS = "y_true masks/labels in [0, 1] and y_pred probabilities in [0, 1], same shape: (N, C) or (N,)"
_OVERLAP_NOTE = (
    "Computed over the whole table (Keras's default axis=None), not per row; a row's sample weight "
    "multiplies its elements in the three sums (Keras would scale the single loss value instead). "
    "The reduction parameter has no effect on a whole-table value."
)

register(
    MetricDef(
        name="dice",
        kind="loss",
        task="multilabel|binary",
        direction="min",
        formula="1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps), over every element",
        summary="Dice loss over the whole table (1 - Dice coefficient), as Keras's default axis=None.",
        inputs=_OVERLAP_INPUTS,
        keras="keras.losses.dice / keras.losses.Dice",
        state=lambda params: OverlapState("dice"),
        validate=lambda b, **_: check_both_unit_interval(b),
        deviations=_OVERLAP_NOTE,
        example=Example([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]], 1.0 - 2.0 / (4.0 + EPSILON)),
    )
)


def _tversky_state(params: Mapping[str, Any]) -> OverlapState:
    return OverlapState("tversky", float(params["alpha"]), float(params["beta"]))


register(
    MetricDef(
        name="tversky",
        kind="loss",
        task="multilabel|binary",
        direction="min",
        formula=(
            "1 - I / (I + alpha * sum((1 - y_pred) * y_true) + beta * sum(y_pred * (1 - y_true)) + eps), "
            "I = sum(y_true * y_pred), over every element"
        ),
        summary="Tversky loss over the whole table; alpha = beta = 0.5 is the Dice loss.",
        inputs=_OVERLAP_INPUTS,
        params=(
            Param("alpha", 0.5, float, "weight of sum((1 - y_pred) * y_true) (Keras calls it false positives)", low=0.0),
            Param("beta", 0.5, float, "weight of sum(y_pred * (1 - y_true)) (Keras calls it false negatives)", low=0.0),
        ),
        keras="keras.losses.tversky / keras.losses.Tversky",
        state=_tversky_state,
        validate=lambda b, **_: check_both_unit_interval(b),
        deviations=_OVERLAP_NOTE,
        example=Example([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]], 1.0 - 1.0 / (2.0 + EPSILON)),
    )
)
