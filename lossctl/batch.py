"""A chunk of rows as the kernels see it, with shared sub-expressions.

Several metrics over the same chunk need the same intermediate arrays (the
whole regression family starts from ``y_pred - y_true``); a :class:`Batch`
computes each of them once per chunk and caches it, so that asking for mse,
mae, huber and rmse together costs one difference and one absolute value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

# Caches that depend on the weights or the slots: a reweighted batch recomputes them.
_WEIGHTED = frozenset({"_row_total", "_group_counts"})

# Keras's epsilon (keras.config.epsilon()), used where probabilities are clipped.
EPSILON = 1e-7
# The bounds Keras's cross-entropies clip probabilities to, as Keras applies them:
# [eps, 1 - eps] rounded to float32 (Keras runs float32), so that a saturated
# prediction gives Keras's number: y=0, p=1 is -log(1 - 0.99999988) = 15.942,
# not -log(1e-7) = 16.118 (SPEC section 4).
CLIP_LOW = float(np.float32(EPSILON))
CLIP_HIGH = float(np.float32(1.0 - EPSILON))

# Up to this many classes, per-row counts and sums over a column-major score
# matrix loop over its class columns (contiguous, vectorised passes); beyond,
# one row-wise pass is cheaper than the Python loop.
MAX_COLUMN_LOOP = 64


class Batch:
    """Rows ``y_true``, ``y_pred`` and optional ``weight`` of one chunk.

    Arrays are float64, shape ``(N,)`` for one value per row or ``(N, D)`` for
    a vector per row. ``weight`` is ``(N,)``, ``(N, C)`` (a weight per cell,
    Keras's per-element ``sample_weight``) or ``None``. Kernels treat the
    arrays as read-only. ``slot`` is the state slot the rows fold into;
    ``groups`` (int64 ``(N,)``), when given, the slot of each row instead.

    ``scores`` is ``y_pred`` as it arrived: a matrix assembled from one column
    per class is column-major (each class contiguous, as it was read), and the
    shared sub-expressions of the sparse family (the label's score, the row
    sums, the rank of the label) work on its columns; ``y_pred`` is the same
    values row-major, made only when a kernel asks for it.
    """

    # Element rows per input row: more than 1 for inputs of more than two
    # dimensions, whose element rows are all the kernels see (lossctl.elements).
    per_input_row = 1

    def __init__(
        self, y_true: F64, y_pred: F64, weight: F64 | None = None, slot: int = 0, groups: NDArray[np.int64] | None = None
    ) -> None:
        self.y_true = y_true
        self.scores = y_pred
        self.weight = weight
        # The state slot every row of this chunk folds into (see lossctl.state),
        # or, with `groups`, the slot of each row (a sliced run: --by).
        self.slot = slot
        self.groups = groups
        # With --ci, the global row number of each row (the bootstrap weights' counter).
        self.rows: NDArray[np.int64] | None = None

    def reweighted(self, weight: F64, slot: int = 0, groups: NDArray[np.int64] | None = None) -> Batch:
        """The same rows with other weights (a bootstrap replicate), sharing every weight-free cache."""
        out = Batch(self.y_true, self.scores, weight, slot, groups)
        out.rows = self.rows
        for name, value in self.__dict__.items():
            if name not in _WEIGHTED and name not in out.__dict__:
                out.__dict__[name] = value
        return out

    def group_counts(self, slots: int) -> NDArray[np.int64]:
        """Rows per slot of a grouped chunk (``slots`` long), computed once per chunk."""
        cache = self.__dict__.setdefault("_group_counts", {})
        if slots not in cache:
            assert self.groups is not None
            cache[slots] = np.bincount(self.groups, minlength=slots)
        return cache[slots]

    def by_group(self) -> list[Batch]:
        """One batch per group present in a grouped chunk, each with its slot (rows in order)."""
        assert self.groups is not None
        order = np.argsort(self.groups, kind="stable")
        sorted_groups = self.groups[order]
        cuts = np.flatnonzero(np.diff(sorted_groups)) + 1
        out = []
        for rows in np.split(order, cuts):
            weight = None if self.weight is None else self.weight[rows]
            part = Batch(self.y_true[rows], self.scores[rows], weight, int(self.groups[rows[0]]))
            part.rows = None if self.rows is None else self.rows[rows]
            out.append(part)
        return out

    def cells(self) -> Batch:
        """A batch with one row per cell of ``(N, C)`` arrays, for a weight per cell ``(N, C)``."""
        w = self.weight
        assert w is not None and w.ndim == 2
        groups = None if self.groups is None else np.repeat(self.groups, w.shape[1])
        y_true = np.broadcast_to(as_rows(self.y_true), w.shape).ravel()
        y_pred = np.broadcast_to(as_rows(self.y_pred), w.shape).ravel()
        return Batch(y_true, y_pred, w.ravel(), self.slot, groups)

    def __len__(self) -> int:
        return int(self.y_true.shape[0])

    def once(self, key: object, check: Callable[[], None]) -> None:
        """Run a value check once per chunk, however many metrics share it."""
        done = self.__dict__.setdefault("_checked", set())
        if key not in done:
            check()
            done.add(key)

    def per_row(self, kernel: Callable[..., F64], params: Mapping[str, Any]) -> F64:
        """``kernel(self, **params)``, computed once per chunk however many states ask.

        RMSE and MSE (or the same loss requested twice) share one evaluation.
        """
        key = (kernel, tuple(sorted(params.items())))
        cache = self.__dict__.setdefault("_per_row", {})
        if key not in cache:
            cache[key] = kernel(self, **params)
        return cache[key]

    def row_total(self, kernel: Callable[..., F64], params: Mapping[str, Any]) -> float:
        """The sum of :meth:`per_row` over this chunk, also computed once per chunk."""
        key = (kernel, tuple(sorted(params.items())))
        totals = self.__dict__.setdefault("_row_total", {})
        if key not in totals:
            # add.reduce, not np.sum: the same pairwise sum without np.sum's Python layer.
            totals[key] = float(np.add.reduce(self.per_row(kernel, params)))
        return totals[key]

    @cached_property
    def y_pred(self) -> F64:
        """The predictions, ``(N,)`` or a C-contiguous float64 ``(N, C)`` (see ``scores``)."""
        p = self.scores
        if p.ndim == 2 and not p.flags.c_contiguous or p.dtype != np.float64:
            return np.ascontiguousarray(p, dtype=np.float64)
        return p

    @cached_property
    def _class_columns(self) -> F64 | None:
        """``scores`` as ``(C, N)`` rows, one contiguous row per class, when it is column-major
        with few enough classes that a loop over them beats a row-wise pass; else ``None``."""
        p = self.scores
        if p.ndim == 2 and p.shape[1] <= MAX_COLUMN_LOOP and p.flags.f_contiguous and not p.flags.c_contiguous:
            return p.T
        return None

    @cached_property
    def diff(self) -> F64:
        """``y_pred - y_true`` (broadcast when one side is a single column)."""
        return np.subtract(self.y_pred, self.y_true)

    @cached_property
    def abs_diff(self) -> F64:
        """``|y_pred - y_true|``."""
        return np.abs(self.diff)

    @cached_property
    def sq_diff(self) -> F64:
        """``(y_pred - y_true) ** 2``."""
        d = self.diff
        return d * d

    # Shared by the classification families (probabilistic, accuracy).

    @cached_property
    def clipped_pred(self) -> F64:
        """``clip(y_pred, eps, 1 - eps)``, as Keras's binary cross-entropies clip (float32 bounds)."""
        return np.clip(self.y_pred, CLIP_LOW, CLIP_HIGH)

    @cached_property
    def normalized_pred(self) -> F64:
        """``clip(y_pred / sum(y_pred, axis=-1), eps, 1 - eps)``, always ``(N, C)``.

        Keras's categorical cross-entropies renormalise each row to sum to 1
        before clipping; a one-column input is one class per row.
        """
        p = as_rows(self.y_pred)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.clip(p / p.sum(axis=-1, keepdims=True), CLIP_LOW, CLIP_HIGH)

    @cached_property
    def log_softmax_pred(self) -> F64:
        """``log(softmax(y_pred, axis=-1))`` of logits, computed stably, ``(N, C)``."""
        x = as_rows(self.y_pred)
        shifted = x - x.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    @cached_property
    def class_index(self) -> NDArray[np.int64]:
        """``y_true`` as integer class indices ``(N,)``; non-finite labels become -1.

        Sparse labels arrive as float64 and Keras casts them to integers; the
        values are validated (integral, in range) before a kernel sees them.
        """
        y = self.y_true
        return np.where(np.isfinite(y), y, -1.0).astype(np.int64)

    @cached_property
    def pred_row_sum(self) -> F64:
        """``sum(y_pred, axis=-1)`` per row (einsum: a fast reduction over a short last axis;
        a column-major matrix adds its class columns, each a contiguous pass)."""
        columns = self._class_columns
        if columns is not None:
            total = columns[0].astype(np.float64)
            for column in columns[1:]:
                total += column
            return total
        if self.scores.dtype != np.float64:
            return np.einsum("ij->i", as_rows(self.scores), dtype=np.float64)
        return np.einsum("ij->i", as_rows(self.scores))

    @cached_property
    def pred_at_label(self) -> F64:
        """``y_pred[i, y_true[i]]`` per row for sparse labels; NaN where the label is no valid index.

        Labels were validated already; what is left invalid here is NaN passed
        through by ``--nan propagate`` or a row of an ignored class.
        """
        return self._score_at_label.astype(np.float64, copy=False)

    @cached_property
    def _score_at_label(self) -> F64:
        """:attr:`pred_at_label` in the dtype of ``scores`` (exact: a float32 score stays itself)."""
        return take_per_row(as_rows(self.scores), self.class_index)

    @cached_property
    def label_rank(self) -> NDArray[np.int64]:
        """How many classes score strictly higher than the label's class (0: the label is a maximum).

        For sparse labels (``class_index``), or one-hot labels (``true_argmax``).
        ``label in top k`` (Keras's ``in_top_k``, ties counted as hits) is
        ``label_rank < k``; together with :attr:`label_ties` it gives argmax
        accuracy without an argmax, which NumPy does slowly over a short axis.
        """
        return self._count_classes(np.greater)

    @cached_property
    def label_ties(self) -> NDArray[np.int64]:
        """How many classes score exactly what the label's class scores (1: no tie)."""
        return self._count_classes(np.equal)

    def _count_classes(self, compare: np.ufunc) -> NDArray[np.int64]:
        """Per row, the classes whose score ``compare`` (greater, equal) gives True against the label's."""
        score = self._label_score
        columns = self._class_columns
        if columns is None:
            return _count_per_row(compare(as_rows(self.scores), score[:, None]))
        # One contiguous comparison per class column, counted in uint8 (C <= MAX_COLUMN_LOOP).
        count = np.zeros(len(score), dtype=np.uint8)
        hit = np.empty(len(score), dtype=np.bool_)
        for column in columns:
            compare(column, score, out=hit)
            count += hit
        return count.astype(np.int64)

    @cached_property
    def _label_score(self) -> F64:
        # In the dtype of the scores, so that comparing float32 columns with it stays float32 (exact).
        if self.y_true.ndim == 2 and self.y_true.shape[1] > 1:
            return take_per_row(as_rows(self.scores), self.true_argmax)
        return self._score_at_label

    @cached_property
    def true_argmax(self) -> NDArray[np.intp]:
        """Index of the largest ``y_true`` per row: the class of a one-hot label."""
        return np.argmax(as_rows(self.y_true), axis=-1)


def row_mean(values: F64) -> F64:
    """Reduce per-element values to one value per row, as Keras does (last axis)."""
    if values.ndim == 1:
        return values
    return row_sum(values) / values.shape[-1]


def row_sum(values: F64) -> F64:
    """Sum per-element values over the last axis (one value per row).

    einsum, because ``sum(axis=-1)`` over a short last axis is several times slower.
    """
    if values.ndim == 1:
        return values
    return np.einsum("ij->i", values)


def _count_per_row(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Number of True values per row of an ``(N, C)`` mask."""
    if mask.shape[1] < 256:
        # Summing the bytes in uint8 cannot overflow below 256 columns, and is
        # several times faster than an int64 sum over a short axis.
        return np.einsum("ij->i", mask.view(np.uint8)).astype(np.int64)
    return np.count_nonzero(mask, axis=1).astype(np.int64)


def take_per_row(values: F64, index: NDArray[np.integer[Any]]) -> F64:
    """``values[i, index[i]]`` per row of an ``(N, C)`` array; NaN where the index is invalid.

    One flat gather from the array as it lies in memory: row-major, or
    column-major (one contiguous column per class).
    """
    rows, classes = values.shape
    valid = (index >= 0) & (index < classes)
    if values.flags.f_contiguous and not values.flags.c_contiguous:
        flat = np.where(valid, index, 0) * rows + np.arange(rows)
        picked = values.T.ravel().take(flat)
    else:
        flat = np.arange(rows) * classes + np.where(valid, index, 0)
        picked = np.ravel(values).take(flat)
    if not valid.all():
        picked[~valid] = np.nan
    return picked


def as_rows(values: F64) -> F64:
    """View one value per row ``(N,)`` as ``(N, 1)``; ``(N, C)`` is returned unchanged."""
    return values[:, None] if values.ndim == 1 else values
