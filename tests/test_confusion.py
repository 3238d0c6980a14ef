"""Confusion-based metrics against scikit-learn, formulas and Keras's reference vectors.

Covers precision, recall, f1_score, fbeta_score, the TP/FP/TN/FN counts
(lossctl/metrics/precision_recall.py), the IoU family (lossctl/metrics/iou.py)
and the confusion counts they share with balanced accuracy, MCC and kappa
(lossctl/metrics/confusion.py): shared keys, slots, saved states.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    fbeta_score,
    jaccard_score,
    precision_score,
    recall_score,
)

import lossctl
from lossctl.accumulate import Accumulator, Value
from lossctl.batch import Batch
from lossctl.cli.main import cli
from lossctl.errors import DataError, UsageProblem, ValueProblem
from lossctl.metrics.confusion import MAX_LABELS
from lossctl.params import parse_spec
from lossctl.registry import lookup, parse_params, resolve_params
from lossctl.state import State, merge

VECTORS = json.loads((Path(__file__).parent / "data" / "keras_vectors.json").read_text())["vectors"]
OWNED = {
    "precision",
    "recall",
    "true_positives",
    "false_positives",
    "true_negatives",
    "false_negatives",
    "f1_score",
    "fbeta_score",
    "iou",
    "binary_iou",
    "mean_iou",
    "one_hot_iou",
    "one_hot_mean_iou",
}

# Keras 3.15.1 (as run for the reference file) truncates fractional sample
# weights to integers in the IoU confusion matrix; its own docstring example
# (weights 0.3, 0.3, 0.3, 0.1) documents float weights. lossctl keeps them.
KERAS_WEIGHT_TRUNCATION = {"metric/binary_iou/weighted"}


def _canonical(spec: str) -> str | None:
    try:
        return lookup(spec.split(":")[0]).name
    except UsageProblem:
        return None


MINE = [v for v in VECTORS if _canonical(v["spec"]) in OWNED]


def run(name: str, y_true: Any, y_pred: Any, weight: Any = None, **params: Any) -> Value:
    """The full Value (note, per_class) of one metric over one batch."""
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


def rel_close(a: float | None, b: float, tol: float = 1e-12) -> bool:
    assert a is not None
    return abs(a - b) <= tol * max(abs(b), 1e-300) or abs(a - b) <= tol


# --------------------------------------------------------------------------
# Reference vectors


@pytest.mark.parametrize(
    "vector", [v for v in MINE if v["id"] not in KERAS_WEIGHT_TRUNCATION], ids=lambda v: v["id"]
)
def test_reference_vector(vector: dict[str, Any]) -> None:
    got = lossctl.get(vector["spec"])(vector["y_true"], vector["y_pred"], vector["sample_weight"])
    tol = 1e-9 if vector["contract_follows"] == "sklearn" else 1e-6
    assert got is not None
    assert abs(got - vector["expected"]) <= tol * abs(vector["expected"]), (got, vector["expected"])


def test_reference_vectors_cover_every_family() -> None:
    names = {_canonical(v["spec"]) for v in MINE}
    assert {"precision", "recall", "f1_score", "fbeta_score", "binary_iou", "mean_iou", "one_hot_mean_iou"} <= names
    assert len(MINE) == 26


@pytest.mark.parametrize("vector_id", sorted(KERAS_WEIGHT_TRUNCATION))
def test_weighted_iou_vector_is_keras_weight_truncation(vector_id: str) -> None:
    """Keras's value is the IoU of integer-truncated weights; ours uses the weights as given."""
    v = next(v for v in VECTORS if v["id"] == vector_id)
    t = np.asarray(v["y_true"], dtype=int)
    p = (np.asarray(v["y_pred"]) >= 0.5).astype(int)
    w = np.asarray(v["sample_weight"])
    truncated = np.mean(jaccard_score(t, p, average=None, sample_weight=np.trunc(w)))
    assert abs(truncated - v["expected"]) <= 1e-6 * v["expected"]
    got = lossctl.get(v["spec"])(v["y_true"], v["y_pred"], v["sample_weight"])
    assert rel_close(got, float(np.mean(jaccard_score(t, p, average=None, sample_weight=w))))


# --------------------------------------------------------------------------
# Data


def binary_data(seed: int, n: int = 300, weighted: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + rng.random(n) * 0.65, 0.0, 1.0)
    w = rng.random(n) * 3.0 if weighted else None
    return y, p, w


def multiclass_data(
    seed: int, n: int = 400, classes: int = 4, weighted: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 1.2 * np.eye(classes)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    w = rng.random(n) * 3.0 if weighted else None
    return y, p, w


# --------------------------------------------------------------------------
# Binary precision / recall / F


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("thresholds", [None, 0.3, 0.5, 0.7])
def test_binary_precision_recall_match_sklearn(weighted: bool, thresholds: float | None) -> None:
    y, p, w = binary_data(1, weighted=weighted)
    decided = p > (0.5 if thresholds is None else thresholds)
    params = {} if thresholds is None else {"thresholds": thresholds}
    assert rel_close(lossctl.get("precision", **params)(y, p, w), precision_score(y, decided, sample_weight=w))
    assert rel_close(lossctl.get("recall", **params)(y, p, w), recall_score(y, decided, sample_weight=w))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_binary_fbeta_matches_sklearn(weighted: bool, beta: float) -> None:
    y, p, w = binary_data(2, weighted=weighted)
    expected = fbeta_score(y, p > 0.4, beta=beta, sample_weight=w)
    assert rel_close(lossctl.get(f"fbeta_score:beta={beta}:threshold=0.4")(y, p, w), expected)
    if beta == 1.0:
        assert rel_close(lossctl.get("f1:threshold=0.4")(y, p, w), expected)
        # threshold=None on one column means 0.5 (SPEC), not Keras's all-positive argmax.
        assert rel_close(lossctl.get("f1")(y, p, w), f1_score(y, p > 0.5, sample_weight=w))


def test_precision_is_undefined_without_positive_predictions() -> None:
    value = run("precision", [0, 1, 1], [0.1, 0.2, 0.3])
    assert value.value is None
    assert value.note is not None and "tp + fp = 0" in value.note and "Keras reports 0" in value.note


def test_recall_and_f1_are_undefined_without_positives_anywhere() -> None:
    assert run("recall", [0, 0], [0.9, 0.1]).value is None
    f1 = run("f1", [0, 0], [0.1, 0.2])
    assert f1.value is None and f1.note is not None and "tp + fp + fn = 0" in f1.note
    # With a false positive the F-score is defined (and 0), as in scikit-learn.
    assert run("f1", [0, 0], [0.9, 0.2]).value == 0.0


# --------------------------------------------------------------------------
# Multiclass: argmax decisions, averages, per_class


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_multiclass_sparse_labels_match_sklearn(weighted: bool, average: str) -> None:
    y, p, w = multiclass_data(3, weighted=weighted)
    decided = p.argmax(axis=1)
    labels = list(range(p.shape[1]))
    for name, oracle in (
        ("precision", precision_score),
        ("recall", recall_score),
        ("f1_score", f1_score),
    ):
        value = run(name, y, p, w, average=average)
        assert rel_close(value.value, oracle(y, decided, average=average, labels=labels, sample_weight=w))
        per_class = oracle(y, decided, average=None, labels=labels, sample_weight=w)
        assert value.extra["per_class"] == pytest.approx(list(per_class), rel=1e-12)
    value = run("fbeta_score", y, p, w, average=average, beta=2.0)
    assert rel_close(value.value, fbeta_score(y, decided, beta=2.0, average=average, sample_weight=w))


@pytest.mark.parametrize("name", ["precision", "recall", "f1_score"])
def test_one_hot_labels_equal_sparse_labels(name: str) -> None:
    y, p, w = multiclass_data(4, weighted=True)
    one_hot = np.eye(p.shape[1])[y]
    for average in ("macro", "micro", "weighted"):
        assert rel_close(run(name, one_hot, p, w, average=average).value, run(name, y, p, w, average=average).value)


def test_argmax_ties_predict_every_maximum_as_keras_f1score() -> None:
    # Row 0 ties classes 0 and 1: both are predicted (Keras F1Score's rule);
    # an all-zero row predicts nothing.
    y = [0, 1, 2]
    p = [[0.5, 0.5, 0.0], [0.1, 0.8, 0.1], [0.0, 0.0, 0.0]]
    # class 0: tp 1; class 1: tp 1, fp 1; class 2: fn 1.
    value = run("f1", y, p, average="micro")
    assert rel_close(value.value, 2 * 2 / (2 * 2 + 1 + 1))
    assert value.extra["per_class"] == pytest.approx([1.0, 2 / 3, 0.0])


def test_macro_leaves_out_absent_classes_like_sklearn() -> None:
    y, p, _ = multiclass_data(5, classes=3)
    # A fourth column that is never the argmax and never the label.
    p4 = np.column_stack([p, np.zeros(len(p))])
    value = run("f1", y, p4)
    assert rel_close(value.value, f1_score(y, p.argmax(axis=1), average="macro"))
    assert value.note is not None and "class 3 absent" in value.note
    assert value.extra["per_class"][3] is None


def test_macro_precision_with_a_never_predicted_class_is_undefined() -> None:
    y = [0, 1, 2, 2]
    p = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]
    value = run("precision", y, p)
    assert value.value is None
    assert value.note is not None and "class 2" in value.note and "count it as 0" in value.note
    assert value.extra["per_class"] == [0.5, 0.5, None]
    # micro pools the counts and stays defined.
    assert rel_close(run("precision", y, p, average="micro").value, 0.5)


def test_keras_cell_pooling_is_thresholds_with_micro() -> None:
    """Keras's Precision on a matrix thresholds every cell at 0.5 and pools them."""
    y, p, w = multiclass_data(6, weighted=True)
    cells_true = np.eye(p.shape[1])[y].ravel()
    cells_pred = (p > 0.5).ravel()
    cell_w = np.repeat(w, p.shape[1])
    got = lossctl.get("precision:thresholds=0.5:average=micro")(y, p, w)
    assert rel_close(got, precision_score(cells_true, cells_pred, sample_weight=cell_w))


def test_multilabel_thresholds_match_sklearn() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, (200, 5))
    p = np.clip(0.3 * y + rng.random((200, 5)) * 0.7, 0, 1)
    for average in ("macro", "micro", "weighted"):
        for name, oracle in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
            params = {"thresholds": 0.5} if name != "f1" else {"threshold": 0.5}
            got = run(name, y, p, average=average, **params).value
            assert rel_close(got, oracle(y, p > 0.5, average=average))


def test_top_k_follows_keras() -> None:
    y, p, w = multiclass_data(8, weighted=True)
    one_hot = np.eye(p.shape[1])[y].astype(bool)
    # Oracle: the 2 largest scores of each row are positive (no ties in random data).
    top2 = p >= np.sort(p, axis=1)[:, [-2]]
    tp = (w[:, None] * (top2 & one_hot)).sum()
    fp = (w[:, None] * (top2 & ~one_hot)).sum()
    fn = (w[:, None] * (~top2 & one_hot)).sum()
    assert rel_close(lossctl.get("precision:top_k=2:average=micro")(y, p, w), tp / (tp + fp))
    assert rel_close(lossctl.get("recall:top_k=2:average=micro")(y, p, w), tp / (tp + fn))
    # top_k with an explicit threshold: both must hold.
    strict = top2 & (p > 0.4)
    tp2, fp2 = (w[:, None] * (strict & one_hot)).sum(), (w[:, None] * (strict & ~one_hot)).sum()
    assert rel_close(lossctl.get("precision:top_k=2:thresholds=0.4:average=micro")(y, p, w), tp2 / (tp2 + fp2))


def test_class_id_is_a_binary_metric_of_one_column() -> None:
    y, p, w = multiclass_data(9, weighted=True)
    for c in range(p.shape[1]):
        yc, pc = (y == c).astype(int), p[:, c] > 0.5
        assert rel_close(lossctl.get(f"precision:class_id={c}")(y, p, w), precision_score(yc, pc, sample_weight=w))
        assert rel_close(lossctl.get(f"recall:class_id={c}")(y, p, w), recall_score(yc, pc, sample_weight=w))


def test_class_id_out_of_range_and_on_one_column_are_usage_errors() -> None:
    y, p, _ = multiclass_data(10)
    with pytest.raises(UsageProblem, match="out of range for 4 classes"):
        lossctl.get("precision:class_id=4")(y, p)
    with pytest.raises(UsageProblem, match="need a probability matrix"):
        lossctl.get("recall:top_k=1")([0, 1], [0.2, 0.9])


# --------------------------------------------------------------------------
# TP / FP / TN / FN


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("thresholds", [0.0, 0.3, 0.5, 1.0])
def test_counts_match_sklearn_confusion_matrix(weighted: bool, thresholds: float) -> None:
    y, p, w = binary_data(11, weighted=weighted)
    tn, fp, fn, tp = confusion_matrix(y, p > thresholds, labels=[0, 1], sample_weight=w).ravel()
    for name, expected in (
        ("true_positives", tp),
        ("false_positives", fp),
        ("false_negatives", fn),
        ("true_negatives", tn),
    ):
        assert rel_close(lossctl.get(f"{name}:thresholds={thresholds}")(y, p, w), float(expected))


def test_counts_on_a_matrix_count_every_cell() -> None:
    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, (50, 3))
    p = rng.random((50, 3))
    w = rng.random(50)
    tn, fp, fn, tp = confusion_matrix(y.ravel(), p.ravel() > 0.5, sample_weight=np.repeat(w, 3)).ravel()
    assert rel_close(lossctl.get("true_positives")(y, p, w), tp)
    assert rel_close(lossctl.get("true_negatives")(y, p, w), tn)


def test_non_binary_labels_are_value_problems() -> None:
    with pytest.raises(ValueProblem) as info:
        lossctl.get("precision")([0, 1, 0.5], [0.1, 0.9, 0.4])
    assert info.value.index == 2 and info.value.role == "y_true"
    with pytest.raises(ValueProblem, match="out of range for 3 classes"):
        lossctl.get("f1")([0, 3], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])


# --------------------------------------------------------------------------
# IoU family


@pytest.mark.parametrize("weighted", [False, True])
def test_mean_iou_matches_sklearn_jaccard(weighted: bool) -> None:
    y, p, w = multiclass_data(13, classes=5, weighted=weighted)
    decided = p.argmax(axis=1)
    per_class = jaccard_score(y, decided, average=None, labels=range(5), sample_weight=w)
    value = run("mean_iou", y, p, w)
    assert rel_close(value.value, float(np.mean(per_class)))
    assert value.extra["per_class"] == pytest.approx(list(per_class), rel=1e-12)
    assert rel_close(run("iou", y, p, w, target_class_ids=(1, 3)).value, float(np.mean(per_class[[1, 3]])))
    # Labels against labels need num_classes, and give the same value.
    assert rel_close(run("mean_iou", y, decided, w, num_classes=5).value, value.value)
    one_hot = np.eye(5)[y]
    assert rel_close(run("one_hot_mean_iou", one_hot, p, w).value, value.value)
    assert rel_close(run("one_hot_iou", one_hot, p, w, target_class_ids=(1, 3)).value, float(np.mean(per_class[[1, 3]])))


def test_mean_iou_leaves_out_absent_classes_as_keras() -> None:
    # The Keras reference case by hand: class 2 is never predicted (iou 0),
    # num_classes=5 adds a class 4 that appears nowhere (left out).
    value = run("mean_iou", [0, 3, 0, 1, 2], [0, 3, 0, 1, 0], num_classes=5)
    assert rel_close(value.value, (2 / 3 + 1 + 1 + 0) / 4)
    assert value.note is not None and "class 4 absent" in value.note


def test_iou_target_classes_all_absent_is_undefined() -> None:
    value = run("iou", [0, 0, 1], [0, 0, 1], num_classes=3, target_class_ids=(2,))
    assert value.value is None and value.note is not None and "Keras reports 0" in value.note


def test_iou_ignore_class_drops_those_rows() -> None:
    y, p, w = multiclass_data(14, classes=4, weighted=True)
    keep = y != 2
    expected = run("mean_iou", y[keep], p[keep], w[keep]).value
    assert rel_close(run("mean_iou", y, p, w, ignore_class=2).value, expected)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_binary_iou_matches_sklearn_with_greater_equal(weighted: bool, threshold: float) -> None:
    y, p, w = binary_data(15, weighted=weighted)
    p = np.round(p, 1)  # scores equal to the threshold decide class 1 (Keras's >=)
    per_class = jaccard_score(y, p >= threshold, average=None, sample_weight=w)
    assert rel_close(lossctl.get(f"binary_iou:threshold={threshold}")(y, p, w), float(np.mean(per_class)))
    assert rel_close(
        lossctl.get(f"binary_iou:threshold={threshold}:target_class_ids=1")(y, p, w), float(per_class[1])
    )


def test_iou_parameter_problems_are_usage_errors() -> None:
    with pytest.raises(UsageProblem, match="give num_classes"):
        lossctl.get("mean_iou")([0, 1, 2], [0, 1, 1])
    with pytest.raises(UsageProblem, match="give target_class_ids"):
        lossctl.get("iou")([0, 1], [[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(UsageProblem, match="out of range for 2 classes"):
        lossctl.get("iou:target_class_ids=0+2")([0, 1], [[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(UsageProblem, match="target_class_ids"):
        lossctl.get("iou:target_class_ids=a")
    with pytest.raises(UsageProblem, match="target_class_ids"):
        lossctl.get("binary_iou", target_class_ids=[-1])


# --------------------------------------------------------------------------
# Streaming: merge of random splits equals one pass


SPLIT_SPECS = [
    ("precision", "multiclass", {}),
    ("recall", "multiclass", {"average": "weighted"}),
    ("f1_score", "multiclass", {"average": "micro"}),
    ("fbeta_score", "binary", {"beta": 2.0}),
    ("true_negatives", "binary", {}),
    ("mean_iou", "multiclass", {}),
    ("iou", "multiclass", {"target_class_ids": (0, 2)}),
    ("binary_iou", "binary", {}),
]


@pytest.mark.parametrize(("name", "task", "params"), SPLIT_SPECS, ids=[s[0] for s in SPLIT_SPECS])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_of_random_splits_equals_one_pass(name: str, task: str, params: dict[str, Any], seed: int) -> None:
    y, p, w = (multiclass_data if task == "multiclass" else binary_data)(seed, weighted=True)
    assert w is not None
    entry = lookup(name)
    resolved = resolve_params(entry, params)
    whole = entry.make_state(resolved)
    whole.update(Batch(y.astype(float), p, w))
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(y)), size=5, replace=False))
    parts = []
    for idx in np.split(np.arange(len(y)), cuts):
        state = entry.make_state(resolved)
        state.update(Batch(y[idx].astype(float), p[idx], w[idx]))
        parts.append(state)
    parts.append(entry.make_state(resolved))  # an empty partition changes nothing
    parts = [parts[i] for i in rng.permutation(len(parts))]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    one, many = whole.result(), merged.result()
    assert one.value is not None and many.value is not None
    assert abs(one.value - many.value) <= 1e-12 * abs(one.value)
    assert parts[0].result() == parts[0].result()  # merge left its inputs alone


def test_no_rows_is_undefined() -> None:
    for name in ("precision", "true_positives", "mean_iou", "binary_iou"):
        entry = lookup(name)
        params = resolve_params(entry, dict(entry.example.params) if entry.example else {})
        assert entry.make_state(params).result() == Value.undefined("no rows")


# --------------------------------------------------------------------------
# CLI, from files


def test_cli_multiclass_from_parquet(tmp_path: Path) -> None:
    y, p, w = multiclass_data(16, classes=3, weighted=True)
    path = tmp_path / "preds.parquet"
    pd.DataFrame({"label": y, "prob_0": p[:, 0], "prob_1": p[:, 1], "prob_2": p[:, 2], "w": w}).to_parquet(path)
    result = CliRunner().invoke(
        cli,
        [
            "eval", str(path), "--true", "label", "--pred", "prob_*", "--weight", "w",
            "--metric", "f1,precision:average=micro,recall:class_id=1,mean_iou,iou:target_class_ids=0+2",
            "-f", "json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = {r["spec"]: r for r in json.loads(result.stdout)["results"]}
    decided = p.argmax(axis=1)
    assert rel_close(doc["f1"]["value"], f1_score(y, decided, average="macro", sample_weight=w), 1e-9)
    assert doc["f1"]["per_class"] == pytest.approx(list(f1_score(y, decided, average=None, sample_weight=w)))
    assert rel_close(doc["precision:average=micro"]["value"], precision_score(y, decided, average="micro", sample_weight=w), 1e-9)
    assert rel_close(doc["recall:class_id=1"]["value"], recall_score(y == 1, p[:, 1] > 0.5, sample_weight=w), 1e-9)
    jac = jaccard_score(y, decided, average=None, sample_weight=w)
    assert rel_close(doc["mean_iou"]["value"], float(np.mean(jac)), 1e-9)
    assert rel_close(doc["iou:target_class_ids=0+2"]["value"], float(np.mean(jac[[0, 2]])), 1e-9)


def test_cli_binary_counts_from_csv_in_small_chunks(tmp_path: Path) -> None:
    y, p, _ = binary_data(17)
    path = tmp_path / "preds.csv"
    pd.DataFrame({"y_true": y, "y_pred": p}).to_csv(path, index=False)
    result = CliRunner().invoke(
        cli,
        [
            "eval", str(path), "--metric", "true_positives,false_negatives",
            "--metric", "fbeta_score:beta=0.5", "--chunk-size", "7", "-f", "json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = {r["name"]: r["value"] for r in json.loads(result.stdout)["results"]}
    tn, fp, fn, tp = confusion_matrix(y, p > 0.5).ravel()
    assert doc["true_positives"] == tp and doc["false_negatives"] == fn
    assert rel_close(doc["fbeta_score"], fbeta_score(y, p > 0.5, beta=0.5), 1e-9)


def test_cli_bad_label_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"y_true": [0, 1, 2, 1], "y_pred": [0.1, 0.8, 0.7, 0.3]}).to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["eval", str(path), "--metric", "precision", "-f", "json"])
    assert result.exit_code == 3
    assert "row 2" in result.stderr and "label 2 is not 0 or 1" in result.stderr


def test_cli_undefined_precision_is_null_with_note(tmp_path: Path) -> None:
    path = tmp_path / "neg.csv"
    pd.DataFrame({"y_true": [0, 1, 1], "y_pred": [0.1, 0.2, 0.3]}).to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["eval", str(path), "--metric", "precision", "-f", "json"])
    assert result.exit_code == 0, result.output
    (res,) = json.loads(result.stdout)["results"]
    assert res["value"] is None and "tp + fp = 0" in res["note"]


# --------------------------------------------------------------------------
# One shared set of confusion arrays


def accumulator(spec: str) -> Accumulator:
    raw = parse_spec(spec)
    entry = lookup(raw.name)
    return entry.accumulator(resolve_params(entry, parse_params(entry, raw)), "metric")


SHARED = [
    # Same decision, same key: the engine fills one state for each group.
    ("multiclass", ["precision", "recall", "f1", "fbeta_score:beta=2:average=micro", "precision:average=weighted"]),
    ("binary", ["precision:thresholds=0.5", "recall:thresholds=0.5", "f1:threshold=0.5"]),
    # The counts keep tp/fp/fn/tn only (one label column gives precision a keyed matrix).
    ("binary", ["true_positives", "true_negatives"]),
    ("multiclass", ["precision:top_k=2", "recall:top_k=2:average=micro"]),
    ("multiclass", ["precision:class_id=1", "recall:class_id=1", "recall:class_id=1:thresholds=0.5"]),
    ("multiclass", ["mean_iou", "iou:target_class_ids=0+2"]),
    ("one_hot", ["one_hot_mean_iou", "one_hot_iou:target_class_ids=1"]),
    ("binary", ["binary_iou", "binary_iou:target_class_ids=1"]),
    ("binary", ["mcc", "kappa", "kappa:weights=linear", "balanced_accuracy:adjusted=true"]),
]


def test_specs_that_decide_alike_share_one_key() -> None:
    keys = [{accumulator(spec).key for spec in group} for _, group in SHARED]
    assert all(len(k) == 1 for k in keys), keys
    assert len({next(iter(k)) for k in keys}) == len(SHARED), "different decisions must not share a key"
    # A decision parameter changes the key.
    assert accumulator("precision:thresholds=0.4").key != accumulator("precision:thresholds=0.5").key
    assert accumulator("precision:top_k=2").key != accumulator("precision:top_k=2:class_id=1").key
    assert accumulator("mean_iou").key != accumulator("mean_iou:ignore_class=0").key
    assert accumulator("binary_iou").key != accumulator("binary_iou:threshold=0.3").key


@pytest.mark.parametrize(("task", "group"), SHARED, ids=[g[0] for _, g in SHARED])
def test_one_state_filled_once_finishes_every_spec_of_its_key(task: str, group: list[str]) -> None:
    y, p, w = (binary_data if task == "binary" else multiclass_data)(20, weighted=True)
    assert w is not None
    yt = np.eye(p.shape[1])[y] if task == "one_hot" else y.astype(float)
    filler = accumulator(group[0])
    state = filler.new()
    for idx in np.array_split(np.arange(len(yt)), 3):
        filler.update(state, Batch(yt[idx], p[idx], w[idx]))
    for spec in group:
        expected = lossctl.get(spec)(yt, p, w)
        got = accumulator(spec).finish(state).value
        assert got is not None and expected is not None and rel_close(got, expected), (spec, got, expected)


def test_width_change_between_chunks_is_a_data_error() -> None:
    y, p, _ = multiclass_data(21)
    for spec, message in (
        ("precision", "cannot combine counts over 4 classes with counts over 3"),
        ("mean_iou", "cannot combine a confusion matrix over 4 classes with one over 3"),
    ):
        bound = lookup(spec).make_state(resolve_params(lookup(spec), {}))
        bound.update(Batch(y[:10].astype(float), p[:10]))
        with pytest.raises(DataError, match=message):
            bound.update(Batch(np.zeros(10), p[10:20, :3]))


def test_too_many_labels_is_a_data_error() -> None:
    bound = lookup("mcc").make_state({})
    labels = np.arange(MAX_LABELS - 1, dtype=float)
    bound.update(Batch(labels, labels))
    with pytest.raises(DataError, match=f"more than {MAX_LABELS} distinct class labels"):
        bound.update(Batch(labels + 2.0, labels + 2.0))


SLOT_SPECS = [
    ("precision", "multiclass"),
    ("f1:threshold=0.4:average=micro", "binary"),
    ("true_positives", "binary"),
    ("mean_iou", "multiclass"),
    ("binary_iou", "binary"),
    ("mcc", "skl"),
    ("kappa:weights=linear", "skl"),
    ("kappa:weights=quadratic", "skl"),
    ("balanced_accuracy:adjusted=true", "skl"),
]


def _slot_data(task: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if task == "skl":
        # Labels that differ by slot: a slot's kappa weighs positions among its own labels.
        rng = np.random.default_rng(seed)
        y = rng.choice([0, 2, 5] if seed % 2 else [0, 1, 2, 3, 4, 5, 9], 120).astype(float)
        p = np.where(rng.random(120) < 0.6, y, rng.choice([0, 2, 5, 7], 120)).astype(float)
        return y, p, rng.random(120) * 2.0
    y, p, w = (multiclass_data if task == "multiclass" else binary_data)(seed, n=120, weighted=True)
    assert w is not None
    return y.astype(float), p, w


@pytest.mark.parametrize(("spec", "task"), SLOT_SPECS, ids=[s for s, _ in SLOT_SPECS])
def test_each_slot_equals_a_plain_run_over_its_rows(spec: str, task: str) -> None:
    acc = accumulator(spec)
    state = acc.new(slots=3)
    data = [_slot_data(task, seed) for seed in (30, 31)]
    for slot, (y, p, w) in enumerate(data):
        for idx in np.array_split(np.arange(len(y)), 2):
            acc.update(state, Batch(y[idx], p[idx], w[idx], slot=slot))
    for slot, (y, p, w) in enumerate(data):
        got = acc.finish(state, slot)
        expected = lossctl.get(spec)(y, p, w)
        assert got.value is not None and expected is not None and rel_close(got.value, expected), (slot, got)
    assert acc.finish(state, 2) == Value.undefined("no rows")


@pytest.mark.parametrize(("spec", "task"), SLOT_SPECS, ids=[s for s, _ in SLOT_SPECS])
def test_saved_state_loads_merges_and_finishes_the_same(spec: str, task: str) -> None:
    acc = accumulator(spec)
    parts = []
    for seed in (40, 41):
        y, p, w = _slot_data(task, seed)
        state = acc.new()
        acc.update(state, Batch(y, p, w))
        loaded = State.from_arrays(state.layout(), state.to_arrays())
        acc.check(loaded)
        assert acc.finish(loaded) == acc.finish(state)
        parts.append(loaded)
    merged = merge(parts[0], parts[1])
    y, p, w = (np.concatenate(a) for a in zip(*(_slot_data(task, seed) for seed in (40, 41)), strict=True))
    expected = lossctl.get(spec)(y, p, w)
    got = acc.finish(merged).value
    assert got is not None and expected is not None and rel_close(got, expected, 1e-12)
