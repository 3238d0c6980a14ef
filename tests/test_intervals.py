"""Bootstrap intervals (--ci): registry-wide properties, statistical calibration, checks and outputs.

The oracle of a replicate is a plain weighted run: replicate ``b`` of a run
must equal the same metric over the same rows with weights ``w * W_b``,
``W_b`` the replicate's counter-based weights (``lossctl.replicates``),
computed through the in-memory accumulator path, not the engine.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lossctl
from lossctl import bootstrap, replicates
from lossctl.batch import Batch
from lossctl.engine import evaluate as engine_evaluate
from lossctl.options import request_from_keywords
from lossctl.registry import MetricDef
from lossctl.request import Request
from tests.test_properties import (
    ENTRIES,
    IDS,
    _spec_text,
    assert_same,
    make_inputs,
    resolved,
)

B = 5
SEED = 11


def _write(path: Any, yt: np.ndarray, yp: np.ndarray, w: np.ndarray, keys: np.ndarray | None = None) -> str:
    def col(a: np.ndarray) -> pa.Array:
        if a.ndim == 1:
            return pa.array(a)
        return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1])

    columns = {"y_true": col(yt), "y_pred": col(yp), "weight": pa.array(w)}
    if keys is not None:
        columns["part"] = pa.array(keys)
    pq.write_table(pa.table(columns), str(path), row_group_size=17)
    return str(path)


def _weighted_value(entry: MetricDef, yt: np.ndarray, yp: np.ndarray, w: np.ndarray) -> float | None:
    """The oracle: the metric over these rows with these weights, by the in-memory path."""
    real, params = resolved(entry, yt, yp)
    state = real.make_state(params, "metric")  # the runs below ask for it with metric=
    for a in range(0, len(yt), 23):
        state.update(Batch(yt[a : a + 23], yp[a : a + 23], w[a : a + 23]))
    return state.result().value


def _replicates(path: str, spec: str, **options: Any) -> tuple[Any, Any, Any]:
    keywords = dict(metric=spec, weight="weight", ci=0.9, bootstrap=B, seed=SEED, **options)
    request = Request(**request_from_keywords((path,), keywords))
    plan, partial, _, _ = engine_evaluate(request)
    return plan, partial, plan.replication


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_replicate_equals_a_weighted_run(entry: MetricDef, tmp_path: Any) -> None:
    n = 70
    yt, yp = make_inputs(entry, n, seed=21)
    rng = np.random.default_rng(21)
    w = rng.uniform(0.5, 2.0, n)
    keys = np.array(["b", "a"])[rng.integers(0, 2, n)]
    keys[:2] = ["a", "b"]
    path = _write(tmp_path / "d.parquet", yt, yp, w, keys)
    plan, partial, rep = _replicates(path, _spec_text(entry), chunk_size=13, by="part")
    acc = plan.accumulators[0]
    state = partial.states[acc.key]
    W = replicates.weights(SEED, np.arange(n), 0, B)
    overall = state.collapse(len(partial.groups), rep.stride)
    got = [v.value for v in bootstrap.replicate_values(acc, overall, 0, rep)]
    for b in range(B):
        assert_same(got[b], _weighted_value(entry, yt, yp, w * W[b]), f"replicate {b}")
    for g, key in enumerate(partial.groups):
        rows = keys == key[0]
        got = [v.value for v in bootstrap.replicate_values(acc, state, g * rep.stride, rep)]
        for b in range(B):
            expected = _weighted_value(entry, yt[rows], yp[rows], (w * W[b])[rows])
            assert_same(got[b], expected, f"group {key} replicate {b}")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_unit_replicate_weights_equal_the_plain_state(entry: MetricDef, tmp_path: Any, monkeypatch: Any) -> None:
    def ones(seed: int, rows: np.ndarray, first: int, count: int) -> np.ndarray:
        return np.ones((len(rows), count), dtype=np.uint8)

    # Every layout of the weights comes from this one generator.
    monkeypatch.setattr(replicates, "_counts", ones)
    yt, yp = make_inputs(entry, 50, seed=22)
    w = np.random.default_rng(22).uniform(0.5, 2.0, 50)
    plan, partial, rep = _replicates(_write(tmp_path / "d.parquet", yt, yp, w), _spec_text(entry), chunk_size=11)
    acc = plan.accumulators[0]
    state = partial.states[acc.key]
    plain = acc.finish(state, 0).value
    for v in bootstrap.replicate_values(acc, state, 0, rep):
        assert_same(v.value, plain, "a replicate whose weights are all 1")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_intervals_do_not_depend_on_chunks_lanes_or_shards(entry: MetricDef, tmp_path: Any) -> None:
    n = 64
    yt, yp = make_inputs(entry, n, seed=23)
    w = np.random.default_rng(23).uniform(0.5, 2.0, n)
    spec = _spec_text(entry)
    path = _write(tmp_path / "d.parquet", yt, yp, w)
    options = dict(metric=spec, weight="weight", ci=0.9, bootstrap=B, seed=SEED)
    reference = lossctl.evaluate(path, **options, chunk_size=n).results[0].ci
    for chunk in (5, 16):
        other = lossctl.evaluate(path, **options, chunk_size=chunk).results[0].ci
        for key in ("low", "high", "se"):
            assert_same(other[key], reference[key], f"chunk size {chunk}: {key}")
    # Shards evaluated apart, each with --first-row, saved and merged.
    states = []
    for i, (a, b) in enumerate(((0, 29), (29, 30), (30, n))):
        shard = _write(tmp_path / f"s{i}.parquet", yt[a:b], yp[a:b], w[a:b])
        states.append(str(tmp_path / f"s{i}.lcstate"))
        lossctl.evaluate(shard, **options, chunk_size=7, first_row=a, save_state=states[-1])
    merged = lossctl.merge(*reversed(states)).results[0].ci
    for key in ("low", "high", "se"):
        assert_same(merged[key], reference[key], f"merged shards: {key}")


def test_shards_without_first_row_are_refused_under_ci(tmp_path: Any) -> None:
    rng = np.random.default_rng(3)
    paths = []
    for i in range(2):
        path = _write(tmp_path / f"s{i}.parquet", rng.random(20), rng.random(20), np.ones(20))
        paths.append(str(tmp_path / f"s{i}.lcstate"))
        lossctl.evaluate(path, metric="mse", ci=0.9, bootstrap=5, save_state=paths[-1])
    proc = _run("merge", *paths)
    assert proc.returncode == 3
    assert "--first-row" in proc.stderr and "overlap" in proc.stderr


def test_weights_are_a_function_of_seed_replicate_and_row() -> None:
    rows = np.arange(10_000, 10_300)
    whole = replicates.counts(5, np.arange(20_000), 0, 24)
    # Any subset of rows, any first replicate, any count: the same numbers.
    assert np.array_equal(replicates.counts(5, rows, 3, 13), whole[3:16, 10_000:10_300])
    assert np.array_equal(replicates.counts(5, rows[::-1], 0, 8), whole[:8, 10_300 - 1 : 10_000 - 1 : -1])
    assert not np.array_equal(replicates.counts(6, rows, 0, 8), whole[:8, 10_000:10_300])
    # Poisson(1) to within 1/256: mean and variance 1.
    sample = replicates.counts(9, np.arange(400_000), 0, 16).astype(float)
    assert abs(sample.mean() - 1.0) < 0.003
    assert abs(sample.var() - 1.0) < 0.006
    frequencies = np.bincount(sample.astype(int).ravel(), minlength=6) / sample.size
    poisson = np.array([math.exp(-1) / math.factorial(k) for k in range(6)])
    assert np.allclose(frequencies, poisson, atol=0.005)
    # Replicates and rows are uncorrelated.
    corr = np.corrcoef(sample[:, :5000])
    assert np.abs(corr[np.triu_indices(16, 1)]).max() < 0.07


def test_the_se_of_a_mean_matches_the_analytic_standard_error(tmp_path: Any) -> None:
    rng = np.random.default_rng(31)
    n = 200_000
    yt = rng.normal(0.0, 1.0, n)
    yp = yt + rng.gamma(2.0, 1.0, n) - 2.0
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"y_true": yt, "y_pred": yp}), path)
    result = lossctl.evaluate(str(path), metric="mse,mae", ci=0.95, bootstrap=400, seed=1)
    for r, per_row in zip(result.results, ((yp - yt) ** 2, np.abs(yp - yt)), strict=True):
        analytic = per_row.std(ddof=1) / math.sqrt(n)
        assert abs(r.ci["se"] / analytic - 1.0) < 0.10, (r.spec, r.ci["se"], analytic)
        assert r.ci["low"] < r.value < r.ci["high"]
        # A 95 % percentile interval of a near-normal statistic spans about ±1.96 se.
        assert abs((r.ci["high"] - r.ci["low"]) / (2 * 1.96 * analytic) - 1.0) < 0.15


def _delong_se(y: np.ndarray, s: np.ndarray) -> float:
    """DeLong's standard error of the ROC AUC (placement values; ties count 1/2)."""
    from scipy.stats import rankdata

    pos, neg = s[y == 1], s[y == 0]
    m, k = len(pos), len(neg)
    ranks_all = rankdata(np.concatenate([pos, neg]))
    v10 = (ranks_all[:m] - rankdata(pos)) / k
    v01 = 1.0 - (ranks_all[m:] - rankdata(neg)) / m
    return math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / k)


def test_the_se_of_exact_auc_matches_delong(tmp_path: Any) -> None:
    pytest.importorskip("scipy")
    rng = np.random.default_rng(32)
    n = 200_000
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.2 * y)))
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"y_true": y.astype(float), "y_pred": s}), path)
    r = lossctl.evaluate(str(path), metric="auc", ci=0.95, bootstrap=300, seed=2).results[0]
    delong = _delong_se(y, s)
    assert abs(r.ci["se"] / delong - 1.0) < 0.15, (r.ci["se"], delong)


def test_a_replicate_without_positives_is_counted_undefined(tmp_path: Any) -> None:
    # Two positives in 40 rows: some replicates give both weight 0.
    y = np.zeros(40)
    y[[3, 17]] = 1.0
    s = np.linspace(0.01, 0.99, 40)
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"y_true": y, "y_pred": s}), path)
    r = lossctl.evaluate(str(path), metric="auc", ci=0.9, bootstrap=200, seed=0).results[0]
    W = replicates.counts(0, np.arange(40), 0, 200)
    expected = int(np.sum((W[:, 3] == 0) & (W[:, 17] == 0)))
    assert expected > 0
    assert r.ci["undefined"] == expected
    assert "undefined" in r.ci["note"]


def test_more_than_half_undefined_gives_no_interval(tmp_path: Any) -> None:
    y = np.zeros(30)
    y[5] = 1.0
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"y_true": y, "y_pred": np.linspace(0, 1, 30)}), path)
    r = lossctl.evaluate(str(path), metric="auc", ci=0.9, bootstrap=50, seed=4, checks="auc.low > 0.1")
    ci = r.results[0].ci
    W = replicates.counts(4, np.arange(30), 0, 50)
    assert ci["undefined"] == int(np.sum(W[:, 5] == 0))
    if ci["undefined"] * 2 > 50:
        assert ci["low"] is None and ci["high"] is None and "no interval" in ci["note"]
        assert not r.passed


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lossctl", *args], capture_output=True, text=True, timeout=60)


def test_bound_checks_gate_and_name_the_bound() -> None:
    base = ["eval", "sample_data/binary.csv", "-m", "auc", "--ci", "0.95", "--bootstrap", "200", "--no-config", "-f", "json"]
    passed = _run(*base, "-c", "auc.low >= 0.5", "-c", "auc.high <= 1")
    assert passed.returncode == 0, passed.stderr
    doc = json.loads(passed.stdout)
    ci = doc["results"][0]["ci"]
    assert [c["value"] for c in doc["checks"]] == [ci["low"], ci["high"]]
    assert [c["bound"] for c in doc["checks"]] == ["low", "high"]
    failed = _run(*base, "-c", f"auc.low >= {ci['high']}")
    assert failed.returncode == 1
    assert "auc.low = " in json.loads(failed.stdout)["checks"][0]["note"]
    grouped = _run(*base, "--by", "channel", "-c", "auc[*].low > 0.99")
    assert grouped.returncode == 1
    note = json.loads(grouped.stdout)["checks"][0]["note"]
    assert "channel=" in note


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ci", "1.5"], "--ci must be a level between 0 and 1"),
        (["--ci", "0"], "--ci must be a level between 0 and 1"),
        (["--ci", "0.9", "--bootstrap", "1"], "--bootstrap must be at least 2"),
        (["--ci", "0.9", "--seed", "-3"], "--seed must be a non-negative integer"),
        (["-c", "auc.low > 0.5"], "an interval bound needs --ci"),
        (["--ci", "abc"], "is not a valid float"),
    ],
)
def test_bad_interval_options_are_usage_errors(args: list[str], message: str) -> None:
    proc = _run("eval", "sample_data/binary.csv", "-m", "auc", "--no-config", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_outputs_carry_the_interval(tmp_path: Any) -> None:
    base = ["eval", "sample_data/regression.csv", "-m", "mse", "--ci", "0.9", "--bootstrap", "100", "--by", "region", "--no-config"]
    doc = json.loads(_run(*base, "-f", "json").stdout)
    assert {r["ci"]["level"] for r in doc["results"]} == {0.9}
    assert doc["signature"]["seed"] == 0 and doc["signature"]["replicates"] == 100
    csv_text = _run(*base, "-f", "csv").stdout.splitlines()
    assert csv_text[0].split(",")[:8] == ["name", "spec", "kind", "region", "value", "ci_low", "ci_high", "se"]
    assert len(csv_text) == 1 + len(doc["results"])
    overall = doc["results"][0]
    markdown = _run(*base, "-f", "markdown").stdout
    decimals = max(0, 1 - math.floor(math.log10(overall["ci"]["se"])))
    assert f"[{overall['ci']['low']:.{decimals}f}, {overall['ci']['high']:.{decimals}f}]" in markdown


def test_same_seed_same_intervals_other_seed_others() -> None:
    def ci(seed: int) -> dict[str, Any]:
        return lossctl.evaluate("sample_data/regression.csv", metric="mae", ci=0.9, bootstrap=50, seed=seed).results[0].ci

    assert ci(3) == ci(3)
    assert ci(3)["low"] != ci(4)["low"]


@pytest.mark.parametrize("spec", ["binary_accuracy", "precision", "auc"])
def test_a_weight_per_cell_is_replicated_per_row(spec: str, tmp_path: Any) -> None:
    # Keras's per-element sample_weight: replicate b weighs every cell of row i by W_b[i].
    rng = np.random.default_rng(1)
    n = 300
    yt, yp, w = (rng.random((n, 3)) < 0.5).astype(float), rng.random((n, 3)), rng.random((n, 3)) + 0.1
    paths = {}
    for name, a in (("t", yt), ("p", yp), ("w", w)):
        paths[name] = str(tmp_path / f"{name}.npy")
        np.save(paths[name], a)
    ci = lossctl.evaluate(true=paths["t"], pred=paths["p"], weight=paths["w"], metric=spec, ci=0.9, bootstrap=20, seed=3)
    W = replicates.weights(3, np.arange(n), 0, 20)
    values = [lossctl.get(spec)(yt, yp, sample_weight=w * W[b][:, None]) for b in range(20)]
    assert ci.results[0].ci["se"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    assert ci.results[0].ci["low"] == pytest.approx(np.quantile(values, 0.05), rel=1e-9)
