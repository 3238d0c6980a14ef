"""The regression family against independent oracles: formulas written here, scikit-learn, Keras vectors."""

from __future__ import annotations

import json
import math
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
from lossctl.errors import DataError
from lossctl.state import State, merge

EPS = 1e-7
RNG = np.random.default_rng(2026)


def _row_mean(x: np.ndarray) -> np.ndarray:
    return x if x.ndim == 1 else x.mean(axis=1)


def _wmean(v: np.ndarray, w: np.ndarray | None) -> float:
    return float(np.average(v, weights=w))


# Formulas written out independently of lossctl's kernels (Keras 3 definitions).
ORACLES = {
    "mean_squared_error": lambda t, p: _row_mean((t - p) ** 2),
    "mean_absolute_error": lambda t, p: _row_mean(np.abs(t - p)),
    "mean_absolute_percentage_error": lambda t, p: 100.0 * _row_mean(np.abs((t - p) / np.maximum(np.abs(t), EPS))),
    "mean_squared_logarithmic_error": lambda t, p: _row_mean((np.log(np.maximum(p, EPS) + 1.0) - np.log(np.maximum(t, EPS) + 1.0)) ** 2),
    "huber": lambda t, p: _row_mean(np.where(np.abs(p - t) <= 1.0, 0.5 * (p - t) ** 2, np.abs(p - t) - 0.5)),
    "log_cosh": lambda t, p: _row_mean(np.log(np.cosh(p - t))),
    "poisson": lambda t, p: _row_mean(p - t * np.log(p + EPS)),
}


def _data(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = RNG.uniform(0.5, 5.0, shape)
    p = t + RNG.normal(0.0, 0.8, shape)
    p = np.abs(p) + 0.01
    w = RNG.uniform(0.0, 3.0, shape[0])
    return t, p, w


@pytest.mark.parametrize("name", sorted(ORACLES))
@pytest.mark.parametrize("shape", [(200,), (150, 3)], ids=["1d", "2d"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_loss_matches_formula_through_api(name: str, shape: tuple[int, ...], weighted: bool) -> None:
    t, p, w = _data(shape)
    w_used = w if weighted else None
    expected = _wmean(ORACLES[name](t, p), w_used)
    got = lossctl.get(name)(t, p, sample_weight=w_used)
    assert got == pytest.approx(expected, rel=1e-12)


SKLEARN = {
    "mse": skm.mean_squared_error,
    "mae": skm.mean_absolute_error,
    "rmse": skm.root_mean_squared_error,
    "r2": skm.r2_score,
    # sklearn's MAPE is a fraction and floors at machine epsilon; with no y near 0 it is Keras's / 100.
    "mape": lambda t, p, sample_weight=None: 100.0 * skm.mean_absolute_percentage_error(t, p, sample_weight=sample_weight),
}


@pytest.mark.parametrize("name", sorted(SKLEARN))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_matches_scikit_learn_1d(name: str, weighted: bool) -> None:
    t, p, w = _data((300,))
    w_used = w if weighted else None
    assert lossctl.get(name)(t, p, sample_weight=w_used) == pytest.approx(SKLEARN[name](t, p, sample_weight=w_used), rel=1e-10)


def test_msle_matches_scikit_learn_for_positive_values() -> None:
    t, p, _ = _data((300,))
    assert lossctl.get("msle")(t, p) == pytest.approx(skm.mean_squared_log_error(t, p), rel=1e-10)


def test_r2_multi_output_matches_scikit_learn() -> None:
    t, p, w = _data((300, 3))
    assert lossctl.get("r2")(t, p) == pytest.approx(skm.r2_score(t, p), rel=1e-10)
    assert lossctl.get("r2")(t, p, sample_weight=w) == pytest.approx(skm.r2_score(t, p, sample_weight=w), rel=1e-10)
    vw = lossctl.get("r2", class_aggregation="variance_weighted_average")(t, p)
    assert vw == pytest.approx(skm.r2_score(t, p, multioutput="variance_weighted"), rel=1e-10)


def test_rmse_2d_is_root_of_row_mean_squared_error() -> None:
    t, p, w = _data((100, 4))
    expected = math.sqrt(np.average(((t - p) ** 2).mean(axis=1), weights=w))
    assert lossctl.get("rmse")(t, p, sample_weight=w) == pytest.approx(expected, rel=1e-12)


def test_r2_is_stable_for_large_offsets() -> None:
    # sum(y**2) - n*mean**2 would lose every digit here; the co-moment state does not.
    t = 1e9 + RNG.normal(0.0, 1.0, 10_000)
    p = t + RNG.normal(0.0, 0.5, 10_000)
    ev = lossctl.get("r2")
    assert ev(t, p) == pytest.approx(skm.r2_score(t, p), rel=1e-7)


def test_log_cosh_is_finite_for_huge_errors() -> None:
    t = np.array([0.0, 0.0, 0.0])
    p = np.array([1e4, -1e4, 800.0])
    expected = np.mean(np.abs(p) - math.log(2.0))  # log(cosh(x)) = |x| - log 2 for large |x|
    assert lossctl.get("log_cosh")(t, p) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("delta", [0.5, 2.0])
def test_huber_delta(delta: float) -> None:
    t, p, _ = _data((200,))
    e = np.abs(p - t)
    expected = np.mean(np.where(e <= delta, 0.5 * e**2, delta * e - 0.5 * delta**2))
    assert lossctl.get(f"huber:delta={delta}")(t, p) == pytest.approx(expected, rel=1e-12)
    assert lossctl.get("huber", delta=delta)(t, p) == pytest.approx(expected, rel=1e-12)


def test_reduction_parameter() -> None:
    t, p, w = _data((50,))
    per_row = (t - p) ** 2
    assert lossctl.get("mse:reduction=sum")(t, p, w) == pytest.approx(float(np.sum(w * per_row)), rel=1e-12)
    assert lossctl.get("mse:reduction=sum_over_batch_size")(t, p, w) == pytest.approx(float(np.sum(w * per_row) / 50), rel=1e-12)
    assert lossctl.get("mse:reduction=mean")(t, p, w) == pytest.approx(float(np.sum(w * per_row) / np.sum(w)), rel=1e-12)
    # Without weights, mean and sum_over_batch_size agree.
    assert lossctl.get("mse:reduction=sum_over_batch_size")(t, p) == pytest.approx(lossctl.get("mse")(t, p), rel=1e-15)


@pytest.mark.parametrize(
    "alias, canonical",
    [
        ("mse", "mean_squared_error"),
        ("MSE", "mean_squared_error"),
        ("mae", "mean_absolute_error"),
        ("Mean-Absolute-Percentage-Error", "mean_absolute_percentage_error"),
        ("mape", "mean_absolute_percentage_error"),
        ("msle", "mean_squared_logarithmic_error"),
        ("huber_loss", "huber"),
        ("logcosh", "log_cosh"),
        ("rmse", "root_mean_squared_error"),
        ("r2", "r2_score"),
    ],
)
def test_aliases_resolve(alias: str, canonical: str) -> None:
    assert lossctl.get(alias).__name__ == canonical


def _write_parquet(path: Any, t: np.ndarray, p: np.ndarray, w: np.ndarray) -> None:
    def col(a: np.ndarray) -> pa.Array:
        return pa.array(a) if a.ndim == 1 else pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1])

    pq.write_table(pa.table({"y_true": col(t), "y_pred": col(p), "w": w}), path, row_group_size=64)


@pytest.mark.parametrize("shape", [(300,), (120, 3)], ids=["1d", "2d"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_every_regression_metric_through_cli(tmp_path: Any, shape: tuple[int, ...], weighted: bool) -> None:
    t, p, w = _data(shape)
    path = tmp_path / "preds.parquet"
    _write_parquet(path, t, p, w)
    args = ["eval", str(path), "--loss", ",".join(sorted(ORACLES)), "--metric", "rmse,r2", "-f", "json", "--chunk-size", "50"]
    if weighted:
        args += ["--weight", "w"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    got = {r["name"]: r["value"] for r in doc["results"]}
    w_used = w if weighted else None
    for name, oracle in ORACLES.items():
        assert got[name] == pytest.approx(_wmean(oracle(t, p), w_used), rel=1e-10), name
    mse = _wmean(ORACLES["mean_squared_error"](t, p), w_used)
    assert got["root_mean_squared_error"] == pytest.approx(math.sqrt(mse), rel=1e-10)
    assert got["r2_score"] == pytest.approx(skm.r2_score(t, p, sample_weight=w_used), rel=1e-10)
    assert doc["input"]["rows"] == shape[0]
    assert doc["input"]["task"] == "regression"


REGRESSION_SPECS = (
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh", "poisson", "root_mean_squared_error", "r2_score",
)


def test_keras_reference_vectors_for_regression(reference_vectors: list[dict[str, Any]]) -> None:
    cases = [v for v in reference_vectors if v["spec"].split(":")[0] in REGRESSION_SPECS]
    assert len(cases) >= 30
    for case in cases:
        fn = lossctl.get(case["spec"])
        got = fn(case["y_true"], case["y_pred"], sample_weight=case["sample_weight"])
        assert got == pytest.approx(case["expected"], rel=1e-6, abs=1e-12), case["id"]


def _r2(**params: Any) -> Any:
    entry = registry.lookup("r2_score")
    return entry.accumulator(registry.resolve_params(entry, params), "metric")


def test_r2_state_is_comoments_and_sums_shared_by_its_aggregations() -> None:
    t, p, w = _data((200, 3))
    plain, weighted_avg, adjusted = _r2(), _r2(class_aggregation="variance_weighted_average"), _r2(num_regressors=3)
    assert plain.key == weighted_avg.key == adjusted.key
    state = plain.new()
    plain.update(state, Batch(t[:80], p[:80], w[:80]))
    plain.update(state, Batch(t[80:], p[80:], w[80:]))
    assert state.layout() == {"rows": "sum", "comoment": "comoment", "ssr": "sum", "elements": "sum"}
    assert state.get("comoment").shape == (1, 3, 3) and int(state.get("elements")[0]) == 600
    assert plain.finish(state).value == pytest.approx(skm.r2_score(t, p, sample_weight=w), rel=1e-10)
    expected = skm.r2_score(t, p, sample_weight=w, multioutput="variance_weighted")
    assert weighted_avg.finish(state).value == pytest.approx(expected, rel=1e-10)
    loaded = State.from_arrays(state.layout(), state.to_arrays())
    plain.check(loaded)
    assert adjusted.finish(loaded).value == adjusted.finish(state).value


def test_r2_fast_path_for_one_unweighted_column_agrees_with_the_general_one() -> None:
    # Unweighted (N,) chunks take the fast path; (N, 1) chunks with unit weights the general one.
    t, p, _ = _data((300,))
    acc = _r2()
    fast, general = acc.new(), acc.new()
    for a, b in [(0, 120), (120, 300)]:
        acc.update(fast, Batch(t[a:b], p[a:b]))
        acc.update(general, Batch(t[a:b, None], p[a:b, None], np.ones(b - a)))
    np.testing.assert_allclose(fast.get("comoment"), general.get("comoment"), rtol=1e-12)
    np.testing.assert_allclose(fast.get("ssr"), general.get("ssr"), rtol=1e-12)
    assert acc.finish(fast).value == pytest.approx(acc.finish(general).value, rel=1e-12)
    # The two paths fill arrays of one shape, so their states merge.
    assert merge(fast, general).get("comoment").shape == (1, 3, 1)


def test_r2_another_number_of_columns_cannot_be_combined() -> None:
    t, p, _ = _data((30, 3))
    entry = registry.lookup("r2")
    state = entry.make_state(entry.defaults())
    state.update(Batch(t, p))
    with pytest.raises(DataError, match="cannot combine"):
        state.update(Batch(t[:, :2], p[:, :2]))
