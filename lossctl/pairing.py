"""The input of ``lossctl compare``: two prediction files over the same rows, aligned.

The baseline's file gives ``y_true``, ``y_pred`` and the weights; the
candidate's gives its own ``y_pred`` (role :data:`PRED`) and, unless
``--true PATH:COL`` names one ``y_true`` for both, its ``y_true`` (role
:data:`TRUTH`), which must equal the baseline's row by row. Rows are matched
by position, or with ``--key COL`` by an id column: the candidate's columns
are then read whole and reordered to the baseline's rows (memory grows with
the rows: the key of every row of both files, and the candidate's columns).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lossctl.batch import F64
from lossctl.columns import RoleColumns, Selection, select
from lossctl.errors import DataError
from lossctl.io import Table
from lossctl.io.base import Arrays, ColumnInfo, Converters

BASELINE, CANDIDATE = "baseline", "candidate"
ARMS = (BASELINE, CANDIDATE)
PRED = "y_pred:candidate"
TRUTH = "y_true:candidate"
_WHOLE = 1 << 20  # rows per chunk when a keyed file is read whole


@dataclass(frozen=True)
class Pairing(Selection):
    """A selection with the candidate's roles: its predictions, and its y_true to check."""

    candidate: RoleColumns | None = None
    candidate_truth: RoleColumns | None = None

    def roles(self) -> list[RoleColumns]:
        extra = [r for r in (self.candidate, self.candidate_truth) if r is not None]
        return [*super().roles(), *extra]


class ArraysTable(Table):
    """Columns held in memory (a candidate reordered to the baseline's rows by ``--key``)."""

    def __init__(self, label: str, arrays: dict[str, np.ndarray]) -> None:
        self.label = label
        self.arrays = arrays
        self.columns = tuple(
            ColumnInfo(name, "number" if a.ndim == 1 else "list", 1 if a.ndim == 1 else int(a.shape[1]), str(a.dtype))
            for name, a in arrays.items()
        )

    @property
    def num_rows(self) -> int | None:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def chunks(self, names: Sequence[str], rows: int, convert: Converters | None = None) -> Iterator[Arrays]:
        total = self.num_rows or 0
        for start in range(0, total, rows):
            yield {name: self.arrays[name][start : start + rows] for name in names}


def select_pair(
    baseline: Table,
    candidate: Table,
    true: str | None,
    pred: str | None,
    weight: str | None,
    key: str | None,
    open_source: Callable[[str], Table],
) -> Pairing:
    """Both files' roles; with ``key``, the candidate reordered to the baseline's rows."""
    base = select(baseline, true, pred, weight, open_source)
    cand = select(candidate, true, pred, None, open_source)
    shared_truth = base.y_true.table is not baseline
    if key is not None:
        candidate = _reordered(baseline, candidate, key, cand, shared_truth)
        cand = Selection(
            RoleColumns("y_true", candidate, cand.y_true.columns, cand.y_true.picked) if not shared_truth else cand.y_true,
            RoleColumns("y_pred", candidate, cand.y_pred.columns, cand.y_pred.picked),
            None,
        )
    truth = None if shared_truth else RoleColumns(TRUTH, cand.y_true.table, cand.y_true.columns, cand.y_true.picked)
    return Pairing(
        base.y_true,
        base.y_pred,
        base.weight,
        candidate=RoleColumns(PRED, cand.y_pred.table, cand.y_pred.columns, cand.y_pred.picked),
        candidate_truth=truth,
    )


def _keys(table: Table, key: str) -> np.ndarray:
    """Every row's key, as read (numbers, text, dates)."""
    if table.column(key) is None:
        raise DataError(f"{table.label}: --key column '{key}' does not exist; columns are {', '.join(table.names[:30])}")

    def raw(values: object, start: int) -> np.ndarray:
        to_numpy = getattr(values, "to_numpy", None)
        return to_numpy(zero_copy_only=False) if to_numpy is not None else np.asarray(values)

    parts = [chunk[key] for chunk in table.chunks([key], _WHOLE, {key: raw})]
    return np.concatenate(parts) if parts else np.empty(0)


def _positions(candidate: Table, key: str, base_keys: np.ndarray, cand_keys: np.ndarray) -> np.ndarray:
    """``where[i]``: the candidate row holding baseline row ``i``'s key (-1: none); a repeated candidate key is a data error.

    Integer keys in a dense range use a direct-address table; others one
    hash table (pandas), built once.
    """
    n = len(cand_keys)
    if n and base_keys.dtype.kind in "iu" and cand_keys.dtype.kind in "iu":
        lo, hi = int(cand_keys.min()), int(cand_keys.max())
        if hi - lo < 4 * n:
            table = np.full(hi - lo + 1, -1, dtype=np.int64)
            offsets = cand_keys - lo
            table[offsets] = np.arange(n)
            lost = np.flatnonzero(table[offsets] != np.arange(n))  # earlier rows of a repeated key
            if lost.size:
                row = int(table[offsets[lost[0]]])
                raise DataError(f"{candidate.label} row {row}: --key column '{key}' repeats the key {cand_keys[row]!r}")
            where = np.full(len(base_keys), -1, dtype=np.int64)
            inside = (base_keys >= lo) & (base_keys <= hi)
            where[inside] = table[base_keys[inside] - lo]
            return where
    import pandas as pd

    index = pd.Index(cand_keys, copy=False)
    if index.has_duplicates:
        row = int(np.argmax(index.duplicated()))
        raise DataError(f"{candidate.label} row {row}: --key column '{key}' repeats the key {cand_keys[row]!r}")
    return np.asarray(index.get_indexer(base_keys), dtype=np.int64)


def _reordered(baseline: Table, candidate: Table, key: str, cand: Selection, shared_truth: bool) -> Table:
    """The candidate's columns in the baseline's row order, matched by ``key``.

    The keys of both files are held (and one index over the candidate's);
    the candidate's columns are scattered straight into place as they are read.
    """
    base_keys, cand_keys = _keys(baseline, key), _keys(candidate, key)
    n = len(base_keys)
    if n != len(cand_keys):
        raise DataError(f"row counts differ: {baseline.label} has {n} rows but {candidate.label} has {len(cand_keys)}")
    where = _positions(candidate, key, base_keys, cand_keys)
    del cand_keys
    missing = np.flatnonzero(where < 0)
    if missing.size:
        row = int(missing[0])
        raise DataError(
            f"{baseline.label} row {row}: key {base_keys[row]!r} (--key {key}) is not in {candidate.label} "
            f"({missing.size} key(s) of the baseline are not)"
        )
    inverse = np.full(n, -1, dtype=np.int64)
    inverse[where] = np.arange(n)  # candidate row -> baseline row
    if (inverse < 0).any():
        # As many rows, every key found: a baseline key given twice left a candidate row over.
        order = np.argsort(where, kind="stable")
        twice = order[1:][where[order[1:]] == where[order[:-1]]]
        row = int(twice.min())
        raise DataError(f"{baseline.label} row {row}: --key column '{key}' repeats the key {base_keys[row]!r}")
    del where, base_keys
    names = list(dict.fromkeys([*cand.y_pred.columns, *(() if shared_truth else cand.y_true.columns)]))
    arrays: dict[str, np.ndarray] = {}
    start = 0
    for chunk in candidate.chunks(names, _WHOLE):
        rows = len(chunk[names[0]])
        for name in names:
            values = chunk[name]
            if name not in arrays:
                arrays[name] = np.empty((n, *values.shape[1:]), dtype=values.dtype)
            arrays[name][inverse[start : start + rows]] = values
        start += rows
    return ArraysTable(f"{candidate.label} (rows matched by {key})", arrays)


def check_same_truth(arrays: dict[str, F64], selection: Selection, start: int, kept: np.ndarray | None) -> None:
    """A data error naming the first row whose y_true differs between the baseline and the candidate."""
    other = arrays.get(TRUTH)
    if other is None:
        return
    mine = arrays["y_true"]
    if mine.shape != other.shape:
        raise DataError(f"y_true has {_width(mine)} value(s) per row in the baseline but {_width(other)} in the candidate")
    same = (mine == other) | (np.isnan(mine) & np.isnan(other))
    if same.all():
        return
    bad = np.flatnonzero(~same if same.ndim == 1 else ~same.all(axis=1))
    i = int(bad[0])
    row = start + (i if kept is None else int(np.flatnonzero(kept)[i]))
    assert isinstance(selection, Pairing) and selection.candidate_truth is not None
    raise DataError(
        f"{selection.y_true.table.label} and {selection.candidate_truth.table.label} differ in y_true at row {row} "
        f"({_text(mine[i])} vs {_text(other[i])}); compare needs the same rows in the same order "
        "(--key COL matches rows by an id column; --true PATH:COL gives one y_true to both)"
    )


def _text(value: np.ndarray | np.floating) -> str:
    return str(np.asarray(value).tolist())


def _width(a: np.ndarray) -> int:
    return 1 if a.ndim == 1 else int(a.shape[1])


def check_widths(selection: Pairing, first: dict[str, F64]) -> None:
    """The two models must predict the same thing: the same values per row."""
    if PRED in first and _width(first["y_pred"]) != _width(first[PRED]):
        assert selection.candidate is not None
        raise DataError(
            f"{selection.candidate.table.label}: y_pred has {_width(first[PRED])} value(s) per row "
            f"({selection.candidate.source}) but the baseline's has {_width(first['y_pred'])} ({selection.y_pred.source})"
        )


_HEAD = 2048  # rows of each file compared by the two-models check


def two_models_warning(files: Sequence[str], selection: Selection, open_source: Callable[[str], Table]) -> str | None:
    """When ``eval`` is given two files that look like two models over the same rows, say so.

    Same row count (when the files know it), the same y_true over their
    first rows, different predictions: concatenating them (what ``eval``
    does with several FILEs) mixes two models into one number.
    """
    if len(files) != 2 or selection.y_true.table is not selection.y_pred.table:
        return None
    if not all(os.path.isfile(f) for f in files):
        # Standard input, a pipe or a remote object cannot be read a second time for a hint.
        return None
    try:
        tables = [open_source(f) for f in files]
        if any(t.num_rows is not None for t in tables) and tables[0].num_rows != tables[1].num_rows:
            return None
        names = [*selection.y_true.columns, *selection.y_pred.columns]
        heads = [next(t.chunks(names, _HEAD), None) for t in tables]
    except Exception:  # noqa: BLE001 - a hint only: the pass itself reports what is wrong with the files
        return None
    if any(h is None or len(h[names[0]]) == 0 for h in heads):
        return None
    a, b = heads
    n = min(len(a[names[0]]), len(b[names[0]]))
    same_truth = all(np.array_equal(a[c][:n], b[c][:n], equal_nan=True) for c in selection.y_true.columns)
    same_pred = all(np.array_equal(a[c][:n], b[c][:n], equal_nan=True) for c in selection.y_pred.columns)
    if not same_truth or same_pred:
        return None
    return (
        f"{files[0]} and {files[1]} look like two models' predictions for the same rows (the same y_true, "
        "other predictions): eval reads them as one table, so each value mixes both models; to compare them "
        f"use 'lossctl compare {files[0]} {files[1]}'"
    )
