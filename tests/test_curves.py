"""AUC and the operating-point metrics against scikit-learn, Keras's formulas and reference vectors.

Oracles: scikit-learn's roc_auc_score / average_precision_score for the exact
AUC; for the bucketed metrics an independent re-implementation of Keras's
unoptimised path (one comparison ``p > t`` per threshold, written with plain
loops here) and Keras's docstring examples.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

import lossctl
from lossctl.accumulate import Value
from lossctl.batch import Batch
from lossctl.cli.main import cli
from lossctl.errors import UsageProblem, ValueProblem
from lossctl.registry import lookup, resolve_params

VECTORS = json.loads((Path(__file__).parent / "data" / "keras_vectors.json").read_text())["vectors"]
OWNED = {"auc", "precision_at_recall", "recall_at_precision", "sensitivity_at_specificity", "specificity_at_sensitivity"}


def _canonical(spec: str) -> str | None:
    try:
        return lookup(spec.split(":")[0]).name
    except UsageProblem:
        return None


MINE = [v for v in VECTORS if _canonical(v["spec"]) in OWNED]


def run(name: str, y_true: Any, y_pred: Any, weight: Any = None, **params: Any) -> Value:
    entry = lookup(name)
    resolved = resolve_params(entry, params)
    state = entry.make_state(resolved, "metric")
    batch = Batch(
        np.asarray(y_true, dtype=np.float64),
        np.asarray(y_pred, dtype=np.float64),
        None if weight is None else np.asarray(weight, dtype=np.float64),
    )
    assert entry.validate is not None
    entry.validate(batch, **resolved)
    state.update(batch)
    return state.result()


def close(a: float | None, b: float, tol: float = 1e-9) -> bool:
    assert a is not None
    return abs(a - b) <= tol * max(abs(b), 1.0)


# --------------------------------------------------------------------------
# Reference vectors


@pytest.mark.parametrize("vector", MINE, ids=lambda v: v["id"])
def test_reference_vector(vector: dict[str, Any]) -> None:
    got = lossctl.get(vector["spec"])(vector["y_true"], vector["y_pred"], vector["sample_weight"])
    tol = 1e-9 if vector["contract_follows"] == "sklearn" else 1e-6
    assert got is not None
    assert abs(got - vector["expected"]) <= tol * abs(vector["expected"]), (got, vector["expected"])


def test_reference_vectors_cover_exact_and_bucketed() -> None:
    follows = {v["contract_follows"] for v in MINE if _canonical(v["spec"]) == "auc"}
    assert follows == {"sklearn", "keras"}
    assert len(MINE) == 23


# --------------------------------------------------------------------------
# Exact AUC == scikit-learn


def data(seed: int, n: int = 500, decimals: int | None = None, weights: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(0.25 * y + rng.random(n) * 0.75, 0, 1)
    if decimals is not None:
        s = np.round(s, decimals)
    w = None
    if weights == "float":
        w = rng.random(n) * 4.0
    elif weights == "int":
        w = rng.integers(0, 5, n).astype(float)
    return y, s, w


@pytest.mark.parametrize("weights", [None, "float", "int"])
@pytest.mark.parametrize("decimals", [None, 1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_auc_equals_sklearn(weights: str | None, decimals: int | None, seed: int) -> None:
    y, s, w = data(seed, decimals=decimals, weights=weights)
    assert close(lossctl.get("auc")(y, s, w), roc_auc_score(y, s, sample_weight=w))
    assert close(lossctl.get("auc:curve=PR")(y, s, w), average_precision_score(y, s, sample_weight=w))


@settings(deadline=None, max_examples=200)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 6), st.integers(0, 3)),
        min_size=2,
        max_size=40,
    )
)
def test_exact_auc_equals_sklearn_on_heavy_ties(rows: list[tuple[int, int, int]]) -> None:
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] / 6.0 for r in rows])
    w = np.array([float(r[2]) for r in rows])
    if len(set(y[w > 0])) < 2:
        assert lossctl.get("auc")(y, s, w) is None
        return
    assert close(lossctl.get("auc")(y, s, w), roc_auc_score(y, s, sample_weight=w))
    assert close(lossctl.get("auc:curve=PR")(y, s, w), average_precision_score(y, s, sample_weight=w))
    if len(set(y)) == 2:
        assert close(lossctl.get("auc")(y, s), roc_auc_score(y, s))
        assert close(lossctl.get("auc:curve=PR")(y, s), average_precision_score(y, s))


def test_exact_auc_uses_logits_directly() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    logits = rng.normal(size=300) * 30 + y  # sigmoid would saturate (and tie) many of these
    assert close(lossctl.get("auc:from_logits=true")(y, logits), roc_auc_score(y, logits))


def test_matrix_inputs_flatten_or_average_per_label() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, (200, 3))
    s = np.round(np.clip(0.3 * y + rng.random((200, 3)) * 0.7, 0, 1), 2)
    w = rng.random(200)
    flat = roc_auc_score(y.ravel(), s.ravel(), sample_weight=np.repeat(w, 3))
    assert close(lossctl.get("auc")(y, s, w), flat)
    assert close(lossctl.get("auc:multi_label=true")(y, s, w), roc_auc_score(y, s, average="macro", sample_weight=w))
    assert close(
        lossctl.get("auc:multi_label=true:curve=PR")(y, s, w),
        average_precision_score(y, s, average="macro", sample_weight=w),
    )
    # Integer labels against a matrix are one-hot first.
    labels = rng.integers(0, 3, 200)
    probs = rng.dirichlet([1, 1, 1], 200)
    assert close(lossctl.get("auc")(labels, probs), roc_auc_score(np.eye(3)[labels].ravel(), probs.ravel()))


def test_auc_of_one_class_is_undefined() -> None:
    value = run("auc", [1, 1, 1], [0.2, 0.5, 0.9])
    assert value.value is None and value.note is not None and "Keras reports 0" in value.note
    assert run("auc", [0, 1, 0], [0.2, 0.5, 0.9], [1.0, 0.0, 1.0]).value is None
    assert run("auc:curve=PR".split(":")[0], [0, 0], [0.2, 0.5], curve="PR").value is None
    labels_2d = run("auc", [[1, 0], [1, 1]], [[0.2, 0.3], [0.4, 0.9]], multi_label=True)
    assert labels_2d.value is None and labels_2d.note is not None and "label column 0" in labels_2d.note


def test_exact_state_keeps_eight_bytes_a_row() -> None:
    y, s, _ = data(5, n=1000)
    entry = lookup("auc")
    state = entry.make_state(entry.defaults())
    state.update(Batch(y.astype(float), s))
    kept = state.state.chunks("pos.0", 0) + state.state.chunks("neg.0", 0)
    assert sum(a.nbytes for a in kept) == 8 * 1000
    # One label column, no weights: nothing else grows with the rows.
    assert sorted(state.state.kinds) == ["neg.0", "pos.0", "positives", "rows"]


def test_summation_method_needs_num_thresholds() -> None:
    with pytest.raises(UsageProblem, match="give num_thresholds"):
        lossctl.get("auc:summation_method=minoring")([0, 1], [0.1, 0.9])


# --------------------------------------------------------------------------
# Keras's bucketed AUC


def keras_counts(y: np.ndarray, s: np.ndarray, w: np.ndarray | None, thresholds: list[float]) -> tuple[list[float], ...]:
    """Keras's unoptimised path: one comparison p > t per threshold."""
    w = np.ones(len(y)) if w is None else w
    tp, fp, tn, fn = [], [], [], []
    for t in thresholds:
        pos = s > t
        tp.append(float(np.sum(w * (y == 1) * pos)))
        fp.append(float(np.sum(w * (y == 0) * pos)))
        tn.append(float(np.sum(w * (y == 0) * ~pos)))
        fn.append(float(np.sum(w * (y == 1) * ~pos)))
    return tp, fp, tn, fn


def dnn(a: float, b: float) -> float:
    return 0.0 if b == 0 else a / b


def keras_auc_oracle(y: np.ndarray, s: np.ndarray, w: np.ndarray | None, n: int, curve: str, method: str) -> float:
    thresholds = [-1e-7] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + 1e-7]
    tp, fp, tn, fn = keras_counts(y, s, w, thresholds)
    total = 0.0
    for i in range(n - 1):
        if curve == "PR" and method == "interpolation":
            # Davis & Goadrich interpolation, as derived in Keras's docstring.
            dtp = tp[i] - tp[i + 1]
            pa, pb = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
            slope = dnn(dtp, max(pa - pb, 0.0))
            intercept = tp[i + 1] - slope * pb
            ratio = dnn(pa, pb) if pa > 0 and pb > 0 else 1.0
            total += dnn(slope * (dtp + intercept * math.log(ratio)), tp[i + 1] + fn[i + 1])
            continue
        rec = [dnn(tp[j], tp[j] + fn[j]) for j in (i, i + 1)]
        if curve == "ROC":
            x = [dnn(fp[j], fp[j] + tn[j]) for j in (i, i + 1)]
            yv = rec
        else:
            x = rec
            yv = [dnn(tp[j], tp[j] + fp[j]) for j in (i, i + 1)]
        height = {"interpolation": (yv[0] + yv[1]) / 2, "minoring": min(yv), "majoring": max(yv)}[method]
        total += (x[0] - x[1]) * height
    return total


@pytest.mark.parametrize("method", ["interpolation", "minoring", "majoring"])
@pytest.mark.parametrize("curve", ["ROC", "PR"])
@pytest.mark.parametrize("n", [2, 3, 50, 200])
@pytest.mark.parametrize("weighted", [False, True])
def test_bucketed_auc_follows_keras(method: str, curve: str, n: int, weighted: bool) -> None:
    y, s, w = data(6, n=300, weights="float" if weighted else None)
    s[:3] = [0.0, 1.0, 0.0]  # exact end points fall in the epsilon-padded end buckets
    expected = keras_auc_oracle(y, s, w, n, curve, method)
    got = lossctl.get(f"auc:num_thresholds={n}:curve={curve}:summation_method={method}")(y, s, w)
    assert close(got, expected, 1e-12)


def test_bucketed_auc_keras_docstring_examples() -> None:
    # keras.metrics.AUC(num_thresholds=3) docstring: 0.75, and 1.0 with weights.
    assert lossctl.get("auc:num_thresholds=3")([0, 0, 1, 1], [0, 0.5, 0.3, 0.9]) == 0.75
    assert lossctl.get("auc:num_thresholds=3")([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], [1, 0, 0, 1]) == 1.0


def test_bucketed_auc_from_logits_applies_sigmoid() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 200)
    logits = rng.normal(size=200)
    expected = keras_auc_oracle(y, 1 / (1 + np.exp(-logits)), None, 200, "ROC", "interpolation")
    assert close(lossctl.get("auc:num_thresholds=200:from_logits=true")(y, logits), expected, 1e-12)


def test_bucketed_auc_rejects_scores_outside_unit_interval() -> None:
    with pytest.raises(ValueProblem) as info:
        lossctl.get("auc:num_thresholds=200")([0, 1, 1], [0.2, 1.5, 0.3])
    assert info.value.index == 1 and info.value.role == "y_pred"


# --------------------------------------------------------------------------
# Operating points (Keras's SensitivitySpecificityBase)


def operating_oracle(y: np.ndarray, s: np.ndarray, w: np.ndarray | None, n: int, name: str, value: float) -> float:
    thresholds = [0.5] if n == 1 else [0.0] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1.0]
    tp, fp, tn, fn = keras_counts(y, s, w, thresholds)
    rate = {
        "recall": [dnn(a, a + b) for a, b in zip(tp, fn)],
        "precision": [dnn(a, a + b) for a, b in zip(tp, fp)],
        "specificity": [dnn(a, a + b) for a, b in zip(tn, fp)],
    }
    rate["sensitivity"] = rate["recall"]
    constrained, dependent = {
        "precision_at_recall": ("recall", "precision"),
        "recall_at_precision": ("precision", "recall"),
        "sensitivity_at_specificity": ("specificity", "sensitivity"),
        "specificity_at_sensitivity": ("sensitivity", "specificity"),
    }[name]
    feasible = [d for c, d in zip(rate[constrained], rate[dependent]) if c >= value]
    return max([0.0, *feasible])


OPERATING = ["precision_at_recall", "recall_at_precision", "sensitivity_at_specificity", "specificity_at_sensitivity"]
CONSTRAINT = {
    "precision_at_recall": "recall",
    "recall_at_precision": "precision",
    "sensitivity_at_specificity": "specificity",
    "specificity_at_sensitivity": "sensitivity",
}


@pytest.mark.parametrize("name", OPERATING)
@pytest.mark.parametrize("n", [1, 7, 200])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target", [0.3, 0.6, 0.9])
def test_operating_points_follow_keras(name: str, n: int, weighted: bool, target: float) -> None:
    y, s, w = data(8, n=300, weights="float" if weighted else None)
    s[:3] = [0.0, 1.0, 0.5]  # p > t is strict: 0 exceeds no threshold, 0.5 not the single one
    expected = operating_oracle(y, s, w, n, name, target)
    got = run(name, y, s, w, num_thresholds=n, **{CONSTRAINT[name]: target}).value
    if expected == 0.0 and got is None:
        return  # no threshold reaches the target: null here, 0 in Keras
    assert close(got, expected, 1e-12)


def test_operating_points_keras_docstring_examples() -> None:
    y, s = [0, 0, 0, 1, 1], [0, 0.3, 0.8, 0.3, 0.8]
    assert close(lossctl.get("precision_at_recall:recall=0.5")(y, s, [2, 2, 2, 1, 1]), 1 / 3)
    assert close(lossctl.get("sensitivity_at_specificity:specificity=0.5")(y, s, [1, 1, 2, 2, 1]), 1 / 3)
    assert close(lossctl.get("specificity_at_sensitivity:sensitivity=0.5")(y, s, [1, 1, 2, 2, 2]), 0.5)
    assert lossctl.get("recall_at_precision:precision=0.8")([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], [1, 0, 0, 1]) == 1.0


def test_operating_point_class_id_picks_a_column() -> None:
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 3, 200)
    probs = rng.dirichlet([1, 1, 1], 200)
    expected = operating_oracle((labels == 2).astype(int), probs[:, 2], None, 200, "precision_at_recall", 0.5)
    assert close(lossctl.get("precision_at_recall:recall=0.5:class_id=2")(labels, probs), expected, 1e-12)


def test_unreachable_constraint_and_missing_class_are_undefined() -> None:
    value = run("recall_at_precision", [1, 0, 0, 0], [0.2, 0.9, 0.8, 0.7], precision=0.9)
    assert value.value is None and value.note is not None and "Keras reports 0" in value.note
    assert run("sensitivity_at_specificity", [1, 1], [0.2, 0.9], specificity=0.5).value is None
    assert run("precision_at_recall", [0, 0], [0.2, 0.9], recall=0.5).value is None


def test_required_value_is_a_usage_error() -> None:
    with pytest.raises(UsageProblem, match="parameter 'recall' is required"):
        lossctl.get("precision_at_recall")([0, 1], [0.2, 0.8])


def test_required_value_is_checked_before_any_data_is_read(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "missing.csv"), "-m", "recall_at_precision"])
    assert result.exit_code == 2
    assert "recall_at_precision: parameter 'precision' is required" in result.stderr


# --------------------------------------------------------------------------
# Streaming: merge of random splits equals one pass


SPLIT_SPECS = [
    ("auc", {}),
    ("auc", {"curve": "PR"}),
    ("auc", {"num_thresholds": 200}),
    ("auc", {"num_thresholds": 50, "curve": "PR"}),
    ("precision_at_recall", {"recall": 0.7}),
    ("specificity_at_sensitivity", {"sensitivity": 0.4}),
]


@pytest.mark.parametrize(("name", "params"), SPLIT_SPECS, ids=[f"{n}{p}" for n, p in SPLIT_SPECS])
@pytest.mark.parametrize("weights", [None, "float"])
@pytest.mark.parametrize("seed", [0, 1])
def test_merge_of_random_splits_equals_one_pass(name: str, params: dict[str, Any], weights: str | None, seed: int) -> None:
    y, s, w = data(seed, n=400, decimals=2, weights=weights)
    entry = lookup(name)
    resolved = resolve_params(entry, params)
    whole = entry.make_state(resolved)
    whole.update(Batch(y.astype(float), s, w))
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(y)), size=6, replace=False))
    parts = []
    for idx in np.split(rng.permutation(len(y)), cuts):
        state = entry.make_state(resolved)
        state.update(Batch(y[idx].astype(float), s[idx], None if w is None else w[idx]))
        parts.append(state)
    parts.append(entry.make_state(resolved))
    merged = parts[-1]
    for part in reversed(parts[:-1]):
        merged = part.merge(merged)
    one, many = whole.result().value, merged.result().value
    assert one is not None and many is not None
    assert abs(one - many) <= 1e-12 * abs(one)
    assert parts[0].result().value == parts[0].result().value


def test_no_rows_is_undefined() -> None:
    for name, params in SPLIT_SPECS:
        entry = lookup(name)
        assert entry.make_state(resolve_params(entry, params)).result() == Value.undefined("no rows")


# --------------------------------------------------------------------------
# CLI, from files


def test_cli_auc_from_parquet_with_weights(tmp_path: Path) -> None:
    y, s, w = data(10, n=3000, decimals=1, weights="float")
    path = tmp_path / "preds.parquet"
    pd.DataFrame({"label": y, "score": s, "w": w}).to_parquet(path)
    result = CliRunner().invoke(
        cli,
        [
            "eval", str(path), "--true", "label", "--pred", "score", "--weight", "w",
            "--metric", "auc,auc:curve=PR,auc:num_thresholds=200,recall_at_precision:precision=0.6",
            "--chunk-size", "257", "-f", "json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = {r["spec"]: r for r in json.loads(result.stdout)["results"]}
    assert close(doc["auc"]["value"], roc_auc_score(y, s, sample_weight=w))
    assert close(doc["auc:curve=PR"]["value"], average_precision_score(y, s, sample_weight=w))
    assert close(doc["auc:num_thresholds=200"]["value"], keras_auc_oracle(y, s, w, 200, "ROC", "interpolation"))
    assert close(
        doc["recall_at_precision:precision=0.6"]["value"],
        operating_oracle(y, s, w, 200, "recall_at_precision", 0.6),
    )


def test_cli_auc_from_csv_check_gate(tmp_path: Path) -> None:
    y, s, _ = data(11, n=200)
    path = tmp_path / "preds.csv"
    pd.DataFrame({"y_true": y, "y_pred": s}).to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["eval", str(path), "--metric", "auc", "-f", "json"])
    assert result.exit_code == 0, result.output
    (res,) = json.loads(result.stdout)["results"]
    assert res["name"] == "auc" and close(res["value"], roc_auc_score(y, s))


def test_cli_errors(tmp_path: Path) -> None:
    path = tmp_path / "preds.csv"
    pd.DataFrame({"y_true": [0, 1, 1, 0], "y_pred": [0.2, 0.7, 1.3, 0.1]}).to_csv(path, index=False)
    runner = CliRunner()
    bad_score = runner.invoke(cli, ["eval", str(path), "--metric", "auc:num_thresholds=200", "-f", "json"])
    assert bad_score.exit_code == 3 and "row 2" in bad_score.stderr and "outside [0, 1]" in bad_score.stderr
    missing = runner.invoke(cli, ["eval", str(path), "--metric", "sensitivity_at_specificity", "-f", "json"])
    assert missing.exit_code == 2 and "parameter 'specificity' is required" in missing.stderr
    bad_curve = runner.invoke(cli, ["eval", str(path), "--metric", "auc:curve=PRC", "-f", "json"])
    assert bad_curve.exit_code == 2 and "curve" in bad_curve.stderr


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_exact_auc_state_compaction_keeps_every_score(monkeypatch: pytest.MonkeyPatch, weighted: bool, curve: str) -> None:
    # Compaction joins small chunk pieces into large arrays (to return memory to
    # the system); with a tiny threshold it runs constantly, and merged states
    # share the arrays it leaves behind: nothing may be lost, duplicated or moved.
    import lossctl.metrics._sorting as sorting

    monkeypatch.setattr(sorting, "_COMPACT", 8)
    rng = np.random.default_rng(5)
    y = (rng.random(700) < 0.4).astype(float)
    s = np.round(rng.random(700), 2)
    w = rng.integers(1, 4, 700).astype(float) if weighted else None
    entry = lookup("auc")
    params = resolve_params(entry, {"curve": curve})

    def state_of(a: int, b: int):
        st = entry.make_state(params, "metric")
        for c in range(a, b, 5):
            e = min(c + 5, b)
            st.update(Batch(y[c:e], s[c:e], None if w is None else w[c:e]))
        return st

    left, right = state_of(0, 300), state_of(300, 700)
    merged = left.merge(right)
    left.update(Batch(y[:50], s[:50], None if w is None else w[:50]))  # must not leak into `merged`
    oracle = roc_auc_score if curve == "ROC" else average_precision_score
    expected = oracle(y, s, sample_weight=w)
    assert merged.result().value == pytest.approx(expected, rel=1e-12)
    assert merged.result().value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("decimals", [None, 1, 3])
@pytest.mark.parametrize("share", [0.05, 0.4, 0.95])
def test_exact_roc_auc_on_two_threads_equals_sklearn(monkeypatch: pytest.MonkeyPatch, decimals: int | None, share: float) -> None:
    # Large inputs split the sorting and counting over two threads; tiny blocks
    # make this small input take that path. Ties (rounded scores), few or many
    # positives, scores spread over several compacted pieces.
    import lossctl.metrics._sorting as sorting

    monkeypatch.setattr(sorting, "_BLOCK", 16)
    monkeypatch.setattr(sorting, "_COMPACT", 64)
    rng = np.random.default_rng(11)
    y = (rng.random(3000) < share).astype(float)
    s = rng.random(3000) if decimals is None else np.round(rng.random(3000), decimals)
    entry = lookup("auc")
    params = resolve_params(entry, {})
    left, right = entry.make_state(params, "metric"), entry.make_state(params, "metric")
    for a in range(0, 3000, 50):
        (left if a < 1700 else right).update(Batch(y[a : a + 50], s[a : a + 50]))
    merged = left.merge(right)
    expected = roc_auc_score(y, s)
    assert merged.result().value == pytest.approx(expected, rel=1e-12)
    # The lists now hold sorted arrays; a second result sorts nothing and agrees.
    assert merged.result().value == pytest.approx(expected, rel=1e-12)
    # The parts merged from were not changed (arrays are shared, never modified).
    assert left.result().value == pytest.approx(roc_auc_score(y[:1700], s[:1700]), rel=1e-12)
