"""Class labels and decisions: the inputs of the confusion-count metrics (and the curves).

Inputs come in three layouts, recognised from the shapes:

- ``column``: one label column and one score column (binary);
- ``sparse``: integer labels ``(N,)`` against a probability matrix ``(N, C)``;
- ``dense``: a 0/1 label matrix (one-hot or multilabel) against ``(N, C)``.

The helpers here check labels (raising :class:`ValueProblem` at the first bad
row), turn a chunk into boolean ``(N, K)`` truth and decision matrices, or
into one integer class per row, and count ``True`` cells per column.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from lossctl.batch import F64, Batch
from lossctl.errors import DataError, ValueProblem

Bool = NDArray[np.bool_]
Ints = NDArray[np.intp]
I64 = NDArray[np.int64]
Layout = Literal["column", "sparse", "dense"]

# Keras F1Score treats |p| <= 1e-9 as zero when deciding by argmax, so that an
# all-zero row predicts no class at all instead of every class.
ARGMAX_ZERO = 1e-9


# --------------------------------------------------------------------------
# Layouts and value checks (run per chunk, before any state update)


def layout(batch: Batch, owner: str) -> Layout:
    """Name the input layout, or raise DataError for shapes that do not pair up."""
    yt, yp = batch.y_true, batch.y_pred
    if yt.ndim == 1 and yp.ndim == 1:
        return "column"
    if yt.ndim == 1 and yp.ndim == 2:
        return "sparse"
    if yt.ndim == 2 and yp.ndim == 2 and yt.shape[1] == yp.shape[1]:
        return "dense"
    wt = 1 if yt.ndim == 1 else yt.shape[1]
    wp = 1 if yp.ndim == 1 else yp.shape[1]
    raise DataError(
        f"{owner}: y_true has {wt} value(s) per row but y_pred has {wp}; give one label "
        "column (binary labels, or integer classes against a probability matrix) or a "
        "label matrix as wide as y_pred"
    )


def check_binary_labels(y: F64, owner: str, role: str = "y_true") -> None:
    """Raise ValueProblem at the first row holding a value other than 0 or 1."""
    bad = (y != 0) & (y != 1)
    rows = bad.any(axis=1) if bad.ndim == 2 else bad
    if rows.any():
        i = int(np.argmax(rows))
        v = y[i][np.argmax(bad[i])] if y.ndim == 2 else y[i]
        hint = ""
        if role == "y_true" and v in (-1.0, 2.0):
            hint = f"; for {'-1/1' if v < 0 else '1/2'} labels give --pos-label {'1' if v < 0 else '2'}"
        raise ValueProblem(role, i, f"label {v:g} is not 0 or 1 ({owner} needs binary labels){hint}")


def check_class_labels(
    y: F64, classes: int, owner: str, role: str = "y_true", ignore: int | None = None, skip_nonfinite: bool = False
) -> None:
    """Raise ValueProblem at the first label that is not an integer in ``[0, classes)``.

    ``ignore`` is a label allowed besides those; ``skip_nonfinite`` lets NaN
    and infinity through (the NaN policy has decided about them already).
    """
    with np.errstate(invalid="ignore"):
        ok = (y == np.floor(y)) & (y >= 0) & (y < classes)
    if ignore is not None:
        ok |= y == ignore
    if skip_nonfinite:
        ok |= ~np.isfinite(y)
    rows = ~ok.all(axis=1) if ok.ndim == 2 else ~ok
    if rows.any():
        i = int(np.argmax(rows))
        v = float(y[i][np.argmin(ok[i])] if y.ndim == 2 else y[i])
        if v != np.floor(v):
            raise ValueProblem(role, i, f"label {v:g} is not an integer class index ({owner})")
        raise ValueProblem(role, i, f"label {v:g} is out of range for {classes} classes (0 to {classes - 1})")


def check_labels(batch: Batch, owner: str) -> Layout:
    """Check the labels of a binary / sparse / dense input; return its layout."""
    lay = layout(batch, owner)
    if lay == "sparse":
        check_class_labels(batch.y_true, batch.y_pred.shape[1], owner)
    else:
        check_binary_labels(batch.y_true, owner)
    return lay


# --------------------------------------------------------------------------
# Truth and decisions as boolean matrices


def truth_matrix(batch: Batch, lay: Layout) -> Bool:
    """Labels as a boolean ``(N, K)`` matrix (one-hot for sparse labels)."""
    if lay == "column":
        return (batch.y_true != 0)[:, None]
    if lay == "sparse":
        classes = batch.y_pred.shape[1]
        return batch.y_true.astype(np.intp)[:, None] == np.arange(classes)
    return batch.y_true != 0


def score_matrix(batch: Batch) -> F64:
    """Predictions as an ``(N, K)`` matrix."""
    return batch.y_pred[:, None] if batch.y_pred.ndim == 1 else batch.y_pred


def argmax_decision(p: F64) -> Bool:
    """Keras ``F1Score`` with ``threshold=None``: every maximum of a row is predicted.

    Formula: ``(p >= max(p, axis=-1)) & (abs(p) > 1e-9)``.
    """
    # Two boolean tests instead of abs(p): no float temporary the size of p.
    return (p >= p.max(axis=1, keepdims=True)) & ((p > ARGMAX_ZERO) | (p < -ARGMAX_ZERO))


def top_k_mask(p: F64, k: int) -> Bool:
    """The ``k`` largest scores of each row, ties to the lower index (Keras's stable top_k)."""
    k = min(k, p.shape[1])
    idx = np.argsort(-p, axis=1, kind="stable")[:, :k]
    mask = np.zeros(p.shape, dtype=bool)
    np.put_along_axis(mask, idx, True, axis=1)
    return mask


# Rows per block in weighted column sums: a float64 copy of a boolean mask
# costs 8 bytes a cell, so it is made a block at a time (about 2 MB).
_BLOCK_CELLS = 1 << 18


def colsum(mask: Bool, weight: F64 | None) -> F64:
    """Per-column (weighted) count of ``True`` cells; ``weight`` is one per row ``(N,)`` or per cell ``(N, K)``."""
    if weight is None:
        return np.count_nonzero(mask, axis=0).astype(np.float64)
    if weight.ndim == 2:
        return np.where(mask, weight, 0.0).sum(axis=0)
    step = max(1, _BLOCK_CELLS // max(1, mask.shape[1]))
    out = np.zeros(mask.shape[1])
    for start in range(0, len(mask), step):
        out += weight[start : start + step] @ mask[start : start + step].astype(np.float64)
    return out


# --------------------------------------------------------------------------
# One class per row (scikit-learn's class-decision metrics)


def true_classes(y_true: F64) -> I64:
    """Integer labels from labels (N,) or one-hot rows (N, C)."""
    if y_true.ndim == 2:
        return np.argmax(y_true, axis=1).astype(np.int64)
    return y_true.astype(np.int64)


def predicted_classes(y_pred: F64) -> I64:
    """Keras's decision: argmax of a matrix; ``p > 0.5`` of a probability, integers kept as labels."""
    if y_pred.ndim == 2:
        return np.argmax(y_pred, axis=1).astype(np.int64)
    integral = y_pred == np.floor(y_pred)
    return np.where(integral, y_pred, y_pred > 0.5).astype(np.int64)


def classes_text(idx: Iterable[int]) -> str:
    """``class 2`` or ``classes 0, 3``, for notes."""
    ids = [str(int(i)) for i in idx]
    return ("class " if len(ids) == 1 else "classes ") + ", ".join(ids)
