"""AUC cases of Keras's ``confusion_metrics_test.py`` and scikit-learn's ``test_ranking.py``, API and CLI.

Keras's cases are its bucketed AUC (``num_thresholds``, ``thresholds=[...]``,
``multi_label``, ``label_weights``, per-element ``sample_weight``); scikit-learn's
the exact ROC AUC with ``multi_class`` and ``max_fpr``. Each case is data:
upstream test, spec, inputs, weights, expected value, tolerance.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import lossctl
from lossctl.cli.main import cli
from lossctl.errors import UsageProblem

_P = [0, 0.5, 0.3, 0.9]
_T = [0, 0, 1, 1]
_W = [1, 2, 3, 4]
_MP = np.array([[0, 0.5, 0.3, 0.9], [0.1, 0.2, 0.3, 0.4]]).T.tolist()
_MT = np.array([[0, 0, 1, 1], [0, 0, 1, 1]]).T.tolist()
_OVO_T = [0, 1, 0, 2]
_OVO_P = [[0.1, 0.8, 0.1], [0.3, 0.4, 0.3], [0.35, 0.5, 0.15], [0, 0.2, 0.8]]

CASES: list[tuple[str, str, Any, Any, Any, float, float]] = [
    ("keras AUCTest.test_unweighted", "auc:num_thresholds=3", _T, _P, None, 0.75, 1e-3),
    ("keras AUCTest.test_manual_thresholds", "auc:thresholds=0.5", _T, _P, None, 0.75, 1e-3),
    ("keras AUCTest.test_weighted_roc_interpolation", "auc:num_thresholds=3", _T, _P, _W, 0.7855, 1e-3),
    ("keras AUCTest.test_weighted_pr_interpolation", "auc:num_thresholds=3:curve=PR", _T, _P, _W,
     2.416 / 7 + 4 / 7, 1e-3),
    ("keras MultiAUCTest.test_unweighted", "auc:num_thresholds=5:multi_label=true", _MT, _MP, None,
     (0.875 + 1.0) / 2.0, 1e-3),
    ("keras MultiAUCTest.test_unweighted_flat", "auc:num_thresholds=5", _MT, _MP, None, 1.0 - 3.0 / 32.0, 1e-3),
    ("keras MultiAUCTest.test_sample_weight_flat", "auc:num_thresholds=5", _MT, _MP, _W,
     1.0 - (0.3333 * (1.0 - 0.2857) / 2.0), 1e-3),
    ("keras MultiAUCTest.test_full_sample_weight_flat", "auc:num_thresholds=5", _MT, _MP,
     np.arange(8.0).reshape(4, 2).tolist(), 1.0 - (0.3333 * (1.0 - 0.2727) / 2.0), 1e-3),
    ("keras MultiAUCTest.test_label_weights", "auc:num_thresholds=5:multi_label=true:label_weights=0.75+0.25",
     _MT, _MP, None, (0.875 * 0.75 + 1.0 * 0.25) / (0.75 + 0.25), 1e-3),
    ("keras MultiAUCTest.test_label_weights_flat", "auc:num_thresholds=5:label_weights=0.75+0.25",
     _MT, _MP, None, 1.0 - ((1.0 - 0.375) * 0.375 / 2.0), 1e-2),
    # scikit-learn test_multiclass_ovo_roc_auc_toydata: pairs (0.25, 1, 1), unweighted mean
    ("sklearn test_multiclass_ovo_roc_auc_toydata", "auc:multi_class=ovo", _OVO_T, _OVO_P, None, 0.75, 1e-12),
    # multi_class=ovr on the same toy data: per class, one against the rest, then the mean
    ("sklearn roc_auc_score(multi_class='ovr') on the ovo toy data", "auc:multi_class=ovr", _OVO_T, _OVO_P, None,
     (0.75 + 1 / 3 + 1.0) / 3, 1e-12),
]


def _cli(spec: str, t: Any, p: Any, w: Any, tmp_path: Path, chunk: int) -> float | None:
    args = ["eval", "--metric", spec, "--chunk-size", str(chunk), "-f", "json"]
    for role, values in (("true", t), ("pred", p), ("weight", w)):
        if values is not None:
            np.save(tmp_path / f"{role}.npy", np.asarray(values, dtype=np.float64))
            args += [f"--{role}", str(tmp_path / f"{role}.npy")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["results"][0]["value"]


@pytest.mark.parametrize(("upstream", "spec", "t", "p", "w", "expected", "tol"), CASES, ids=[c[0] for c in CASES])
def test_auc_case_api_and_cli(upstream: str, spec: str, t: Any, p: Any, w: Any, expected: float, tol: float,
                              tmp_path: Path) -> None:
    got = lossctl.get(spec)(t, p, w)
    assert got is not None and math.isclose(got, expected, rel_tol=tol, abs_tol=tol * 1e-3), (got, expected)
    for chunk in (1, 1000):
        cli_got = _cli(spec, t, p, w, tmp_path, chunk)
        assert cli_got is not None and math.isclose(cli_got, got, rel_tol=1e-9), (chunk, cli_got, got)


def _data(seed: int = 0, n: int = 300, c: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    return labels, rng.dirichlet(np.ones(c), n), rng.random(n)


@pytest.mark.parametrize("multi_class", ["ovr", "ovo"])
def test_multi_class_matches_roc_auc_score(multi_class: str) -> None:
    from sklearn.metrics import roc_auc_score

    labels, p, w = _data()
    expected = roc_auc_score(labels, p, multi_class=multi_class)
    assert lossctl.get(f"auc:multi_class={multi_class}")(labels, p) == pytest.approx(expected, rel=1e-12)
    if multi_class == "ovr":  # scikit-learn refuses weights for ovo
        weighted = roc_auc_score(labels, p, multi_class="ovr", sample_weight=w)
        assert lossctl.get("auc:multi_class=ovr")(labels, p, w) == pytest.approx(weighted, rel=1e-12)


@pytest.mark.parametrize("max_fpr", [0.05, 0.3, 0.75, 1.0])
def test_max_fpr_matches_roc_auc_score(max_fpr: float, tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.random(400) + 0.4 * y, 2)  # ties included
    w = rng.random(400)
    for weight in (None, w):
        expected = roc_auc_score(y, s, max_fpr=max_fpr, sample_weight=weight)
        assert lossctl.get(f"auc:max_fpr={max_fpr}")(y, s, weight) == pytest.approx(expected, rel=1e-12)
    assert _cli(f"auc:max_fpr={max_fpr}", y, s, w, tmp_path, 37) == pytest.approx(
        roc_auc_score(y, s, max_fpr=max_fpr, sample_weight=w), rel=1e-12
    )


def test_thresholds_list_equals_the_evenly_spaced_buckets() -> None:
    rng = np.random.default_rng(3)
    y, s = rng.integers(0, 2, 200), rng.random(200)
    assert lossctl.get("auc:thresholds=0.25+0.5+0.75")(y, s) == pytest.approx(
        lossctl.get("auc:num_thresholds=5")(y, s), rel=1e-12
    )


def test_auc_parameters_that_do_not_combine_are_usage_errors() -> None:
    for spec in ("auc:max_fpr=0.5:curve=PR", "auc:max_fpr=0.5:num_thresholds=10", "auc:multi_class=ovo:curve=PR"):
        with pytest.raises(UsageProblem):
            lossctl.get(spec)([0, 1], [0.2, 0.8])
