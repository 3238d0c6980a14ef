"""Where a run's rows come from: the tables of its FILEs (or a comparison's two files) and their roles."""

from __future__ import annotations

import os
from collections.abc import Sequence

from lossctl import pairing
from lossctl.columns import Selection, select
from lossctl.errors import UsageProblem
from lossctl.io import Table, open_one, open_table
from lossctl.request import Request


def select_sources(request: Request, compare: bool, table: Table | None = None) -> Selection:
    """The columns of every role: from the FILEs as one table, or a comparison's two files.

    ``table``: the table to read instead of the FILEs (a piece of them: a Dask task's row groups).
    """

    def opener(path: str) -> Table:
        return open_one(path, request.input_format if not request.files else None, request.delimiter, request.max_line_bytes)

    if not compare:
        if table is None and request.files:
            table = open_table(request.files, request.input_format, request.delimiter, request.max_line_bytes)
        return select(table, request.true, request.pred, request.weight, opener)
    if len(request.files) != 2:
        raise UsageProblem(f"compare takes two files, BASELINE and CANDIDATE, not {len(request.files)}")
    baseline, candidate = (open_one(f, request.input_format, request.delimiter, request.max_line_bytes) for f in request.files)
    return pairing.select_pair(baseline, candidate, request.true, request.pred, request.weight, request.key, opener)


def known_rows(selection: Selection) -> int | None:
    """The rows to read, when the input knows them without reading (Parquet, NPY, Arrow; not CSV)."""
    for role in (selection.y_true, selection.y_pred):
        if role.table.num_rows is not None:
            return role.table.num_rows
    return None


def input_sizes(files: Sequence[str]) -> dict[str, int | None]:
    sizes: dict[str, int | None] = {}
    for f in files:
        try:
            sizes[f] = os.path.getsize(f) if os.path.isfile(f) else None
        except OSError:
            sizes[f] = None
    return sizes
