"""Per-row values: ``eval --per-row FILE`` and ``lossctl worst`` (SPEC section 1).

Both ride the engine's one pass through its ``on_rows`` hook, so they see
exactly the rows ``eval`` sees (same columns, ``--nan`` policy, value
checks, 0-based table row numbers) and never hold more than one chunk:
:class:`PerRowWriter` streams every chunk to Parquet or CSV, :class:`Worst`
keeps only the ``n`` worst rows seen so far.

Only entries defined by a per-row kernel (the mean-type ones: ``mse``,
``huber``, ``binary_crossentropy``...) have a value per row; whole-table
metrics (R², AUC, precision, RMSE) do not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from lossctl.batch import F64, Batch
from lossctl.errors import UsageProblem
from lossctl.outfile import Replacement, cannot_write, refuse_inputs
from lossctl.registry import MetricDef, Resolved, lookup

if TYPE_CHECKING:
    import pyarrow as pa

    from lossctl.results import Evaluation

I64 = NDArray[np.int64]
# Called by the engine once per non-empty chunk, after validation, with the
# chunk's 0-based table row numbers (rows dropped by --nan drop are absent),
# the batch and the plan's specs.
RowsHook = Callable[[I64, Batch, Sequence[Resolved]], None]
PER_ROW_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def is_per_row(entry: MetricDef) -> bool:
    """Whether an entry has a value per row: a kernel (its state, if any, averages it).

    ``sparse_categorical_crossentropy`` has both: a kernel, and a state that
    leaves ``ignore_class`` rows (kernel value 0) out of the mean.
    """
    return entry.kernel is not None


def per_row_values(r: Resolved, batch: Batch) -> F64:
    """The per-row values of a per-row entry, ``(N,)``, as requested (``metric_negates`` applied).

    The kernel runs through ``Batch.per_row``, so the state that updates
    from the same batch reuses the values instead of computing them again.
    """
    assert r.entry.kernel is not None
    params = {k: v for k, v in r.params.items() if k != "reduction"}
    values = batch.per_row(r.entry.kernel, params)
    if r.entry.metric_negates and r.kind == "metric":
        values = -values
    return values


def row_weights(batch: Batch) -> F64:
    """One weight per row: the row's weight, or the mean of its elements' weights (1 without weights)."""
    w = batch.weight
    if w is None:
        return np.ones(len(batch))
    return w if w.ndim == 1 else w.reshape(len(w), -1).mean(axis=1)


def _not_per_row(r: Resolved) -> str:
    shown = r.spec if r.resolved_from is None and r.spec == r.name else f"{r.spec} ({r.name})"
    return shown


class PerRowWriter:
    """Streams ``row`` plus one float64 column per per-row spec to Parquet or CSV.

    The data goes to a temporary file next to the target, renamed over it by
    :meth:`close`; :meth:`abort` removes it, so a failed run leaves no
    partial file that looks complete. Whole-table metrics are left out with
    a warning; if nothing requested is per-row, it is a usage error.
    """

    def __init__(self, path: str, inputs: Sequence[str | None] = ()) -> None:
        ext = os.path.splitext(path.lower())[1]
        if path == "-" or ext not in PER_ROW_FORMATS:
            raise UsageProblem(f"--per-row {path}: name a file ending in .parquet or .csv")
        refuse_inputs("--per-row", path, inputs)
        self.path = path
        self.format = PER_ROW_FORMATS[ext]
        self.warnings: list[str] = []
        self._specs: list[Resolved] | None = None
        self._names: list[str] = []
        self._writer: Any = None
        self._schema: pa.Schema | None = None
        self._weighted = False
        self._out = Replacement(path, "--per-row")

    def chain(self, other: RowsHook | None) -> RowsHook:
        """A hook that writes, then calls ``other`` (if any)."""

        def hook(rows: I64, batch: Batch, specs: Sequence[Resolved]) -> None:
            self.write(rows, batch, specs)
            if other is not None:
                other(rows, batch, specs)

        return hook

    def _start(self, specs: Sequence[Resolved], weighted: bool = False) -> None:
        import pyarrow as pa

        chosen = [r for r in specs if is_per_row(r.entry)]
        others = [r for r in specs if not is_per_row(r.entry)]
        if not chosen:
            raise UsageProblem(
                f"--per-row {self.path}: none of {', '.join(_not_per_row(r) for r in others) or 'the metrics'} "
                "has a value per row (they are computed over the whole table); ask for a per-row loss such as mse"
            )
        if others:
            self.warnings.append(
                f"--per-row: {', '.join(_not_per_row(r) for r in others)} computed over the whole table, "
                f"left out of {self.path}"
            )
        names: list[str] = []
        for r in chosen:
            name = r.spec
            while name in names or name == "row":
                name += "_"
            names.append(name)
        self._specs, self._names = chosen, names
        self._weighted = weighted
        fields = [pa.field("row", pa.int64()), *(pa.field(n, pa.float64()) for n in names)]
        if weighted:
            # Keras's per-sample losses with sample_weight (reduction=None): the weight times the value.
            fields += [pa.field("weight", pa.float64()), *(pa.field(f"{n}*weight", pa.float64()) for n in names)]
        self._schema = pa.schema(fields)
        if self.format == "parquet":
            import pyarrow.parquet as pq

            opener: Any = pq.ParquetWriter
        else:
            import pyarrow.csv as pacsv

            opener = pacsv.CSVWriter
        try:
            self._writer = opener(self._out.tmp, self._schema)
        except OSError as exc:
            raise cannot_write("--per-row", self.path, exc) from None

    def write(self, rows: I64, batch: Batch, specs: Sequence[Resolved]) -> None:
        """Append one chunk's rows (called by the engine's ``on_rows`` hook)."""
        import pyarrow as pa

        if self._specs is None:
            self._start(specs, batch.weight is not None)
        assert self._specs is not None
        values = [np.asarray(per_row_values(r, batch), dtype=np.float64) for r in self._specs]
        columns = [pa.array(rows, pa.int64())] + [pa.array(v) for v in values]
        if self._weighted:
            w = row_weights(batch)
            columns += [pa.array(w)] + [pa.array(v * w) for v in values]
        try:
            self._writer.write_batch(pa.record_batch(columns, schema=self._schema))
        except OSError as exc:
            raise cannot_write("--per-row", self.path, exc) from None

    def close(self, evaluation: Evaluation) -> None:
        """Finish the file and move it into place (an empty table still gets its columns)."""
        if self._specs is None:
            # No row reached the hook (an empty table): name the columns from the results.
            self._start(
                [Resolved(spec=r.spec, kind=r.kind, entry=lookup(r.extra.get("resolved_from") or r.name), params=r.params) for r in evaluation.results]  # type: ignore[arg-type]  # kind is loss|metric
            )
        try:
            self._writer.close()
            self._writer = None
            self._out.commit()
        except OSError as exc:
            raise cannot_write("--per-row", self.path, exc) from None

    def abort(self) -> None:
        """Drop the temporary file after a failure."""
        if self._writer is not None:
            # Already failing: the original error is the one to report.
            with contextlib.suppress(Exception):
                self._writer.close()
        self._out.discard()


@dataclass
class _Kept:
    """The rows kept so far: ranking key, row number, value and the inputs of each."""

    key: F64
    rows: I64
    values: F64
    y_true: F64
    y_pred: F64
    weight: F64 | None


def _top(key: F64, rows: I64, n: int) -> I64:
    """Indices of the ``n`` largest keys, ties by lowest row, in rank order (no full sort)."""
    if len(key) > n:
        kth = np.partition(key, len(key) - n)[len(key) - n]
        above = np.flatnonzero(key > kth)
        ties = np.flatnonzero(key == kth)
        ties = ties[np.argsort(rows[ties], kind="stable")][: n - len(above)]
        chosen = np.concatenate([above, ties])
    else:
        chosen = np.arange(len(key))
    return chosen[np.lexsort((rows[chosen], -key[chosen]))]


class Worst:
    """Keeps the ``n`` rows with the worst per-row value of one spec (an ``on_rows`` hook).

    Worst means largest for a loss (``direction`` min) and smallest for a
    metric where higher is better. NaN values (under ``--nan propagate``)
    rank as the worst of all, so they are never hidden. Memory: ``n`` rows
    plus one chunk.
    """

    def __init__(self, n: int) -> None:
        if n < 1:
            raise UsageProblem(f"-n must be at least 1, not {n}")
        self.n = n
        self.spec: Resolved | None = None
        self.kept: _Kept | None = None

    def check(self, r: Resolved) -> None:
        """Refuse an entry without per-row values (usage error, before or at the first chunk)."""
        if r.entry.resolve is None and not is_per_row(r.entry):
            raise UsageProblem(
                f"worst: {_not_per_row(r)} is computed over the whole table, not per row; "
                "name a per-row loss or metric (e.g. mse, mae, binary_crossentropy)"
            )

    def __call__(self, rows: I64, batch: Batch, specs: Sequence[Resolved]) -> None:
        r = specs[0]
        if self.spec is None:
            self.check(r)
            self.spec = r
        values = per_row_values(r, batch)
        key = values if r.entry.direction_for(r.kind) == "min" else -values
        key = np.where(np.isnan(key), np.inf, key)
        # The chunk's own top n first, so only 2n rows are ever concatenated.
        top = _top(key, rows, self.n)
        fresh = _Kept(
            key[top], rows[top], values[top], batch.y_true[top], batch.y_pred[top],
            None if batch.weight is None else batch.weight[top],
        )
        if self.kept is None:
            self.kept = fresh
            return
        k = self.kept
        key = np.concatenate([k.key, fresh.key])
        rows = np.concatenate([k.rows, fresh.rows])
        top = _top(key, rows, self.n)
        both = [np.concatenate([a, b]) for a, b in ((k.values, fresh.values), (k.y_true, fresh.y_true), (k.y_pred, fresh.y_pred))]
        weight = None if k.weight is None or fresh.weight is None else np.concatenate([k.weight, fresh.weight])[top]
        self.kept = _Kept(key[top], rows[top], both[0][top], both[1][top], both[2][top], weight)


def _cell(a: F64, i: int) -> float | list[float] | None:
    v = a[i]
    if np.ndim(v):
        return [None if not np.isfinite(x) else float(x) for x in np.ravel(v)]  # type: ignore[misc]  # JSON lists may hold null
    return float(v) if np.isfinite(v) else None


@dataclass(frozen=True)
class WorstRows:
    """The result of ``lossctl worst``: the overall evaluation and the worst rows, in rank order."""

    evaluation: Evaluation
    spec: Resolved
    n: int
    rows: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: input, the loss with its overall value, and the rows."""
        ev = self.evaluation
        result = ev.results[0]
        return {
            "lossctl": ev.version,
            "schema": 1,
            "command": "worst",
            "input": ev.input.to_dict(),
            "loss": {
                "name": result.name,
                "spec": result.spec,
                "kind": result.kind,
                "params": dict(result.params),
                "direction": result.direction,
                "value": result.value,
                **({"note": result.note} if result.note else {}),
                **({"resolved_from": result.extra["resolved_from"]} if result.extra.get("resolved_from") else {}),
            },
            "n": self.n,
            "rows": [dict(r) for r in self.rows],
            "warnings": list(ev.warnings),
        }


def worst_rows(evaluation: Evaluation, hook: Worst, spec: Resolved, n: int) -> WorstRows:
    """The rows ``hook`` kept over a pass, ranked, with their inputs."""
    out: list[dict[str, Any]] = []
    k = hook.kept
    if k is not None:
        for rank in range(len(k.rows)):
            v = float(k.values[rank])
            row: dict[str, Any] = {
                "rank": rank + 1,
                "row": int(k.rows[rank]),
                "value": v if np.isfinite(v) else None,
            }
            if not np.isfinite(v):
                row["note"] = "NaN" if np.isnan(v) else ("infinite" if v > 0 else "-infinite")
            row["y_true"] = _cell(k.y_true, rank)
            row["y_pred"] = _cell(k.y_pred, rank)
            if k.weight is not None:
                row["weight"] = _cell(k.weight, rank)
                weight = float(np.mean(k.weight[rank]))
                # Keras's per-sample loss with sample_weight: the weight times the value.
                row["weighted_value"] = v * weight if np.isfinite(v) else None
            out.append(row)
    return WorstRows(evaluation, hook.spec or spec, n, tuple(out))
