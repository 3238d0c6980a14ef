"""Inputs with more than two dimensions, and per-element weights, as Keras sees them (SPEC section 2).

Keras evaluates an input of shape ``(N, H, W, C)`` (a segmentation map, time
steps) with the last axis as the class / output axis: a loss gives one value
per element of ``(N, H, W)`` and averages them, a metric counts every
element. Here such an input becomes ``(N * H * W, C)`` element rows (labels
``(N, H, W)`` or ``(N, H, W, 1)`` against scores ``(N, H, W, C)`` become
``(N * H * W,)``), each sample's weight repeated over its elements, or a
weight of the elements' shape ``(N, H, W)`` taken element by element. Every
kernel and accumulator then sees the 2-D arrays it knows, and the weighted
mean over element rows is Keras's value (for every ``reduction``: Keras's
batch size is then the number of elements too).

A weight with one value per cell of a 2-D input, ``(N, C)`` against
``(N, C)`` (Keras's per-element ``sample_weight``), stays 2-D: only the
entries that weigh each cell as Keras does accept it (``element_weights``
in the registry); for the others it is a data error, as it is in Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lossctl.batch import F64, Batch
from lossctl.errors import DataError

I64 = NDArray[np.int64]


@dataclass(frozen=True)
class Elements:
    """The arrays as the kernels see them, and how many element rows each input row became."""

    y_true: F64
    y_pred: F64
    weight: F64 | None
    per_row: int = 1


def _dims(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _shape(a: np.ndarray) -> str:
    return _dims(a.shape)


def flatten(y_true: F64, y_pred: F64, weight: F64 | None = None) -> Elements:
    """Rows of more than two dimensions as element rows; 2-D and 1-D inputs unchanged.

    Raises:
        DataError: shapes that do not pair up (naming both), or a weight
            that is neither one per row nor one per element.
    """
    if y_true.ndim <= 2 and y_pred.ndim <= 2:
        _check_weight_2d(y_true, y_pred, weight)
        return Elements(y_true, y_pred, weight)
    n = y_pred.shape[0]
    wide = y_pred if y_pred.ndim >= y_true.ndim else y_true
    inner = wide.shape[1:-1]
    per_row = int(np.prod(inner)) if inner else 1
    yt = _as_elements(y_true, n, inner, "y_true", wide)
    yp = _as_elements(y_pred, n, inner, "y_pred", wide)
    w = weight
    if weight is not None:
        if weight.shape == (n,):
            w = np.repeat(weight, per_row)
        elif weight.shape[1:] == inner:
            w = weight.reshape(n * per_row)
        elif weight.shape[1:] == wide.shape[1:]:
            w = weight.reshape(n * per_row, wide.shape[-1])
            w = w[:, 0] if w.shape[1] == 1 else w
        else:
            raise DataError(
                f"the weight has shape {_shape(weight)}; for inputs of shape {_shape(wide)} give one weight "
                f"per row {_dims((n,))} or one per element {_dims(wide.shape[:-1])}"
            )
    return Elements(yt, yp, w, per_row)


def _as_elements(a: F64, n: int, inner: tuple[int, ...], role: str, wide: F64) -> F64:
    """One role's array as element rows: ``(n * D, C)`` or labels ``(n * D,)``."""
    d = int(np.prod(inner)) if inner else 1
    if a.shape[1:-1] == inner and a.ndim == wide.ndim:
        out = a.reshape(n * d, a.shape[-1])
        return out[:, 0] if out.shape[1] == 1 else out
    if a.shape[1:] == inner:
        return a.reshape(n * d)
    raise DataError(
        f"{role} has shape {_shape(a)} but the other input {_shape(wide)}: give the same shape, or labels "
        f"{_dims(wide.shape[:-1])} against scores {_shape(wide)} (the last axis is the class axis)"
    )


def _check_weight_2d(y_true: F64, y_pred: F64, weight: F64 | None) -> None:
    if weight is None or weight.ndim == 1:
        return
    width = max(1 if y_true.ndim == 1 else y_true.shape[1], 1 if y_pred.ndim == 1 else y_pred.shape[1])
    if weight.ndim == 2 and weight.shape[1] == width:
        return
    raise DataError(
        f"the weight has {weight.shape[1] if weight.ndim == 2 else 'several'} values per row but the input "
        f"{width}: give one weight per row, or one per cell (Keras's per-element sample_weight)"
    )


class SampleRows(Batch):
    """The input rows of an element batch, for per-row output (``--per-row``, ``worst``).

    ``y_true``, ``y_pred`` and ``weight`` are the rows as read; a per-row
    value is the (weighted) mean of the row's element values, which the
    element batch computes once for the states and this view reuses.
    """

    def __init__(self, elements: Batch, y_true: F64, y_pred: F64, weight: F64 | None) -> None:
        super().__init__(y_true, y_pred, weight)
        self.elements = elements

    def per_row(self, kernel: Callable[..., F64], params: Mapping[str, Any]) -> F64:
        d = self.elements.per_input_row
        values = self.elements.per_row(kernel, params).reshape(-1, d)
        w = self.elements.weight
        if w is None or w.ndim != 1:
            return values.mean(axis=1)
        w = w.reshape(-1, d)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (values * w).sum(axis=1) / w.sum(axis=1)


def element_batch(y_true: F64, y_pred: F64, weight: F64 | None, groups: I64 | None = None) -> Batch:
    """The batch the kernels see for these rows (see :func:`flatten`).

    ``per_input_row`` says how many element rows each input row became;
    when more than one, ``samples`` is the :class:`SampleRows` view.
    """
    e = flatten(y_true, y_pred, weight)
    if e.per_row > 1 and groups is not None:
        groups = np.repeat(groups, e.per_row)
    batch = Batch(e.y_true, e.y_pred, e.weight, groups=groups)
    if e.per_row > 1:
        batch.per_input_row = e.per_row
        batch.samples = SampleRows(batch, y_true, y_pred, weight)
    return batch


def first_negative(weight: F64) -> int | None:
    """The first row holding a negative weight, or ``None``."""
    bad = weight < 0
    if bad.ndim > 1:
        bad = bad.reshape(len(weight), -1).any(axis=1)
    if not bad.any():
        return None
    return int(np.argmax(bad))


def negative_text(row: F64 | float) -> str:
    """``negative weight -1`` for a row's weight (the first negative one of a per-element row)."""
    values = np.ravel(row)
    return f"negative weight {float(values[np.argmax(values < 0)]):g}"
