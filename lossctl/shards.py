"""Pieces of an input folded apart, and their partials as bytes: what a distributed task runs.

Nothing here knows Dask: :func:`pieces` splits the input the driver
opened into row ranges (a Parquet file's row groups, with the global row
number of each), :func:`fold_piece` folds one piece into a partial on
whatever process runs it, and :func:`merge_results` merges several. A
partial travels as the bytes of a state file (``lossctl.statefile``: plain
arrays and a JSON header, never a pickle of live objects), with the little
a state file never holds beside it: the NaN count, the first NaN row and
the first error (row, kind, message). The plan travels as its dict; the
plugins it names as a module name or the file's bytes, loaded where the
piece is folded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from lossctl.columns import Selection
from lossctl.errors import DataError, LossctlError, UsageProblem
from lossctl.io.remote import is_uri
from lossctl.partial import Partial, merge
from lossctl.plan import Plan
from lossctl.request import Request

# The request fields a piece needs to find its columns, slices and chunks again.
FIELDS = ("files", "true", "pred", "weight", "chunk_size", "input_format", "delimiter", "nan", "by", "max_groups")
# Row groups of one file are folded together up to this many rows (many small groups, few tasks).
TASK_ROWS = 1 << 20
_ERRORS: dict[str, type[LossctlError]] = {"DataError": DataError, "UsageProblem": UsageProblem}

Piece = dict[str, Any]
Result = tuple[bytes, dict[str, Any]]


def pieces(selection: Selection, task_rows: int = TASK_ROWS) -> list[Piece] | None:
    """The row ranges of the input, in row order: consecutive row groups of one file, ``task_rows`` at most.

    ``None`` when the input cannot be split: the roles come from several
    tables (``--true labels.npy --pred probs.npy``), or the table's row counts
    are not known before reading it (CSV, JSON Lines, NPY): one task reads it whole.
    """
    tables = {id(role.table): role.table for role in selection.roles()}
    if len(tables) != 1:
        return None
    parts = next(iter(tables.values())).parts
    if not parts:
        return None
    out: list[Piece] = []
    row = 0
    for path, group, rows in parts:
        last = out[-1] if out else None
        if last is not None and last["source"] == path and last["rows"] + rows <= task_rows:
            last["row_groups"].append(group)
            last["rows"] += rows
        else:
            # An absolute path: a worker's working folder may be another (its label stays the driver's).
            where = path if is_uri(path) else os.path.abspath(path)
            out.append({"source": path, "path": where, "row_groups": [group], "first_row": row, "rows": rows})
        row += rows
    return out


def plugin_payload(names: Sequence[str]) -> list[tuple[str, str, bytes | None]]:
    """How each plugin reaches a worker: ``("module", name, None)`` or ``("file", name, its bytes)``."""
    from lossctl.plugins import is_path

    out: list[tuple[str, str, bytes | None]] = []
    for name in dict.fromkeys(names):
        if not is_path(name):
            out.append(("module", name, None))
            continue
        try:
            with open(name, "rb") as fh:
                out.append(("file", name, fh.read()))
        except OSError as exc:
            raise UsageProblem(f"plugin {name}: cannot read: {exc.strerror or exc}") from None
    return out


@contextmanager
def _plugins_here(payload: Sequence[tuple[str, str, bytes | None]]) -> Iterator[list[Any]]:
    """The payload's plugins loaded in this process (a file's bytes written once under the temporary folder)."""
    from lossctl.plugins import load

    loaded = []
    for kind, name, data in payload:
        if kind == "file":
            assert data is not None
            sha = hashlib.sha256(data).hexdigest()
            folder = os.path.join(tempfile.gettempdir(), f"lossctl-plugin-{sha[:16]}")
            path = os.path.join(folder, os.path.basename(name))
            if not os.path.exists(path):
                os.makedirs(folder, exist_ok=True)
                tmp = f"{path}.{os.getpid()}.tmp"
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            name = path
        loaded.append(load(name))
    yield loaded


def plan_here(doc: Mapping[str, Any], payload: Sequence[tuple[str, str, bytes | None]]) -> Plan:
    """The driver's plan rebuilt in this process, the plugins' entries with their code."""
    from lossctl.registry import plugins_registered

    with ExitStack() as stack:
        plugins = stack.enter_context(_plugins_here(payload))
        recorded = {e["name"]: rec["sha256"] for rec in doc.get("plugins") or [] for e in rec["entries"]}
        for plugin in plugins:
            stale = [e.name for e in plugin.entries if recorded.get(e.name, plugin.source.sha256) != plugin.source.sha256]
            if stale:
                raise UsageProblem(
                    f"plugin {plugin.source.name}: the code on this worker differs from the driver's "
                    f"(sha256 {plugin.source.sha256[:12]} vs {recorded[stale[0]][:12]})"
                )
            stack.enter_context(plugins_registered(plugin.entries, f"plugin {plugin.source.name}", shadow=True))
        return Plan.from_dict({**doc, "plugins": []})


def _open(request: Any, piece: Piece | None, label: str) -> tuple[Selection, int]:
    """The selection of a piece (the whole input without one) and its first global row."""
    from lossctl.io.parquet import open_parquet_piece
    from lossctl.sources import select_sources

    if piece is None:
        return select_sources(request, False), 0
    table = open_parquet_piece(piece["path"], piece["row_groups"], label, piece["first_row"])
    return select_sources(request, False, table), int(piece["first_row"])


def fold_piece(job: Mapping[str, Any]) -> Result:
    """Fold one piece (``job["piece"]``, ``None`` for the whole input) into a partial, as bytes.

    An expected error is returned with the row it was met at, never raised:
    the driver keeps the earliest over all pieces, as one pass would.
    """
    from lossctl.chunks import aligned_chunks, slicer_for
    from lossctl.engine import fold
    from lossctl.problems import finite_mask

    piece = job.get("piece")
    first = 0 if piece is None else int(piece["first_row"])
    try:
        plan = plan_here(job["plan"], job["plugins"])
    except LossctlError as exc:
        return failed(-1, exc)
    request = Request(**job["request"])
    try:
        with np.errstate(all="ignore"):
            selection, first = _open(request, piece, job["label"])
            slicer = slicer_for(selection, request.by, request.max_groups) if request.by else None
            from lossctl.labels import label_coder

            coder = label_coder(selection, request.classes, request.pos_label)
            chunks = aligned_chunks(selection, request.chunk_size, slicer, first, labels=coder)
            partial = fold(plan, selection, chunks, first_row=request.first_row)
            if partial.error is not None:
                # A NaN of an earlier piece may come first: as in one pass, count every bad row.
                try:
                    for _, arrays in chunks:
                        bad, _ = finite_mask(arrays)
                        partial.bad += 0 if bad is None else int(bad.sum())
                except LossctlError:
                    pass
            if slicer is not None:
                partial.groups = list(slicer.index.keys)
    except LossctlError as exc:
        return failed(first, exc)
    return to_wire(plan, partial)


def failed(row: int, exc: BaseException) -> Result:
    """The result of a piece that could not be folded at all."""
    return b"", {"bad": 0, "first_nan": None, "error": [row, type(exc).__name__, str(exc)]}


def to_wire(plan: Plan, partial: Partial) -> Result:
    from lossctl.statefile import encode

    error = None
    if partial.error is not None:
        row, exc = partial.error
        error = [row, type(exc).__name__, str(exc)]
    return encode(plan, partial, ()), {"bad": partial.bad, "first_nan": partial.first_nan, "error": error}


def from_wire(result: Result) -> tuple[dict[str, Any] | None, Partial]:
    """The plan's dict and the partial of a result (no plan, no states: a piece that failed before folding)."""
    from lossctl.statefile import decode, partial_of

    data, extra = result
    error = extra["error"]
    exc = None if error is None else (int(error[0]), _ERRORS.get(error[1], DataError)(error[2]))
    if not data:
        return None, Partial({}, error=exc)
    header, states = decode(bytearray(data), "a partial state")
    partial = partial_of(header, states, tuple(header["plan"]["by"]))
    partial.bad = int(extra["bad"])
    nan = extra["first_nan"]
    partial.first_nan = None if nan is None else (str(nan[0]), int(nan[1]))
    partial.error = exc
    return header["plan"], partial


def merge_results(*results: Result) -> Result:
    """Several pieces' results merged into one (a reduction step: any process may run it)."""
    merged: Partial | None = None
    plan_doc: dict[str, Any] | None = None
    errors = []
    for result in results:
        doc, partial = from_wire(result)
        if partial.error is not None:
            errors.append(partial.error)
        if doc is None:
            continue
        plan_doc = plan_doc or doc
        merged = partial if merged is None else merge(merged, partial)
    error = min(errors, key=lambda e: e[0]) if errors else None
    if merged is None or plan_doc is None:
        assert error is not None
        return failed(error[0], error[1])
    merged.error = error
    return to_wire(Plan.from_dict(plan_doc), merged)
