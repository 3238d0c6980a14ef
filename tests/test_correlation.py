"""Pearson and concordance correlation against formulas written here and the Keras vectors."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import lossctl
from lossctl import registry
from lossctl.batch import Batch
from lossctl.cli.main import cli
from lossctl.errors import DataError, UsageProblem
from lossctl.params import parse_spec
from lossctl.state import State

EPS = 1e-7
NAMES = ("pearson_correlation", "concordance_correlation")
VECTORS = json.loads((Path(__file__).parent / "data" / "keras_vectors.json").read_text())["vectors"]


def _is_mine(case: dict[str, Any]) -> bool:
    try:
        return registry.lookup(parse_spec(case["spec"]).name).name in NAMES
    except UsageProblem:  # a spec of a family not registered (yet) in this tree
        return False


MINE = [v for v in VECTORS if _is_mine(v)]


def _moments(t: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> tuple[float, float, float, float, float]:
    """Weighted population moments written out directly (two-pass, no streaming)."""
    w = np.ones(len(t)) if w is None else w
    mt = float(np.sum(w * t) / np.sum(w))
    mp = float(np.sum(w * p) / np.sum(w))
    vt = float(np.sum(w * (t - mt) ** 2) / np.sum(w))
    vp = float(np.sum(w * (p - mp) ** 2) / np.sum(w))
    cov = float(np.sum(w * (t - mt) * (p - mp)) / np.sum(w))
    return mt, mp, vt, vp, cov


def pearson_oracle(t: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Keras's pearson_correlation along the rows (eps on each standard deviation), per column averaged."""
    if t.ndim == 2:
        return float(np.mean([pearson_oracle(t[:, j], p[:, j], w) for j in range(t.shape[1])]))
    _, _, vt, vp, cov = _moments(t, p, w)
    return cov / ((math.sqrt(vt) + EPS) * (math.sqrt(vp) + EPS))


def concordance_oracle(t: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Keras's concordance_correlation along the rows, per column averaged."""
    if t.ndim == 2:
        return float(np.mean([concordance_oracle(t[:, j], p[:, j], w) for j in range(t.shape[1])]))
    mt, mp, vt, vp, cov = _moments(t, p, w)
    return 2.0 * cov / (vt + vp + (mt - mp) ** 2 + EPS)


ORACLES = {"pearson_correlation": pearson_oracle, "concordance_correlation": concordance_oracle}


def _data(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.normal(1.0, 2.0, shape)
    p = 0.7 * t + rng.normal(0.5, 1.0, shape)
    w = rng.uniform(0.0, 3.0, shape[0])
    return t, p, w


def test_reference_vectors_are_found() -> None:
    assert {registry.lookup(parse_spec(v["spec"]).name).name for v in MINE} == set(NAMES)


@pytest.mark.parametrize("case", MINE, ids=[v["id"] for v in MINE])
def test_keras_reference_vector(case: dict[str, Any]) -> None:
    got = lossctl.get(case["spec"])(case["y_true"], case["y_pred"], sample_weight=case["sample_weight"])
    tol = 1e-9 if case["contract_follows"] == "sklearn" else 1e-6
    assert got == pytest.approx(case["expected"], rel=tol)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(500,), (300, 3)], ids=["1d", "2d"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_matches_formula_through_get(name: str, shape: tuple[int, ...], weighted: bool) -> None:
    t, p, w = _data(shape)
    w_used = w if weighted else None
    assert lossctl.get(name)(t, p, sample_weight=w_used) == pytest.approx(ORACLES[name](t, p, w_used), rel=1e-12)


def test_pearson_without_eps_is_the_textbook_coefficient() -> None:
    # An independent check of the moments: numpy's corrcoef differs only by Keras's eps.
    t, p, _ = _data((1000,))
    assert lossctl.get("pearson")(t, p) == pytest.approx(float(np.corrcoef(t, p)[0, 1]), rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("seed", range(4))
def test_merge_of_random_splits_equals_one_pass(name: str, weighted: bool, seed: int) -> None:
    t, p, w = _data((200, 2), seed)
    entry = registry.lookup(name)
    params = entry.defaults()
    rng = np.random.default_rng(seed)
    cuts = sorted(rng.choice(np.arange(1, 200), size=5, replace=False).tolist())
    bounds = [0, *cuts, 200]
    parts = []
    for a, b in itertools.pairwise(bounds):
        state = entry.make_state(params)
        state.update(Batch(t[a:b], p[a:b], w[a:b] if weighted else None))
        parts.append(state)
    order = rng.permutation(len(parts))
    merged = parts[order[0]]
    for i in order[1:]:
        merged = merged.merge(parts[i])
    expected = ORACLES[name](t, p, w if weighted else None)
    assert merged.result().value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_large_offset_does_not_cancel(name: str) -> None:
    # sum(t*p) - n*mean(t)*mean(p) would lose every digit at an offset of 1e9.
    t, p, _ = _data((20_000,))
    got = lossctl.get(name)(t + 1e9, p + 1e9)
    assert got == pytest.approx(ORACLES[name](t, p), rel=1e-6)


def test_constant_input_is_undefined_not_zero() -> None:
    t = np.array([1.0, 1.0, 1.0])
    p = np.array([1.0, 2.0, 3.0])
    entry = registry.lookup("pearson_correlation")
    state = entry.make_state(entry.defaults())
    state.update(Batch(t, p))
    result = state.result()
    assert result.value is None and "constant" in (result.note or "")
    # Concordance is defined unless both are the same constant.
    assert lossctl.get("ccc")(t, p) == pytest.approx(concordance_oracle(t, p), rel=1e-12)
    assert lossctl.get("ccc")(t, t) is None


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_through_cli_from_a_file(tmp_path: Path, fmt: str, weighted: bool) -> None:
    t, p, w = _data((400,), seed=7)
    path = tmp_path / f"preds.{fmt}"
    if fmt == "csv":
        lines = ["y_true,y_pred,w"] + [f"{a!r},{b!r},{c!r}" for a, b, c in zip(t.tolist(), p.tolist(), w.tolist(), strict=True)]
        path.write_text("\n".join(lines) + "\n")
    else:
        pq.write_table(pa.table({"y_true": t, "y_pred": p, "w": w}), path, row_group_size=57)
    args = ["eval", str(path), "--metric", "pearson_correlation,ccc", "-f", "json", "--chunk-size", "33"]
    if weighted:
        args += ["--weight", "w"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    got = {r["name"]: r["value"] for r in doc["results"]}
    w_used = w if weighted else None
    assert got["pearson_correlation"] == pytest.approx(pearson_oracle(t, p, w_used), rel=1e-10)
    assert got["concordance_correlation"] == pytest.approx(concordance_oracle(t, p, w_used), rel=1e-10)


def test_multi_column_parquet_through_cli(tmp_path: Path) -> None:
    t, p, _ = _data((150, 3), seed=3)
    path = tmp_path / "vec.parquet"

    def col(a: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1])

    pq.write_table(pa.table({"y_true": col(t), "y_pred": col(p)}), path, row_group_size=40)
    result = CliRunner().invoke(cli, ["eval", str(path), "--metric", "pcc,ccc", "-f", "json"])
    assert result.exit_code == 0, result.output
    got = [r["value"] for r in json.loads(result.stdout)["results"]]
    # Per column over the rows, then averaged (not Keras's per-row correlation across columns).
    assert got[0] == pytest.approx(pearson_oracle(t, p), rel=1e-10)
    assert got[1] == pytest.approx(concordance_oracle(t, p), rel=1e-10)


def test_explain_fields_state_the_deviation() -> None:
    for name in NAMES:
        entry = registry.lookup(name)
        assert "last axis" in entry.deviations and "per column" in entry.inputs


def test_pearson_concordance_and_explained_variance_share_one_comoment_state() -> None:
    t, p, w = _data((240, 3), seed=11)
    names = ("pearson_correlation", "concordance_correlation", "explained_variance_score")
    accumulators = [registry.lookup(n).accumulator(registry.lookup(n).defaults(), "metric") for n in names]
    assert len({a.key for a in accumulators}) == 1
    state = accumulators[0].new()
    # Any of them folds a chunk the same way; each finishes its own value.
    for i, (a, b) in enumerate(itertools.pairwise([0, 70, 150, 240])):
        accumulators[i].update(state, Batch(t[a:b], p[a:b], w[a:b]))
    assert state.layout() == {"rows": "sum", "comoment": "comoment"}
    assert state.get("comoment").shape == (1, 10, 3)
    for name, acc in zip(names, accumulators, strict=True):
        alone = lossctl.get(name)(t, p, sample_weight=w)
        assert acc.finish(state).value == pytest.approx(alone, rel=1e-12), name
    loaded = State.from_arrays(state.layout(), state.to_arrays())
    accumulators[0].check(loaded)
    assert [a.finish(loaded).value for a in accumulators] == [a.finish(state).value for a in accumulators]


@pytest.mark.parametrize("name", NAMES)
def test_another_number_of_columns_cannot_be_combined(name: str) -> None:
    t, p, _ = _data((20, 3))
    entry = registry.lookup(name)
    state = entry.make_state(entry.defaults())
    state.update(Batch(t, p))
    with pytest.raises(DataError, match="cannot combine"):
        state.update(Batch(t[:, :2], p[:, :2]))
    other = entry.make_state(entry.defaults())
    other.update(Batch(t[:, :2], p[:, :2]))
    with pytest.raises(DataError, match="cannot combine"):
        state.merge(other)
