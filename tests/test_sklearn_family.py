"""The scikit-learn family against scikit-learn itself, formulas written here and the reference vectors."""

from __future__ import annotations

import itertools
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
from lossctl import registry
from lossctl.batch import Batch
from lossctl.cli.main import cli
from lossctl.errors import DataError, UsageProblem, ValueProblem
from lossctl.params import parse_spec
from lossctl.state import State, merge

NAMES = (
    "log_loss",
    "balanced_accuracy_score",
    "matthews_corrcoef",
    "cohen_kappa_score",
    "brier_score_loss",
    "explained_variance_score",
    "median_absolute_error",
    "max_error",
    "mean_pinball_loss",
    "mean_tweedie_deviance",
    "mean_gamma_deviance",
    "mean_poisson_deviance",
    "expected_calibration_error",
)
VECTORS = json.loads((Path(__file__).parent / "data" / "keras_vectors.json").read_text())["vectors"]
C = 4


def _canonical(spec: str) -> str | None:
    try:
        return registry.lookup(parse_spec(spec).name).name
    except UsageProblem:  # a family not registered (yet) in this tree
        return None


MINE = [v for v in VECTORS if _canonical(v["spec"]) in NAMES]


# --- inputs -----------------------------------------------------------------------------


def _binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(float)
    y[:2] = [0.0, 1.0]
    p = np.clip(0.6 * y + rng.uniform(-0.3, 0.7, n), 0.0, 1.0)
    p[2:4] = [0.0, 1.0]  # exact 0 and 1: scikit-learn's clipping at machine epsilon matters
    return y, p, rng.uniform(0.0, 3.0, n)


def _multiclass(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, n)
    labels[:C] = np.arange(C)
    logits = rng.normal(0.0, 1.0, (n, C))
    logits[np.arange(n), labels] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels.astype(float), probs, rng.uniform(0.0, 3.0, n)


def _regression(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.5, 6.0, shape)
    p = np.abs(t + rng.normal(0.0, 1.0, shape)) + 0.05
    return t, p, rng.uniform(0.0, 3.0, shape[0])


def _decide(p: np.ndarray) -> np.ndarray:
    """Keras's decision, written out: p > 0.5 for one column, argmax for a matrix."""
    return np.argmax(p, axis=1) if p.ndim == 2 else (p > 0.5).astype(int)


def ece_oracle(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None, n_bins: int = 15) -> float:
    """Expected calibration error, bin by bin: bins (k/n, (k+1)/n], the first one closed at 0."""
    w = np.ones(len(y)) if w is None else w
    if p.ndim == 1:
        conf, correct = p, y
    else:
        conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    total = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        inside = (conf <= hi) & ((conf > lo) | (k == 0))
        total += abs(float(np.sum(w[inside] * correct[inside])) - float(np.sum(w[inside] * conf[inside])))
    return total / float(np.sum(w))


# --- reference vectors ------------------------------------------------------------------


def test_reference_vectors_cover_the_family() -> None:
    covered = {_canonical(v["spec"]) for v in MINE}
    # Every entry the shared vectors know about (ECE has none there).
    assert covered == set(NAMES) - {"expected_calibration_error"}
    assert len(MINE) >= 26


@pytest.mark.parametrize("case", MINE, ids=[v["id"] for v in MINE])
def test_reference_vector(case: dict[str, Any]) -> None:
    got = lossctl.get(case["spec"])(case["y_true"], case["y_pred"], sample_weight=case["sample_weight"])
    tol = 1e-9 if case["contract_follows"] == "sklearn" else 1e-6
    assert got == pytest.approx(case["expected"], rel=tol)


# --- against scikit-learn through lossctl.get -------------------------------------------

Weights = np.ndarray | None


def _w(weighted: bool, w: np.ndarray) -> Weights:
    return w if weighted else None


WEIGHTED = pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])


@WEIGHTED
def test_log_loss_binary(weighted: bool) -> None:
    y, p, w = _binary(300)
    wu = _w(weighted, w)
    assert lossctl.get("log_loss")(y, p, sample_weight=wu) == pytest.approx(skm.log_loss(y, p, sample_weight=wu), rel=1e-12)


@WEIGHTED
@pytest.mark.parametrize("one_hot", [False, True], ids=["sparse", "one_hot"])
def test_log_loss_multiclass(weighted: bool, one_hot: bool) -> None:
    y, p, w = _multiclass(300)
    p[0] = [1.0, 0.0, 0.0, 0.0]  # a row whose true class has probability 0 (clipped)
    y[0] = 2
    wu = _w(weighted, w)
    yt = np.eye(C)[y.astype(int)] if one_hot else y
    expected = skm.log_loss(y, p, sample_weight=wu, labels=list(range(C)))
    assert lossctl.get("log_loss")(yt, p, sample_weight=wu) == pytest.approx(expected, rel=1e-12)


@WEIGHTED
def test_brier_binary_and_multiclass(weighted: bool) -> None:
    y, p, w = _binary(300)
    wu = _w(weighted, w)
    brier = lossctl.get("brier")
    assert brier(y, p, sample_weight=wu) == pytest.approx(skm.brier_score_loss(y, p, sample_weight=wu), rel=1e-12)
    labels, probs, w2 = _multiclass(300)
    wu = _w(weighted, w2)
    expected = skm.brier_score_loss(labels, probs, sample_weight=wu, labels=list(range(C)))
    assert brier(labels, probs, sample_weight=wu) == pytest.approx(expected, rel=1e-12)
    # Two columns are halved (scale_by_half=auto), so they equal the one-column form.
    two = np.column_stack([1.0 - p, p])
    assert brier(y, two) == pytest.approx(skm.brier_score_loss(y, two, labels=[0, 1]), rel=1e-12)
    assert brier(y, two) == pytest.approx(brier(y, p), rel=1e-12)
    unhalved = lossctl.get("brier_score_loss:scale_by_half=false")(y, two)
    assert unhalved == pytest.approx(skm.brier_score_loss(y, two, labels=[0, 1], scale_by_half=False), rel=1e-12)


CLASS_METRICS: dict[str, Callable[..., float]] = {
    "balanced_accuracy": skm.balanced_accuracy_score,
    "balanced_accuracy_score:adjusted=true": lambda t, p, sample_weight=None: skm.balanced_accuracy_score(
        t, p, sample_weight=sample_weight, adjusted=True
    ),
    "mcc": skm.matthews_corrcoef,
    "cohen_kappa": skm.cohen_kappa_score,
    "cohen_kappa:weights=linear": lambda t, p, sample_weight=None: skm.cohen_kappa_score(
        t, p, weights="linear", sample_weight=sample_weight
    ),
    "cohen_kappa:weights=quadratic": lambda t, p, sample_weight=None: skm.cohen_kappa_score(
        t, p, weights="quadratic", sample_weight=sample_weight
    ),
}


@pytest.mark.parametrize("spec", sorted(CLASS_METRICS))
@pytest.mark.parametrize("kind", ["binary_proba", "multiclass_proba", "one_hot", "labels"])
@WEIGHTED
def test_class_metrics_match_scikit_learn(spec: str, kind: str, weighted: bool) -> None:
    if kind == "binary_proba":
        y, p, w = _binary(300, seed=1)
    else:
        y, p, w = _multiclass(300, seed=2)
    decided = _decide(p)
    yt, yp = y, p
    if kind == "one_hot":
        yt = np.eye(C)[y.astype(int)]
    elif kind == "labels":
        yp = decided.astype(float)
    wu = _w(weighted, w)
    expected = CLASS_METRICS[spec](y.astype(int), decided, sample_weight=wu)
    assert lossctl.get(spec)(yt, yp, sample_weight=wu) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("spec", sorted(CLASS_METRICS))
def test_class_metrics_on_labels_with_gaps(spec: str) -> None:
    # Labels {0, 2, 7}: weighted kappa counts positions among the labels seen, as scikit-learn does.
    rng = np.random.default_rng(5)
    y = rng.choice([0, 2, 7], 200)
    p = np.where(rng.uniform(size=200) < 0.7, y, rng.choice([0, 2, 7], 200))
    w = rng.uniform(0.1, 2.0, 200)
    expected = CLASS_METRICS[spec](y, p, sample_weight=w)
    assert lossctl.get(spec)(y.astype(float), p.astype(float), sample_weight=w) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("multioutput", ["uniform_average", "variance_weighted"])
@pytest.mark.parametrize("shape", [(300,), (200, 3)], ids=["1d", "2d"])
@WEIGHTED
def test_explained_variance(multioutput: str, shape: tuple[int, ...], weighted: bool) -> None:
    t, p, w = _regression(shape)
    wu = _w(weighted, w)
    expected = skm.explained_variance_score(t, p, sample_weight=wu, multioutput=multioutput)
    got = lossctl.get(f"explained_variance:multioutput={multioutput}")(t, p, sample_weight=wu)
    assert got == pytest.approx(expected, rel=1e-10)


def test_explained_variance_is_stable_for_large_offsets() -> None:
    t, p, _ = _regression((20_000,))
    assert lossctl.get("explained_variance")(t + 1e9, p + 1e9) == pytest.approx(
        skm.explained_variance_score(t, p), rel=1e-6
    )


@pytest.mark.parametrize("shape", [(301,), (300,), (200, 3)], ids=["odd", "even", "2d"])
@WEIGHTED
def test_median_absolute_error(shape: tuple[int, ...], weighted: bool) -> None:
    t, p, w = _regression(shape)
    wu = _w(weighted, w)
    expected = skm.median_absolute_error(t, p, sample_weight=wu)
    assert lossctl.get("median_absolute_error")(t, p, sample_weight=wu) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("ties", [True, False], ids=["ties", "distinct"])
@pytest.mark.parametrize("seed", range(25))
def test_weighted_median_ties_and_zero_weights(seed: int, ties: bool) -> None:
    # Integer weights make cumulative sums that hit half the total exactly, and zero
    # weights make scikit-learn skip to the next value that has weight.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    t = rng.integers(0, 6, n).astype(float) if ties else rng.permutation(n).astype(float)
    p = np.zeros(n)
    w = rng.integers(0, 4, n).astype(float)
    w[0] = 1.0
    expected = skm.median_absolute_error(t, p, sample_weight=w)
    assert lossctl.get("median_absolute_error")(t, p, sample_weight=w) == pytest.approx(expected, rel=1e-12)


def test_max_error() -> None:
    t, p, w = _regression((300,))
    assert lossctl.get("max_error")(t, p) == skm.max_error(t, p)
    # Rows of weight 0 are left out; other weights do not change a maximum.
    w[np.argmax(np.abs(t - p))] = 0.0
    keep = w > 0
    assert lossctl.get("max_error")(t, p, sample_weight=w) == skm.max_error(t[keep], p[keep])


@pytest.mark.parametrize("alpha", [0.5, 0.1, 0.9, 0.0, 1.0])
@pytest.mark.parametrize("shape", [(300,), (200, 3)], ids=["1d", "2d"])
@WEIGHTED
def test_pinball(alpha: float, shape: tuple[int, ...], weighted: bool) -> None:
    t, p, w = _regression(shape)
    wu = _w(weighted, w)
    expected = skm.mean_pinball_loss(t, p, alpha=alpha, sample_weight=wu)
    assert lossctl.get(f"pinball:alpha={alpha}")(t, p, sample_weight=wu) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("power", [-1.5, 0.0, 1.0, 1.5, 2.0, 3.0])
@WEIGHTED
def test_tweedie(power: float, weighted: bool) -> None:
    t, p, w = _regression((300,))
    if power >= 1.0 and power < 2.0:
        t[:5] = 0.0  # zero counts are allowed for Poisson-like powers
    if power < 0:
        t[:5] = -1.0  # any real y_true
    wu = _w(weighted, w)
    expected = skm.mean_tweedie_deviance(t, p, power=power, sample_weight=wu)
    assert lossctl.get(f"mean_tweedie_deviance:power={power}")(t, p, sample_weight=wu) == pytest.approx(expected, rel=1e-12)


@WEIGHTED
def test_gamma_and_poisson_deviance(weighted: bool) -> None:
    t, p, w = _regression((300,))
    wu = _w(weighted, w)
    assert lossctl.get("mean_gamma_deviance")(t, p, sample_weight=wu) == pytest.approx(
        skm.mean_gamma_deviance(t, p, sample_weight=wu), rel=1e-12
    )
    counts = np.floor(t)
    assert (counts == 0).any()
    assert lossctl.get("mean_poisson_deviance")(counts, p, sample_weight=wu) == pytest.approx(
        skm.mean_poisson_deviance(counts, p, sample_weight=wu), rel=1e-12
    )


@pytest.mark.parametrize("n_bins", [15, 4, 1])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "one_hot"])
@WEIGHTED
def test_ece_matches_bin_by_bin_formula(n_bins: int, kind: str, weighted: bool) -> None:
    if kind == "binary":
        y, p, w = _binary(400, seed=3)
    else:
        y, p, w = _multiclass(400, seed=3)
    yt = np.eye(C)[y.astype(int)] if kind == "one_hot" else y
    wu = _w(weighted, w)
    got = lossctl.get(f"ece:n_bins={n_bins}")(yt, p, sample_weight=wu)
    assert got == pytest.approx(ece_oracle(y, p, wu, n_bins), rel=1e-12)


def test_ece_binary_agrees_with_calibration_curve() -> None:
    from sklearn.calibration import calibration_curve

    y, p, _ = _binary(500, seed=4)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p), minlength=10)
    counts = counts[counts > 0]
    expected = float(np.sum(counts * np.abs(prob_true - prob_pred)) / len(y))
    assert lossctl.get("ece:n_bins=10")(y, p) == pytest.approx(expected, rel=1e-10)


# --- streaming: merge of random splits, growing label sets ------------------------------

SPLIT_CASES = [
    ("log_loss", "binary"),
    ("log_loss", "multiclass"),
    ("brier", "multiclass"),
    ("ece", "multiclass"),
    ("ece", "binary"),
    ("balanced_accuracy", "multiclass"),
    ("mcc", "multiclass"),
    ("cohen_kappa:weights=quadratic", "multiclass"),
    ("explained_variance", "regression2d"),
    ("median_absolute_error", "regression2d"),
    ("max_error", "regression"),
    ("pinball:alpha=0.3", "regression"),
    ("mean_tweedie_deviance:power=1.5", "regression"),
    ("mean_gamma_deviance", "regression"),
    ("mean_poisson_deviance", "regression"),
]


def _inputs(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if kind == "binary":
        return _binary(200, seed)
    if kind == "multiclass":
        return _multiclass(200, seed)
    if kind == "regression2d":
        return _regression((200, 3), seed)
    return _regression((200,), seed)


def _state(spec: str) -> Any:
    raw = parse_spec(spec)
    resolved = registry.resolve(raw, "metric")
    return resolved.entry.make_state(resolved.params, "metric")


@pytest.mark.parametrize("spec, kind", SPLIT_CASES, ids=[s for s, _ in SPLIT_CASES])
@pytest.mark.parametrize("seed", range(3))
@WEIGHTED
def test_merge_of_random_splits_equals_one_pass(spec: str, kind: str, seed: int, weighted: bool) -> None:
    t, p, w = _inputs(kind, seed)
    wu = _w(weighted, w)
    whole = lossctl.get(spec)(t, p, sample_weight=wu)
    rng = np.random.default_rng(100 + seed)
    cuts = sorted(rng.choice(np.arange(1, 200), size=6, replace=False).tolist())
    bounds = [0, *cuts, 200]
    parts = []
    for a, b in itertools.pairwise(bounds):
        state = _state(spec)
        state.update(Batch(t[a:b], p[a:b], None if wu is None else wu[a:b]))
        parts.append(state)
    parts.append(_state(spec))  # an empty partition
    merged = parts[0]
    for i in rng.permutation(len(parts) - 1) + 1:
        merged = merged.merge(parts[i])
    assert whole is not None
    assert merged.result().value == pytest.approx(whole, rel=1e-9)


@pytest.mark.parametrize("spec", sorted(CLASS_METRICS))
def test_confusion_states_with_different_label_sets_merge(spec: str) -> None:
    # Each chunk sees different labels; merge must align matrices of different sizes.
    chunks = [
        (np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 1])),
        (np.array([3, 2, 3, 3]), np.array([3, 3, 2, 3])),
        (np.array([5, 1, 5]), np.array([5, 5, 1])),
        (np.array([2, 0, 5, 3, 1]), np.array([2, 3, 5, 0, 1])),
    ]
    weights = [np.linspace(0.5, 2.0, len(t)) for t, _ in chunks]
    states = []
    for (t, p), w in zip(chunks, weights, strict=True):
        s = _state(spec)
        s.update(Batch(t.astype(float), p.astype(float), w))
        states.append(s)
    merged = states[2].merge(states[0]).merge(states[3].merge(states[1]))
    t_all = np.concatenate([t for t, _ in chunks])
    p_all = np.concatenate([p for _, p in chunks])
    expected = CLASS_METRICS[spec](t_all, p_all, sample_weight=np.concatenate(weights))
    assert merged.result().value == pytest.approx(expected, rel=1e-12)
    # One stream of chunks (update after update) gives the same.
    streamed = _state(spec)
    for (t, p), w in zip(chunks, weights, strict=True):
        streamed.update(Batch(t.astype(float), p.astype(float), w))
    assert streamed.result().value == pytest.approx(expected, rel=1e-12)


# --- undefined values and value errors --------------------------------------------------


@pytest.mark.parametrize(
    "spec, y_true, y_pred",
    [
        ("mcc", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
        ("mcc", [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
        ("cohen_kappa", [2.0, 2.0], [2.0, 2.0]),
        ("balanced_accuracy:adjusted=true", [1.0, 1.0], [1.0, 0.0]),
        ("explained_variance", [3.0, 3.0, 3.0], [1.0, 2.0, 3.0]),
    ],
)
def test_undefined_is_none_with_a_note(spec: str, y_true: list[float], y_pred: list[float]) -> None:
    state = _state(spec)
    state.update(Batch(np.array(y_true), np.array(y_pred)))
    result = state.result()
    assert result.value is None and result.note


@pytest.mark.parametrize("spec", ["median_absolute_error", "max_error", "mcc", "ece", "explained_variance"])
def test_all_zero_weights_is_undefined(spec: str) -> None:
    y, p = np.array([0.0, 1.0, 1.0]), np.array([0.2, 0.7, 0.4])
    assert lossctl.get(spec)(y, p, sample_weight=np.zeros(3)) is None


@pytest.mark.parametrize(
    "spec, y_true, y_pred, role, row, words",
    [
        ("mean_gamma_deviance", [1.0, 2.0, 0.0], [1.0, 1.0, 1.0], "y_true", 2, "is not > 0"),
        ("mean_gamma_deviance", [1.0, 2.0, 3.0], [1.0, -1.0, 1.0], "y_pred", 1, "is not > 0"),
        ("mean_poisson_deviance", [1.0, -2.0], [1.0, 1.0], "y_true", 1, "is not >= 0"),
        ("mean_tweedie_deviance:power=-1", [-1.0, 2.0], [1.0, 0.0], "y_pred", 1, "is not > 0"),
        ("log_loss", [0.0, 1.0, 1.0], [0.2, 1.5, 0.3], "y_pred", 1, "outside [0, 1]"),
        ("log_loss", [0.0, 2.0], [0.2, 0.5], "y_true", 1, "not 0 or 1"),
        ("ece", [0.0, 3.0], [[0.5, 0.5, 0.0], [0.2, 0.2, 0.6]], "y_true", 1, "out of range for 3 classes"),
        ("mcc", [0.0, 1.5], [0.0, 1.0], "y_true", 1, "not an integer class"),
        ("mcc", [0.0, -1.0], [0.0, 1.0], "y_true", 1, "negative"),
        ("balanced_accuracy", [0.0, 1.0, 1.0], [0.0, 1.0, 2.5], "y_pred", 2, "neither a probability"),
    ],
)
def test_value_problems_name_the_row(
    spec: str, y_true: list[Any], y_pred: list[Any], role: str, row: int, words: str
) -> None:
    with pytest.raises(ValueProblem) as info:
        lossctl.get(spec)(y_true, y_pred)
    assert info.value.role == role and info.value.index == row and words in info.value.message


def test_tweedie_power_between_0_and_1_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("y_true,y_pred\n1,2\n2,3\n")
    result = CliRunner().invoke(cli, ["eval", str(path), "-m", "mean_tweedie_deviance:power=0.5", "-f", "json"])
    assert result.exit_code == 2
    assert "power" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_domain_error_through_cli_names_file_column_and_row(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("y_true,y_pred\n1,2\n2,3\n0,1\n4,4\n")
    result = CliRunner().invoke(cli, ["eval", str(path), "-m", "mean_gamma_deviance", "-f", "json", "--chunk-size", "2"])
    assert result.exit_code == 3
    line = result.stderr.strip()
    assert "d.csv row 2" in line and "'y_true'" in line and len(line.splitlines()) == 1


# --- through the CLI from files ---------------------------------------------------------


def _results(args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return {r["spec"]: r for r in json.loads(result.stdout)["results"]}


def _csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    names = list(columns)
    rows = zip(*(columns[n].tolist() for n in names), strict=True)
    path.write_text(",".join(names) + "\n" + "\n".join(",".join(repr(v) for v in r) for r in rows) + "\n")


@WEIGHTED
def test_binary_metrics_through_cli_from_csv(tmp_path: Path, weighted: bool) -> None:
    y, p, w = _binary(500, seed=8)
    path = tmp_path / "binary.csv"
    _csv(path, {"y_true": y, "y_pred": p, "w": w})
    specs = "log_loss,brier,ece,mcc,balanced_accuracy,cohen_kappa"
    args = ["eval", str(path), "-m", specs, "-f", "json", "--chunk-size", "37"]
    if weighted:
        args += ["--weight", "w"]
    got = _results(args)
    wu = _w(weighted, w)
    decided = _decide(p)
    assert got["log_loss"]["value"] == pytest.approx(skm.log_loss(y, p, sample_weight=wu), rel=1e-10)
    assert got["brier"]["value"] == pytest.approx(skm.brier_score_loss(y, p, sample_weight=wu), rel=1e-10)
    assert got["ece"]["value"] == pytest.approx(ece_oracle(y, p, wu), rel=1e-10)
    assert got["mcc"]["value"] == pytest.approx(skm.matthews_corrcoef(y, decided, sample_weight=wu), rel=1e-10)
    assert got["balanced_accuracy"]["value"] == pytest.approx(
        skm.balanced_accuracy_score(y, decided, sample_weight=wu), rel=1e-10
    )
    assert got["cohen_kappa"]["value"] == pytest.approx(skm.cohen_kappa_score(y, decided, sample_weight=wu), rel=1e-10)
    assert got["mcc"]["name"] == "matthews_corrcoef"
    assert got["ece"]["params"] == {"n_bins": 15}


@WEIGHTED
def test_multiclass_metrics_through_cli_from_parquet(tmp_path: Path, weighted: bool) -> None:
    y, p, w = _multiclass(400, seed=9)
    path = tmp_path / "multi.parquet"
    probs = pa.FixedSizeListArray.from_arrays(pa.array(p.reshape(-1)), C)
    pq.write_table(pa.table({"label": y.astype(np.int64), "prob": probs, "w": w}), path, row_group_size=61)
    specs = "log_loss,brier,ece,mcc,balanced_accuracy,cohen_kappa:weights=quadratic"
    args = ["eval", str(path), "--true", "label", "--pred", "prob", "-m", specs, "-f", "json", "--chunk-size", "50"]
    if weighted:
        args += ["--weight", "w"]
    got = _results(args)
    wu = _w(weighted, w)
    labels = list(range(C))
    decided = _decide(p)
    assert got["log_loss"]["value"] == pytest.approx(skm.log_loss(y, p, sample_weight=wu, labels=labels), rel=1e-10)
    assert got["brier"]["value"] == pytest.approx(
        skm.brier_score_loss(y, p, sample_weight=wu, labels=labels), rel=1e-10
    )
    assert got["ece"]["value"] == pytest.approx(ece_oracle(y, p, wu), rel=1e-10)
    assert got["mcc"]["value"] == pytest.approx(skm.matthews_corrcoef(y, decided, sample_weight=wu), rel=1e-10)
    assert got["balanced_accuracy"]["value"] == pytest.approx(
        skm.balanced_accuracy_score(y, decided, sample_weight=wu), rel=1e-10
    )
    assert got["cohen_kappa:weights=quadratic"]["value"] == pytest.approx(
        skm.cohen_kappa_score(y, decided, weights="quadratic", sample_weight=wu), rel=1e-10
    )


def test_multiclass_from_csv_comma_list_of_columns(tmp_path: Path) -> None:
    y, p, _ = _multiclass(200, seed=10)
    path = tmp_path / "multi.csv"
    _csv(path, {"y_true": y.astype(int), **{f"p{j}": p[:, j] for j in range(C)}})
    got = _results(["eval", str(path), "--pred", "p0,p1,p2,p3", "-m", "log_loss,mcc", "-f", "json"])
    assert got["log_loss"]["value"] == pytest.approx(skm.log_loss(y, p, labels=list(range(C))), rel=1e-10)
    assert got["mcc"]["value"] == pytest.approx(skm.matthews_corrcoef(y, _decide(p)), rel=1e-10)


@WEIGHTED
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_regression_metrics_through_cli(tmp_path: Path, weighted: bool, fmt: str) -> None:
    t, p, w = _regression((450,), seed=11)
    path = tmp_path / f"reg.{fmt}"
    if fmt == "csv":
        _csv(path, {"y_true": t, "y_pred": p, "w": w})
    else:
        pq.write_table(pa.table({"y_true": t, "y_pred": p, "w": w}), path, row_group_size=70)
    specs = (
        "explained_variance,median_absolute_error,max_error,pinball:alpha=0.9,"
        "mean_tweedie_deviance:power=1.5,mean_gamma_deviance,mean_poisson_deviance"
    )
    args = ["eval", str(path), "-m", specs, "-f", "json", "--chunk-size", "64"]
    if weighted:
        args += ["--weight", "w"]
    got = _results(args)
    wu = _w(weighted, w)
    expected = {
        "explained_variance": skm.explained_variance_score(t, p, sample_weight=wu),
        "median_absolute_error": skm.median_absolute_error(t, p, sample_weight=wu),
        "pinball:alpha=0.9": skm.mean_pinball_loss(t, p, alpha=0.9, sample_weight=wu),
        "mean_tweedie_deviance:power=1.5": skm.mean_tweedie_deviance(t, p, power=1.5, sample_weight=wu),
        "mean_gamma_deviance": skm.mean_gamma_deviance(t, p, sample_weight=wu),
        "mean_poisson_deviance": skm.mean_poisson_deviance(t, p, sample_weight=wu),
    }
    for spec, value in expected.items():
        assert got[spec]["value"] == pytest.approx(value, rel=1e-10), spec
    assert got["max_error"]["value"] == skm.max_error(t, p)


# --- registry entries -------------------------------------------------------------------


@pytest.mark.parametrize(
    "alias, canonical",
    [
        ("balanced_accuracy", "balanced_accuracy_score"),
        ("mcc", "matthews_corrcoef"),
        ("cohen_kappa", "cohen_kappa_score"),
        ("brier", "brier_score_loss"),
        ("brier_score", "brier_score_loss"),
        ("explained_variance", "explained_variance_score"),
        ("pinball", "mean_pinball_loss"),
        ("ECE", "expected_calibration_error"),
        ("Log-Loss", "log_loss"),
    ],
)
def test_aliases(alias: str, canonical: str) -> None:
    assert lossctl.get(alias).__name__ == canonical


@pytest.mark.parametrize("name", NAMES)
def test_hand_checked_example(name: str) -> None:
    entry = registry.lookup(name)
    assert entry.example is not None
    ex = entry.example
    got = lossctl.get(name, **ex.params)(ex.y_true, ex.y_pred)
    assert got is not None and math.isclose(got, ex.value, rel_tol=1e-12)


def test_median_states_its_memory_cost() -> None:
    assert "8 bytes a row" in registry.lookup("median_absolute_error").memory


# --- declared-array states --------------------------------------------------------------


def _accumulator(spec: str) -> Any:
    resolved = registry.resolve(parse_spec(spec), "metric")
    return resolved.entry.accumulator(resolved.params, "metric")


@WEIGHTED
def test_median_keeps_8_bytes_a_row_and_a_weight_only_with_weights(weighted: bool) -> None:
    t, p, w = _regression((300,))
    wu = _w(weighted, w)
    acc = _accumulator("median_absolute_error")
    state = acc.new()
    for a, b in [(0, 100), (100, 300)]:
        acc.update(state, Batch(t[a:b], p[a:b], None if wu is None else wu[a:b]))
    kept = state.to_arrays()
    assert kept["abs_error"].nbytes == 8 * 300
    assert ("weight" in kept) == weighted and (not weighted or kept["weight"].nbytes == 8 * 300)
    expected = skm.median_absolute_error(t, p, sample_weight=wu)
    assert acc.finish(state).value == pytest.approx(expected, rel=1e-12)
    # Finishing may join the chunks into one array; the value stays, and so does a saved copy's.
    assert len(state.chunks("abs_error", 0)) == 1
    assert acc.finish(state).value == pytest.approx(expected, rel=1e-12)
    loaded = State.from_arrays(state.layout(), state.to_arrays())
    acc.check(loaded)
    assert acc.finish(loaded).value == acc.finish(state).value


def test_median_rows_with_and_without_weights_cannot_be_combined() -> None:
    t, p, w = _regression((40,))
    acc = _accumulator("median_absolute_error")
    plain, weighted = acc.new(), acc.new()
    acc.update(plain, Batch(t[:20], p[:20]))
    acc.update(weighted, Batch(t[20:], p[20:], w[20:]))
    with pytest.raises(DataError, match="weights"):
        acc.finish(merge(plain, weighted))


def test_max_error_is_a_max_array() -> None:
    t, p, w = _regression((300,))
    acc = _accumulator("max_error")
    parts = [acc.new(), acc.new(), acc.new()]
    for state, (a, b) in zip(parts, [(0, 90), (90, 200), (200, 300)], strict=True):
        acc.update(state, Batch(t[a:b], p[a:b], w[a:b]))
    merged = merge(merge(parts[2], parts[0]), parts[1])
    assert merged.layout() == {"rows": "sum", "max": "max"}
    keep = w > 0
    assert acc.finish(merged).value == skm.max_error(t[keep], p[keep])
    zero = acc.new()
    acc.update(zero, Batch(t, p, np.zeros(300)))
    assert acc.finish(zero).value is None and acc.finish(merge(zero, merged)).value == acc.finish(merged).value


def test_ece_bins_are_in_the_key_and_sums_per_bin_in_the_state() -> None:
    y, p, w = _multiclass(200, seed=6)
    default, four = _accumulator("ece"), _accumulator("ece:n_bins=4")
    assert default.key != four.key and "n_bins=4" in four.key
    state = four.new()
    four.update(state, Batch(y, p, w))
    assert {n: state.get(n).shape for n in ("weight", "confidence", "correct")} == dict.fromkeys(
        ("weight", "confidence", "correct"), (1, 4)
    )
    assert four.finish(state).value == pytest.approx(ece_oracle(y, p, w, 4), rel=1e-12)
    loaded = State.from_arrays(state.layout(), state.to_arrays())
    four.check(loaded)
    assert four.finish(loaded).value == four.finish(state).value


def test_median_another_number_of_columns_cannot_be_combined() -> None:
    t, p, _ = _regression((30, 3))
    state = _state("median_absolute_error")
    state.update(Batch(t, p))
    state.update(Batch(t[:, :2], p[:, :2]))
    with pytest.raises(DataError, match="cannot combine"):
        state.result()
