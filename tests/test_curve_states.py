"""The curve metrics' declared-array states: slots, saving, sharing by key, weights.

The values themselves are tested against scikit-learn and Keras in
test_curves.py; here, that the state arrays behave as the engine needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from lossctl.accumulate import Accumulator
from lossctl.batch import Batch
from lossctl.errors import DataError
from lossctl.registry import lookup, resolve_params
from lossctl.state import State, merge


def acc(name: str, **params: Any) -> Accumulator:
    entry = lookup(name)
    return entry.accumulator(resolve_params(entry, params), "metric")


def inputs(seed: int, n: int = 1200) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(float)
    s = np.round(rng.random(n), 2)
    ym = rng.integers(0, 2, (n, 3)).astype(float)
    sm = np.round(rng.random((n, 3)), 2)
    return y, s, ym, sm, rng.random(n) * 2


SPECS = [
    ("auc", {}),
    ("auc", {"curve": "PR"}),
    ("auc", {"multi_label": True}),
    ("auc", {"num_thresholds": 50, "curve": "PR"}),
    ("auc", {"num_thresholds": 200, "multi_label": True}),
    ("precision_at_recall", {"recall": 0.6}),
    ("recall_at_precision", {"precision": 0.5, "class_id": 1}),
]


@pytest.mark.parametrize(("name", "params"), SPECS, ids=[f"{n}{p}" for n, p in SPECS])
@pytest.mark.parametrize("weighted", [False, True])
def test_slots_are_independent_states_and_survive_saving(name: str, params: dict[str, Any], weighted: bool) -> None:
    y, s, ym, sm, w = inputs(1)
    yt, yp = (ym, sm) if params.get("multi_label") or "class_id" in params else (y, s)
    a = acc(name, **params)
    slotted, alone = a.new(3), [a.new() for _ in range(3)]
    for start in range(0, len(y), 100):
        for g in range(3):
            rows = np.arange(start, min(start + 100, len(y)))
            rows = rows[rows % 3 == g]
            weight = w[rows] if weighted else None
            a.update(slotted, Batch(yt[rows], yp[rows], weight, g))
            a.update(alone[g], Batch(yt[rows], yp[rows], weight))
    expected = [a.finish(st) for st in alone]
    assert all(v.value is not None for v in expected)
    assert [a.finish(slotted, g) for g in range(3)] == expected
    loaded = State.from_arrays(slotted.layout(), slotted.to_arrays())
    a.check(loaded)
    assert [a.finish(loaded, g) for g in range(3)] == expected
    assert sum(loaded.rows(g) for g in range(3)) == len(y)


@pytest.mark.parametrize("weighted", [False, True])
def test_roc_and_pr_share_one_exact_state(weighted: bool) -> None:
    y, s, _, _, w = inputs(2)
    roc, pr = acc("auc"), acc("auc", curve="PR")
    assert roc.key == pr.key == acc("auc", from_logits=True).key
    assert acc("auc", multi_label=True).key != roc.key
    shared = roc.new()
    for start in range(0, len(y), 250):
        part = slice(start, start + 250)
        roc.update(shared, Batch(y[part], s[part], w[part] if weighted else None))
    weight = w if weighted else None
    # Finishing one may consolidate the chunks; the other still sees every score.
    for _ in range(2):
        assert pr.finish(shared).value == pytest.approx(average_precision_score(y, s, sample_weight=weight), rel=1e-12)
        assert roc.finish(shared).value == pytest.approx(roc_auc_score(y, s, sample_weight=weight), rel=1e-12)


def test_bucketed_specs_share_a_state_when_their_thresholds_agree() -> None:
    keys = {
        acc("auc", num_thresholds=200).key,
        acc("auc", num_thresholds=200, curve="PR", summation_method="minoring").key,
    }
    assert len(keys) == 1
    assert acc("auc", num_thresholds=100).key not in keys
    ops = [
        acc("precision_at_recall", recall=0.6),
        acc("recall_at_precision", precision=0.2),
        acc("sensitivity_at_specificity", specificity=0.1),
        acc("specificity_at_sensitivity", sensitivity=0.9),
    ]
    assert len({o.key for o in ops}) == 1 and ops[0].key not in keys
    assert acc("precision_at_recall", recall=0.6, class_id=1).key != ops[0].key
    assert acc("precision_at_recall", recall=0.6, num_thresholds=7).key != ops[0].key
    y, s, _, _, _ = inputs(3)
    shared = ops[0].new()
    ops[0].update(shared, Batch(y, s))
    for op in ops:
        alone = op.new()
        op.update(alone, Batch(y, s))
        assert op.finish(shared) == op.finish(alone)


@pytest.mark.parametrize("params", [{}, {"num_thresholds": 20}])
def test_label_columns_must_agree(params: dict[str, Any]) -> None:
    _, _, ym, sm, _ = inputs(4)
    a = acc("auc", multi_label=True, **params)
    three, two = a.new(), a.new()
    a.update(three, Batch(ym, sm))
    with pytest.raises(DataError, match="auc: cannot combine 3 label columns with 2"):
        a.update(three, Batch(ym[:, :2], sm[:, :2]))
    a.update(two, Batch(ym[:, :2], sm[:, :2]))
    with pytest.raises(DataError, match="cannot combine"):
        merge(three, two)


@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_rows_without_weights_weigh_one_in_a_weighted_state(curve: str) -> None:
    y, s, _, _, w = inputs(5)
    a = acc("auc", curve=curve)
    oracle = roc_auc_score if curve == "ROC" else average_precision_score
    for weighted_first in (False, True):
        state = a.new()
        first, second = slice(0, 700), slice(700, None)
        a.update(state, Batch(y[first], s[first], w[first] if weighted_first else None))
        a.update(state, Batch(y[second], s[second], None if weighted_first else w[second]))
        ones = w.copy()
        ones[second if weighted_first else first] = 1.0
        assert a.finish(state).value == pytest.approx(oracle(y, s, sample_weight=ones), rel=1e-12)
    # Merged, the unweighted rows' place among the scores is lost: an error, never a wrong number.
    weighted, plain = a.new(), a.new()
    a.update(weighted, Batch(y[:700], s[:700], w[:700]))
    a.update(plain, Batch(y[700:], s[700:]))
    with pytest.raises(DataError, match="rows with weights and rows without"):
        a.finish(merge(weighted, plain))


def test_unweighted_exact_state_keeps_no_weights() -> None:
    y, s, _, _, _ = inputs(6)
    a = acc("auc")
    state = a.new()
    for start in range(0, len(y), 300):
        a.update(state, Batch(y[start : start + 300], s[start : start + 300]))
    assert not any(name.startswith(("pos_w", "neg_w")) for name in state.names())
    assert int(state.get("positives")[0, 0]) == int(y.sum())
