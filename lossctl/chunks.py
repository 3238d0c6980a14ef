"""Chunks of aligned role arrays: ``{"y_true": ..., "y_pred": ..., "weight": ...}``.

The readers (``lossctl.io``) yield column chunks of one table each; here the
chunks of every table a role lives in are cut to the same rows and assembled
into one array per role. No metric logic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lossctl.batch import F64
from lossctl.columns import RoleColumns, Selection
from lossctl.errors import DataError
from lossctl.groups import GroupIndex
from lossctl.io import Table, rechunk
from lossctl.io.base import prefetch
from lossctl.params import did_you_mean

GROUP = "group"
MAX_CHUNK_ROWS = 1 << 62


def _role_array(role: RoleColumns, chunk: dict[str, np.ndarray]) -> F64:
    """A role's columns as one array: float64, except a matrix of predictions, which
    keeps the file's float32 (``Batch.y_pred`` widens it when a kernel needs rows)."""
    if len(role.columns) == 1:
        values = chunk[role.columns[0]]
    else:
        parts = [chunk[c] for c in role.columns]
        for c, p in zip(role.columns, parts, strict=True):
            if p.ndim != 1:
                raise DataError(f"{role.table.label}: column '{c}' holds several values per row; list it alone")
        # Predictions go column-major (N, C): each column copied whole, as it was
        # read, several times faster than interleaving them row by row; kernels
        # that need rows ask the Batch for them (lossctl.batch: scores, y_pred).
        values = np.stack(parts).T if role.role == "y_pred" else np.column_stack(parts)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.dtype != np.float64 and (values.ndim == 1 or role.role != "y_pred"):
        values = values.astype(np.float64)
    return values


def _assemble(
    chunks: Iterator[dict[str, np.ndarray]], roles: list[RoleColumns], slicer: Slicer | None, start: int = 0
) -> Iterator[dict[str, F64]]:
    """Column chunks of one table to ``{role: array}`` chunks (and ``group`` ids with ``--by``)."""
    for chunk in chunks:
        out = {role.role: _role_array(role, chunk) for role in roles}
        if slicer is not None:
            out[GROUP] = slicer.ids(chunk, start)
        start += len(next(iter(out.values())))
        yield out


class Slicer:
    """The ``--by`` columns of one table and their group ids (see ``lossctl.groups``)."""

    def __init__(self, table: Table, columns: Sequence[str], index: GroupIndex, numeric: set[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.index = index
        # Columns that are also a role's are read as numbers once and encoded from those.
        self.numeric = numeric

    def converters(self) -> dict[str, object]:
        label = self.table.label
        return {
            c: (lambda values, start, i=i: self.index.encode(i, values, label, start))
            for i, c in enumerate(self.columns)
            if c not in self.numeric
        }

    def ids(self, chunk: dict[str, np.ndarray], start: int) -> np.ndarray:
        codes = [
            self.index.encode(i, chunk[c].astype(np.float64, copy=False), self.table.label, start)
            if c in self.numeric
            else chunk[c]
            for i, c in enumerate(self.columns)
        ]
        return self.index.combine(codes)


def slicer_for(selection: Selection, columns: Sequence[str], max_groups: int) -> Slicer:
    """The ``--by`` columns, from the table that holds y_true (else y_pred's); a missing one is a data error."""
    tables = [selection.y_true.table, selection.y_pred.table]
    for table in tables:
        if all(table.column(c) is not None for c in columns):
            roles = [r for r in selection.roles() if r.table is table]
            numeric = {c for c in columns if any(c in r.columns for r in roles)}
            return Slicer(table, columns, GroupIndex(columns, max_groups), numeric)
    table = tables[0]
    missing = next(c for c in columns if table.column(c) is None)
    hint = did_you_mean(missing, table.names) or "; columns are " + ", ".join(table.names[:30])
    raise DataError(f"{table.label}: --by column '{missing}' does not exist{hint}")


def aligned_chunks(
    selection: Selection, rows: int, slicer: Slicer | None = None, first_row: int = 0, labels: Any = None
) -> Iterator[tuple[int, dict[str, F64]]]:
    """Yield ``(first_row, {role: array})`` with every role aligned, ``rows`` rows a chunk.

    With a ``slicer``, each chunk also has ``group``: the group id of every row.
    ``first_row``: the global row number of the selection's first row (a
    piece of a dataset read on its own). ``labels`` (a
    :class:`lossctl.labels.LabelCoder`) codes the y_true column's labels as it is read.
    """
    # No table holds 2**62 rows: a larger chunk size reads the same, and the
    # readers' sizes stay within a C long (2**63 overflowed into an internal error).
    rows = min(rows, MAX_CHUNK_ROWS)
    groups: dict[int, tuple[Table, list[RoleColumns]]] = {}
    for role in selection.roles():
        groups.setdefault(id(role.table), (role.table, []))[1].append(role)
    streams = []
    for table, roles in groups.values():
        names = list(dict.fromkeys(c for r in roles for c in r.columns))
        own = slicer if slicer is not None and slicer.table is table else None
        convert: dict[str, Any] | None = None
        if own is not None:
            names += [c for c in own.columns if c not in names]
            convert = own.converters()
        if labels is not None and table is selection.y_true.table:
            convert = {**(convert or {}), labels.column: labels}
        # Decoding, rechunking and assembling the role arrays run ahead in a
        # reader thread, overlapped with the metric kernels in this one.
        assembled = _assemble(rechunk(table.chunks(names, rows, convert), rows), roles, own, first_row)
        streams.append((table, roles, prefetch(assembled)))
    if len(streams) > 1:
        counts = {t.label: t.num_rows for t, _, _ in streams}
        known = {k: v for k, v in counts.items() if v is not None}
        if len(set(known.values())) > 1:
            detail = " but ".join(f"{k} has {v} rows" for k, v in known.items())
            raise DataError(f"row counts differ: {detail}")
    start = first_row
    while True:
        out: dict[str, F64] = {}
        ended: list[str] = []
        length: int | None = None
        previous = ""
        for table, roles, it in streams:
            chunk = next(it, None)
            if chunk is None:
                ended.append(table.label)
                continue
            out.update(chunk)
            n = len(next(iter(chunk.values())))
            if length is not None and n != length:
                short, long_ = (table.label, previous) if n < length else (previous, table.label)
                raise DataError(f"row counts differ: {short} has {start + min(n, length)} rows but {long_} has more")
            length, previous = n, table.label
        if ended:
            if len(ended) != len(streams):
                longer = [t.label for t, _, _ in streams if t.label not in ended]
                raise DataError(
                    f"row counts differ: {', '.join(ended)} ends after {start} rows but "
                    f"{', '.join(longer)} has more"
                )
            return
        yield start, out
        start += length or 0
