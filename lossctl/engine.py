"""The local engine: ``fold(plan, chunks) -> Partial`` on threads, and ``run(request)``.

``run`` opens the input, decides the :class:`~lossctl.plan.Plan` from the
request and the first chunk, folds every chunk into partial states on two
lanes (chunk i to lane i % 2, merged in a fixed order, so the numbers do
not vary run to run), raises the earliest error, saves the states when asked
(``--save-state``) and finishes. All requested metrics are updated from the
same chunk, so a file is read once however many metrics are asked for.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from lossctl.batch import F64, Batch
from lossctl.chunks import GROUP, aligned_chunks, slicer_for
from lossctl.columns import Selection, select
from lossctl.errors import DataError, UsageProblem, ValueProblem
from lossctl.finish import finish, signature
from lossctl.io import open_one, open_table
from lossctl.partial import Partial, merge
from lossctl.plan import Plan, decide, requested
from lossctl.request import NAN_POLICIES, Request
from lossctl.results import Evaluation

if TYPE_CHECKING:
    from lossctl.perrow import RowsHook

LANES = 2
Chunks = Iterator[tuple[int, dict[str, F64]]]


def finite_mask(arrays: dict[str, F64]) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Rows holding NaN or infinity (``None`` when there are none), and per role."""
    bad_by_role: dict[str, np.ndarray] = {}
    # Callers run under np.errstate(all="ignore") (the lanes, run).
    for role, a in arrays.items():
        if role == GROUP:
            continue
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


def describe(selection: Selection, role: str) -> tuple[str, str]:
    """``(table label, column text)`` of a role, for messages."""
    rc = {"y_true": selection.y_true, "y_pred": selection.y_pred, "weight": selection.weight}[role]
    assert rc is not None
    return rc.table.label, rc.source


# Weights count only relative to each other. Outside this range their sums,
# and the products of sums some metrics take (MCC, kappa, AUC, R²), leave
# float64's range (1e-300 squared is 0, 1e308 twice is infinite) and a value
# would come out wrong: such a weight is a data error (SPEC section 4).
WEIGHT_RANGE = (1e-100, 1e100)


def check_weight_range(weight: F64 | None) -> None:
    """Raise a ValueProblem at the first row whose weight is neither 0 nor within WEIGHT_RANGE (NaN and inf are the --nan policy's)."""
    if weight is None:
        return
    low, high = WEIGHT_RANGE
    size = np.abs(weight)
    bad = ((size < low) & (size > 0.0)) | ((size > high) & (size < np.inf))
    if bad.any():
        at = int(np.flatnonzero(bad.ravel())[0])
        value = float(weight.ravel()[at])
        raise ValueProblem(
            "weight", at // max(weight.size // max(len(weight), 1), 1),
            f"weight {value:g} is outside {low:g}..{high:g}; weights only count relative to each other: "
            "scale them (e.g. divide by the largest)",
        )


class Lane:
    """Folds chunks into one :class:`Partial`: validation, NaN policy, warnings, states.

    An expected error is recorded with the chunk's first row (the earliest
    across lanes wins) and the lane ignores the chunks after it.
    """

    def __init__(self, plan: Plan, selection: Selection, on_rows: RowsHook | None) -> None:
        self.plan = plan
        self.selection = selection
        self.on_rows = on_rows
        self.partial = Partial(plan.new_states())
        self.updates = [(plan.by_key[key], state) for key, state in self.partial.states.items()]

    def process(self, start: int, arrays: dict[str, F64]) -> None:
        partial = self.partial
        if partial.error is not None:
            return
        partial.rows += len(arrays["y_true"])
        try:
            # Error state is per thread: the lanes' threads need it too (see run).
            with np.errstate(all="ignore"):
                self._process(start, arrays)
        except DataError as exc:
            partial.error = (start, exc)

    def _process(self, start: int, arrays: dict[str, F64]) -> None:
        n = len(arrays["y_true"])
        partial, plan = self.partial, self.plan
        kept: np.ndarray | None = None
        bad, bad_by_role = finite_mask(arrays)
        if bad is not None:
            if plan.nan == "error":
                partial.bad += int(bad.sum())
                if partial.first_nan is None:
                    role, mask = min(bad_by_role.items(), key=lambda kv: int(np.argmax(kv[1])))
                    partial.first_nan = (role, start + int(np.argmax(mask)))
                return
            if plan.nan == "drop":
                kept = ~bad
                partial.dropped += int(bad.sum())
                arrays = {k: v[kept] for k, v in arrays.items()}
        if partial.first_nan is not None:
            return
        weight = arrays.get("weight")
        if weight is not None:
            negative = np.flatnonzero(weight < 0)
            if negative.size:
                label, source = describe(self.selection, "weight")
                i = int(negative[0])
                raise DataError(f"{label} row {start + i}: column '{source}': negative weight {weight[i]:g}")
        groups = arrays.get(GROUP)
        batch = Batch(arrays["y_true"], arrays["y_pred"], weight, groups=groups)
        if len(batch) == 0:
            return
        try:
            self._fold(start, n, kept, batch)
        except ValueProblem as problem:
            raise DataError(located(problem, self.selection, start, kept)) from None

    def _fold(self, start: int, n: int, kept: np.ndarray | None, batch: Batch) -> None:
        check_weight_range(batch.weight)
        partial, plan = self.partial, self.plan
        for r in plan.specs:
            if r.entry.validate is not None:
                r.entry.validate(batch, **r.params)
        for i, r in enumerate(plan.specs):
            if r.entry.warn is not None and i not in partial.warned:
                message = r.entry.warn(batch, **r.params)
                if message:
                    partial.warned[i] = (start, f"{r.spec}: {message}")
        if self.on_rows is not None:
            rows = np.arange(start, start + n, dtype=np.int64)
            self.on_rows(rows if kept is None else rows[kept], batch, plan.specs)
        groups = batch.groups
        if groups is None:
            for acc, state in self.updates:
                acc.update(state, batch)
            return
        needed = int(groups.max()) + 1
        parts: list[Batch] | None = None
        for acc, state in self.updates:
            if state.slots < needed:
                # Groups appear as the rows come: grow geometrically, not by one.
                state.grow(max(needed, 2 * state.slots))
            if acc.grouped:
                acc.update(state, batch)
                continue
            if parts is None:
                parts = batch.by_group()
            for part in parts:
                acc.update(state, part)


def located(problem: ValueProblem, selection: Selection, start: int, kept: np.ndarray | None = None) -> str:
    """The message of a value problem met in the chunk starting at ``start``, with its global row.

    A problem of a column names the table, the row and the column; one of a
    function (a plugin's, ``role`` None) the table, the chunk's first row and,
    when it is another, the row at fault. ``kept``: the rows ``--nan drop``
    left in the chunk (the problem's index counts those).
    """
    offset = problem.index if kept is None else int(np.flatnonzero(kept)[problem.index])
    if problem.role is None:
        label = selection.y_pred.table.label
        at = f" (in the chunk from row {start})" if offset else ""
        return f"{label} row {start + offset}{at}: {problem.message}"
    label, source = describe(selection, problem.role)
    return f"{label} row {start + offset}: column '{source}': {problem.message}"


def _drive(lanes: list[Lane], chunks: Chunks, on_chunk: Callable[[int], None] | None) -> None:
    """Feed chunk i to lane i % len(lanes); stop early once a lane has an error."""
    if len(lanes) == 1:
        for start, arrays in chunks:
            lanes[0].process(start, arrays)
            if lanes[0].partial.error is not None:
                break
            if on_chunk is not None:
                on_chunk(len(arrays["y_true"]))
        return
    inboxes: list[queue.Queue[tuple[int, dict[str, F64]] | None]] = [queue.Queue(maxsize=2) for _ in lanes]
    crashed: list[BaseException] = []
    # Set by a lane that saw every chunk it was given: one that died otherwise
    # (out of memory even in its handler) must never leave a silent partial result.
    finished = [False] * len(lanes)

    def work(lane: Lane, inbox: queue.Queue[tuple[int, dict[str, F64]] | None]) -> None:
        try:
            while (item := inbox.get()) is not None:
                lane.process(*item)
            finished[lanes.index(lane)] = True
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
            inboxes[i % len(lanes)].put((start, arrays))
            if crashed or any(lane.partial.error is not None for lane in lanes):
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
    if not all(finished):
        raise MemoryError("a lane thread stopped")


def fold(
    plan: Plan,
    selection: Selection,
    chunks: Chunks,
    on_chunk: Callable[[int], None] | None = None,
    on_rows: RowsHook | None = None,
) -> Partial:
    """Fold every chunk into one partial (errors recorded in it, not raised)."""
    # Per-row output needs the rows in order: one lane. Otherwise two lanes
    # share the kernels' work.
    lanes = [Lane(plan, selection, on_rows) for _ in range(1 if on_rows is not None else LANES)]
    _drive(lanes, chunks, on_chunk)
    partial = lanes[0].partial
    for lane in lanes[1:]:
        partial = merge(partial, lane.partial)
    # The merged states share the lanes' arrays (exact AUC keeps every score):
    # let the lanes go, so finishing can free what it consolidates.
    lanes.clear()
    return partial


def raise_first_problem(partial: Partial, selection: Selection, rest: Chunks) -> None:
    """Raise the error met at the earliest row: a data error, or the first NaN row."""
    first = partial.first_nan
    if partial.error is not None and (first is None or partial.error[0] < first[1]):
        raise partial.error[1]
    if first is None:
        return
    if partial.error is not None:
        # A NaN came first but the pass stopped at a later error: as in one
        # pass, name it with the count over the whole input.
        for _, arrays in rest:
            bad, _ = finite_mask(arrays)
            partial.bad += 0 if bad is None else int(bad.sum())
    role, row = first
    label, source = describe(selection, role)
    count = f"{partial.bad} row{'' if partial.bad == 1 else 's'} in all"
    raise DataError(
        f"{label} row {row}: column '{source}' is NaN, infinite or empty ({count}); "
        f"use --nan drop to skip such rows or --nan propagate"
    )


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


# Overflow to inf and 0/0 are expected (Keras computes them too): the results
# turn them into null with a note, so NumPy's RuntimeWarnings would only be noise
# on standard error.
@np.errstate(all="ignore")
def evaluate(
    request: Request,
    on_chunk: Callable[[int], None] | None = None,
    on_rows: RowsHook | None = None,
) -> tuple[Plan, Partial, Selection, tuple[str, ...]]:
    """Plan and fold a request in one pass; raise UsageProblem or DataError on expected errors.

    ``on_chunk`` is called with each chunk's row count; when it has an
    ``expect(rows)`` method, that is called first with the input's row count
    (``None`` when unknown before reading, as for CSV), for a progress total.
    Returns the plan, the partial of every row (no error in it), the column
    selection and the input files' labels.
    """
    if request.chunk_size < 1:
        raise UsageProblem(f"--chunk-size must be a positive number of rows, not {request.chunk_size}")
    if request.nan not in NAN_POLICIES:
        raise UsageProblem(f"--nan must be one of {', '.join(NAN_POLICIES)}, not '{request.nan}'")
    specs, checks = requested(request.losses, request.metrics, request.checks)
    scoped = next((b.check for b in checks if b.check.scope is not None), None)
    if scoped is not None and not request.by:
        raise UsageProblem(f"--check '{scoped.expr}': a group check needs --by COL")
    table = open_table(request.files, request.input_format, request.delimiter, request.max_line_bytes) if request.files else None
    selection = select(
        table,
        request.true,
        request.pred,
        request.weight,
        lambda path: open_one(path, request.input_format if not request.files else None, request.delimiter, request.max_line_bytes),
    )
    if selection.weight is not None and (len(selection.weight.columns) != 1):
        raise UsageProblem(f"--weight names {len(selection.weight.columns)} columns; give one")
    expect = getattr(on_chunk, "expect", None)
    if expect is not None:
        expect(known_rows(selection))
    slicer = None
    if request.by:
        if request.max_groups < 1:
            raise UsageProblem(f"--max-groups must be a positive number, not {request.max_groups}")
        slicer = slicer_for(selection, tuple(dict.fromkeys(request.by)), request.max_groups)
    stream = aligned_chunks(selection, request.chunk_size, slicer)
    first = next(stream, None)
    first_roles = None if first is None else {k: v for k, v in first[1].items() if k != GROUP}
    plan = decide(specs, checks, selection, request.nan, first_roles, tuple(dict.fromkeys(request.by)))
    chunks: Chunks = itertools.chain([first], stream) if first is not None else iter(())
    partial = fold(plan, selection, chunks, on_chunk, on_rows)
    raise_first_problem(partial, selection, stream)
    if slicer is not None:
        partial.groups = list(slicer.index.keys)
    files = tuple(request.files) or tuple(dict.fromkeys(role.source for role in plan.roles.values()))
    return plan, partial, selection, files


def run(
    request: Request,
    on_chunk: Callable[[int], None] | None = None,
    on_rows: RowsHook | None = None,
) -> Evaluation:
    """Evaluate a request in one pass (see :func:`evaluate`) and finish it."""
    plan, partial, _, files = evaluate(request, on_chunk, on_rows)
    if request.save_state is not None:
        from lossctl.statefile import save

        save(request.save_state, plan, partial, files)
    sig = signature(request.chunk_size, request.nan, input_sizes(files), plan.plugins())
    return finish(plan, partial, files, sig)
