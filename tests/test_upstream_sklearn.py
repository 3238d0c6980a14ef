"""Cases of scikit-learn's ``sklearn/metrics/tests/`` with their numbers, through the API and the CLI.

Each case is data: the upstream test, the spec, the inputs, the expected
value as the upstream test states it (or scikit-learn's function on the
same input where the test computes it), and the tolerance. The CLI reads
the same arrays from NPY files. scikit-learn's parameters (``zero_division``,
``labels``, ``pos_label``, ``average=samples``) reproduce its numbers; its
default ``zero_division='warn'`` is 0 with a warning, lossctl's default is
null with a note (SPEC section 3), so the cases name ``zero_division``.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import lossctl
from lossctl.cli.main import cli

# test_precision_recall_f1_score_with_an_empty_prediction (multilabel 0/1 matrices)
EMPTY_TRUE = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0]]
EMPTY_PRED = [[0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 0]]
# test_precision_recall_f1_score_multilabel_1 style: multiclass labels against predicted labels
MC_TRUE = [0, 1, 2, 0, 1, 2, 2, 1]
MC_PRED = [0, 2, 1, 0, 0, 1, 2, 1]

# (upstream test, spec, y_true, y_pred, expected, tolerance)
CASES: list[tuple[str, str, Any, Any, float, float]] = []
for z in (0, 1):
    th = "thresholds=0.5"
    CASES += [
        (f"with_an_empty_prediction macro p (zero_division={z})", f"precision:average=macro:zero_division={z}:{th}",
         EMPTY_TRUE, EMPTY_PRED, (z + 1 + 1 + 0) / 4, 1e-12),
        (f"with_an_empty_prediction macro r (zero_division={z})", f"recall:average=macro:zero_division={z}:{th}",
         EMPTY_TRUE, EMPTY_PRED, (0 + 0.5 + 1 + z) / 4, 1e-12),
        (f"with_an_empty_prediction macro f (zero_division={z})", f"f1:average=macro:zero_division={z}:threshold=0.5",
         EMPTY_TRUE, EMPTY_PRED, 2.5 / (4 * 1.5), 1e-12),
        (f"with_an_empty_prediction micro p (zero_division={z})", f"precision:average=micro:zero_division={z}:{th}",
         EMPTY_TRUE, EMPTY_PRED, 2 / 3, 1e-12),
        (f"with_an_empty_prediction micro r (zero_division={z})", f"recall:average=micro:zero_division={z}:{th}",
         EMPTY_TRUE, EMPTY_PRED, 0.5, 1e-12),
        (f"with_an_empty_prediction weighted r (zero_division={z})", f"recall:average=weighted:zero_division={z}:{th}",
         EMPTY_TRUE, EMPTY_PRED, 0.5, 1e-12),
        (f"with_an_empty_prediction samples p (zero_division={z})", f"precision:average=samples:zero_division={z}:{th}",
         EMPTY_TRUE, EMPTY_PRED, (z + 0 + 1) / 3, 1e-12),
        (f"with_an_empty_prediction samples r (zero_division={z})", f"recall:average=samples:zero_division={z}:{th}",
         EMPTY_TRUE, EMPTY_PRED, 1 / 3, 1e-12),
        (f"with_an_empty_prediction samples f2 (zero_division={z})",
         f"fbeta_score:beta=2:average=samples:zero_division={z}:threshold=0.5", EMPTY_TRUE, EMPTY_PRED, 1 / 3, 1e-12),
    ]
CASES += [
    ("with_an_empty_prediction weighted p (zero_division=0)", "precision:average=weighted:zero_division=0:thresholds=0.5",
     EMPTY_TRUE, EMPTY_PRED, 3 / 4, 1e-12),
    ("with_an_empty_prediction f2 macro", "fbeta_score:beta=2:average=macro:threshold=0.5:zero_division=0",
     EMPTY_TRUE, EMPTY_PRED, (0 + 5 / 9 + 1 + 0) / 4, 1e-12),  # f2 per class [0, 0.55, 1, 0]
    # test_precision_recall_f_binary_single_class / pos_label: class 0 of binary labels
    ("test_precision_recall_f1_score_binary (pos_label=0)", "precision:pos_label=0",
     [0, 1, 1, 0, 0], [0, 1, 0, 1, 0], 2 / 3, 1e-12),
    ("test_precision_recall_f1_score_binary (pos_label=0)", "recall:pos_label=0",
     [0, 1, 1, 0, 0], [0, 1, 0, 1, 0], 2 / 3, 1e-12),
]


def _sklearn_case(spec: str, y_true: Any, y_pred: Any, **kw: Any) -> float:
    from sklearn import metrics

    name, _, rest = spec.partition(":")
    fn = {"precision": metrics.precision_score, "recall": metrics.recall_score, "f1": metrics.f1_score}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(y_true, y_pred, **kw))


# Multiclass predicted labels (N,) against labels (N,): scikit-learn on the same input.
LABEL_SPECS = [
    ("precision:average=macro:zero_division=0", {"average": "macro", "zero_division": 0}),
    ("precision:average=micro", {"average": "micro"}),
    ("recall:average=weighted", {"average": "weighted"}),
    ("f1:average=macro", {"average": "macro"}),
    ("recall:labels=0+2+5:zero_division=1", {"average": "macro", "labels": [0, 2, 5], "zero_division": 1}),
    ("precision:labels=2+0:average=micro", {"average": "micro", "labels": [2, 0]}),
]
for spec, kw in LABEL_SPECS:
    CASES.append((f"multiclass labels vs predicted labels ({spec})", spec, MC_TRUE, MC_PRED,
                  _sklearn_case(spec, MC_TRUE, MC_PRED, **kw), 1e-12))


def _cli_value(spec: str, y_true: Any, y_pred: Any, tmp_path: Path, chunk: int) -> float | None:
    np.save(tmp_path / "t.npy", np.asarray(y_true, dtype=np.float64))
    np.save(tmp_path / "p.npy", np.asarray(y_pred, dtype=np.float64))
    result = CliRunner().invoke(cli, ["eval", "--true", str(tmp_path / "t.npy"), "--pred", str(tmp_path / "p.npy"),
                                      "--metric", spec, "--chunk-size", str(chunk), "-f", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["results"][0]["value"]


@pytest.mark.parametrize(("upstream", "spec", "y_true", "y_pred", "expected", "tol"), CASES,
                         ids=[f"{c[0]}|{c[1]}" for c in CASES])
def test_sklearn_case_api_and_cli(upstream: str, spec: str, y_true: Any, y_pred: Any, expected: float, tol: float,
                                  tmp_path: Path) -> None:
    got = lossctl.get(spec)(y_true, y_pred)
    assert got is not None and math.isclose(got, expected, rel_tol=tol, abs_tol=1e-12), (got, expected)
    for chunk in (2, 1000):
        cli_got = _cli_value(spec, y_true, y_pred, tmp_path, chunk)
        assert cli_got is not None and math.isclose(cli_got, expected, rel_tol=tol, abs_tol=1e-12), (chunk, cli_got)


def test_zero_division_default_is_null_with_a_note() -> None:
    assert lossctl.get("precision:average=macro:thresholds=0.5")(EMPTY_TRUE, EMPTY_PRED) is None
    assert lossctl.get("precision:average=samples:thresholds=0.5")(EMPTY_TRUE, EMPTY_PRED) is None
    assert lossctl.get("precision")([0, 0], [0.1, 0.2]) is None
    assert lossctl.get("precision:zero_division=0")([0, 0], [0.1, 0.2]) == 0.0


def test_multiclass_labels_with_weights_match_scikit_learn() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(4)
    t, p, w = rng.integers(0, 5, 300), rng.integers(0, 5, 300), rng.random(300)
    for average in ("macro", "micro", "weighted"):
        expected = f1_score(t, p, average=average, sample_weight=w)
        assert lossctl.get(f"f1:average={average}")(t, p, w) == pytest.approx(expected, rel=1e-12)


def test_a_score_row_needs_a_binary_label() -> None:
    from lossctl.errors import ValueProblem

    with pytest.raises(ValueProblem, match="label 2 is not 0 or 1"):
        lossctl.get("precision")([0, 2], [0.3, 0.7])


# test_regression_custom_weights: multioutput weights (scikit-learn states 2 decimals)
REG_TRUE = [[1, 2], [2.5, -1], [4.5, 3], [5, 7]]
REG_PRED = [[1, 1], [2, -1], [5, 4], [5, 6.5]]
# test_multilabel_accuracy_score_subset_accuracy
Y1 = [[0, 1, 1], [1, 0, 1]]
Y2 = [[0, 0, 1], [1, 0, 1]]
MORE_CASES = [
    ("test_regression_custom_weights r2", "r2:multioutput=0.4+0.6", REG_TRUE, REG_PRED, 0.94, 5e-3),
    ("test_regression_custom_weights evs", "explained_variance:multioutput=0.4+0.6", REG_TRUE, REG_PRED, 0.94, 5e-3),
    ("test_multilabel_accuracy_score_subset_accuracy (y1, y2)", "accuracy_score", Y1, Y2, 0.5, 1e-12),
    ("test_multilabel_accuracy_score_subset_accuracy (y1, y1)", "accuracy_score", Y1, Y1, 1.0, 1e-12),
    ("test_multilabel_accuracy_score_subset_accuracy (y2, not y2)", "subset_accuracy", Y2,
     (1 - np.asarray(Y2)).tolist(), 0.0, 1e-12),
    ("test_multilabel_accuracy_score_subset_accuracy (y1, zeros)", "accuracy_score", Y1, [[0, 0, 0]] * 2, 0.0, 1e-12),
]


@pytest.mark.parametrize(("upstream", "spec", "y_true", "y_pred", "expected", "tol"), MORE_CASES,
                         ids=[c[0] for c in MORE_CASES])
def test_more_sklearn_cases_api_and_cli(upstream: str, spec: str, y_true: Any, y_pred: Any, expected: float,
                                        tol: float, tmp_path: Path) -> None:
    got = lossctl.get(spec)(y_true, y_pred)
    assert got is not None and math.isclose(got, expected, rel_tol=tol, abs_tol=tol), (got, expected)
    assert _cli_value(spec, y_true, y_pred, tmp_path, 1) == pytest.approx(got, rel=1e-12, abs=1e-15)


def test_multioutput_weights_match_scikit_learn_exactly() -> None:
    from sklearn.metrics import explained_variance_score, r2_score

    rng = np.random.default_rng(2)
    t = rng.normal(size=(80, 3))
    p = t + rng.normal(size=(80, 3)) * [0.5, 1.0, 2.0]
    w = rng.random(80)
    weights = [0.2, 0.3, 0.5]
    assert lossctl.get("r2:multioutput=0.2+0.3+0.5")(t, p, w) == pytest.approx(
        r2_score(t, p, multioutput=weights, sample_weight=w), rel=1e-12)
    assert lossctl.get("explained_variance", multioutput=weights)(t, p, w) == pytest.approx(
        explained_variance_score(t, p, multioutput=weights, sample_weight=w), rel=1e-12)


def test_subset_accuracy_matches_accuracy_score_with_weights() -> None:
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(5)
    t = rng.integers(0, 2, (100, 3))
    p = rng.random((100, 3))
    w = rng.random(100)
    expected = accuracy_score(t, (p > 0.5).astype(int), sample_weight=w)
    assert lossctl.get("accuracy_score")(t, p, w) == pytest.approx(expected, rel=1e-12)
