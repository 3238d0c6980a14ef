"""AUC, the area under the ROC or precision-recall curve (SPEC sections 3, 4, 7).

``auc`` is exact by default, a deliberate difference from Keras (SPEC
section 4): the state keeps every score, split by class, so no label needs
storing, and the result equals scikit-learn's ``roc_auc_score`` (the
Mann-Whitney statistic, ties counted 1/2) or ``average_precision_score``
(``curve=PR``). ``auc:num_thresholds=N`` reproduces Keras's bucketed
approximation with a constant-memory histogram (:mod:`lossctl.metrics._buckets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import F64, Batch
from lossctl.errors import DataError, UsageProblem
from lossctl.metrics._auc_replicates import pr_replicates, roc_replicates
from lossctl.metrics._buckets import BucketedAUC
from lossctl.metrics._curve_math import (
    binary_columns,
    check_probabilities,
    flat_label_weights,
    label_weighted_mean,
)
from lossctl.metrics._labels import check_labels
from lossctl.metrics._roc_multiclass import OneVsOneAUC, partial_roc_auc
from lossctl.metrics._sorting import (
    _compact_tail,
    _concat,
    _consolidate,
    _has_nan,
    _roc_auc_on_two_cores,
    _run_starts,
    _sort_both,
    _sorted_classes,
    exact_roc_auc,
)
from lossctl.params import Applies, NumbersParam, Param, several_columns
from lossctl.registry import Example, MetricDef, register
from lossctl.state import State

# --------------------------------------------------------------------------
# Exact AUC: scores kept per class


class ExactAUC(Accumulator):
    """Every score, split into positives and negatives per label column.

    Arrays, per label column ``j`` (all ``concat``): ``pos.j`` and ``neg.j``,
    the scores of the positive and negative cells, and with ``--weight``
    ``pos_w.j`` and ``neg_w.j``, their weights, aligned chunk by chunk;
    ``positives`` (``sum``, ``(K,)``) counts the positive cells kept and fixes
    the number of label columns. Memory: one float64 per row (8 bytes; the
    class is where a score is stored, so no label is kept), 16 with weights.

    A state with no weight arrays is unweighted. A run is weighted on every
    chunk or on none (the weight column is part of the plan); should one
    state still see both, rows without weights weigh 1, materialised when
    the other kind of chunk arrives, so the weights stay aligned.

    The curve is not in the key: ``auc`` and ``auc:curve=PR`` over the same
    columns share one state. ``finish`` may leave a slot's chunk lists holding
    one sorted array each (the same multiset), so a second result sorts nothing.
    """

    fields = {
        "positives": "sum",
        "pos.*": "concat",
        "neg.*": "concat",
        "pos_w.*": "concat",
        "neg_w.*": "concat",
        "pos_r.*": "concat",
        "neg_r.*": "concat",
    }
    # With --ci, pos_r.j and neg_r.j hold the rows' global numbers (8 bytes a
    # row more): the replicates' weights are regenerated from them.
    keeps_rows = True

    def __init__(
        self,
        curve: str,
        multi_label: bool,
        owner: str = "auc",
        max_fpr: float | None = None,
        label_weights: tuple[float, ...] | None = None,
    ) -> None:
        self.owner = owner
        self.curve = curve
        self.multi_label = multi_label
        # Finishing only: scikit-learn's partial AUC, Keras's weights of the label columns' AUCs.
        self.max_fpr = None if max_fpr is None or max_fpr >= 1.0 else float(max_fpr)
        self.label_weights = label_weights
        self.key = state_key("exact_auc", "scores_by_class", {"multi_label": multi_label})

    def update(self, state: State, batch: Batch) -> None:
        truth, scores, w = binary_columns(batch, self.owner, multi_label=self.multi_label)
        if self.label_weights is not None and not self.multi_label:
            w = flat_label_weights(batch, w, self.label_weights, self.owner)
        k = truth.shape[1]
        seen = state.get("positives")
        if seen is not None and seen.shape[1] != k:
            raise DataError(f"{self.owner}: cannot combine {seen.shape[1]} label columns with {k}")
        positives = state.declare("positives", "sum", (k,), dtype=np.int64)
        rows = batch.rows
        if rows is not None and len(rows) != len(truth):
            # A flattened label matrix: each row's cells, row after row, share its number.
            rows = np.repeat(rows, len(truth) // len(rows))
        if w is not None and w.ndim == 1:
            # Zero-weight rows change no sum: drop them to save memory.
            keep = w > 0
            if not keep.all():
                truth, scores, w = truth[keep], scores[keep], w[keep]
                rows = None if rows is None else rows[keep]
        slot = batch.slot
        for j in range(k):
            t, s = truth[:, j], scores[:, j]
            wj = None if w is None else (w if w.ndim == 1 else w[:, j])  # a weight per cell: its column's
            # Gather by index, not by boolean mask: on mixed labels a mask's
            # branches mispredict, and it was 3x slower.
            at_pos, at_neg = np.flatnonzero(t), np.flatnonzero(~t)
            positives[slot, j] += at_pos.size
            _keep(state, slot, f"pos.{j}", f"pos_w.{j}", s.take(at_pos), None if wj is None else wj.take(at_pos))
            _keep(state, slot, f"neg.{j}", f"neg_w.{j}", s.take(at_neg), None if wj is None else wj.take(at_neg))
            if rows is not None:
                _compact_tail(state.append(f"pos_r.{j}", slot, rows.take(at_pos)))
                _compact_tail(state.append(f"neg_r.{j}", slot, rows.take(at_neg)))
        self.count(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        positives = state.get("positives")
        if state.rows(slot) == 0 or positives is None:
            return Value.undefined("no rows")
        k = positives.shape[1]
        weighted = "pos_w.0" in state.kinds
        values: list[float] = []
        for j in range(k):
            where = f" for label column {j}" if k > 1 else ""
            pos_parts, neg_parts = state.chunks(f"pos.{j}", slot), state.chunks(f"neg.{j}", slot)
            if f"pos_r.{j}" in state.kinds:
                # Row numbers are aligned with the scores: sort copies, never the state.
                pos_parts, neg_parts = [_concat(pos_parts)], [_concat(neg_parts)]
            if weighted:
                pw = self._weights(state.chunks(f"pos_w.{j}", slot), pos_parts)
                nw = self._weights(state.chunks(f"neg_w.{j}", slot), neg_parts)
                pos, neg = _concat(pos_parts), _concat(neg_parts)
            elif self.curve == "ROC" and self.max_fpr is None:
                # The common case: both cores sort and count (see _roc_auc_on_two_cores).
                value, why = _roc_auc_on_two_cores(pos_parts, neg_parts)
                if value is None:
                    return Value.undefined(f"AUC is undefined{where}: {why}")
                values.append(value)
                continue
            else:
                # Keep the scores sorted in one piece: the same multiset, so the
                # state is unchanged, but the chunks are moved into one array as
                # they are copied (memory stays near one copy of the scores), and
                # a second finish need not sort again.
                pw = nw = None
                pos, neg = _consolidate(pos_parts), _consolidate(neg_parts)
                _sort_both(pos, neg)
            if self.curve == "PR":
                value, why = exact_average_precision(pos, neg, pw, nw)
            elif self.max_fpr is not None:
                value, why = partial_roc_auc(pos, neg, pw, nw, self.max_fpr)
            else:
                value, why = exact_roc_auc(pos, neg, pw, nw)
            if value is None:
                return Value.undefined(f"AUC is undefined{where}: {why}")
            values.append(value)
        if self.label_weights is not None and self.multi_label:
            return Value.of(label_weighted_mean(values, self.label_weights, self.owner))
        return Value.of(float(np.mean(values)))

    def finish_replicates(self, state: State, slot: int, weigh: Any, replicates: int) -> list[Value]:
        """Every replicate's AUC from the kept scores and row numbers, the scores sorted once."""
        positives = state.get("positives")
        if state.rows(slot) == 0 or positives is None:
            return [Value.undefined("no rows")] * replicates
        weighted = "pos_w.0" in state.kinds
        per_column = []
        for j in range(positives.shape[1]):
            pos_parts, neg_parts = state.chunks(f"pos.{j}", slot), state.chunks(f"neg.{j}", slot)
            row_parts = [*state.chunks(f"pos_r.{j}", slot), *state.chunks(f"neg_r.{j}", slot)]
            if sum(len(r) for r in row_parts) != sum(len(p) for p in (*pos_parts, *neg_parts)):
                raise DataError(f"{self.owner}: the state holds no row numbers for --ci")
            base = None
            if weighted:
                base = np.concatenate([
                    self._weights(state.chunks(f"pos_w.{j}", slot), pos_parts),
                    self._weights(state.chunks(f"neg_w.{j}", slot), neg_parts),
                ])
            if self.curve == "PR":
                pos, neg, rows = _concat(pos_parts), _concat(neg_parts), np.concatenate(row_parts)
                per_column.append(pr_replicates(pos, neg, rows, base, weigh, replicates, exact_average_precision))
            else:
                per_column.append(roc_replicates(pos_parts, neg_parts, row_parts, base, weigh, replicates))
        values = np.mean(per_column, axis=0)
        return [
            Value.of(v) if np.isfinite(v) else Value.undefined("AUC is undefined in this replicate")
            for v in values.tolist()
        ]

    def _weights(self, weights: list[F64], scores: list[F64]) -> F64:
        """The weights of a slot's scores, in order; 1 for every score of a slot stored without."""
        n, n_w = sum(len(p) for p in scores), sum(len(p) for p in weights)
        if n_w == n:
            return _concat(weights)
        if n_w == 0:
            return np.ones(n)
        # Only a merge of a weighted with an unweighted state gets here: where
        # the unweighted rows are among the scores is no longer known.
        raise DataError(f"{self.owner}: cannot combine rows with weights and rows without")


def _keep(state: State, slot: int, name: str, weight_name: str, scores: F64, weights: F64 | None) -> None:
    """Append a chunk's scores (and weights) to one class of one label column."""
    parts = state.append(name, slot, scores)
    if weights is None:
        stored = state.data.get(weight_name)
        if stored is None or len(stored[slot]) != len(parts) - 1:
            # Unweighted (or weights that no longer line up: finish reports those).
            _compact_tail(parts)
            return
        # Earlier chunks of this slot carry weights: this one's rows weigh 1.
        weights = np.ones(len(scores))
    wparts = state.append(weight_name, slot, weights)
    if len(wparts) == 1 < len(parts):
        # Earlier chunks came without weights: they weigh 1.
        wparts[:0] = [np.ones(len(p)) for p in parts[:-1]]
    _compact_tail(parts, wparts if len(wparts) == len(parts) else None)


def exact_average_precision(
    pos: F64, neg: F64, pos_w: F64 | None, neg_w: F64 | None
) -> tuple[float | None, str]:
    """Average precision, the step sum scikit-learn's ``average_precision_score`` takes.

    Formula: ``sum over distinct positive scores t (descending) of
    (recall(t) - recall(t_prev)) * precision(t)``, with ``precision(t) =
    TP(>= t) / (TP(>= t) + FP(>= t))``: thresholds where only negatives lie
    add no recall and so nothing to the sum.

    Returns:
        ``(value, "")`` or ``(None, reason)``.
    """
    pos, pos_w, neg, neg_w = _sorted_classes(pos, pos_w, neg, neg_w)
    if _has_nan(pos, neg):
        return None, "NaN scores"
    if pos.size == 0 or (pos_w is not None and float(pos_w.sum()) == 0.0):
        return None, "no positive labels (Keras reports 0)"
    # Each distinct positive score is a run in the sorted positives.
    runs = _run_starts(pos)
    starts, ends = runs[:-1], runs[1:]
    neg_below = np.searchsorted(neg, pos[starts], side="left")
    if pos_w is None and neg_w is None:
        tp = (pos.size - starts).astype(np.float64)
        fp = (neg.size - neg_below).astype(np.float64)
        gained = (ends - starts).astype(np.float64)
        total = float(pos.size)
    else:
        assert pos_w is not None and neg_w is not None
        cum_p = np.concatenate(([0.0], np.cumsum(pos_w)))
        cum_n = np.concatenate(([0.0], np.cumsum(neg_w)))
        total = float(cum_p[-1])
        tp = total - cum_p[starts]
        fp = cum_n[-1] - cum_n[neg_below]
        gained = cum_p[ends] - cum_p[starts]
    used = gained > 0
    return float(np.sum(gained[used] / total * (tp[used] / (tp[used] + fp[used])))), ""


# --------------------------------------------------------------------------
# auc


def _auc_state(params: Mapping[str, Any]) -> Accumulator:
    curve, method = params["curve"], params["summation_method"]
    n, thresholds = params["num_thresholds"], params.get("thresholds")
    multi_class, max_fpr = params.get("multi_class", "none"), params.get("max_fpr")
    label_weights = params.get("label_weights")
    multi_label = bool(params["multi_label"]) or multi_class == "ovr"
    bucketed = n is not None or thresholds is not None
    if max_fpr is not None and (curve != "ROC" or bucketed or multi_class == "ovo"):
        raise UsageProblem("auc: max_fpr applies to the exact ROC AUC (scikit-learn's), without num_thresholds or thresholds")
    if multi_class == "ovo":
        if bucketed or curve != "ROC" or label_weights is not None:
            raise UsageProblem("auc: multi_class=ovo is scikit-learn's exact ROC AUC; it takes no thresholds, curve=PR or label_weights")
        return OneVsOneAUC(ExactAUC(curve, multi_label))
    if not bucketed:
        if method != "interpolation":
            raise UsageProblem(
                f"auc: summation_method={method} applies to the bucketed AUC; give num_thresholds "
                f"too (e.g. auc:num_thresholds=200:summation_method={method})"
            )
        return ExactAUC(curve, multi_label, max_fpr=max_fpr, label_weights=label_weights)
    return BucketedAUC(
        int(n or 0), curve, method, from_logits=bool(params["from_logits"]), multi_label=multi_label,
        thresholds=thresholds, label_weights=label_weights,
    )


def _auc_validate(batch: Batch, **params: Any) -> None:
    check_labels(batch, "auc")
    if params.get("num_thresholds") is not None and not params.get("from_logits"):
        check_probabilities(batch.y_pred, "auc")


register(
    MetricDef(
        name="auc",
        kind="metric",
        task="binary|multilabel",
        direction="max",
        formula=(
            "ROC: P(score of a positive > score of a negative), ties 1/2 (weighted pairs); "
            "PR: sum over thresholds of (recall_k - recall_k-1) * precision_k; "
            "num_thresholds=N: Keras's Riemann sum over N bucketed thresholds"
        ),
        summary="Area under the ROC or precision-recall curve (exact unless num_thresholds is given).",
        inputs=(
            "y_true 0/1 labels, y_pred scores: (N,), or (N, C) cells flattened (per column with "
            "multi_label); integer labels (N,) against (N, C) are one-hot first"
        ),
        params=(
            Param(
                "num_thresholds",
                None,
                int,
                "none: exact AUC; N: Keras's approximation over N thresholds (Keras's default is 200)",
                low=2,
                optional=True,
            ),
            Param("curve", "ROC", str, "ROC or PR (precision-recall)", choices=("ROC", "PR")),
            Param(
                "summation_method",
                "interpolation",
                str,
                "Riemann sum of the bucketed AUC",
                choices=("interpolation", "minoring", "majoring"),
            ),
            Param("from_logits", False, bool, "y_pred are logits (sigmoid applied before bucketing)"),
            Param(
                "multi_label",
                False,
                bool,
                "one AUC per label column, then their mean",
                applies=Applies(
                    several_columns,
                    "several label columns",
                    "with one column there is one AUC, the same either way",
                ),
            ),
            NumbersParam(
                "thresholds",
                None,
                tuple,
                "Keras's thresholds=[...]: the bucketed AUC over these thresholds (joined by '+', e.g. "
                "0.25+0.5+0.75) and -eps, 1 + eps, instead of num_thresholds evenly spaced ones",
                low=0.0,
                high=1.0,
                optional=True,
            ),
            NumbersParam(
                "label_weights",
                None,
                tuple,
                "Keras's label_weights, one per label column (joined by '+'): with multi_label the "
                "weights of the columns' AUCs in their mean, else of each column's cells",
                low=0.0,
                optional=True,
                applies=Applies(
                    several_columns,
                    "several label columns",
                    "with one column its weight scales every cell alike and changes nothing",
                ),
            ),
            Param(
                "multi_class",
                "none",
                str,
                "scikit-learn's multiclass ROC AUC on a probability matrix: ovr (one column against "
                "the rest, then the mean: multi_label), ovo (Hand & Till's mean over pairs of "
                "classes); none: Keras's AUC over the flattened cells",
                choices=("none", "ovr", "ovo"),
                applies=Applies(
                    several_columns,
                    "a probability matrix with class labels",
                    "with one column there is one AUC, the same either way",
                ),
            ),
            Param(
                "max_fpr",
                None,
                float,
                "scikit-learn's standardized partial ROC AUC over false-positive rates up to max_fpr "
                "(McClish); 1 or none: the whole curve",
                low=0.0,
                high=1.0,
                low_open=True,
                optional=True,
            ),
        ),
        keras="keras.metrics.AUC",
        sklearn="sklearn.metrics.roc_auc_score / average_precision_score (curve=PR)",
        state=_auc_state,
        memory=(
            "exact (default): 8 bytes a row (one float64 score, stored by class), 16 with "
            "--weight; multi_class=ovo: C floats a row (C classes); num_thresholds=N: 2N floats per label column"
        ),
        shapes="any",
        element_weights=True,
        validate=_auc_validate,
        deviations=(
            "Exact by default: the ROC AUC equals scikit-learn's roc_auc_score (ties count "
            "1/2) and curve=PR gives scikit-learn's average_precision_score (a step sum, not "
            "Keras's interpolation); Keras always buckets scores into num_thresholds=200. "
            "auc:num_thresholds=200 reproduces Keras. The exact AUC depends only on the order "
            "of the scores, so from_logits changes nothing there. An AUC over one class is "
            "null where Keras reports 0. Scores outside [0, 1] are an error with num_thresholds "
            "(Keras clips them) unless from_logits=true. multi_class=ovr|ovo and max_fpr follow "
            "scikit-learn's roc_auc_score (ovo also with weights, which scikit-learn refuses)."
        ),
        example=Example([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    )
)
