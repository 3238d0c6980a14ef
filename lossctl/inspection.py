"""``lossctl inspect``: what ``eval`` would read, without evaluating anything.

The schema of each input, the row count, the columns ``eval`` would pick,
the task it would infer and what it would compute by default. The columns
are resolved by the same code ``eval`` uses (``lossctl.columns.select``) and
the rows are read by the engine's own stream, so what ``inspect`` shows is
what ``eval`` would do. A column-picking problem does not stop ``inspect``:
it is reported next to the schema, which is what one needs to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossctl._version import __version__

# The engine's own stream (aligned role arrays, chunk by chunk) and default
# choice, so that what is shown here is what eval would read and compute.
from lossctl.chunks import aligned_chunks
from lossctl.columns import Selection, select
from lossctl.errors import DataError, LossctlError, UsageProblem
from lossctl.io import Table, detect_format, open_one, open_table
from lossctl.plan import default_specs
from lossctl.request import Request
from lossctl.task import infer_task


@dataclass
class RoleStats:
    """What one role's values look like: non-finite count and finite range."""

    nonfinite: int = 0
    low: float | None = None
    high: float | None = None

    def update(self, values: np.ndarray) -> None:
        finite = np.isfinite(values)
        self.nonfinite += int(values.shape[0] - (finite.all(axis=1) if values.ndim == 2 else finite).sum())
        good = values[finite]
        if good.size:
            lo, hi = float(good.min()), float(good.max())
            self.low = lo if self.low is None else min(self.low, lo)
            self.high = hi if self.high is None else max(self.high, hi)

    def to_dict(self) -> dict[str, Any]:
        return {"rows_not_finite": self.nonfinite, "min": self.low, "max": self.high}


@dataclass(frozen=True)
class Inspection:
    """The result of ``lossctl inspect``; ``problem`` says why eval would stop (with its exit status)."""

    tables: tuple[dict[str, Any], ...]
    rows: int | None
    columns: dict[str, Any] | None
    task: str | None
    defaults: tuple[str, ...]
    stats: dict[str, RoleStats] = field(default_factory=dict)
    problem: str | None = None
    problem_status: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "lossctl": __version__,
            "schema": 1,
            "command": "inspect",
            "tables": list(self.tables),
            "rows": self.rows,
            "columns": self.columns,
            "task": self.task,
            "eval_defaults": list(self.defaults),
            "values": {role: s.to_dict() for role, s in self.stats.items()},
            "problem": self.problem,
        }


def _describe_table(table: Table, fmt: str | None) -> dict[str, Any]:
    return {
        "source": table.label,
        "format": fmt,
        "rows": table.num_rows,
        "columns": [{"name": c.name, "kind": c.kind, "dtype": c.dtype, "width": c.width} for c in table.columns],
    }


def _format_of(path: str, override: str | None) -> str | None:
    try:
        return detect_format(path, override)
    except LossctlError:
        return None


def inspect(request: Request) -> Inspection:
    """Describe the inputs of ``request`` as ``eval`` would read them (losses and checks are ignored).

    Raises:
        DataError: a file has no readable schema (missing, empty, corrupt).
        UsageProblem: bad options (no input at all, an unknown format).
    """
    if request.chunk_size < 1:
        raise UsageProblem(f"--chunk-size must be a positive number of rows, not {request.chunk_size}")
    table = open_table(request.files, request.input_format, request.delimiter, request.max_line_bytes) if request.files else None
    opened: dict[str, tuple[Table, str | None]] = {}
    if table is not None:
        opened[table.label] = (table, ",".join(dict.fromkeys(filter(None, (_format_of(f, request.input_format) for f in request.files)))) or None)

    def open_source(path: str) -> Table:
        override = request.input_format if not request.files else None
        t = open_one(path, override, request.delimiter, request.max_line_bytes)
        opened[t.label] = (t, _format_of(path, override))
        return t

    selection: Selection | None = None
    problem, status = None, 0
    try:
        selection = select(table, request.true, request.pred, request.weight, open_source)
        if selection.weight is not None and len(selection.weight.columns) != 1:
            raise UsageProblem(f"--weight names {len(selection.weight.columns)} columns; give one")
    except UsageProblem as exc:
        if not opened:
            raise
        problem, status = " ".join(str(exc).split()), int(exc.exit_status)
        selection = None

    rows: int | None = table.num_rows if table is not None else None
    task: str | None = None
    stats: dict[str, RoleStats] = {}
    columns: dict[str, Any] | None = None
    defaults: tuple[str, ...] = ()
    if selection is not None:
        columns = {
            rc.role: {"source": rc.table.label, "columns": list(rc.columns), "picked": rc.picked}
            for rc in selection.roles()
        }
        stats = {rc.role: RoleStats() for rc in selection.roles()}
        counted = 0
        try:
            for _, arrays in aligned_chunks(selection, request.chunk_size):
                if task is None:
                    task = infer_task(arrays["y_true"], arrays["y_pred"])
                    defaults = tuple(r.name for r in default_specs(task, arrays["y_true"], arrays["y_pred"]))
                    for role, values in arrays.items():
                        columns[role]["width"] = 1 if values.ndim == 1 else int(values.shape[1])
                for role, values in arrays.items():
                    stats[role].update(values)
                counted += len(arrays["y_true"])
            rows = counted
        except DataError as exc:
            problem, status = " ".join(str(exc).split()), int(exc.exit_status)
    return Inspection(
        tables=tuple(_describe_table(t, fmt) for t, fmt in opened.values()),
        rows=rows,
        columns=columns,
        task=task,
        defaults=defaults,
        stats=stats,
        problem=problem,
        problem_status=status,
    )
