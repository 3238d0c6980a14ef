"""Cross-entropies, Keras-exact: binary, categorical, sparse categorical and generalized.

Every per-row kernel computes what Keras 3 computes for one row (reducing
over the last axis), with Keras's epsilon (1e-7) and clipping:

- binary cross-entropy clips ``y_pred`` to ``[eps, 1 - eps]``; with
  ``from_logits`` it uses the stable ``max(x, 0) - x * t + log1p(exp(-|x|))``
  and does not clip (as the torch backend's ``binary_cross_entropy_with_logits``);
- categorical cross-entropies divide each row by its sum, then clip; with
  ``from_logits`` they take a stable ``log_softmax``.

Sparse categorical cross-entropy with ``ignore_class`` leaves the rows of
that label out of the mean (:class:`IgnoreClass`). The value checks live in
``lossctl.metrics._probabilities``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Mean, Value
from lossctl.batch import (
    CLIP_HIGH,
    CLIP_LOW,
    F64,
    Batch,
    as_rows,
    row_mean,
    take_per_row,
)
from lossctl.metrics._probabilities import (
    BINARY_INPUTS,
    CATEGORICAL_INPUTS,
    FROM_LOGITS,
    LABEL_SMOOTHING,
    SPARSE_INPUTS,
    binary_ce,
    binary_validator,
    categorical_validator,
    distributions_not_normalised,
    looks_like_probabilities,
    rows_not_normalised,
    smooth_binary,
    smooth_categorical,
    sparse_validator,
)
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, kernel, register
from lossctl.state import State

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
    inputs=BINARY_INPUTS,
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
    return row_mean(binary_ce(t, b.clipped_pred))


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
    inputs=CATEGORICAL_INPUTS,
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
            loss = -np.log(np.clip(b.pred_at_label / b.pred_row_sum, CLIP_LOW, CLIP_HIGH))
    if ignore_class is not None:
        loss = np.where(b.y_true == ignore_class, 0.0, loss)
    return loss


class IgnoreClass(Mean):
    """Weighted mean over the rows whose label is not ``ignore_class``.

    Keras masks those rows: a loss averages over the others (with
    ``sum_over_batch_size`` it divides by their number), and so does a
    metric given sample weights (the mask zeroes their weights). A metric
    without weights (Keras 3's ``MeanMetricWrapper``, which applies the mask
    only to given weights) counts the ignored rows in the denominator with
    a value of 0: :meth:`as_metric` gives that variant, which keeps
    ``ignored``, the number of ignored rows of unweighted chunks. ``rows``
    counts the rows that entered the mean.
    """

    fields = {"total": "sum", "weight": "sum", "ignored": "sum"}
    grouped = True

    def __init__(self, params: Mapping[str, Any], reduction: str, ignore_class: int, metric: bool = False) -> None:
        super().__init__(sparse_categorical_crossentropy, params, reduction)
        self.ignore_class = ignore_class
        self.metric = metric
        self.key = "ignore_class:" + self.key

    def as_metric(self) -> IgnoreClass:
        """The accumulator as Keras's metric computes it (see the class docstring)."""
        return IgnoreClass(self.params, self.reduction, self.ignore_class, metric=True)

    def update(self, state: State, batch: Batch) -> None:
        keep = batch.y_true != self.ignore_class
        ignored = state.declare("ignored", "sum")
        if not keep.all():
            if batch.weight is None:
                if batch.groups is None:
                    ignored[batch.slot] += float(np.count_nonzero(~keep))
                else:
                    ignored += np.bincount(batch.groups[~keep], minlength=state.slots)
            weight = None if batch.weight is None else batch.weight[keep]
            groups = None if batch.groups is None else batch.groups[keep]
            batch = Batch(batch.y_true[keep], batch.y_pred[keep], weight, batch.slot, groups)
        if len(batch):
            super().update(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0:
            return Value.undefined(f"no rows (every label is the ignored class {self.ignore_class}, or none was read)")
        if self.metric and self.reduction == "mean" and "ignored" in state.data:
            weight = float(state.data["weight"][slot]) + float(state.data["ignored"][slot])
            if weight == 0.0:
                return Value.undefined("sum of weights is zero")
            return Value.of(float(state.data["total"][slot]) / weight)
        return super().finish(state, slot)

    def finish_slots(self, state: State, slots: Sequence[int]) -> list[Value]:
        return [self.finish(state, s) for s in slots]


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
        inputs=SPARSE_INPUTS,
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
            "With ignore_class, as Keras 3: a loss averages over the kept rows (or their weights); "
            "a metric (--metric) with weights too, but a metric without weights divides by every "
            "row, the ignored ones counting 0 (Keras's MeanMetricWrapper masks only given weights)."
        ),
        example=Example([1.0, 2.0], [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], -(math.log(0.95) + math.log(0.1)) / 2.0),
    )
)


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
