"""Registry-wide properties: every registered entry gets these tests by being registered.

Chunk size, merge order, empty partitions, row order and weights must not
change a value (1e-9 relative), as SPEC section 4 requires of every state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lossctl
from lossctl import registry
from lossctl.batch import Batch
from lossctl.registry import MetricDef
from lossctl.state import Bound as State

RTOL = 1e-9
N_ROWS = 60
CLASSES = 4
ENTRIES = registry.entries()
IDS = [e.name for e in ENTRIES]


def make_inputs(entry: MetricDef, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid inputs for an entry, from its (first) task and its shape contract."""
    rng = np.random.default_rng(seed)
    task = entry.task.split("|")[0]
    if task == "regression":
        return rng.uniform(0.1, 10.0, n), rng.uniform(0.1, 10.0, n)
    if task == "binary":
        y = rng.integers(0, 2, n).astype(float)
        y[:2] = [0.0, 1.0]
        return y, rng.uniform(0.01, 0.99, n)
    if task == "multiclass":
        probs = rng.dirichlet(np.ones(CLASSES), n)
        labels = rng.integers(0, CLASSES, n)
        labels[:CLASSES] = np.arange(CLASSES)
        if entry.shapes == "sparse":
            return labels.astype(float), probs
        return np.eye(CLASSES)[labels], probs
    if task == "multilabel":
        y = rng.integers(0, 2, (n, CLASSES)).astype(float)
        y[0], y[1] = 0.0, 1.0
        return y, rng.uniform(0.01, 0.99, (n, CLASSES))
    raise AssertionError(f"{entry.name}: unknown task {entry.task!r}")


def params_of(entry: MetricDef) -> dict[str, Any]:
    given = dict(entry.example.params) if entry.example is not None else {}
    return registry.resolve_params(entry, given)


def resolved(entry: MetricDef, yt: np.ndarray, yp: np.ndarray) -> tuple[MetricDef, Mapping[str, Any]]:
    params = params_of(entry)
    if entry.resolve is not None:
        return entry.resolve(yt, yp, params)
    return entry, params


def one_pass(entry: MetricDef, yt: np.ndarray, yp: np.ndarray, w: np.ndarray | None = None, splits: list[int] | None = None) -> State:
    real, params = resolved(entry, yt, yp)
    bounds = [0, *(splits or []), len(yt)]
    state = real.make_state(params, entry.kind)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a:
            state.update(Batch(yt[a:b], yp[a:b], None if w is None else w[a:b]))
    return state


def value(state: State) -> float | None:
    return state.result().value


def assert_same(a: float | None, b: float | None, what: str) -> None:
    if a is None or b is None:
        assert a is None and b is None, f"{what}: {a} != {b}"
        return
    assert math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-12), f"{what}: {a!r} != {b!r}"


def test_registry_is_populated() -> None:
    names = {e.name for e in ENTRIES}
    for expected in ("mean_squared_error", "huber", "r2_score", "root_mean_squared_error"):
        assert expected in names


def _write(tmp_path: Any, yt: np.ndarray, yp: np.ndarray) -> str:
    def col(a: np.ndarray) -> pa.Array:
        if a.ndim == 1:
            return pa.array(a)
        return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1])

    path = str(tmp_path / "data.parquet")
    pq.write_table(pa.table({"y_true": col(yt), "y_pred": col(yp)}), path, row_group_size=17)
    return path


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_chunk_size_does_not_change_value(entry: MetricDef, tmp_path: Any) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=1)
    path = _write(tmp_path, yt, yp)
    spec = entry.name + "".join(f":{k}={v}" for k, v in (entry.example.params.items() if entry.example else []))
    values = []
    for chunk in (1, 7, 1000, None):
        kwargs = {} if chunk is None else {"chunk_size": chunk}
        ev = lossctl.evaluate(path, metric=spec, **kwargs)
        values.append(ev.results[0].value)
    for chunk, v in zip((1, 7, 1000), values[:3], strict=True):
        assert_same(v, values[3], f"chunk {chunk}")
    assert values[3] is not None, f"{entry.name} is undefined on valid inputs"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_of_any_split_equals_one_pass(entry: MetricDef, seed: int) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=10 + seed)
    whole = value(one_pass(entry, yt, yp))
    rng = np.random.default_rng(seed)
    cuts = sorted(rng.choice(np.arange(1, N_ROWS), size=3, replace=False).tolist())
    bounds = [0, *cuts, N_ROWS]
    parts = [one_pass(entry, yt[a:b], yp[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    # Merge in a shuffled order, with an empty partition in the middle.
    real, params = resolved(entry, yt, yp)
    parts.insert(1, real.make_state(params, entry.kind))
    order = rng.permutation(len(parts))
    merged = parts[order[0]]
    before = [value(p) for p in parts]
    for i in order[1:]:
        merged = merged.merge(parts[i])
    assert_same(value(merged), whole, "merged vs one pass")
    assert [value(p) for p in parts] == before, "merge changed its inputs"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_permuted_rows_give_same_value(entry: MetricDef) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=3)
    perm = np.random.default_rng(3).permutation(N_ROWS)
    assert_same(value(one_pass(entry, yt[perm], yp[perm], splits=[13, 40])), value(one_pass(entry, yt, yp)), "permuted")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_unit_weights_equal_no_weights(entry: MetricDef) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=4)
    assert_same(value(one_pass(entry, yt, yp, np.ones(N_ROWS))), value(one_pass(entry, yt, yp)), "weights of 1")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_integer_weights_equal_repeated_rows(entry: MetricDef) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=5)
    w = np.random.default_rng(5).integers(1, 4, N_ROWS).astype(float)
    reps = w.astype(int)
    repeated = value(one_pass(entry, np.repeat(yt, reps, axis=0), np.repeat(yp, reps, axis=0)))
    assert_same(value(one_pass(entry, yt, yp, w)), repeated, "integer weights vs repeats")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_zero_weight_equals_dropping_the_row(entry: MetricDef) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=6)
    w = np.ones(N_ROWS)
    w[[5, 17, 33]] = 0.0
    keep = w > 0
    assert_same(value(one_pass(entry, yt, yp, w)), value(one_pass(entry, yt[keep], yp[keep])), "zero weight vs drop")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_scaling_weights_changes_nothing(entry: MetricDef) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=7)
    w = np.random.default_rng(7).uniform(0.5, 2.0, N_ROWS)
    scaled, plain = value(one_pass(entry, yt, yp, 3.5 * w)), value(one_pass(entry, yt, yp, w))
    if entry.weighted_sum and plain is not None:
        # A weighted count scales with the weights: exactly by the same factor.
        plain = 3.5 * plain
    assert_same(scaled, plain, "scaled weights")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_no_rows_is_undefined_never_zero(entry: MetricDef) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=8)
    real, params = resolved(entry, yt, yp)
    result = real.make_state(params, entry.kind).result()
    assert result.value is None and result.note, f"{entry.name}: empty state gave {result}"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_result_can_be_called_twice(entry: MetricDef) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=9)
    state = one_pass(entry, yt, yp)
    assert value(state) == value(state)
