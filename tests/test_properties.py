"""Registry-wide properties: every registered entry gets these tests by being registered.

Chunk size, merge order, empty partitions, row order and weights must not
change a value (1e-9 relative), as SPEC section 4 requires of every state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lossctl
from lossctl import registry
from lossctl.accumulate import Bound as State
from lossctl.batch import Batch
from lossctl.params import ClassIdsParam, NumbersParam, parse_spec
from lossctl.registry import MetricDef

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
        if entry.shapes in ("sparse", "labels"):
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


def _write(tmp_path: Any, yt: np.ndarray, yp: np.ndarray, w: np.ndarray | None = None) -> str:
    def col(a: np.ndarray) -> pa.Array:
        if a.ndim == 1:
            return pa.array(a)
        return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1])

    path = str(tmp_path / "data.parquet")
    columns = {"y_true": col(yt), "y_pred": col(yp)}
    if w is not None:
        columns["weight"] = pa.array(w)
    pq.write_table(pa.table(columns), path, row_group_size=17)
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


# --------------------------------------------------------------------------
# Declared array states (Engine v2): every entry, by being registered


def _accumulator(entry: MetricDef, yt: np.ndarray, yp: np.ndarray) -> Any:
    real, params = resolved(entry, yt, yp)
    return real.accumulator(params, entry.kind)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_state_round_trips_through_arrays(entry: MetricDef) -> None:
    from lossctl.state import State

    yt, yp = make_inputs(entry, N_ROWS, seed=11)
    w = np.random.default_rng(11).uniform(0.5, 2.0, N_ROWS)
    bound = one_pass(entry, yt, yp, w, splits=[20, 41])
    state = bound.state
    arrays = state.to_arrays()
    back = State.from_arrays(state.layout(), {k: np.array(v, copy=True) for k, v in arrays.items()})
    assert back.layout() == state.layout()
    again = back.to_arrays()
    assert set(again) == set(arrays)
    for name in arrays:
        np.testing.assert_array_equal(again[name], arrays[name], err_msg=f"{entry.name}: array {name}")
    bound.accumulator.check(back)
    assert_same(bound.accumulator.finish(back, 0).value, value(bound), "round trip")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_slots_are_independent_states(entry: MetricDef) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=12)
    other_t, other_p = make_inputs(entry, N_ROWS, seed=13)
    acc = _accumulator(entry, yt, yp)
    state = acc.new(3)
    # Slots 0 and 1 fed the same rows, slot 2 other rows, interleaved chunk by chunk.
    for a, b in ((0, 25), (25, N_ROWS)):
        acc.update(state, Batch(yt[a:b], yp[a:b], slot=0))
        acc.update(state, Batch(other_t[a:b], other_p[a:b], slot=2))
        acc.update(state, Batch(yt[a:b], yp[a:b], slot=1))
    plain = value(one_pass(entry, yt, yp))
    assert_same(acc.finish(state, 0).value, plain, "slot 0")
    assert_same(acc.finish(state, 1).value, plain, "slot 1")
    assert_same(acc.finish(state, 2).value, value(one_pass(entry, other_t, other_p)), "slot 2")
    assert state.rows(0) == state.rows(1) == N_ROWS
    # Finishing many slots at once (--by groups) equals finishing them one by one, empty slots too.
    state.grow(5)
    many = acc.finish_slots(state, [4, 2, 0, 1, 3])
    for slot, got in zip([4, 2, 0, 1, 3], many, strict=True):
        one = acc.finish(state, slot)
        assert_same(got.value, one.value, f"finish_slots slot {slot}")
        assert got.note == one.note


def _spec_text(entry: MetricDef) -> str:
    return entry.name + "".join(f":{k}={v}" for k, v in (entry.example.params.items() if entry.example else []))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_saved_shards_merged_equal_one_pass(entry: MetricDef, tmp_path: Any) -> None:
    yt, yp = make_inputs(entry, N_ROWS, seed=14)
    w = np.random.default_rng(14).uniform(0.5, 2.0, N_ROWS)
    spec = _spec_text(entry)
    whole = tmp_path / "whole"
    whole.mkdir()
    expected = lossctl.evaluate(_write(whole, yt, yp, w), metric=spec, weight="weight").results[0].value
    states = []
    for i, (a, b) in enumerate(((0, 17), (17, 18), (18, N_ROWS))):
        shard = tmp_path / f"shard{i}"
        shard.mkdir()
        path = str(tmp_path / f"s{i}.lcstate")
        lossctl.evaluate(_write(shard, yt[a:b], yp[a:b], w[a:b]), metric=spec, weight="weight", save_state=path, chunk_size=7)
        states.append(path)
    for order in ((0, 1, 2), (2, 0, 1)):
        merged = lossctl.merge(*(states[i] for i in order))
        assert merged.results[0].rows == N_ROWS
        assert_same(merged.results[0].value, expected, f"merged in order {order}")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_state_file_never_loads_as_another_entry(entry: MetricDef, tmp_path: Any) -> None:
    import json
    import struct

    from lossctl.errors import LossctlError
    from lossctl.statefile import MAGIC, load

    yt, yp = make_inputs(entry, N_ROWS, seed=15)
    path = tmp_path / "s.lcstate"
    lossctl.evaluate(_write(tmp_path, yt, yp), metric=_spec_text(entry), save_state=str(path))
    data = path.read_bytes()
    (length,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    header = json.loads(data[start : start + length])
    payload = data[start + length + (-(start + length) % 8) : -32]
    # Entries filling the same state (precision and recall, mse and rmse) may
    # read it: their value from it is exact. Every other entry must refuse it.
    key = header["plan"]["specs"][0]["state"]
    others = [
        e
        for e in ENTRIES
        if e is not entry and e.task == entry.task and e.resolve is None
        and e.accumulator(params_of(e), "metric").key != key
    ]
    for other in others[:6]:
        forged = json.loads(json.dumps(header))
        forged["plan"]["specs"][0].update(name=other.name, spec=other.name, params=params_of(other), resolved_from=None)
        text = json.dumps(forged).encode()
        head = MAGIC + struct.pack("<Q", len(text)) + text
        head += b"\0" * (-len(head) % 8)
        body = head + payload
        import hashlib

        (tmp_path / "forged.lcstate").write_bytes(body + hashlib.sha256(body).digest())
        with pytest.raises(LossctlError):
            load(str(tmp_path / "forged.lcstate"))


# --------------------------------------------------------------------------
# Slices (--by): every entry, by being registered

KEYS = np.array(["b", "a", "c"])


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_group_equals_a_plain_run_over_its_rows(entry: MetricDef, tmp_path: Any) -> None:
    yt, yp = make_inputs(entry, 90, seed=16)
    rng = np.random.default_rng(16)
    w = rng.uniform(0.5, 2.0, 90)
    keys = KEYS[rng.integers(0, 3, 90)]
    keys[:3] = KEYS  # every group present
    spec = _spec_text(entry)
    path = _write(tmp_path, yt, yp, w)
    table = pq.read_table(path).append_column("part", pa.array(keys))
    pq.write_table(table, path, row_group_size=17)
    sliced = lossctl.evaluate(path, metric=spec, weight="weight", by="part", chunk_size=13)
    whole = lossctl.evaluate(path, metric=spec, weight="weight")
    assert_same(sliced.results[0].value, whole.results[0].value, "overall")
    groups = [r for r in sliced.results if r.group is not None]
    assert [r.group["part"] for r in groups] == ["a", "b", "c"], "groups sorted by key"
    for r in groups:
        rows = keys == r.group["part"]
        (tmp_path / r.group["part"]).mkdir()
        alone = lossctl.evaluate(_write(tmp_path / r.group["part"], yt[rows], yp[rows], w[rows]), metric=spec, weight="weight")
        assert_same(r.value, alone.results[0].value, f"group {r.group}")
        assert r.rows == alone.results[0].rows


CONDITIONAL = [(e, p) for e in ENTRIES for p in e.all_params if p.applies is not None]


def test_parameters_that_apply_only_somewhere_exist() -> None:
    assert {(e.name, p.name) for e, p in CONDITIONAL} >= {("f1_score", "average"), ("auc", "multi_label")}


def _texts(param: Any) -> list[str]:
    """Values to try for a parameter, as written on the command line."""
    if param.choices:
        return list(param.choices)
    if param.type is bool:
        return ["true", "false"]
    if isinstance(param, ClassIdsParam):
        return ["0", "1+0"]
    if isinstance(param, NumbersParam):
        return ["1", "0.5"]
    if param.type is int and param.low is not None and param.high is not None:
        return [str(int(param.low)), str(int(param.high))]
    return []


@pytest.mark.parametrize(("owner", "param"), CONDITIONAL, ids=[f"{e.name}:{p.name}" for e, p in CONDITIONAL])
def test_a_parameter_that_cannot_apply_changes_no_number_and_says_so(owner: MetricDef, param: Any) -> None:
    # `owner`, not `entry`: the properties re-run over other entries take every test with an `entry`.
    entry = owner
    # SPEC section 3: where a parameter cannot apply lossctl warns; the value is what it is either way.
    base = params_of(entry)
    assert param.applies.where and param.applies.otherwise
    if not param.applies.test(base, 1, 1):
        yt, yp = make_inputs(entry, N_ROWS, seed=3)
        assert yt.ndim == 1 and yp.ndim == 1, "the entry's first task should have one column"
        nowhere, there = (1, 1), (CLASSES, CLASSES)
    else:
        # A parameter of one column only (pos_label): tried on a multilabel matrix.
        assert "multilabel" in entry.task and not param.applies.test(base, CLASSES, CLASSES)
        yt, yp = make_inputs(replace(entry, task="multilabel"), N_ROWS, seed=3)
        nowhere, there = (CLASSES, CLASSES), (1, 1)
    texts = _texts(param)
    assert texts, f"{entry.name}:{param.name}: give the values to try"
    reference = value(one_pass(entry, yt, yp))
    for text in texts:
        spec = f"{entry.name}:{param.name}={text}"
        state = entry.make_state({**base, param.name: param.parse(entry.name, text)}, entry.kind)
        state.update(Batch(yt, yp, None))
        assert_same(value(state), reference, spec)
        resolved_spec = registry.resolve(parse_spec(spec), entry.kind)
        warnings = registry.not_applicable(resolved_spec, *nowhere)
        assert len(warnings) == 1 and f"{param.name}={text} does not apply" in warnings[0]
        assert registry.not_applicable(resolved_spec, *there) == []