"""Inputs and arithmetic shared by the curve metrics (exact AUC, Keras's bucketed thresholds).

``binary_columns`` turns a chunk into label and score columns the way Keras's
``AUC`` and ``SensitivitySpecificityBase`` see them; ``divide_no_nan`` and
``sigmoid`` are the arithmetic their results are computed with.
"""

from __future__ import annotations

import numpy as np

from lossctl.batch import F64, Batch
from lossctl.errors import DataError, UsageProblem, ValueProblem
from lossctl.metrics._labels import Bool, layout, score_matrix, truth_matrix


def binary_columns(
    batch: Batch, owner: str, *, multi_label: bool = False, class_id: int | None = None
) -> tuple[Bool, F64, F64 | None]:
    """Labels and scores as ``(M, K)`` columns, with weights ``(M,)``.

    One label column is ``K = 1``. A matrix is flattened into one column (each
    cell a sample, the row's weight repeated), as Keras does unless
    ``multi_label`` keeps one column per label; ``class_id`` keeps one column.
    Integer labels against a probability matrix are one-hot first. A weight
    per cell ``(N, C)`` (Keras's per-element ``sample_weight``) stays with its
    cell: the weights are then ``(M, K)`` with ``multi_label``, else ``(M,)``.
    """
    lay = layout(batch, owner)
    truth, scores, w = truth_matrix(batch, lay), score_matrix(batch), batch.weight
    per_cell = w is not None and w.ndim == 2
    if class_id is not None:
        if lay == "column":
            raise UsageProblem(f"{owner}: class_id needs a probability matrix; y_pred has one column")
        if class_id >= scores.shape[1]:
            raise UsageProblem(f"{owner}: class_id {class_id} is out of range for {scores.shape[1]} classes")
        w = w[:, class_id] if per_cell and w is not None else w
        return truth[:, class_id : class_id + 1], scores[:, class_id : class_id + 1], w
    if scores.shape[1] == 1:
        return truth, scores, None if w is None else w.reshape(-1)
    if multi_label:
        return truth, scores, w
    width = scores.shape[1]
    if w is not None:
        w = w.reshape(-1) if per_cell else np.repeat(w, width)
    return truth.reshape(-1, 1), scores.reshape(-1, 1), w


def check_probabilities(y: F64, owner: str) -> None:
    """A value problem at the first score outside [0, 1] (thresholds are probabilities)."""
    bad = (y < 0) | (y > 1)
    rows = bad.any(axis=1) if bad.ndim == 2 else bad
    if rows.any():
        i = int(np.argmax(rows))
        v = y[i][np.argmax(bad[i])] if y.ndim == 2 else y[i]
        raise ValueProblem(
            "y_pred",
            i,
            f"score {v:g} is outside [0, 1]; {owner}'s thresholds are probabilities "
            "(Keras clips silently; give from_logits=true for logits)",
        )


def divide_no_nan(a: F64, b: F64) -> F64:
    """Keras's ``divide_no_nan``: ``a / b``, and 0 where ``b == 0``.

    Used only inside Keras's curve arithmetic, to reproduce its numbers; a
    whole-table 0/0 is reported as undefined before this is reached.
    """
    safe = np.where(b == 0, 1.0, b)
    return np.where(b == 0, 0.0, a / safe)


def flat_label_weights(batch: Batch, w: F64 | None, label_weights: tuple[float, ...], owner: str) -> F64:
    """Keras's ``label_weights`` on flattened cells: each cell's weight times its column's label weight."""
    width = 1 if batch.y_pred.ndim == 1 else batch.y_pred.shape[1]
    if len(label_weights) != width:
        raise DataError(f"{owner}: label_weights has {len(label_weights)} values for {width} label columns")
    lw = np.tile(np.asarray(label_weights, dtype=np.float64), len(batch))
    return lw if w is None else w * lw


def label_weighted_mean(values: list[float], label_weights: tuple[float, ...], owner: str) -> float:
    """Keras's multi_label AUC with ``label_weights``: ``sum(w * auc) / sum(w)``."""
    if len(label_weights) != len(values):
        raise DataError(f"{owner}: label_weights has {len(label_weights)} values for {len(values)} label columns")
    lw = np.asarray(label_weights, dtype=np.float64)
    if float(lw.sum()) == 0.0:
        return float("nan")
    return float(np.dot(lw, values) / lw.sum())
