"""The accuracy family, Keras-exact, and the ``accuracy`` / ``acc`` convenience name.

Every entry is the weighted mean of a per-row hit (1.0) or miss (0.0), like
Keras's ``MeanMetricWrapper``. Class decisions follow Keras: ``y_pred >
threshold`` (strictly) for binary accuracy, the first maximum on ties for
argmax, and "in the top k" meaning ``y_pred[label] >=`` the k-th largest
score, so a tie at the k-th place counts as a hit (Keras 3's ``in_top_k``).

``accuracy`` picks one of them from the first chunk, as Keras's
``compile(metrics=["accuracy"])`` does; see :func:`pick_accuracy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossctl.batch import F64, Batch, as_rows, row_mean
from lossctl.errors import ValueProblem
from lossctl.metrics._probabilities import check_class_labels
from lossctl.params import Param
from lossctl.registry import (
    Example,
    MetricDef,
    kernel,
    lookup,
    register,
    resolve_params,
)

_K = Param("k", 5, int, "how many of the highest scores count as a hit", low=1)


def _width(a: F64) -> int:
    return 1 if a.ndim == 1 else int(a.shape[1])


def _not_binary_labels(batch: Batch, **_: Any) -> str | None:
    y = batch.y_true[np.isfinite(batch.y_true)]
    if y.size and not np.all((y == 0.0) | (y == 1.0)):
        bad = float(y[(y != 0.0) & (y != 1.0)][0])
        return f"y_true holds {bad:g}; binary accuracy compares against 0/1 labels, so such rows never match"
    return None


@kernel(
    name="binary_accuracy",
    kind="metric",
    task="binary|multilabel",
    direction="max",
    formula="mean(y_true == (y_pred > threshold), axis=-1)",
    summary="Share of labels matched by thresholded scores (y_pred > threshold).",
    inputs="y_true 0/1 labels and y_pred probabilities (or scores), same shape: (N,) or (N, D)",
    params=(
        Param(
            "threshold",
            0.5,
            float,
            "a prediction is 1 when y_pred > threshold",
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
        ),
    ),
    keras="keras.metrics.binary_accuracy / keras.metrics.BinaryAccuracy",
    sklearn="sklearn.metrics.accuracy_score(y_true, y_pred > threshold) (one column)",
    warn=_not_binary_labels,
    element_weights=True,
    example=Example([1.0, 1.0, 0.0, 0.0], [0.98, 1.0, 0.0, 0.6], 0.75),
)
def binary_accuracy(b: Batch, *, threshold: float = 0.5) -> F64:
    """Per-row binary accuracy, as ``keras.metrics.binary_accuracy``.

    Formula: mean(y_true == (y_pred > threshold), axis=-1); y_pred at exactly
    the threshold counts as 0.

    Returns:
        ``(N,)`` per-row shares of matched labels.
    """
    decided = (b.y_pred > threshold).astype(np.float64)
    return row_mean((b.y_true == decided).astype(np.float64))


def _not_one_hot(batch: Batch, **_: Any) -> str | None:
    if batch.y_true.ndim == 1:
        return "y_true and y_pred have one column: categorical accuracy is then always 1; use binary_accuracy"
    t = batch.y_true
    one_hot = np.all((t == 0.0) | (t == 1.0), axis=-1) & (t.sum(axis=-1) == 1.0)
    if not one_hot.all():
        return "y_true rows are not exactly one-hot (soft labels): the class of a row is its largest value"
    return None


def _one_class_per_row(batch: Batch, **_: Any) -> None:
    """Label rows must name one class: a single maximum above 0 (one-hot, or a smoothed one-hot).

    A multi-hot or all-zero row has no class; Keras would take the first
    maximum and report a number that means nothing, so this is an error.
    """
    if batch.y_true.ndim == 1:
        return

    def check() -> None:
        t = batch.y_true
        top = t.max(axis=-1)
        at_top = np.count_nonzero(t == top[:, None], axis=-1)
        bad = (at_top != 1) | ~(top > 0)
        if bad.any():
            i = int(np.argmax(bad))
            shown = ", ".join(f"{v:g}" for v in t[i][:8]) + (", …" if t.shape[1] > 8 else "")
            raise ValueProblem(
                "y_true",
                i,
                f"label row [{shown}] is not one-hot (no single class); "
                "for multi-label rows use binary_accuracy",
            )

    batch.once("one_class_per_row", check)


@kernel(
    name="categorical_accuracy",
    kind="metric",
    task="multiclass",
    direction="max",
    formula="argmax(y_true, axis=-1) == argmax(y_pred, axis=-1)",
    summary="Share of rows whose highest score is the one-hot label's class.",
    inputs="y_true one-hot rows (N, C) and y_pred scores (N, C) (probabilities or logits)",
    keras="keras.metrics.categorical_accuracy / keras.metrics.CategoricalAccuracy",
    sklearn="sklearn.metrics.accuracy_score(argmax(y_true), argmax(y_pred))",
    warn=_not_one_hot,
    validate=_one_class_per_row,
    example=Example([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0.0]], 0.5),
)
def categorical_accuracy(b: Batch) -> F64:
    """Per-row categorical accuracy, as ``keras.metrics.categorical_accuracy``.

    Formula: argmax(y_true, -1) == argmax(y_pred, -1), the first maximum on ties.

    Returns:
        ``(N,)`` per-row hits (1.0) or misses (0.0).
    """
    return _argmax_hits(b)


def _sparse_check(name: str) -> Callable[..., None]:
    def validate(batch: Batch, **_: Any) -> None:
        check_class_labels(batch, name)

    return validate


@kernel(
    name="sparse_categorical_accuracy",
    kind="metric",
    task="multiclass",
    direction="max",
    formula="y_true == argmax(y_pred, axis=-1)",
    summary="Share of rows whose highest score is the integer label's class.",
    inputs="y_true integer class labels in [0, C), shape (N,), and y_pred scores (N, C)",
    keras="keras.metrics.sparse_categorical_accuracy / keras.metrics.SparseCategoricalAccuracy",
    sklearn="sklearn.metrics.accuracy_score(y_true, argmax(y_pred))",
    shapes="sparse",
    validate=_sparse_check("sparse_categorical_accuracy"),
    example=Example([2.0, 1.0], [[0.1, 0.6, 0.3], [0.05, 0.95, 0.0]], 0.5),
)
def sparse_categorical_accuracy(b: Batch) -> F64:
    """Per-row sparse categorical accuracy, as ``keras.metrics.sparse_categorical_accuracy``.

    Formula: y_true == argmax(y_pred, -1), the first maximum on ties.

    Returns:
        ``(N,)`` per-row hits (1.0) or misses (0.0).
    """
    return _argmax_hits(b)


def _argmax_hits(b: Batch) -> F64:
    """1.0 where argmax(y_pred) (the first maximum on ties) is the label's class, per row.

    The label's class is the argmax when no class scores higher and no earlier
    class scores the same; only rows with a tie at the maximum need an argmax.
    NaN where the label is no valid index (NaN under ``--nan propagate``).
    """
    top = b.label_rank == 0
    hits = top.astype(np.float64)
    tied = top & (b.label_ties > 1)
    if tied.any():
        label = b.class_index if b.y_true.ndim == 1 else b.true_argmax
        rows = np.flatnonzero(tied)
        hits[rows] = np.argmax(as_rows(b.scores)[rows], axis=-1) == label[rows]
    if b.y_true.ndim == 1:
        hits[~np.isfinite(b.pred_at_label)] = np.nan
    return hits


def _in_top_k(b: Batch, k: int) -> F64:
    """1.0 where fewer than ``k`` classes score higher than the label's class (ties are hits).

    That is Keras 3's ``ops.in_top_k`` on every backend but TensorFlow's
    (``targets_values >= topk_values``). With k >= C every class is in the
    top k. NaN where the label is no valid index (NaN under ``--nan propagate``).
    """
    hits = (b.label_rank < k).astype(np.float64)
    if b.y_true.ndim == 1:
        hits[~np.isfinite(b.pred_at_label)] = np.nan
    return hits


@kernel(
    name="top_k_categorical_accuracy",
    kind="metric",
    task="multiclass",
    direction="max",
    formula="y_pred[argmax(y_true)] >= k-th largest of y_pred (per row; ties at the k-th place are hits)",
    summary="Share of rows whose one-hot label's class is among the k highest scores.",
    inputs="y_true one-hot rows (N, C) and y_pred scores (N, C)",
    params=(_K,),
    keras="keras.metrics.top_k_categorical_accuracy / keras.metrics.TopKCategoricalAccuracy",
    sklearn="sklearn.metrics.top_k_accuracy_score(argmax(y_true), y_pred, k=k) (without ties)",
    warn=_not_one_hot,
    validate=_one_class_per_row,
    deviations="k >= the number of classes counts every row as a hit (Keras's torch backend raises).",
    example=Example([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], [[0.1, 0.9, 0.8], [0.02, 0.9, 0.08]], 0.5, {"k": 2}),
)
def top_k_categorical_accuracy(b: Batch, *, k: int = 5) -> F64:
    """Per-row top-k accuracy of one-hot labels, as ``keras.metrics.top_k_categorical_accuracy``.

    Formula: y_pred[argmax(y_true)] >= (k-th largest of y_pred), per row.

    Returns:
        ``(N,)`` per-row hits (1.0) or misses (0.0).
    """
    return _in_top_k(b, int(k))


@kernel(
    name="sparse_top_k_categorical_accuracy",
    kind="metric",
    task="multiclass",
    direction="max",
    formula="y_pred[y_true] >= k-th largest of y_pred (per row; ties at the k-th place are hits)",
    summary="Share of rows whose integer label's class is among the k highest scores.",
    inputs="y_true integer class labels in [0, C), shape (N,), and y_pred scores (N, C)",
    params=(_K,),
    keras="keras.metrics.sparse_top_k_categorical_accuracy / keras.metrics.SparseTopKCategoricalAccuracy",
    sklearn="sklearn.metrics.top_k_accuracy_score(y_true, y_pred, k=k) (without ties)",
    shapes="sparse",
    validate=_sparse_check("sparse_top_k_categorical_accuracy"),
    deviations="k >= the number of classes counts every row as a hit (Keras's torch backend raises).",
    example=Example([2.0, 0.0], [[0.1, 0.9, 0.8], [0.02, 0.9, 0.08]], 0.5, {"k": 2}),
)
def sparse_top_k_categorical_accuracy(b: Batch, *, k: int = 5) -> F64:
    """Per-row top-k accuracy of integer labels, as ``keras.metrics.sparse_top_k_categorical_accuracy``.

    Formula: y_pred[y_true] >= (k-th largest of y_pred), per row.

    Returns:
        ``(N,)`` per-row hits (1.0) or misses (0.0).
    """
    return _in_top_k(b, int(k))


# --- accuracy / acc: the convenience name ---------------------------------------


def exact_accuracy(b: Batch) -> F64:
    """Per-row exact-match accuracy, as ``keras.metrics.Accuracy``.

    Formula: mean(y_true == y_pred, axis=-1): predicted labels against labels.

    Returns:
        ``(N,)`` per-row shares of equal values.
    """
    return row_mean((b.y_true == b.y_pred).astype(np.float64))


def _integral(a: F64) -> bool:
    finite = a[np.isfinite(a)]
    return bool(finite.size) and bool(np.all(finite == np.round(finite)))


def pick_accuracy(y_true: F64, y_pred: F64) -> MetricDef:
    """The entry ``accuracy`` stands for on these arrays.

    As Keras's ``compile``: a matrix of scores against one label per row is
    sparse categorical accuracy, against rows of labels categorical accuracy
    (Keras's choice even for multilabel rows; a warning says so); rows of
    whole numbers beyond 0 and 1 are predicted labels, compared for equality. One
    prediction per row is binary accuracy at 0.5, except when the predictions
    are whole numbers: then they are labels, compared for equality (where
    Keras would threshold a predicted class 3 to 1). On 0/1 labels and 0/1
    predictions the two agree.
    """
    if _width(y_pred) > 1:
        if _width(y_true) == 1:
            return SPARSE_CATEGORICAL_ACCURACY
        if _width(y_true) == _width(y_pred) and _integral(y_pred) and bool(np.nanmax(np.abs(y_pred)) > 1):
            # Rows of predicted labels (no score matrix holds a 2): compared cell by cell.
            return EXACT_ACCURACY
        return CATEGORICAL_ACCURACY
    if _width(y_true) == 1 and _integral(y_pred):
        return EXACT_ACCURACY
    return BINARY_ACCURACY


def _resolve_accuracy(y_true: F64, y_pred: F64, params: Mapping[str, Any]) -> tuple[MetricDef, dict[str, Any]]:
    entry = pick_accuracy(y_true, y_pred)
    return entry, resolve_params(entry, {})


def accuracy(b: Batch) -> F64:
    """Per-row accuracy of whichever entry :func:`pick_accuracy` picks for this batch.

    The engine replaces ``accuracy`` by the picked entry once, from the first
    chunk (the ``resolve`` hook); this kernel serves ``lossctl.get("acc")``,
    where the whole input is one batch.

    Formula: that of the picked entry, with its default parameters.
    """
    entry = pick_accuracy(b.y_true, b.y_pred)
    assert entry.kernel is not None
    if entry.validate is not None:
        entry.validate(b)
    return entry.kernel(b, **{k: v for k, v in entry.defaults().items() if k != "reduction"})


BINARY_ACCURACY = lookup("binary_accuracy")
CATEGORICAL_ACCURACY = lookup("categorical_accuracy")
SPARSE_CATEGORICAL_ACCURACY = lookup("sparse_categorical_accuracy")

ACCURACY = register(
    MetricDef(
        name="accuracy",
        aliases=("acc",),
        kind="metric",
        task="binary|multiclass|multilabel",
        direction="max",
        formula=(
            "resolved from the first chunk: binary_accuracy (one score column, threshold 0.5), "
            "sparse_categorical_accuracy (integer labels vs a score matrix), categorical_accuracy "
            "(label rows vs a score matrix), or mean(y_true == y_pred, axis=-1) (whole-number "
            "predictions vs labels)"
        ),
        summary="Accuracy as Keras's compile(metrics=['accuracy']) picks it; the output names the pick.",
        inputs=(
            "one score column with 0/1 labels; a score matrix (N, C) with integer labels (N,) or "
            "one-hot rows (N, C); or predicted labels against labels, one column each"
        ),
        keras="compile(metrics=['accuracy']) (keras.metrics.Accuracy for label-vs-label)",
        sklearn="sklearn.metrics.accuracy_score (label-vs-label)",
        kernel=accuracy,
        shapes="any",
        resolve=_resolve_accuracy,
        deviations=(
            "Whole-number predictions in one column, or rows of whole numbers beyond 0 and 1, are "
            "compared to the labels for equality (keras.metrics.Accuracy); Keras's compile would "
            "apply a 0.5 threshold or an argmax to them."
        ),
        example=Example([1.0, 1.0, 0.0, 0.0], [0.98, 1.0, 0.0, 0.6], 0.75),
    )
)

# What `accuracy` resolves to for label-vs-label input: keras.metrics.Accuracy.
# It is not registered under a name of its own (Keras's own name for it,
# "accuracy", is the convenience name); its descriptive name is what the
# output shows: `acc → accuracy (exact equality)`.
EXACT_ACCURACY = dataclasses.replace(
    ACCURACY,
    name="accuracy (exact equality)",
    aliases=(),
    legacy=(),
    formula="mean(y_true == y_pred, axis=-1)",
    summary="Share of predicted labels equal to the labels.",
    inputs="y_true labels and y_pred predicted labels, same shape: (N,) or (N, D)",
    keras="keras.metrics.Accuracy",
    kernel=exact_accuracy,
    shapes="same",
    resolve=None,
    element_weights=True,
    deviations="",
    example=Example([1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 3.0, 4.0], 0.75),
)
