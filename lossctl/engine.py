"""One pass over the rows: read chunks, validate, update every state, collect results.

The engine joins the readers (which know files) and the registry (which
knows metrics). All requested metrics are updated from the same chunk, so a
file is read once however many metrics are asked for.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from lossctl import __version__
from lossctl.batch import F64, Batch
from lossctl.checks import bind_checks, judge, parse_checks
from lossctl.columns import RoleColumns, Selection, select
from lossctl.errors import DataError, UsageProblem, ValueProblem
from lossctl.io import Table, open_one, open_table, rechunk
from lossctl.io.base import prefetch
from lossctl.registry import Resolved, lookup, resolve_all
from lossctl.results import Evaluation, InputSummary, MetricResult, RoleInfo
from lossctl.state import State
from lossctl.task import infer_task

DEFAULT_CHUNK_ROWS = 1 << 16
NAN_POLICIES = ("error", "drop", "propagate")
EPSILON = 1e-7

# What `eval` computes on regression input when no --loss/--metric is given
# (classification defaults depend on the shapes too: see `default_specs`).
REGRESSION_DEFAULTS = ("mean_squared_error", "mean_absolute_error", "root_mean_squared_error", "r2_score")


@dataclass(frozen=True)
class Request:
    """Everything ``eval`` needs; the CLI builds one, the API takes its fields as keywords."""

    files: tuple[str, ...] = ()
    losses: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    true: str | None = None
    pred: str | None = None
    weight: str | None = None
    chunk_size: int = DEFAULT_CHUNK_ROWS
    input_format: str | None = None
    delimiter: str | None = None
    nan: str = "error"
    # `--check` expressions (lossctl.checks); names not requested are added as metrics.
    checks: tuple[str, ...] = ()
    # `--per-row FILE`: per-row values of the per-row entries, with row numbers (.parquet or .csv).
    per_row: str | None = None


def _role_array(role: RoleColumns, chunk: dict[str, np.ndarray]) -> F64:
    if len(role.columns) == 1:
        values = chunk[role.columns[0]]
    else:
        parts = [chunk[c] for c in role.columns]
        for c, p in zip(role.columns, parts, strict=True):
            if p.ndim != 1:
                raise DataError(f"{role.table.label}: column '{c}' holds several values per row; list it alone")
        values = np.column_stack(parts)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return values


def _assemble(chunks: Iterator[dict[str, np.ndarray]], roles: list[RoleColumns]) -> Iterator[dict[str, F64]]:
    """Column chunks of one table to ``{role: array}`` chunks."""
    for chunk in chunks:
        yield {role.role: _role_array(role, chunk) for role in roles}


def aligned_chunks(selection: Selection, rows: int) -> Iterator[tuple[int, dict[str, F64]]]:
    """Yield ``(first_row, {role: array})`` with every role aligned, ``rows`` rows a chunk."""
    groups: dict[int, tuple[Table, list[RoleColumns]]] = {}
    for role in selection.roles():
        groups.setdefault(id(role.table), (role.table, []))[1].append(role)
    streams = []
    for table, roles in groups.values():
        names = list(dict.fromkeys(c for r in roles for c in r.columns))
        # Decoding, rechunking and assembling the role arrays run ahead in a
        # reader thread, overlapped with the metric kernels in this one.
        assembled = _assemble(rechunk(table.chunks(names, rows), rows), roles)
        streams.append((table, roles, prefetch(assembled)))
    if len(streams) > 1:
        counts = {t.label: t.num_rows for t, _, _ in streams}
        known = {k: v for k, v in counts.items() if v is not None}
        if len(set(known.values())) > 1:
            detail = " but ".join(f"{k} has {v} rows" for k, v in known.items())
            raise DataError(f"row counts differ: {detail}")
    start = 0
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


@dataclass
class _Nan:
    """What the --nan policy has seen so far."""

    policy: str
    dropped: int = 0
    bad_count: int = 0
    first: tuple[str, int] | None = None


def _finite_mask(arrays: dict[str, F64]) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    bad_by_role: dict[str, np.ndarray] = {}
    # Callers run under np.errstate(all="ignore") (the lanes, _one_pass).
    for role, a in arrays.items():
        if np.isfinite(np.add.reduce(a, axis=None)):
            # A finite sum means no NaN and no infinity: one fast pass, no mask.
            # (A sum that overflows falls through to the exact check.)
            continue
        ok = np.isfinite(a)
        if a.ndim == 2:
            ok = ok.all(axis=1)
        if not ok.all():
            bad_by_role[role] = ~ok
    if not bad_by_role:
        return None, {}
    bad = np.zeros(len(next(iter(arrays.values()))), dtype=bool)
    for b in bad_by_role.values():
        bad |= b
    return bad, bad_by_role


def _check_shapes(selection: Selection, y_true: F64, y_pred: F64, specs: list[Resolved]) -> None:
    wt = 1 if y_true.ndim == 1 else y_true.shape[1]
    wp = 1 if y_pred.ndim == 1 else y_pred.shape[1]
    for r in specs:
        if r.entry.shapes == "same" and wt != wp:
            raise DataError(
                f"{selection.y_pred.table.label}: y_pred has {wp} value(s) per row "
                f"({selection.y_pred.source}) but y_true has {wt} ({selection.y_true.source}); "
                f"{r.name} needs the same shape"
            )
        if r.entry.shapes == "sparse" and wt != 1:
            raise DataError(
                f"{selection.y_true.table.label}: y_true has {wt} values per row ({selection.y_true.source}) "
                f"but {r.name} needs one integer label per row (one-hot labels go with the categorical names)"
            )


def _describe(selection: Selection, role: str) -> tuple[str, str]:
    rc = {"y_true": selection.y_true, "y_pred": selection.y_pred, "weight": selection.weight}[role]
    assert rc is not None
    return rc.table.label, rc.source


# Called once per non-empty chunk, after validation, with the chunk's 0-based
# table row numbers (rows dropped by --nan drop are absent), the batch and the
# final specs (convenience names resolved): `worst` and `--per-row` use it.
RowsHook = Callable[[np.ndarray, Batch, Sequence[Resolved]], None]


def run(
    request: Request,
    on_chunk: Callable[[int], None] | None = None,
    on_rows: RowsHook | None = None,
) -> Evaluation:
    """Evaluate a request in one pass; raise UsageProblem or DataError on expected errors."""
    if request.per_row is None:
        return _one_pass(request, on_chunk, on_rows)
    from lossctl.perrow import PerRowWriter

    # The writer fills a temporary file and renames it only on success, so a
    # failed run never leaves a plausible-looking partial file behind.
    writer = PerRowWriter(request.per_row, request.files)
    try:
        evaluation = _one_pass(request, on_chunk, writer.chain(on_rows))
        writer.close(evaluation)
    except BaseException:
        writer.abort()
        raise
    return replace(evaluation, warnings=(*evaluation.warnings, *writer.warnings))


LANES = 2


class _Lane:
    """One worker's share of the pass: its own states, NaN counts, first warnings and first error.

    ``process`` validates and folds a chunk; an expected error is recorded
    (with the chunk's first row, to find the earliest across lanes) and the
    lane ignores the chunks after it.
    """

    def __init__(self, specs: list[Resolved], selection: Selection, policy: str, on_rows: RowsHook | None) -> None:
        self.specs = specs
        self.selection = selection
        self.on_rows = on_rows
        self.states = [r.entry.make_state(r.params, r.kind) for r in specs]
        self.nan = _Nan(policy)
        self.warned: dict[int, tuple[int, str]] = {}
        self.error: tuple[int, BaseException] | None = None

    def process(self, start: int, arrays: dict[str, F64]) -> None:
        if self.error is not None:
            return
        try:
            # Error state is per thread: the lanes' threads need it too (see _one_pass).
            with np.errstate(all="ignore"):
                self._process(start, arrays)
        except DataError as exc:
            self.error = (start, exc)

    def _process(self, start: int, arrays: dict[str, F64]) -> None:
        n = len(arrays["y_true"])
        nan, selection, specs = self.nan, self.selection, self.specs
        kept: np.ndarray | None = None
        bad, bad_by_role = _finite_mask(arrays)
        if bad is not None:
            if nan.policy == "error":
                nan.bad_count += int(bad.sum())
                if nan.first is None:
                    role, mask = min(bad_by_role.items(), key=lambda kv: int(np.argmax(kv[1])))
                    nan.first = (role, start + int(np.argmax(mask)))
                return
            if nan.policy == "drop":
                kept = ~bad
                nan.dropped += int(bad.sum())
                arrays = {k: v[kept] for k, v in arrays.items()}
        if nan.first is not None:
            return
        weight = arrays.get("weight")
        if weight is not None:
            negative = np.flatnonzero(weight < 0)
            if negative.size:
                label, source = _describe(selection, "weight")
                i = int(negative[0])
                raise DataError(f"{label} row {start + i}: column '{source}': negative weight {weight[i]:g}")
        batch = Batch(arrays["y_true"], arrays["y_pred"], weight)
        if len(batch) == 0:
            return
        for r in specs:
            if r.entry.validate is not None:
                try:
                    r.entry.validate(batch, **r.params)
                except ValueProblem as problem:
                    label, source = _describe(selection, problem.role)
                    raise DataError(
                        f"{label} row {start + problem.index}: column '{source}': {problem.message}"
                    ) from None
        for i, r in enumerate(specs):
            if r.entry.warn is not None and i not in self.warned:
                message = r.entry.warn(batch, **r.params)
                if message:
                    self.warned[i] = (start, f"{r.spec}: {message}")
        if self.on_rows is not None:
            rows = np.arange(start, start + n, dtype=np.int64)
            self.on_rows(rows if kept is None else rows[kept], batch, specs)
        for state in self.states:
            state.update(batch)


def _drive(
    lanes: list[_Lane], chunks: Iterator[tuple[int, dict[str, F64]]], on_chunk: Callable[[int], None] | None
) -> int:
    """Feed chunk i to lane i % len(lanes); stop early once a lane has an error. Returns rows read."""
    rows = 0
    if len(lanes) == 1:
        for start, arrays in chunks:
            rows += len(arrays["y_true"])
            lanes[0].process(start, arrays)
            if lanes[0].error is not None:
                break
            if on_chunk is not None:
                on_chunk(len(arrays["y_true"]))
        return rows
    inboxes: list[queue.Queue[tuple[int, dict[str, F64]] | None]] = [queue.Queue(maxsize=2) for _ in lanes]
    crashed: list[BaseException] = []

    def work(lane: _Lane, inbox: queue.Queue[tuple[int, dict[str, F64]] | None]) -> None:
        try:
            while (item := inbox.get()) is not None:
                lane.process(*item)
        except BaseException as exc:  # noqa: BLE001 - a bug: re-raised in the main thread
            crashed.append(exc)
            while inbox.get() is not None:
                pass

    workers = [
        threading.Thread(target=work, args=(lane, inbox), name=f"lossctl-lane-{i}", daemon=True)
        for i, (lane, inbox) in enumerate(zip(lanes, inboxes, strict=True))
    ]
    for w in workers:
        w.start()
    try:
        for i, (start, arrays) in enumerate(chunks):
            rows += len(arrays["y_true"])
            inboxes[i % len(lanes)].put((start, arrays))
            if crashed or any(lane.error is not None for lane in lanes):
                break
            if on_chunk is not None:
                on_chunk(len(arrays["y_true"]))
    finally:
        for inbox in inboxes:
            inbox.put(None)
        for w in workers:
            w.join()
    if crashed:
        raise crashed[0]
    return rows


# Overflow to inf and 0/0 are expected (Keras computes them too): the results
# turn them into null with a note, so NumPy's RuntimeWarnings would only be noise
# on standard error.
@np.errstate(all="ignore")
def _one_pass(request: Request, on_chunk: Callable[[int], None] | None, on_rows: RowsHook | None) -> Evaluation:
    """The one pass of :func:`run` (see there)."""
    if request.chunk_size < 1:
        raise UsageProblem(f"--chunk-size must be a positive number of rows, not {request.chunk_size}")
    if request.nan not in NAN_POLICIES:
        raise UsageProblem(f"--nan must be one of {', '.join(NAN_POLICIES)}, not '{request.nan}'")
    specs = resolve_all(request.losses, request.metrics)
    specs, checks = bind_checks(parse_checks(request.checks), specs)
    table = open_table(request.files, request.input_format, request.delimiter) if request.files else None
    selection = select(
        table,
        request.true,
        request.pred,
        request.weight,
        lambda path: open_one(path, request.input_format if not request.files else None, request.delimiter),
    )
    if selection.weight is not None and (len(selection.weight.columns) != 1):
        raise UsageProblem(f"--weight names {len(selection.weight.columns)} columns; give one")

    task: str | None = None
    widths: dict[str, int] = {}
    rows_read = 0
    stream = aligned_chunks(selection, request.chunk_size)
    first = next(stream, None)
    lanes: list[_Lane] = []
    if first is not None:
        _, arrays = first
        task = infer_task(arrays["y_true"], arrays["y_pred"])
        if not specs:
            specs = default_specs(task, arrays["y_true"], arrays["y_pred"])
        specs = [_resolve_convenience(r, arrays["y_true"], arrays["y_pred"]) for r in specs]
        _check_shapes(selection, arrays["y_true"], arrays["y_pred"], specs)
        widths = {k: (1 if v.ndim == 1 else int(v.shape[1])) for k, v in arrays.items()}
        # Per-row output needs the rows in order: one lane. Otherwise two lanes
        # share the kernels' work; chunk i always goes to lane i % 2 and the
        # lanes merge in a fixed order, so the numbers do not vary run to run.
        count = 1 if on_rows is not None else LANES
        lanes = [_Lane(specs, selection, request.nan, on_rows) for _ in range(count)]
        rows_read = _drive(lanes, itertools.chain([first], stream), on_chunk)
    nan = _Nan(request.nan)
    for lane in lanes:
        nan.bad_count += lane.nan.bad_count
        nan.dropped += lane.nan.dropped
        if lane.nan.first is not None and (nan.first is None or lane.nan.first[1] < nan.first[1]):
            nan.first = lane.nan.first
    errors = sorted((lane.error for lane in lanes if lane.error is not None), key=lambda e: e[0])
    if errors and (nan.first is None or errors[0][0] < nan.first[1]):
        raise errors[0][1]
    if errors:
        # A NaN came first: as in one pass, name it with the count over the whole file.
        for _, arrays in stream:
            bad, _ = _finite_mask(arrays)
            nan.bad_count += 0 if bad is None else int(bad.sum())
    states: list[State] | None = None
    if lanes:
        states = lanes[0].states
        for lane in lanes[1:]:
            states = [a.merge(b) for a, b in zip(states, lane.states, strict=True)]
        for lane in lanes:
            # The merged states share the lanes' arrays (exact AUC keeps every
            # score): let the lanes go, so result() can free what it consolidates.
            lane.states = []
    # Each spec's first warning: the one met at the earliest row, whichever lane met it.
    warned: dict[int, tuple[int, str]] = {}
    for lane in lanes:
        for i, first in lane.warned.items():
            if i not in warned or first[0] < warned[i][0]:
                warned[i] = first
    if nan.first is not None:
        role, row = nan.first
        label, source = _describe(selection, role)
        count = f"{nan.bad_count} row{'' if nan.bad_count == 1 else 's'} in all"
        raise DataError(
            f"{label} row {row}: column '{source}' is NaN, infinite or empty ({count}); "
            f"use --nan drop to skip such rows or --nan propagate"
        )
    if states is None:
        if not specs:
            specs = default_specs("regression")
        states = [r.entry.make_state(r.params, r.kind) for r in specs]
    results = tuple(_result(r, s, rows_read - nan.dropped) for r, s in zip(specs, states, strict=True))
    roles = {
        rc.role: RoleInfo(rc.role, rc.table.label, rc.columns, rc.picked, widths.get(rc.role))
        for rc in selection.roles()
    }
    files = tuple(request.files) or tuple(dict.fromkeys(rc.table.label for rc in selection.roles()))
    warnings: list[str] = [warned[i][1] for i in sorted(warned)]
    if rows_read == 0:
        warnings.append("no rows: every value is undefined")
    if nan.dropped:
        warnings.append(f"dropped {nan.dropped} rows with NaN or infinite values (--nan drop)")
    if rows_read > nan.dropped:
        # An undefined value (a zero weight sum, NaN under --nan propagate) must not pass unnoticed.
        warnings += [
            f"{r.spec}: {r.note}" if "undefined" in (r.note or "") else f"{r.spec}: undefined ({r.note})"
            for r in results
            if r.value is None
        ]
    summary = InputSummary(files, roles, task, rows_read, nan.dropped)
    return Evaluation(
        input=summary,
        results=results,
        version=__version__,
        signature=_signature(request, files),
        warnings=tuple(warnings),
        checks=judge(checks, results),
    )


def _resolve_convenience(r: Resolved, y_true: F64, y_pred: F64) -> Resolved:
    """Replace a convenience name (``acc``) by the entry it stands for on this input."""
    if r.entry.resolve is None:
        return r
    entry, params = r.entry.resolve(y_true, y_pred, r.params)
    return Resolved(spec=r.spec, kind=r.kind, entry=entry, params=params, resolved_from=r.entry.name)


def default_specs(task: str, y_true: F64 | None = None, y_pred: F64 | None = None) -> list[Resolved]:
    """What to compute when nothing is asked for: by task, and by the shapes of the input."""
    wide_true = y_true is not None and y_true.ndim == 2
    wide_pred = y_pred is not None and y_pred.ndim == 2
    probabilities = y_pred is not None and bool(np.all((y_pred >= 0) & (y_pred <= 1)))
    if task == "binary":
        zero_one = y_true is not None and bool(np.all((y_true == 0) | (y_true == 1)))
        names = ["binary_crossentropy"] if zero_one and probabilities else []
        names += ["accuracy", "auc"]
    elif task == "multiclass":
        if not wide_pred:
            names = ["accuracy"]  # labels against labels
        elif probabilities:
            names = ["categorical_crossentropy" if wide_true else "sparse_categorical_crossentropy", "accuracy"]
        else:
            names = ["accuracy"]
    elif task == "multilabel":
        names = ["binary_crossentropy", "binary_accuracy"] if probabilities else ["binary_accuracy"]
    else:
        names = list(REGRESSION_DEFAULTS)
    present = []
    for name in names:
        try:
            present.append(lookup(name).name)
        except UsageProblem:
            continue
    return resolve_all((), present)


def _result(r: Resolved, state: State, rows: int) -> MetricResult:
    value = state.result()
    counted = getattr(state, "rows", rows)
    extra = dict(value.extra)
    if r.resolved_from is not None:
        extra["resolved_from"] = r.resolved_from
    return MetricResult(
        name=r.name,
        spec=r.spec,
        kind=r.kind,
        params=r.params,
        value=value.value,
        rows=int(counted),
        direction=r.entry.direction_for(r.kind),
        note=value.note,
        extra=extra,
    )


def _signature(request: Request, files: tuple[str, ...]) -> dict[str, object]:
    sizes = {}
    for f in files:
        try:
            sizes[f] = os.path.getsize(f) if os.path.isfile(f) else None
        except OSError:
            sizes[f] = None
    return {
        "lossctl": __version__,
        "epsilon": EPSILON,
        "chunk_size": request.chunk_size,
        "nan": request.nan,
        "auc_method": "exact",
        "seed": None,
        "input_bytes": sizes,
    }
