"""Shared by the scikit-learn-style families: value checks, input texts and class decisions.

These follow scikit-learn, not Keras: a probability outside ``[0, 1]`` is an
error however close (no tolerance), and labels are checked as integers.
Class-decision metrics given probabilities decide as Keras does: ``p > 0.5``
for one probability column, argmax for a probability matrix; integer values
are taken as class labels, so label-vs-label input works too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lossctl.batch import F64, Batch
from lossctl.errors import ValueProblem

I64 = NDArray[np.int64]

# scikit-learn clips probabilities at the machine epsilon of their dtype (float64 here).
MACHINE_EPS = float(np.finfo(np.float64).eps)

PROBA_INPUTS = (
    "binary: y_true 0/1 (N,) and y_pred the positive-class probability (N,); "
    "multiclass: y_true integer labels (N,) or one-hot (N, C) and y_pred probability rows (N, C)"
)


# --- value checks (run per chunk, before the kernels) ------------------------------------


def first_row(mask: NDArray[np.bool_]) -> int:
    """Row of the first True in a per-element mask (rows along axis 0)."""
    rows = mask if mask.ndim == 1 else mask.any(axis=1)
    return int(np.argmax(rows))


def first_value(a: F64, mask: NDArray[np.bool_]) -> float:
    row = first_row(mask)
    if a.ndim == 1:
        return float(a[row])
    return float(a[row][mask[row]][0])


def check_int_labels(y: F64, classes: int | None) -> None:
    """1-D class labels: non-negative integers, below ``classes`` when known."""
    not_int = ~(np.isfinite(y) & (y == np.floor(y)))
    if not_int.any():
        raise ValueProblem("y_true", first_row(not_int), f"label {first_value(y, not_int):g} is not an integer class")
    negative = y < 0
    if negative.any():
        raise ValueProblem("y_true", first_row(negative), f"label {first_value(y, negative):g} is negative")
    if classes is not None:
        above = y >= classes
        if above.any():
            raise ValueProblem(
                "y_true", first_row(above), f"label {first_value(y, above):g} is out of range for {classes} classes"
            )


def check_in_unit(y: F64, role: str, what: str) -> None:
    outside = (y < 0) | (y > 1)
    if outside.any():
        raise ValueProblem(role, first_row(outside), f"{what} {first_value(y, outside):g} is outside [0, 1]")


def validate_probabilities(b: Batch, **_: Any) -> None:
    """Probabilities in [0, 1]; 0/1 labels against one column, labels in range against a matrix."""
    yt, yp = b.y_true, b.y_pred
    check_in_unit(yp, "y_pred", "probability")
    if yp.ndim == 1:
        if yt.ndim != 1:
            raise ValueProblem(
                "y_true", 0, f"y_true has {yt.shape[1]} values per row but y_pred is one probability column"
            )
        not_binary = ~np.isnan(yt) & (yt != 0) & (yt != 1)
        if not_binary.any():
            raise ValueProblem("y_true", first_row(not_binary), f"label {first_value(yt, not_binary):g} is not 0 or 1")
        return
    if yt.ndim == 1:
        check_int_labels(yt, yp.shape[1])
        return
    if yt.shape[1] != yp.shape[1]:
        raise ValueProblem("y_true", 0, f"y_true has {yt.shape[1]} values per row but y_pred has {yp.shape[1]}")
    check_in_unit(yt, "y_true", "label")


def validate_classes(b: Batch, **_: Any) -> None:
    """Inputs that can be decided into classes (one class per row); checked once per chunk."""
    b.once("decided_classes", lambda: _check_classes(b))


def _check_classes(b: Batch) -> None:
    yt, yp = b.y_true, b.y_pred
    if yt.ndim == 2:
        if yp.ndim != 2 or yp.shape[1] != yt.shape[1]:
            width = 1 if yp.ndim == 1 else yp.shape[1]
            raise ValueProblem(
                "y_pred", 0, f"y_true is one-hot with {yt.shape[1]} columns but y_pred has {width} value(s) per row"
            )
    else:
        check_int_labels(yt, yp.shape[1] if yp.ndim == 2 else None)
    if yp.ndim == 1:
        integral = yp == np.floor(yp)
        # NaN passes (under --nan propagate it decides to class 0, as NaN > 0.5 does in Keras).
        bad = (integral & (yp < 0)) | (~integral & ((yp < 0) | (yp > 1)))
        if bad.any():
            raise ValueProblem(
                "y_pred",
                first_row(bad),
                f"{first_value(yp, bad):g} is neither a probability in [0, 1] nor a non-negative integer class",
            )


def warn_not_normalized(b: Batch, **_: Any) -> str | None:
    """Probability rows that do not sum to 1 (scikit-learn warns too, with rtol sqrt(eps))."""
    if b.y_pred.ndim != 2:
        return None
    sums = b.y_pred.sum(axis=1)
    off = ~np.isclose(sums, 1.0, rtol=math.sqrt(MACHINE_EPS), atol=0.0) & np.isfinite(sums)
    if off.any():
        return f"probability rows do not sum to 1 ({int(off.sum())} rows, e.g. {sums[first_row(off)]:.6g})"
    return None
