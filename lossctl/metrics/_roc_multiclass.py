"""scikit-learn's ROC AUC variants: the standardized partial AUC (``max_fpr``) and one-vs-one.

``partial_roc_auc`` is ``roc_auc_score(..., max_fpr=m)`` (McClish's
standardization of the area under the ROC curve up to a false-positive rate
of ``m``). :class:`OneVsOneAUC` is ``roc_auc_score(..., multi_class="ovo")``
(Hand & Till): for every pair of classes ``a, b``, the mean of the AUC of
class ``a``'s score separating ``a`` from ``b`` and of class ``b``'s score
separating ``b`` from ``a``, over the rows labelled ``a`` or ``b``; then the
mean over pairs (``macro``) or weighted by the pairs' prevalence.
"""

from __future__ import annotations

import numpy as np

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import F64, Batch
from lossctl.errors import DataError
from lossctl.metrics._labels import layout
from lossctl.metrics._sorting import _concat, exact_roc_auc
from lossctl.state import State


def roc_points(pos: F64, neg: F64, pos_w: F64 | None, neg_w: F64 | None) -> tuple[F64, F64]:
    """``(fpr, tpr)`` at every distinct score, from the highest down, starting at (0, 0)."""
    scores = np.concatenate([pos, neg])
    wp = np.concatenate([np.ones(len(pos)) if pos_w is None else pos_w, np.zeros(len(neg))])
    wn = np.concatenate([np.zeros(len(pos)), np.ones(len(neg)) if neg_w is None else neg_w])
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each distinct score
    tps, fps = np.cumsum(wp[order])[last], np.cumsum(wn[order])[last]
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def partial_roc_auc(pos: F64, neg: F64, pos_w: F64 | None, neg_w: F64 | None, max_fpr: float) -> tuple[float | None, str]:
    """scikit-learn's standardized partial ROC AUC up to ``max_fpr`` (McClish correction).

    Formula: ``0.5 * (1 + (A - m**2 / 2) / (m - m**2 / 2))``, ``A`` the area
    under the ROC curve for ``fpr <= m``, interpolated linearly at ``m``.
    """
    wp = float(len(pos)) if pos_w is None else float(pos_w.sum())
    wn = float(len(neg)) if neg_w is None else float(neg_w.sum())
    if wp == 0.0 or wn == 0.0:
        return None, "y_true holds only one class"
    if np.isnan(pos).any() or np.isnan(neg).any():
        return None, "NaN scores"
    fpr, tpr = roc_points(pos, neg, pos_w, neg_w)
    stop = int(np.searchsorted(fpr, max_fpr, side="right"))
    if stop >= len(fpr):
        area = float(np.trapezoid(tpr, fpr))
    else:
        at = float(np.interp(max_fpr, fpr[stop - 1 : stop + 1], tpr[stop - 1 : stop + 1]))
        area = float(np.trapezoid(np.r_[tpr[:stop], at], np.r_[fpr[:stop], max_fpr]))
    low, high = 0.5 * max_fpr**2, max_fpr
    return 0.5 * (1.0 + (area - low) / (high - low)), ""


class OneVsOneAUC(Accumulator):
    """Every score kept by (true class, score column): ``s.i.j`` (``concat``), ``w.i.j`` with weights.

    Integer labels ``(N,)`` or one-hot rows against a probability matrix
    ``(N, C)``. Memory: ``C`` floats a row (8 C bytes, 16 C with weights).
    One score column is a binary AUC: ``inner`` (the exact AUC) gives it.
    """

    def __init__(self, inner: Accumulator, average: str = "macro", owner: str = "auc") -> None:
        self.inner = inner
        self.owner = owner
        self.average = average
        self.fields = {**inner.fields, "classes": "sum", "s.*": "concat", "w.*": "concat"}
        self.key = state_key("exact_auc", "scores_by_label_and_column", {"inner": inner.key})

    def update(self, state: State, batch: Batch) -> None:
        lay = layout(batch, self.owner)
        if lay == "column":
            self.inner.update(state, batch)
            return
        if lay == "dense" and not bool(np.all(batch.y_true.sum(axis=1) == 1)):
            raise DataError(f"{self.owner}: multi_class=ovo needs one class per row (integer labels or one-hot rows)")
        p = batch.y_pred
        k = p.shape[1]
        labels = batch.y_true.astype(np.intp) if lay == "sparse" else np.argmax(batch.y_true, axis=1)
        seen = state.get("classes")
        if seen is not None and seen.shape[1] != k:
            raise DataError(f"{self.owner}: cannot combine {seen.shape[1]} classes with {k}")
        state.declare("classes", "sum", (k,))[batch.slot] += np.bincount(labels, minlength=k)[:k]
        w = batch.weight
        for i in range(k):
            rows = np.flatnonzero(labels == i)
            for j in range(k):
                state.append(f"s.{i}.{j}", batch.slot, p[rows, j])
                if w is not None:
                    state.append(f"w.{i}.{j}", batch.slot, w[rows] if w.ndim == 1 else w[rows, j])
        self.count(state, batch)

    def _scores(self, state: State, slot: int, i: int, j: int) -> tuple[F64, F64 | None]:
        s = _concat(state.chunks(f"s.{i}.{j}", slot))
        if f"w.{i}.{j}" not in state.data:
            return s, None
        return s, _concat(state.chunks(f"w.{i}.{j}", slot))

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.get("classes") is None and state.rows(slot):
            return self.inner.finish(state, slot)
        if state.rows(slot) == 0 or state.get("classes") is None:
            return Value.undefined("no rows")
        counts = state.data["classes"][slot]
        present = np.flatnonzero(counts > 0)
        if len(present) < 2:
            return Value.undefined("AUC is undefined: y_true holds fewer than two classes")
        values, weights = [], []
        for ai, a in enumerate(present):
            for b in present[ai + 1 :]:
                pair = []
                for x, y in ((a, b), (b, a)):
                    pos, pos_w = self._scores(state, slot, x, x)
                    neg, neg_w = self._scores(state, slot, y, x)
                    value, why = exact_roc_auc(pos, neg, pos_w, neg_w)
                    if value is None:
                        return Value.undefined(f"AUC is undefined for classes {a} and {b}: {why}")
                    pair.append(value)
                values.append(sum(pair) / 2.0)
                weights.append(float(counts[a] + counts[b]))
        if self.average == "weighted":
            return Value.of(float(np.average(values, weights=weights)))
        return Value.of(float(np.mean(values)))
