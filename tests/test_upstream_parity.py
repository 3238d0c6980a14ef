"""Cases of Keras's and scikit-learn's own test suites, run through the API and the CLI.

Each case is data: the upstream test it comes from, the spec, the inputs
(arrays of any rank, a weight per row or per element), the expected value
as the upstream test states it, and the tolerance. The CLI reads the same
arrays from NPY files (``--true/--pred/--weight PATH``), so both paths are
held to the same number. Where lossctl deliberately differs (SPEC sections
3-4), the case says so in ``why`` and expects lossctl's documented value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import lossctl
from lossctl.cli.main import cli
from lossctl.errors import DataError, UsageProblem

F32_HIGH = float(np.float32(1 - 1e-7))  # Keras's clip bound at float32: 0.99999988


@dataclass(frozen=True)
class Case:
    upstream: str
    spec: str
    y_true: Any
    y_pred: Any
    expected: float
    sample_weight: Any = None
    kind: str = "metric"
    tol: float = 1e-6
    why: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_TS_TRUE = np.asarray([1, 9, 2, -5, -2, 6.0]).reshape(2, 3, 1)
_TS_PRED = np.asarray([4, 8, 12, 8, 1, 3.0]).reshape(2, 3, 1)
_TS_W = np.array([3, 6, 5, 0, 4, 2.0]).reshape(2, 3)
_SEG_TRUE = [[0, 1, 1, 0], [1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 0, 1]]
_SEG_PRED = [
    [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.2, 0.8]],
    [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
    [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]],
    [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.4]],
]
_SCCE_TRUE = [0, 1, 2]
_SCCE_PRED = [[0.8, 0.1, 0.1], [0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]

CASES = [
    # keras/src/metrics/accuracy_metrics_test.py: per-element sample_weight
    Case("keras AccuracyTest.test_weighted_nd_weights", "acc", [[1, 2], [3, 4]], [[0, 2], [3, 4]], 0.5,
         [[1, 0], [0, 1]]),
    Case("keras BinaryAccuracyTest.test_weighted_nd_weights", "binary_accuracy", [[1, 1], [0, 0]],
         [[0.98, 1], [0, 0.6]], 0.5, [[1, 0], [0, 1]]),
    Case("keras AccuracyTest.test_weighted", "acc", [[1], [2], [3], [4]], [[0], [2], [3], [4]], 0.5, [1, 1, 0, 0]),
    Case("keras BinaryAccuracyTest.test_weighted", "binary_accuracy", [[1], [1], [0], [0]],
         [[0.98], [1], [0], [0.6]], 0.5, [1, 0, 0, 1]),
    # keras/src/losses/losses_test.py: time steps (N, T, 1) with a weight per step (N, T);
    # a Keras Loss divides by the number of elements: reduction=sum_over_batch_size.
    Case("keras MeanSquaredErrorTest.test_timestep_weighted", "mse:reduction=sum_over_batch_size",
         _TS_TRUE, _TS_PRED, 97.833336, _TS_W, "loss"),
    Case("keras MeanAbsoluteErrorTest.test_timestep_weighted", "mae:reduction=sum_over_batch_size",
         _TS_TRUE, _TS_PRED, 13.833333, _TS_W, "loss"),
    Case("keras MeanAbsolutePercentageErrorTest.test_timestep_weighted", "mape:reduction=sum_over_batch_size",
         _TS_TRUE, _TS_PRED, 694.4444, _TS_W, "loss"),
    Case("keras MeanSquaredLogarithmicErrorTest.test_timestep_weighted", "msle:reduction=sum_over_batch_size",
         _TS_TRUE, _TS_PRED, 2.647374, _TS_W, "loss"),
    Case("keras LogCoshTest.test_timestep_weighted (weight (2, 3, 1))", "log_cosh:reduction=sum_over_batch_size",
         _TS_TRUE, _TS_PRED,
         float(np.sum(np.log(np.cosh(_TS_PRED - _TS_TRUE))[..., 0] * _TS_W) / 6), _TS_W[..., None], "loss"),
    # keras SparseCategoricalCrossentropyTest.test_binary_segmentation: labels (4, 4) against (4, 4, 2).
    # Keras clips the exact 1.0 of 14 pixels at its float32 bound: each costs -log(0.99999988).
    Case("keras SparseCategoricalCrossentropyTest.test_binary_segmentation", "scce", _SEG_TRUE, _SEG_PRED,
         (-math.log(0.2) - math.log(0.4) - 14 * math.log(F32_HIGH)) / 16, kind="loss", tol=1e-9),
    Case("keras SparseCategoricalCrossentropyTest.test_binary_segmentation (upstream's number)", "scce",
         _SEG_TRUE, _SEG_PRED, (-math.log(0.2) - math.log(0.4)) / 16, kind="loss", tol=1e-5),
    # keras/src/metrics/probabilistic_metrics_test.py: ignore_class as a metric
    Case("keras SparseCategoricalCrossentropyTest.test_ignore_class", "scce:ignore_class=0", _SCCE_TRUE,
         _SCCE_PRED, 0.78462, tol=1e-4),
    Case("keras SparseCategoricalCrossentropyTest.test_ignore_class_weighted", "scce:ignore_class=0",
         _SCCE_TRUE, _SCCE_PRED, 1.33774646, [0.5, 1.5, 2.0], tol=1e-6),
    Case("keras SparseCategoricalCrossentropyTest.test_ignore_class_from_logits",
         "scce:ignore_class=0:from_logits=true", _SCCE_TRUE, [[10, 1, 1], [1, 9, 0], [1, 8, 1]], 2.33409, tol=1e-4),
    # SPEC section 4: Keras's float32 clip bound decides saturated predictions.
    Case("keras binary_crossentropy at y=0, p=1 (float32)", "bce", [0.0], [1.0], -math.log(1 - F32_HIGH),
         kind="loss", tol=1e-9),
    Case("keras binary_crossentropy at y=1, p=1 (float32)", "bce", [1.0], [1.0], -math.log(F32_HIGH),
         kind="loss", tol=1e-9),
    # keras/src/metrics/iou_metrics_test.py: MeanIoU over label maps, read cell by cell
    Case("keras MeanIoUTest.test_unweighted (as (2, 2) label maps)", "mean_iou:num_classes=2",
         [[0, 0], [1, 1]], [[0, 1], [0, 1]], (1 / (2 + 2 - 1) + 1 / (2 + 2 - 1)) / 2),
    Case("keras MeanIoUTest.test_weighted (as (2, 2) label maps)", "mean_iou:num_classes=2",
         [[0, 0], [1, 1]], [[0, 1], [0, 1]], (0.2 / (0.6 + 0.5 - 0.2) + 0.1 / (0.4 + 0.5 - 0.1)) / 2,
         [[0.2, 0.3], [0.4, 0.1]]),
]


def _ids(cases: list[Case]) -> list[str]:
    return [c.upstream.split(" ", 1)[1][:70] for c in cases]


def _api(case: Case) -> float | None:
    return lossctl.get(case.spec, kind=case.kind)(case.y_true, case.y_pred, case.sample_weight)


def _cli(case: Case, tmp_path: Path, extra: list[str] | None = None) -> dict[str, Any]:
    args = ["eval", "-f", "json", f"--{case.kind}", case.spec]
    for role, values in (("true", case.y_true), ("pred", case.y_pred), ("weight", case.sample_weight)):
        if values is None:
            continue
        path = tmp_path / f"{role}.npy"
        np.save(path, np.asarray(values, dtype=np.float64))
        args += [f"--{role}", str(path)]
    result = CliRunner().invoke(cli, [*args, *(extra or [])])
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_upstream_case_through_the_api(case: Case) -> None:
    got = _api(case)
    assert got is not None and math.isclose(got, case.expected, rel_tol=case.tol, abs_tol=1e-12), (got, case.expected)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
@pytest.mark.parametrize("chunk", [1000, 1])
def test_upstream_case_through_the_cli(case: Case, chunk: int, tmp_path: Path) -> None:
    doc = _cli(case, tmp_path, ["--chunk-size", str(chunk)])
    got = doc["results"][0]["value"]
    assert got is not None and math.isclose(got, case.expected, rel_tol=case.tol, abs_tol=1e-12), (got, case.expected)


# --------------------------------------------------------------------------
# Per-element weights on whole-table metrics: scikit-learn as the oracle


def _multilabel(seed: int = 3, n: int = 40, c: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) > 0.5).astype(float)
    y[0], y[1] = 0.0, 1.0
    return y, rng.random((n, c)), rng.random((n, c))


def _sk_cases() -> list[tuple[str, Any]]:
    from sklearn.metrics import (
        jaccard_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    def per_column(fn: Any) -> Any:
        return lambda y, p, w: float(np.mean([fn(y[:, j], p[:, j], w[:, j]) for j in range(y.shape[1])]))

    return [
        ("binary_accuracy", lambda y, p, w: float((w * (y == (p > 0.5))).sum() / w.sum())),
        ("auc", lambda y, p, w: roc_auc_score(y.ravel(), p.ravel(), sample_weight=w.ravel())),
        ("auc:multi_label=true", per_column(lambda y, p, w: roc_auc_score(y, p, sample_weight=w))),
        ("true_positives", lambda y, p, w: float((w * y * (p > 0.5)).sum())),
        ("false_negatives", lambda y, p, w: float((w * y * (p <= 0.5)).sum())),
        ("precision:thresholds=0.5", per_column(lambda y, p, w: precision_score(y, p > 0.5, sample_weight=w))),
        ("recall:thresholds=0.5:average=micro",
         lambda y, p, w: recall_score(y.ravel(), p.ravel() > 0.5, sample_weight=w.ravel())),
        ("recall:class_id=1", lambda y, p, w: recall_score(y[:, 1], p[:, 1] > 0.5, sample_weight=w[:, 1])),
        ("binary_iou", lambda y, p, w: float(np.mean(jaccard_score(y.ravel(), p.ravel() >= 0.5,
                                                                   sample_weight=w.ravel(), average=None)))),
        ("fbeta_score:beta=2:threshold=0.5", per_column(
            lambda y, p, w: __import__("sklearn.metrics").metrics.fbeta_score(y, p > 0.5, beta=2, sample_weight=w))),
    ]


SK_SPECS = [s for s, _ in _sk_cases()]


@pytest.mark.parametrize("spec", SK_SPECS)
def test_weight_per_element_matches_scikit_learn(spec: str, tmp_path: Path) -> None:
    oracle = dict(_sk_cases())[spec]
    y, p, w = _multilabel()
    expected = oracle(y, p, w)
    assert lossctl.get(spec)(y, p, w) == pytest.approx(expected, rel=1e-9)
    case = Case("sklearn", spec, y, p, expected, w)
    for chunk in ("7", "1000"):
        assert _cli(case, tmp_path, ["--chunk-size", chunk])["results"][0]["value"] == pytest.approx(expected, rel=1e-9)


def test_weight_per_element_is_refused_where_the_value_is_per_row(tmp_path: Path) -> None:
    y, p, w = _multilabel()
    with pytest.raises(DataError, match="gives one value per row"):
        lossctl.get("bce")(y, p, w)
    for name, path in (("true", y), ("pred", p), ("weight", w)):
        np.save(tmp_path / f"{name}.npy", path)
    result = CliRunner().invoke(
        cli, ["eval", "--true", str(tmp_path / "true.npy"), "--pred", str(tmp_path / "pred.npy"),
              "--weight", str(tmp_path / "weight.npy"), "--loss", "bce"]
    )
    assert result.exit_code == 3 and "gives one value per row" in result.stderr and "Traceback" not in result.output


# --------------------------------------------------------------------------
# Inputs of more than two dimensions: the CLI and the API agree, with Keras's value


def test_nd_inputs_give_keras_values_through_both_paths(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n, h, w_, c = 6, 3, 2, 4
    labels = rng.integers(0, c, (n, h, w_))
    onehot = np.eye(c)[labels]
    probs = rng.dirichlet(np.ones(c), (n, h, w_))
    weight = rng.random(n)
    # Keras: one value per pixel, the weighted mean of the samples' pixel means.
    cce = -np.log(np.clip(np.take_along_axis(probs, labels[..., None], -1)[..., 0], 1e-7, F32_HIGH))
    expected = float(np.average(cce.mean(axis=(1, 2)), weights=weight))
    acc = float(np.average((probs.argmax(-1) == labels).mean(axis=(1, 2)), weights=weight))
    assert lossctl.get("cce")(onehot, probs, weight) == pytest.approx(expected, rel=1e-12)
    assert lossctl.get("scce")(labels, probs, weight) == pytest.approx(expected, rel=1e-12)
    assert lossctl.get("acc")(labels, probs, weight) == pytest.approx(acc, rel=1e-12)
    case = Case("keras", "cce", onehot, probs, expected, weight, "loss")
    for chunk in ("1", "4", "1000"):
        doc = _cli(case, tmp_path, ["--chunk-size", chunk, "--metric", "acc"])
        values = [r["value"] for r in doc["results"]]
        assert values[0] == pytest.approx(expected, rel=1e-12)
        assert values[1] == pytest.approx(acc, rel=1e-12)
    # The labels as a label map (N, H, W) against the scores: the same numbers.
    case = Case("keras", "scce", labels, probs, expected, weight, "loss")
    doc = _cli(case, tmp_path, ["--metric", "acc"])
    assert [r["value"] for r in doc["results"]] == pytest.approx([expected, acc], rel=1e-12)
    assert doc["results"][1]["name"] == "sparse_categorical_accuracy"


def test_nd_errors_name_the_input_row(tmp_path: Path) -> None:
    probs = np.full((5, 3, 2), 0.5)
    labels = np.zeros((5, 3))
    labels[3, 1] = 7
    case = Case("x", "scce", labels, probs, 0.0, kind="loss")
    np.save(tmp_path / "true.npy", labels)
    np.save(tmp_path / "pred.npy", probs)
    result = CliRunner().invoke(cli, ["eval", "--true", str(tmp_path / "true.npy"), "--pred",
                                      str(tmp_path / "pred.npy"), "--loss", case.spec, "--chunk-size", "2"])
    assert result.exit_code == 3 and "row 3" in result.stderr, result.stderr


def test_nd_shapes_that_do_not_pair_are_a_data_error() -> None:
    with pytest.raises(DataError, match="last axis is the class axis"):
        lossctl.get("cce")(np.zeros((2, 3, 4)), np.zeros((2, 5, 4)))


# --------------------------------------------------------------------------
# The API refuses what the CLI refuses, with the CLI's words


def test_api_refuses_negative_weights_like_the_cli(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 1: column 'sample_weight': negative weight -1"):
        lossctl.get("mse")([0.0, 1.0], [1.0, 1.0], [1.0, -1.0])
    path = tmp_path / "d.csv"
    path.write_text("y_true,y_pred,w\n0,1,1\n1,1,-1\n")
    result = CliRunner().invoke(cli, ["eval", str(path), "--weight", "w", "--loss", "mse"])
    assert result.exit_code == 3 and "row 1: column 'w': negative weight -1" in result.stderr


def test_api_names_non_numeric_values_like_the_cli(tmp_path: Path) -> None:
    # Text labels: a usage error in both (they need an order of the classes), never a NumPy error.
    with pytest.raises(UsageProblem, match=r"y_true \('y_true'\) holds text labels"):
        lossctl.get("mse")(["0", "b"], [0.1, 0.9])
    path = tmp_path / "d.csv"
    path.write_text("y_true,y_pred\n0,0.1\nb,0.9\n")
    result = CliRunner().invoke(cli, ["eval", str(path), "--loss", "mse"])
    assert result.exit_code == 2 and "y_true ('y_true') holds text labels" in result.stderr
    # A non-numeric prediction: a data error naming the row in both.
    with pytest.raises(DataError, match=r"y_pred row 1: column 'y_pred' holds non-numeric value 'x'"):
        lossctl.get("mse")([0.0, 1.0], ["0.1", "x"])
    path.write_text("y_true,y_pred\n0,0.1\n1,x\n")
    result = CliRunner().invoke(cli, ["eval", str(path), "--loss", "mse"])
    assert result.exit_code == 3 and "row 1: column 'y_pred' holds non-numeric value 'x'" in result.stderr
