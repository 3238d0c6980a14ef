"""The confusion counts: one accumulator family for every class-decision metric (SPEC sections 3-4).

Precision, recall, the F-scores, the TP/FP/TN/FN counts, the IoU family,
balanced accuracy, Matthews correlation and Cohen's kappa are all computed
once, from weighted counts kept as float64 sums. Three accumulators fill
them, each from a *decision rule* that is its only parameter that matters
for the arrays (its ``key``):

- :class:`Counts`: per-column ``tp``, ``fp``, ``fn``, ``tn`` (``sum``,
  ``(K,)``) of boolean truth and decision matrices. It serves every decision
  that may mark several classes of a row: a threshold on each cell
  (multilabel), ``top_k``, and Keras ``F1Score``'s argmax, which marks every
  tied maximum and nothing on an all-zero row (so it is not one class per row).
- :class:`Matrix`: a weighted ``(K, K)`` confusion matrix ``matrix`` (``sum``)
  over a known number of classes: one class per row, true (rows) against
  decided (columns), as Keras's IoU metrics keep it.
- :class:`KeyedMatrix`: a weighted confusion matrix over the labels seen so
  far (``keyed``: the label set grows with the data), and ``seen``, how many
  chunks saw each label, as scikit-learn's class-decision metrics need.

A metric is a subclass that adds only ``score``: the value from the arrays
of one slot. Specs with the same decision rule get the same key, so the
engine fills one state for precision, recall and F1 (or for MCC, kappa and
balanced accuracy). ``owner`` (the entry's name, in error messages) is not
part of the key: it changes no number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import F64, Batch
from lossctl.errors import DataError, UsageProblem
from lossctl.metrics._labels import (
    I64,
    Bool,
    Ints,
    Layout,
    argmax_decision,
    colsum,
    layout,
    predicted_classes,
    score_matrix,
    top_k_mask,
    true_classes,
    truth_matrix,
)
from lossctl.state import State

# A keyed confusion matrix is (labels x labels) float64: 4096 labels are 128 MiB.
MAX_LABELS = 4096


# --------------------------------------------------------------------------
# Per-column counts


@dataclass(frozen=True)
class Decision:
    """Which cells of a score matrix are decided positive.

    Attributes:
        threshold: a cell is positive when ``p > threshold``; ``None``: no
            threshold (``top_k`` alone).
        argmax: on a probability matrix, Keras ``F1Score``'s argmax instead
            of the threshold (which then applies to one column only).
        top_k: only the ``k`` highest scores of a row can be positive.
        class_id: keep this column only (a binary metric of one class).
    """

    threshold: float | None = 0.5
    argmax: bool = False
    top_k: int | None = None
    class_id: int | None = None

    @classmethod
    def of(cls, threshold: float | None, top_k: int | None = None, class_id: int | None = None) -> Decision:
        """The decision of Keras's ``thresholds`` / ``top_k`` / ``class_id``, in one canonical form.

        No threshold, top_k nor class_id is 0.5 on one column and the argmax of
        a matrix; a class_id without top_k thresholds at 0.5 by default.
        """
        if top_k is None and class_id is None and threshold is None:
            return cls(0.5, argmax=True)
        if top_k is None and threshold is None:
            threshold = 0.5
        return cls(
            None if threshold is None else float(threshold),
            top_k=None if top_k is None else int(top_k),
            class_id=None if class_id is None else int(class_id),
        )

    def decide(self, batch: Batch, owner: str) -> tuple[Bool, Bool]:
        """Boolean ``(truth, decided)`` matrices ``(N, K)`` of a chunk."""
        lay = layout(batch, owner)
        truth, p = truth_matrix(batch, lay), score_matrix(batch)
        if self.top_k is None and self.class_id is None:
            if self.argmax and lay != "column":
                return truth, argmax_decision(p)
            return truth, p > self.threshold
        if lay == "column":
            raise UsageProblem(f"{owner}: top_k and class_id need a probability matrix; y_pred has one column")
        c = self.class_id
        if c is not None and c >= p.shape[1]:
            raise UsageProblem(f"{owner}: class_id {c} is out of range for {p.shape[1]} classes")
        if self.top_k is not None:
            # Keras keeps the top k scores of a row and, unless thresholds is
            # given, no threshold at all (NEG_INF).
            pred = top_k_mask(p, self.top_k)
            if self.threshold is not None:
                pred &= p > self.threshold
        else:
            pred = p > self.threshold
        if c is not None:
            return truth[:, c : c + 1], pred[:, c : c + 1]
        return truth, pred


class Counts(Accumulator):
    """Weighted per-column ``tp``, ``fp``, ``fn``, ``tn``, each ``(K,)``; memory 4 K floats a slot."""

    fields = {"tp": "sum", "fp": "sum", "fn": "sum", "tn": "sum"}

    def __init__(self, decision: Decision, owner: str) -> None:
        self.decision = decision
        self.owner = owner
        self.key = state_key("confusion.counts", "decision", asdict(decision))

    def update(self, state: State, batch: Batch) -> None:
        truth, pred = self.decision.decide(batch, self.owner)
        w = batch.weight
        if w is not None and w.ndim == 2:
            # Keras's per-element sample_weight: one weight per cell (the class_id column's).
            c = self.decision.class_id
            w = w[:, c : c + 1] if c is not None and truth.shape[1] == 1 else w
        # Four direct sums rather than differences of sums: a class never
        # predicted must count exactly 0, not 1e-17, for the 0/0 checks.
        counts = (
            colsum(truth & pred, w),
            colsum(~truth & pred, w),
            colsum(truth & ~pred, w),
            colsum(~truth & ~pred, w),
        )
        k = len(counts[0])
        known = state.get("tp")
        if known is not None and known.shape[1] != k:
            raise DataError(f"cannot combine counts over {known.shape[1]} classes with counts over {k}")
        for name, values in zip(("tp", "fp", "fn", "tn"), counts, strict=True):
            state.declare(name, "sum", (k,))[batch.slot] += values
        self.count(state, batch)

    def linear(self, batch: Batch) -> tuple[list[Any], Any] | None:
        """Each class's four cell indicators: the counts are their weighted sums (--ci)."""
        if batch.weight is not None and batch.weight.ndim == 2:
            return None  # a weight per cell: reweighted updates
        truth, pred = self.decision.decide(batch, self.owner)
        cells = (truth & pred, ~truth & pred, truth & ~pred, ~truth & ~pred)
        return [c[:, j].astype(np.float64) for c in cells for j in range(truth.shape[1])], truth.shape[1]

    def add_sums(self, state: State, slots: np.ndarray, sums: np.ndarray, rows: np.ndarray, context: Any) -> None:
        k = int(context)
        for i, name in enumerate(("tp", "fp", "fn", "tn")):
            state.declare(name, "sum", (k,))[slots] += sums[:, i * k : (i + 1) * k]

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0:
            return Value.undefined("no rows")
        tp, fp, fn, tn = (state.data[name][slot] for name in ("tp", "fp", "fn", "tn"))
        return self.score(tp, fp, fn, tn)

    def score(self, tp: F64, fp: F64, fn: F64, tn: F64) -> Value:
        """The metric from one slot's counts, each ``(K,)``."""
        raise NotImplementedError


# --------------------------------------------------------------------------
# A confusion matrix over a known number of classes (Keras's IoU metrics)


def iou_classes(batch: Batch, owner: str, num_classes: int | None, one_hot: bool) -> tuple[Layout, int]:
    """The layout and the number of classes (``num_classes`` or the matrix width)."""
    if one_hot:
        yt, yp = batch.y_true, batch.y_pred
        if yt.ndim != 2 or (yp.ndim == 2 and yp.shape[1] != yt.shape[1]):
            raise DataError(
                f"{owner}: y_true must be one-hot rows (N, C) and y_pred probabilities (N, C) "
                "or labels (N,); use the variant without one_hot for integer labels"
            )
        lay: Layout = "dense"
        width = yt.shape[1]
        if num_classes is None:
            return lay, width
        if num_classes < width:
            raise UsageProblem(f"{owner}: num_classes={num_classes} but y_true has {width} columns")
        return lay, num_classes
    lay = layout(batch, owner)
    width = batch.y_pred.shape[1] if batch.y_pred.ndim == 2 else None
    if lay == "sparse":
        assert width is not None
        if num_classes is None:
            return lay, width
        if num_classes < width:
            raise UsageProblem(f"{owner}: num_classes={num_classes} but y_pred has {width} columns")
        return lay, num_classes
    if num_classes is None:
        raise UsageProblem(
            f"{owner}: give num_classes when y_true and y_pred are class labels "
            f"(e.g. {owner}:num_classes=3)"
        )
    return lay, num_classes


def cell_weights(w: F64 | None, y: F64) -> F64 | None:
    """The weight of each cell of ``y`` flattened: a row's weight repeated, or a weight per cell as given."""
    if w is None or y.ndim == 1:
        return w
    return w.ravel() if w.ndim == 2 else np.repeat(w, y.shape[1])


@dataclass(frozen=True)
class ClassRule:
    """One class per row from labels, one-hot rows (``one_hot``) or the argmax of a probability matrix.

    Label matrices are read cell by cell (Keras flattens segmentation maps);
    a row's weight applies to each of its cells. Rows whose true class is
    ``ignore_class`` are left out.
    """

    one_hot: bool = False
    num_classes: int | None = None
    ignore_class: int | None = None

    def labels(self, batch: Batch, owner: str) -> tuple[Ints, Ints, F64 | None, int]:
        """``(true, decided, weight, K)``: flat class indices, their weights and the class count."""
        lay, k = iou_classes(batch, owner, self.num_classes, self.one_hot)
        w = batch.weight
        if w is not None and w.ndim == 2 and (self.one_hot or lay == "sparse"):
            raise DataError(
                f"{owner}: a weight per cell applies to label matrices (read cell by cell); "
                "one class per row takes one weight per row"
            )
        if self.one_hot:
            t = np.argmax(batch.y_true, axis=1)
            p = batch.y_pred.astype(np.intp) if batch.y_pred.ndim == 1 else np.argmax(batch.y_pred, axis=1)
        elif lay == "sparse":
            t, p = batch.y_true.astype(np.intp), np.argmax(batch.y_pred, axis=1)
        else:
            t, p = batch.y_true.astype(np.intp).ravel(), batch.y_pred.astype(np.intp).ravel()
            w = cell_weights(w, batch.y_true)
        if self.ignore_class is not None:
            keep = t != self.ignore_class
            t, p = t[keep], p[keep]
            w = None if w is None else w[keep]
        return t, p, w, k


@dataclass(frozen=True)
class ThresholdRule:
    """Classes 0 and 1 of every cell: 0/1 labels against ``y_pred >= threshold`` (Keras's BinaryIoU)."""

    threshold: float = 0.5

    def labels(self, batch: Batch, owner: str) -> tuple[Ints, Ints, F64 | None, int]:
        t = batch.y_true.astype(np.intp).ravel()
        # Keras's BinaryIoU predicts class 1 at p >= threshold (not >).
        p = (batch.y_pred >= self.threshold).astype(np.intp).ravel()
        return t, p, cell_weights(batch.weight, batch.y_true), 2


class Matrix(Accumulator):
    """A weighted ``(K, K)`` confusion matrix (rows: true class, columns: decided); K * K floats a slot."""

    fields = {"matrix": "sum"}

    def __init__(self, rule: ClassRule | ThresholdRule, owner: str) -> None:
        self.rule = rule
        self.owner = owner
        self.key = state_key("confusion.matrix", type(rule).__name__, asdict(rule))

    def update(self, state: State, batch: Batch) -> None:
        t, p, w, k = self.rule.labels(batch, self.owner)
        cm = np.bincount(t * k + p, weights=w, minlength=k * k).astype(np.float64).reshape(k, k)
        known = state.get("matrix")
        if known is not None and known.shape[1] != k:
            raise DataError(
                f"cannot combine a confusion matrix over {known.shape[1]} classes with one over {k}"
            )
        state.declare("matrix", "sum", (k, k))[batch.slot] += cm
        self.count(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0:
            return Value.undefined("no rows")
        return self.score(state.data["matrix"][slot])

    def score(self, matrix: F64) -> Value:
        """The metric from one slot's ``(K, K)`` matrix."""
        raise NotImplementedError


# --------------------------------------------------------------------------
# A confusion matrix over the labels seen so far (scikit-learn's metrics)


# Labels below this bound are mapped by a lookup table (a few linear passes);
# others (negative, huge) by sorting, which costs 15 times more on a chunk.
_DENSE_LABELS = 1 << 16


def _label_cells(t: I64, p: I64) -> tuple[I64, I64]:
    """The sorted labels in ``t`` or ``p`` (``np.union1d``) and each row's cell ``i * K + j`` of the matrix."""
    if len(t):
        lo, hi = min(int(t.min()), int(p.min())), max(int(t.max()), int(p.max()))
        if lo >= 0 and hi < _DENSE_LABELS:
            seen = np.zeros(hi + 1, dtype=bool)
            seen[t] = True
            seen[p] = True
            labels = np.flatnonzero(seen).astype(np.int64)
            position = np.zeros(hi + 1, dtype=np.int64)
            position[labels] = np.arange(len(labels))
            return labels, position[t] * len(labels) + position[p]
    labels = np.union1d(t, p)
    return labels, np.searchsorted(labels, t) * len(labels) + np.searchsorted(labels, p)


def add_label_matrix(state: State, t: I64, p: I64, weight: F64 | None, slot: int) -> None:
    """Add a chunk's weighted (true label, decided label) pairs to the keyed ``matrix`` and ``seen``."""
    if len(t) and min(int(t.min()), int(p.min())) >= 0 and max(int(t.max()), int(p.max())) <= 1:
        # Binary labels, the common case: three counts, no label lookup.
        tb, pb = t.astype(bool), p.astype(bool)
        both = tb & pb
        n, nt, np_, n11 = len(t), np.count_nonzero(tb), np.count_nonzero(pb), np.count_nonzero(both)
        present = np.array([nt < n or np_ < n, nt + np_ > 0])
        if weight is None:
            counts = np.array([[n - nt - np_ + n11, np_ - n11], [nt - n11, n11]], dtype=np.float64)
        else:
            wt, wp, w11 = (float(np.add.reduce(weight, where=m)) for m in (tb, pb, both))
            total = float(np.add.reduce(weight))
            counts = np.array([[total - wt - wp + w11, wp - w11], [wt - w11, w11]])
        matrix = counts[np.ix_(present, present)]
        labels = np.flatnonzero(present).astype(np.int64)
        state.add_keyed("matrix", labels, matrix, slot)
        state.add_keyed("seen", labels, np.ones(len(labels)), slot)
        return
    labels, cells = _label_cells(t, p)
    known = state.keyed("matrix")
    if len(labels) > MAX_LABELS or (known is not None and len(np.union1d(known[0], labels)) > MAX_LABELS):
        raise DataError(
            f"more than {MAX_LABELS} distinct class labels; "
            "a confusion-matrix metric needs class labels, not a continuous target"
        )
    k = len(labels)
    counts = np.bincount(cells, minlength=k * k) if weight is None else np.bincount(cells, weights=weight, minlength=k * k)
    matrix = np.asarray(counts, dtype=np.float64).reshape(k, k)
    state.add_keyed("matrix", labels, matrix, slot)
    state.add_keyed("seen", labels, np.ones(k), slot)


def label_matrix(state: State, slot: int) -> tuple[I64, F64]:
    """The labels a slot saw and its confusion matrix over them (true labels are rows)."""
    keys, matrices = state.data["matrix"]
    seen = state.data["seen"][1][slot] > 0
    labels, matrix = keys, matrices[slot]
    if not seen.all():
        labels, matrix = keys[seen], matrix[np.ix_(seen, seen)]
    return labels, matrix


class KeyedMatrix(Accumulator):
    """Weighted confusion matrix over the labels seen so far (in ``y_true`` or the decisions).

    The labels are the sorted set scikit-learn's ``unique_labels`` gives
    (rows of weight zero included): ``y_true`` as integer labels (or the
    argmax of one-hot rows), decided by the argmax of a probability matrix,
    ``p > 0.5`` of a probability column, integer values kept as labels.
    ``matrix[i, j]`` is the weight of rows with true label ``keys[i]``
    decided as ``keys[j]``; ``seen[i]`` counts the chunks that saw
    ``keys[i]``, so that a slot knows its own labels among those of every
    slot. Memory: labels ** 2 floats a slot.
    """

    fields = {"matrix": "keyed", "seen": "keyed"}
    key = state_key("confusion.labels", "classes", {})

    def update(self, state: State, batch: Batch) -> None:
        add_label_matrix(state, true_classes(batch.y_true), predicted_classes(batch.y_pred), batch.weight, batch.slot)
        self.count(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0:
            return Value.undefined("no rows")
        labels, matrix = label_matrix(state, slot)
        if float(matrix.sum()) == 0.0:
            return Value.undefined("sum of weights is zero")
        return self.score(labels, matrix)

    def score(self, labels: I64, matrix: F64) -> Value:
        """The metric from one slot's labels and non-empty matrix."""
        raise NotImplementedError
