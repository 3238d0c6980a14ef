"""Probabilistic, hinge and similarity losses against independent oracles.

Oracles are the Keras 3 formulas written out here in plain NumPy (naive
sigmoid/softmax, explicit one-hot), scikit-learn where it computes the same
thing (log_loss, hinge_loss), and the Keras reference vectors of these
entries. Every entry is checked through ``lossctl.get`` and through the CLI
on a file (CSV with comma-list columns, Parquet with list columns).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn import metrics as skm

import lossctl
from lossctl.batch import Batch
from lossctl.cli.main import cli
from lossctl.errors import DataError, ValueProblem
from lossctl.params import parse_spec
from lossctl.registry import lookup
from lossctl.state import State

EPS = 1e-7
N = 120
C = 5
DATA = Path(__file__).parent / "data" / "keras_vectors.json"

MINE = {
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "categorical_generalized_cross_entropy",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "cosine_similarity",
    "dice",
    "tversky",
}


# --- inputs -----------------------------------------------------------------


def make(kind: str, seed: int = 0, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of one kind: labels and predictions as the entries expect them."""
    rng = np.random.default_rng(seed)
    if kind == "binary":
        return rng.integers(0, 2, n).astype(float), rng.uniform(0.02, 0.98, n)
    if kind == "soft_binary":
        return rng.uniform(0.0, 1.0, n), rng.uniform(0.02, 0.98, n)
    if kind == "multilabel":
        return rng.integers(0, 2, (n, C)).astype(float), rng.uniform(0.02, 0.98, (n, C))
    if kind == "logits1d":
        return rng.integers(0, 2, n).astype(float), rng.normal(0.0, 3.0, n)
    if kind == "logits2d":
        return rng.integers(0, 2, (n, C)).astype(float), rng.normal(0.0, 3.0, (n, C))
    if kind == "onehot":
        return np.eye(C)[rng.integers(0, C, n)], rng.dirichlet(np.ones(C), n)
    if kind == "onehot_unnormalised":
        return np.eye(C)[rng.integers(0, C, n)], rng.uniform(0.01, 1.0, (n, C))
    if kind == "onehot_logits":
        return np.eye(C)[rng.integers(0, C, n)], rng.normal(0.0, 3.0, (n, C))
    if kind == "sparse":
        return rng.integers(0, C, n).astype(float), rng.dirichlet(np.ones(C), n)
    if kind == "sparse_logits":
        return rng.integers(0, C, n).astype(float), rng.normal(0.0, 3.0, (n, C))
    if kind == "distributions":
        t = rng.dirichlet(np.ones(C), n)
        t[::7, 0] = 0.0  # exact zeros in y_true: clipped to eps by Keras
        return t, rng.dirichlet(np.ones(C), n)
    if kind == "signed1d":
        return rng.choice([-1.0, 1.0], n), rng.normal(0.0, 1.5, n)
    if kind == "signed2d":
        return rng.choice([-1.0, 1.0], (n, C)), rng.normal(0.0, 1.5, (n, C))
    if kind == "zero_one1d":
        return rng.integers(0, 2, n).astype(float), rng.normal(0.0, 1.5, n)
    if kind == "vectors":
        t = rng.normal(0.0, 1.0, (n, C))
        t[3] = 0.0  # a zero vector: cosine 0
        return t, rng.normal(0.0, 1.0, (n, C))
    if kind == "vectors1d":
        return rng.normal(0.0, 1.0, n), rng.normal(0.0, 1.0, n)
    raise AssertionError(kind)


def weights(n: int = N, seed: int = 99) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 3.0, n)


# --- oracles: Keras 3's formulas, written independently -----------------------


def _2d(a: np.ndarray) -> np.ndarray:
    return a.reshape(len(a), -1)


def _naive_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _naive_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def o_bce(t: np.ndarray, p: np.ndarray, from_logits: bool = False, label_smoothing: float = 0.0) -> np.ndarray:
    t, p = _2d(t), _2d(p)
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        s = _naive_sigmoid(p)  # inputs are moderate, so the naive form is exact enough
        return (-(t * np.log(s) + (1 - t) * np.log(1 - s))).mean(axis=1)
    q = np.minimum(np.maximum(p, EPS), 1 - EPS)
    return (-(t * np.log(q) + (1 - t) * np.log(1 - q))).mean(axis=1)


def o_bfce(
    t: np.ndarray,
    p: np.ndarray,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
) -> np.ndarray:
    t, p = _2d(t), _2d(p)
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        p = _naive_sigmoid(p)
    q = np.minimum(np.maximum(p, EPS), 1 - EPS)
    ce = -(t * np.log(q) + (1 - t) * np.log(1 - q))
    pt = t * p + (1 - t) * (1 - p)
    out = (1 - pt) ** gamma * ce
    if apply_class_balancing:
        out = out * (t * alpha + (1 - t) * (1 - alpha))
    return out.mean(axis=1)


def _cat_probs(p: np.ndarray, from_logits: bool) -> np.ndarray:
    p = _2d(p)
    if from_logits:
        p = _naive_softmax(p)
    return np.minimum(np.maximum(p / p.sum(axis=1, keepdims=True), EPS), 1 - EPS)


def o_cce(t: np.ndarray, p: np.ndarray, from_logits: bool = False, label_smoothing: float = 0.0) -> np.ndarray:
    t = _2d(t)
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[1]
    if from_logits:
        # log-softmax written as x - logsumexp(x), not via the clipped probabilities
        x = _2d(p)
        lse = np.log(np.exp(x).sum(axis=1, keepdims=True))
        return -(t * (x - lse)).sum(axis=1)
    return -(t * np.log(_cat_probs(p, False))).sum(axis=1)


def o_scce(t: np.ndarray, p: np.ndarray, from_logits: bool = False) -> np.ndarray:
    onehot = np.eye(p.shape[1])[t.astype(int)]
    return o_cce(onehot, p, from_logits=from_logits)


def o_cfce(
    t: np.ndarray,
    p: np.ndarray,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
) -> np.ndarray:
    t = _2d(t)
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[1]
    q = _cat_probs(p, from_logits)
    return (alpha * (1 - q) ** gamma * -t * np.log(q)).sum(axis=1)


def o_kld(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    t = np.minimum(np.maximum(_2d(t), EPS), 1.0)
    p = np.minimum(np.maximum(_2d(p), EPS), 1.0)
    return (t * np.log(t / p)).sum(axis=1)


def o_gce(t: np.ndarray, p: np.ndarray, q: float = 0.5) -> np.ndarray:
    picked = p[np.arange(len(t)), t.astype(int)]
    return (1 - picked**q) / q


def _signed(t: np.ndarray) -> np.ndarray:
    # Keras: 2y - 1 when every label is 0/1 (these inputs are all 0/1 or all -1/+1)
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


def o_hinge(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.maximum(1 - _2d(_signed(t)) * _2d(p), 0).mean(axis=1)


def o_squared_hinge(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (np.maximum(1 - _2d(_signed(t)) * _2d(p), 0) ** 2).mean(axis=1)


def o_categorical_hinge(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    t, p = _2d(t), _2d(p)
    pos = (t * p).sum(axis=1)
    neg = ((1 - t) * p).max(axis=1)
    return np.maximum(0, neg - pos + 1)


def o_cosine(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    t, p = _2d(t), _2d(p)
    nt = np.maximum(np.linalg.norm(t, axis=1, keepdims=True), EPS)
    npred = np.maximum(np.linalg.norm(p, axis=1, keepdims=True), EPS)
    return -((t / nt) * (p / npred)).sum(axis=1)


# (entry, params, input kind, oracle): every row is one case, weighted and not.
CASES: list[tuple[str, dict[str, Any], str, Callable[..., np.ndarray]]] = [
    ("binary_crossentropy", {}, "binary", o_bce),
    ("binary_crossentropy", {}, "soft_binary", o_bce),
    ("binary_crossentropy", {}, "multilabel", o_bce),
    ("binary_crossentropy", {"label_smoothing": 0.2}, "binary", o_bce),
    ("binary_crossentropy", {"from_logits": True}, "logits1d", o_bce),
    ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.1}, "logits2d", o_bce),
    ("binary_focal_crossentropy", {}, "binary", o_bfce),
    ("binary_focal_crossentropy", {}, "multilabel", o_bfce),
    ("binary_focal_crossentropy", {"gamma": 0.0}, "binary", o_bfce),
    ("binary_focal_crossentropy", {"gamma": 3.5, "label_smoothing": 0.1}, "binary", o_bfce),
    ("binary_focal_crossentropy", {"apply_class_balancing": True, "alpha": 0.6}, "multilabel", o_bfce),
    ("binary_focal_crossentropy", {"from_logits": True, "gamma": 1.0}, "logits2d", o_bfce),
    ("categorical_crossentropy", {}, "onehot", o_cce),
    ("categorical_crossentropy", {}, "onehot_unnormalised", o_cce),
    ("categorical_crossentropy", {"label_smoothing": 0.1}, "onehot", o_cce),
    ("categorical_crossentropy", {"from_logits": True}, "onehot_logits", o_cce),
    ("categorical_crossentropy", {}, "distributions", o_cce),
    ("sparse_categorical_crossentropy", {}, "sparse", o_scce),
    ("sparse_categorical_crossentropy", {"from_logits": True}, "sparse_logits", o_scce),
    ("categorical_focal_crossentropy", {}, "onehot", o_cfce),
    ("categorical_focal_crossentropy", {"alpha": 0.5, "gamma": 1.0}, "onehot_unnormalised", o_cfce),
    ("categorical_focal_crossentropy", {"from_logits": True, "label_smoothing": 0.15}, "onehot_logits", o_cfce),
    ("kl_divergence", {}, "distributions", o_kld),
    ("kl_divergence", {}, "soft_binary", o_kld),
    ("categorical_generalized_cross_entropy", {}, "sparse", o_gce),
    ("categorical_generalized_cross_entropy", {"q": 0.8}, "sparse", o_gce),
    ("hinge", {}, "signed1d", o_hinge),
    ("hinge", {}, "signed2d", o_hinge),
    ("hinge", {}, "zero_one1d", o_hinge),
    ("squared_hinge", {}, "signed1d", o_squared_hinge),
    ("squared_hinge", {}, "zero_one1d", o_squared_hinge),
    ("categorical_hinge", {}, "onehot_logits", o_categorical_hinge),
    ("categorical_hinge", {}, "binary", o_categorical_hinge),
    ("cosine_similarity", {}, "vectors", o_cosine),
    ("cosine_similarity", {}, "vectors1d", o_cosine),
]


def _case_id(case: tuple[str, dict[str, Any], str, Any]) -> str:
    name, params, kind, _ = case
    extra = ",".join(f"{k}={v}" for k, v in params.items())
    return f"{name}[{kind}{',' + extra if extra else ''}]"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_matches_oracle_through_get(case: tuple[str, dict[str, Any], str, Any], weighted: bool) -> None:
    name, params, kind, oracle = case
    t, p = make(kind, seed=len(name) + len(params))
    w = weights(len(t)) if weighted else None
    expected = float(np.average(oracle(t, p, **params), weights=w))
    got = lossctl.get(name, **params)(t, p, sample_weight=w)
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-13)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_reduction_sum_and_batch_size(case: tuple[str, dict[str, Any], str, Any]) -> None:
    name, params, kind, oracle = case
    t, p = make(kind, seed=3)
    w = weights(len(t), seed=4)
    rows = oracle(t, p, **params)
    total = float(np.sum(w * rows))
    assert lossctl.get(name, reduction="sum", **params)(t, p, w) == pytest.approx(total, rel=1e-10)
    assert lossctl.get(name, reduction="sum_over_batch_size", **params)(t, p, w) == pytest.approx(
        total / len(t), rel=1e-10
    )


# --- scikit-learn ----------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_bce_equals_sklearn_log_loss(weighted: bool) -> None:
    t, p = make("binary", seed=11, n=400)
    w = weights(400) if weighted else None
    # Away from the clipping bounds, Keras's 1e-7 and sklearn's machine-epsilon clips agree.
    expected = skm.log_loss(t, p, sample_weight=w)
    assert lossctl.get("bce")(t, p, sample_weight=w) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_cce_and_scce_equal_sklearn_log_loss(weighted: bool) -> None:
    labels, p = make("sparse", seed=12, n=400)
    w = weights(400) if weighted else None
    expected = skm.log_loss(labels, p, sample_weight=w, labels=list(range(C)))
    assert lossctl.get("scce")(labels, p, sample_weight=w) == pytest.approx(expected, rel=1e-12)
    assert lossctl.get("cce")(np.eye(C)[labels.astype(int)], p, sample_weight=w) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_hinge_equals_sklearn_hinge_loss(weighted: bool) -> None:
    t, p = make("signed1d", seed=13, n=300)
    w = weights(300) if weighted else None
    expected = skm.hinge_loss(t, p, sample_weight=w)
    assert lossctl.get("hinge")(t, p, sample_weight=w) == pytest.approx(expected, rel=1e-12)
    # 0/1 labels are read as -1/+1, as Keras converts them.
    assert lossctl.get("hinge")((t + 1) / 2, p, sample_weight=w) == pytest.approx(expected, rel=1e-12)


# --- specifics --------------------------------------------------------------------


def test_bce_clips_exact_zero_and_one_at_eps() -> None:
    got = lossctl.get("bce")([1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0])
    # Keras clips at [1e-7, 1 - 1e-7] rounded to float32: 1 becomes 0.99999988, so
    # y=0, p=1 costs -log(1 - 0.99999988) = 15.942 (not -log(1e-7) = 16.118).
    high = 0.99999988079071044921875
    expected = (-math.log(EPS) + -math.log(1 - high) + -math.log(high) + -math.log(1 - EPS)) / 4
    assert got == pytest.approx(expected, rel=1e-8)
    assert lossctl.get("bce")([0.0], [1.0]) == pytest.approx(15.942385, rel=1e-6)


def test_bce_from_logits_is_stable_for_huge_logits() -> None:
    got = lossctl.get("bce", from_logits=True)([1.0, 0.0, 0.0], [800.0, -800.0, 800.0])
    assert got == pytest.approx(800.0 / 3, rel=1e-12)


def test_focal_gamma_zero_is_bce_and_balancing_uses_alpha() -> None:
    t, p = make("multilabel", seed=5)
    bce = lossctl.get("bce")(t, p)
    assert lossctl.get("binary_focal_crossentropy", gamma=0.0)(t, p) == pytest.approx(bce, rel=1e-12)
    # alpha alone changes nothing (Keras ignores it without apply_class_balancing).
    assert lossctl.get("binary_focal_crossentropy", alpha=0.9)(t, p) == pytest.approx(
        lossctl.get("binary_focal_crossentropy")(t, p), rel=1e-12
    )


def test_cce_renormalises_rows_like_keras() -> None:
    t = [[0.0, 1.0, 0.0]]
    assert lossctl.get("cce")(t, [[0.2, 0.6, 0.2]]) == pytest.approx(lossctl.get("cce")(t, [[0.1, 0.3, 0.1]]), rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_scce_ignore_class_averages_over_kept_rows(weighted: bool) -> None:
    labels, p = make("sparse", seed=21)
    labels[::4] = 255.0  # a "void" label, out of range but ignored
    keep = labels != 255.0
    w = weights(len(labels)) if weighted else None
    rows = o_scce(labels[keep], p[keep])
    expected = float(np.average(rows, weights=None if w is None else w[keep]))
    fn = lossctl.get("scce", ignore_class=255)
    assert fn(labels, p, sample_weight=w) == pytest.approx(expected, rel=1e-12)
    # Keras's loss reduction (sum_over_batch_size) divides by the number of kept rows.
    kept_sum = float(np.sum(rows * (1.0 if w is None else w[keep])))
    got = lossctl.get("scce", ignore_class=255, reduction="sum_over_batch_size")(labels, p, sample_weight=w)
    assert got == pytest.approx(kept_sum / keep.sum(), rel=1e-12)


def test_scce_ignore_class_inside_the_range_and_all_ignored() -> None:
    labels, p = make("sparse", seed=22)
    keep = labels != 2
    assert lossctl.get("scce:ignore_class=2")(labels, p) == pytest.approx(o_scce(labels[keep], p[keep]).mean(), rel=1e-12)
    assert lossctl.get("scce:ignore_class=2")(np.full(4, 2.0), p[:4]) is None


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", ["1d", "2d"])
def test_dice_and_tversky_over_the_whole_table(weighted: bool, shape: str) -> None:
    t, p = make("multilabel" if shape == "2d" else "binary", seed=31)
    w = weights(len(t)) if weighted else np.ones(len(t))
    t2, p2, w2 = _2d(t), _2d(p), w[:, None]
    inter, st, sp = (w2 * t2 * p2).sum(), (w2 * t2).sum(), (w2 * p2).sum()
    dice = 1 - 2 * inter / (st + sp + EPS)
    fp = (w2 * (1 - p2) * t2).sum()  # Keras's "fp": weighted by alpha
    fn = (w2 * p2 * (1 - t2)).sum()
    tversky = 1 - inter / (inter + 0.3 * fp + 0.7 * fn + EPS)
    w_used = w if weighted else None
    assert lossctl.get("dice")(t, p, sample_weight=w_used) == pytest.approx(dice, rel=1e-12)
    assert lossctl.get("tversky:alpha=0.3:beta=0.7")(t, p, sample_weight=w_used) == pytest.approx(tversky, rel=1e-12)


def test_tversky_half_half_is_dice_up_to_eps() -> None:
    t, p = make("multilabel", seed=32)
    assert lossctl.get("tversky")(t, p) == pytest.approx(lossctl.get("dice")(t, p), rel=1e-8)


def test_dice_and_every_tversky_share_one_state_of_three_sums() -> None:
    t, p = make("multilabel", seed=33)
    w = weights(len(t))
    dice = lookup("dice").accumulator({"reduction": "mean"}, "loss")
    tversky = lookup("tversky").accumulator({"alpha": 0.3, "beta": 0.7, "reduction": "sum"}, "loss")
    assert dice.key == tversky.key
    state = dice.new()
    dice.update(state, Batch(t[:50], p[:50], w[:50]))
    tversky.update(state, Batch(t[50:], p[50:], w[50:]))
    assert state.layout() == {"rows": "sum", "intersection": "sum", "true_sum": "sum", "pred_sum": "sum"}
    assert dice.finish(state).value == pytest.approx(lossctl.get("dice")(t, p, sample_weight=w), rel=1e-12)
    expected = lossctl.get("tversky:alpha=0.3:beta=0.7")(t, p, sample_weight=w)
    assert tversky.finish(state).value == pytest.approx(expected, rel=1e-12)
    # Saved and loaded, the state gives the same values.
    loaded = State.from_arrays(state.layout(), state.to_arrays())
    tversky.check(loaded)
    assert tversky.finish(loaded).value == tversky.finish(state).value


def test_kl_divergence_legacy_and_alias_names() -> None:
    t, p = make("distributions", seed=41)
    expected = o_kld(t, p).mean()
    for name in ("kl_divergence", "kld", "kullback_leibler_divergence", "KLD"):
        assert lossctl.get(name)(t, p) == pytest.approx(expected, rel=1e-12)


def test_cosine_similarity_sign_follows_kind(tmp_path: Path) -> None:
    t, p = make("vectors", seed=51, n=30)
    path = _write_parquet(tmp_path, t, p)
    expected = float(o_cosine(t, p).mean())
    loss = lossctl.evaluate(str(path), loss="cosine_similarity").results[0]
    metric = lossctl.evaluate(str(path), metric="cosine_proximity").results[0]
    assert loss.value == pytest.approx(expected, rel=1e-12)
    assert metric.value == pytest.approx(-expected, rel=1e-12)
    assert loss.direction == "min" and metric.direction == "max"
    assert metric.name == "cosine_similarity"


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "t", "p", "role", "row", "fragment"),
    [
        ("bce", [0.0, 1.0, 1.0], [0.2, 1.5, 0.3], "y_pred", 1, "probability 1.5 is outside [0, 1]"),
        ("bce", [0.0, 1.0, -1.0], [0.2, 0.5, 0.3], "y_true", 2, "target -1 is outside [0, 1]"),
        ("binary_focal_crossentropy", [0.0, 1.0], [-0.2, 0.5], "y_pred", 0, "from_logits=true"),
        ("cce", [[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [0.0, 0.0]], "y_pred", 1, "sum to 0"),
        ("scce", [0.0, 7.0, 1.0], [[0.2, 0.8]] * 3, "y_true", 1, "label 7 is out of range for 2 classes"),
        ("scce", [0.0, -1.0], [[0.2, 0.8]] * 2, "y_true", 1, "label -1 is out of range for 2 classes"),
        ("scce", [0.0, 1.5], [[0.2, 0.8]] * 2, "y_true", 1, "label 1.5 is not an integer class index"),
        ("categorical_generalized_cross_entropy", [0.0, 3.0], [[0.2, 0.8]] * 2, "y_true", 1, "out of range"),
        ("kld", [[0.5, 0.5]], [[1.2, -0.2]], "y_pred", 0, "outside [0, 1]"),
        ("dice", [[1.0, 2.0]], [[0.2, 0.3]], "y_true", 0, "target 2 is outside [0, 1]"),
    ],
)
def test_bad_values_name_the_row(spec: str, t: Any, p: Any, role: str, row: int, fragment: str) -> None:
    with pytest.raises(ValueProblem) as info:
        lossctl.get(spec)(t, p)
    assert info.value.role == role and info.value.index == row
    assert fragment in info.value.message


def test_tiny_float_error_outside_the_unit_interval_is_tolerated() -> None:
    # 1 + 1e-9 and -1e-9 are rounding, not mistakes: clipped as Keras clips them.
    got = lossctl.get("bce")([1.0, 0.0], [1.0 + 1e-9, -1e-9])
    # 1 + 1e-9 clips to 0.99999988 (Keras's float32 bound), -1e-9 to 1e-7.
    assert got == pytest.approx((-math.log(0.99999988079071044921875) - math.log(1 - EPS)) / 2, rel=1e-6)
    assert lossctl.get("binary_focal_crossentropy:gamma=0.5")([1.0, 0.0], [1.0 + 1e-9, -1e-9]) is not None


def test_logits_are_not_range_checked() -> None:
    assert lossctl.get("bce:from_logits=true")([0.0, 1.0], [-5.0, 7.0]) is not None
    assert lossctl.get("scce:from_logits=true")([0.0, 1.0], [[-5.0, 7.0], [2.0, 9.0]]) is not None


def test_sparse_entries_reject_one_hot_labels() -> None:
    # The API checks shapes as eval does, with eval's message.
    with pytest.raises(DataError, match="needs one integer label per row"):
        lossctl.get("scce")([[0.0, 1.0]], [[0.2, 0.8]])
    with pytest.raises(DataError, match="matrix of class scores"):
        lossctl.get("scce")([1.0], [0.8])


# --- through the CLI, from files ----------------------------------------------------------


def _write_csv(tmp_path: Path, t: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> tuple[Path, str, str]:
    header: list[str] = []
    cols: list[np.ndarray] = []
    names = []
    for role, a in (("t", t), ("p", p)):
        if a.ndim == 1:
            header.append(role)
            cols.append(a)
            names.append(role)
        else:
            cs = [f"{role}{i}" for i in range(a.shape[1])]
            header += cs
            cols += [a[:, i] for i in range(a.shape[1])]
            names.append(",".join(cs))
    if w is not None:
        header.append("w")
        cols.append(w)
    path = tmp_path / "preds.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in zip(*cols, strict=True):
            writer.writerow([repr(float(x)) for x in row])
    return path, names[0], names[1]


def _write_parquet(tmp_path: Path, t: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> Path:
    def col(a: np.ndarray) -> pa.Array:
        return pa.array(a) if a.ndim == 1 else pa.array(a.tolist(), type=pa.list_(pa.float64()))

    data = {"y_true": col(t), "y_pred": col(p)}
    if w is not None:
        data["w"] = pa.array(w)
    path = tmp_path / "preds.parquet"
    pq.write_table(pa.table(data), path, row_group_size=37)
    return path


def _eval(args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["eval", *args, "-f", "json"])
    assert result.exit_code == 0, result.stderr or result.output
    return json.loads(result.stdout)


CLI_CASES = [c for c in CASES if c[2] in ("binary", "multilabel", "logits2d", "onehot", "sparse", "distributions", "signed1d", "vectors")]


@pytest.mark.parametrize("case", CLI_CASES, ids=[_case_id(c) for c in CLI_CASES])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_from_a_file(case: tuple[str, dict[str, Any], str, Any], fmt: str, tmp_path: Path) -> None:
    name, params, kind, oracle = case
    t, p = make(kind, seed=61, n=50)
    w = weights(50, seed=62)
    spec = name + "".join(f":{k}={str(v).lower()}" for k, v in params.items())
    if fmt == "csv":
        path, true, pred = _write_csv(tmp_path, t, p, w)
        args = [str(path), "--true", true, "--pred", pred]
    else:
        path = _write_parquet(tmp_path, t, p, w)
        args = [str(path)]
    doc = _eval([*args, "--loss", spec, "--weight", "w", "--chunk-size", "7"])
    res = doc["results"][0]
    assert res["name"] == name
    assert res["value"] == pytest.approx(float(np.average(oracle(t, p, **params), weights=w)), rel=1e-10)
    assert res["rows"] == 50


def test_cli_dice_chunked_equals_whole(tmp_path: Path) -> None:
    t, p = make("multilabel", seed=71, n=64)
    path = _write_parquet(tmp_path, t, p)
    whole = _eval([str(path), "--loss", "dice,tversky:alpha=0.2:beta=0.8"])["results"]
    chunked = _eval([str(path), "--loss", "dice,tversky:alpha=0.2:beta=0.8", "--chunk-size", "5"])["results"]
    for a, b in zip(whole, chunked, strict=True):
        assert a["value"] == pytest.approx(b["value"], rel=1e-12)
    assert whole[0]["value"] == pytest.approx(1 - 2 * (t * p).sum() / (t.sum() + p.sum() + EPS), rel=1e-12)


def _fail(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["eval", *args, "-f", "json"])
    return result.exit_code, result.stderr


def test_cli_out_of_range_label_is_exit_3_naming_the_row(tmp_path: Path) -> None:
    labels, p = make("sparse", seed=81, n=40)
    labels[23] = 7.0
    path = _write_parquet(tmp_path, labels, p)
    code, err = _fail([str(path), "--loss", "scce", "--chunk-size", "10"])
    assert code == 3
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "row 23" in err and "label 7 is out of range for 5 classes" in err and "y_true" in err


def test_cli_ignored_class_may_be_out_of_range(tmp_path: Path) -> None:
    labels, p = make("sparse", seed=82, n=40)
    labels[::5] = -1.0
    path = _write_parquet(tmp_path, labels, p)
    res = _eval([str(path), "--loss", "scce:ignore_class=-1"])["results"][0]
    keep = labels != -1
    assert res["value"] == pytest.approx(o_scce(labels[keep], p[keep]).mean(), rel=1e-12)
    assert res["rows"] == int(keep.sum())


def test_cli_probability_outside_unit_interval_is_exit_3(tmp_path: Path) -> None:
    t, p = make("binary", seed=83, n=30)
    p[17] = 2.5
    path, true, pred = _write_csv(tmp_path, t, p, None)
    code, err = _fail([str(path), "--true", true, "--pred", pred, "--loss", "bce"])
    assert code == 3
    assert err.count("\n") == 1
    assert "row 17" in err and "2.5 is outside [0, 1]" in err and "from_logits=true" in err


def test_cli_warns_about_logits_flag_on_probabilities_and_unnormalised_rows(tmp_path: Path) -> None:
    t, p = make("binary", seed=84, n=30)
    path = _write_parquet(tmp_path, t, p)
    doc = _eval([str(path), "--loss", "bce:from_logits=true"])
    assert any("look like probabilities" in w for w in doc["warnings"])
    t2, p2 = make("onehot_unnormalised", seed=85, n=30)
    path2 = _write_parquet(tmp_path, t2, p2)
    doc2 = _eval([str(path2), "--loss", "cce"])
    assert any("do not sum to 1" in w for w in doc2["warnings"])


# --- the Keras reference vectors of these entries ----------------------------------------


def _mine(case: dict[str, Any]) -> bool:
    return lookup(parse_spec(case["spec"]).name).name in MINE


VECTORS = [v for v in json.loads(DATA.read_text())["vectors"] if _mine(v)]


def test_reference_vectors_cover_every_entry() -> None:
    assert {lookup(parse_spec(v["spec"]).name).name for v in VECTORS} == MINE


@pytest.mark.parametrize("case", VECTORS, ids=[v["id"] for v in VECTORS])
def test_reference_vector(case: dict[str, Any], tmp_path: Path) -> None:
    tol = 1e-9 if case["contract_follows"] == "sklearn" else 1e-6
    expected = case["expected"]
    got = lossctl.get(case["spec"])(case["y_true"], case["y_pred"], sample_weight=case["sample_weight"])
    if case["kind"] == "metric" and lookup(parse_spec(case["spec"]).name).metric_negates:
        got = -got
    assert got == pytest.approx(expected, rel=tol)
    # And as requested on the command line, from a Parquet file.
    t, p = np.asarray(case["y_true"], dtype=float), np.asarray(case["y_pred"], dtype=float)
    w = None if case["sample_weight"] is None else np.asarray(case["sample_weight"], dtype=float)
    path = _write_parquet(tmp_path, t, p, w)
    option = "--loss" if case["kind"] == "loss" else "--metric"
    args = [str(path), option, case["spec"], *(["--weight", "w"] if w is not None else [])]
    assert _eval(args)["results"][0]["value"] == pytest.approx(expected, rel=tol)
