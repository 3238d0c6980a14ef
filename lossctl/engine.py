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
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from lossctl import bootstrap, pairing
from lossctl.accumulate import fold_batch
from lossctl.batch import F64, Batch
from lossctl.chunks import GROUP, Slicer, aligned_chunks, slicer_for
from lossctl.columns import Selection
from lossctl.elements import element_batch, first_negative, negative_text
from lossctl.errors import DataError, UsageProblem, ValueProblem
from lossctl.finish import finish, signature
from lossctl.io import open_one
from lossctl.partial import Partial, merge
from lossctl.plan import Plan, decide, requested
from lossctl.problems import (
    check_weight_range,
    describe,
    finite_mask,
    located,
    raise_first_problem,
)
from lossctl.replicates import replication
from lossctl.request import NAN_POLICIES, Request
from lossctl.results import Evaluation
from lossctl.sources import input_sizes, known_rows, select_sources

if TYPE_CHECKING:
    from lossctl.perrow import RowsHook

LANES = 2
Chunks = Iterator[tuple[int, dict[str, F64]]]


class Lane:
    """Folds chunks into one :class:`Partial`: validation, NaN policy, warnings, states.

    An expected error is recorded with the chunk's first row (the earliest
    across lanes wins) and the lane ignores the chunks after it.
    """

    def __init__(self, plan: Plan, selection: Selection, on_rows: RowsHook | None, first_row: int = 0) -> None:
        self.plan = plan
        self.first_row = first_row
        self.selection = selection
        self.on_rows = on_rows
        self.stride = 1 if plan.replication is None else plan.replication.stride
        self.partial = Partial(plan.new_states(), stride=self.stride)
        states = self.partial.states
        # Per arm (a comparison's baseline and candidate; None outside one), the states it updates.
        self.updates = {
            arm: [(acc, states[plan.state_key(arm, key)]) for key, acc in plan.by_key.items()]
            for arm in (plan.arms or (None,))
        }

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
            i = first_negative(weight)
            if i is not None:
                label, source = describe(self.selection, "weight")
                raise DataError(f"{label} row {start + i}: column '{source}': {negative_text(weight[i])}")
        groups = arrays.get(GROUP)
        if groups is not None and self.stride > 1:
            # Group g's plain rows go to slot g * stride; its replicates follow.
            groups = groups * self.stride
        if len(arrays["y_true"]) == 0:
            return
        if plan.arms:
            pairing.check_same_truth(arrays, self.selection, start, kept)
        work = []
        for number, arm in enumerate(plan.arms or (None,)):
            pred = arrays["y_pred"] if arm in (None, pairing.BASELINE) else arrays[pairing.PRED]
            try:
                batch = element_batch(arrays["y_true"], pred, weight, groups)
            except DataError as exc:
                # A shape that cannot be flattened (a later chunk): name the file and column.
                role = "weight" if weight is not None and str(exc).startswith("the weight") else "y_pred"
                label, source = describe(self.selection, role)
                raise DataError(f"{label} row {start}: column '{source}': {exc}") from None
            if len(batch) == 0:
                return
            try:
                self._fold(start, n, kept, batch, arm, number * len(plan.specs))
            except ValueProblem as problem:
                raise DataError(located(problem, self.selection, start, kept, arm, batch.per_input_row)) from None
            work.append((batch, self.updates[arm]))
        if plan.replication is not None:
            # Every arm's replicates at once: the weights depend on the rows only.
            groups = work[0][0].groups
            bootstrap.fold(plan.replication, work, None if groups is None else groups // self.stride)

    def _fold(self, start: int, n: int, kept: np.ndarray | None, batch: Batch, arm: str | None, offset: int) -> None:
        check_weight_range(batch.weight)
        partial, plan = self.partial, self.plan
        updates = self.updates[arm]
        for r in plan.specs:
            if r.entry.validate is not None:
                r.entry.validate(batch, **r.params)
        for i, r in enumerate(plan.specs):
            if r.entry.warn is not None and i + offset not in partial.warned:
                message = r.entry.warn(batch, **r.params)
                if message:
                    partial.warned[i + offset] = (start, f"{'' if arm is None else arm + ': '}{r.spec}: {message}")
        if self.on_rows is not None:
            rows = np.arange(start, start + n, dtype=np.int64)
            self.on_rows(rows if kept is None else rows[kept], batch.samples if batch.per_input_row > 1 else batch, plan.specs)
        rep, stride = plan.replication, self.stride
        if rep is not None:
            # The bootstrap's counter: the row's number in the whole input (--first-row for a shard);
            # an input row's elements (inputs of more than two dimensions) share its weights.
            rows = np.arange(self.first_row + start, self.first_row + start + n, dtype=np.int64)
            rows = rows if kept is None else rows[kept]
            batch.rows = rows if batch.per_input_row == 1 else np.repeat(rows, batch.per_input_row)
        groups = batch.groups
        if groups is None and rep is None:
            for acc, state in updates:
                acc.update(state, batch)
            return
        needed = stride if groups is None else int(groups.max()) + stride
        for _, state in updates:
            if state.slots < needed:
                # Groups appear as the rows come: grow geometrically, not by one.
                state.grow(max(needed, 2 * state.slots))
        fold_batch(updates, batch)


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
    first_row: int = 0,
) -> Partial:
    """Fold every chunk into one partial (errors recorded in it, not raised).

    ``first_row``: the global number of the input's first row (the bootstrap
    weights' counter; messages keep the rows of this input).
    """
    # Per-row output needs the rows in order: one lane. Otherwise two lanes
    # share the kernels' work.
    lanes = [Lane(plan, selection, on_rows, first_row) for _ in range(1 if on_rows is not None else LANES)]
    _drive(lanes, chunks, on_chunk)
    partial = lanes[0].partial
    for lane in lanes[1:]:
        partial = merge(partial, lane.partial)
    # The merged states share the lanes' arrays (exact AUC keeps every score):
    # let the lanes go, so finishing can free what it consolidates.
    lanes.clear()
    return partial


# Overflow to inf and 0/0 are expected (Keras computes them too): the results
# turn them into null with a note, so NumPy's RuntimeWarnings would only be noise
# on standard error.
@np.errstate(all="ignore")
def evaluate(
    request: Request,
    on_chunk: Callable[[int], None] | None = None,
    on_rows: RowsHook | None = None,
    compare: bool = False,
) -> tuple[Plan, Partial, Selection, tuple[str, ...]]:
    """Plan and fold a request in one pass; raise UsageProblem or DataError on expected errors.

    ``compare``: the request's two files are a baseline and a candidate over
    the same rows (``lossctl compare``), folded together, each spec per arm.

    ``on_chunk`` is called with each chunk's row count; when it has an
    ``expect(rows)`` method, that is called first with the input's row count
    (``None`` when unknown before reading, as for CSV), for a progress total.
    Returns the plan, the partial of every row (no error in it), the column
    selection and the input files' labels.
    """
    plan, selection, slicer, chunks, stream = prepare(request, on_chunk, compare)
    partial = fold(plan, selection, chunks, on_chunk, on_rows, request.first_row)
    if not compare and len(request.files) == 2:
        hint = pairing.two_models_warning(
            request.files, selection, lambda path: open_one(path, request.input_format, request.delimiter)
        )
        if hint is not None:
            partial.warned[-1] = (0, hint)
    partial.first_row = request.first_row
    raise_first_problem(partial, selection, stream)
    if slicer is not None:
        partial.groups = list(slicer.index.keys)
    return plan, partial, selection, input_files(request, plan)


def input_files(request: Request, plan: Plan) -> tuple[str, ...]:
    """The input files' labels: the FILE arguments, else the files the roles name."""
    return tuple(request.files) or tuple(dict.fromkeys(role.source for role in plan.roles.values()))


@np.errstate(all="ignore")
def prepare(
    request: Request, on_chunk: Callable[[int], None] | None = None, compare: bool = False
) -> tuple[Plan, Selection, Slicer | None, Chunks, Chunks]:
    """Open the input and decide the plan from the request and the first chunk (every engine's first step).

    Returns the plan, the selection, the ``--by`` slicer, every chunk (the
    first included) and the stream after the first chunk.
    """
    if request.chunk_size < 1:
        raise UsageProblem(f"--chunk-size must be a positive number of rows, not {request.chunk_size}")
    if request.nan not in NAN_POLICIES:
        raise UsageProblem(f"--nan must be one of {', '.join(NAN_POLICIES)}, not '{request.nan}'")
    rep = replication(request.ci, request.bootstrap, request.seed)
    if request.first_row < 0:
        raise UsageProblem(f"--first-row must be a row number (0 or more), not {request.first_row}")
    specs, checks = requested(request.losses, request.metrics, request.checks, request.max_regressions if compare else ())
    armed = next((b.check for b in checks if b.check.arm is not None), None)
    if armed is not None and not compare:
        raise UsageProblem(
            f"--check '{armed.expr}': {armed.arm}(...) compares a baseline with a candidate; use it with 'lossctl compare'"
        )
    scoped = next((b.check for b in checks if b.check.scope is not None), None)
    if scoped is not None and not request.by:
        raise UsageProblem(f"--check '{scoped.expr}': a group check needs --by COL")
    bounded = next((b.check for b in checks if b.check.bound is not None), None)
    if bounded is not None and rep is None:
        raise UsageProblem(f"--check '{bounded.expr}': an interval bound needs --ci LEVEL")
    selection = select_sources(request, compare)
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
    from lossctl.labels import label_coder

    coder = label_coder(selection, request.classes, request.pos_label)
    stream = aligned_chunks(selection, request.chunk_size, slicer, labels=coder)
    first = next(stream, None)
    first_roles = None if first is None else {k: v for k, v in first[1].items() if k != GROUP}
    if compare and first_roles is not None:
        assert isinstance(selection, pairing.Pairing)
        pairing.check_widths(selection, first_roles)
    arms = pairing.ARMS if compare else ()
    plan = decide(specs, checks, selection, request.nan, first_roles, tuple(dict.fromkeys(request.by)), rep, arms)
    chunks: Chunks = itertools.chain([first], stream) if first is not None else iter(())
    return plan, selection, slicer, chunks, stream


def run(
    request: Request,
    on_chunk: Callable[[int], None] | None = None,
    on_rows: RowsHook | None = None,
    compare: bool = False,
) -> Evaluation:
    """Evaluate a request in one pass (see :func:`evaluate`) and finish it."""
    plan, partial, _, files = evaluate(request, on_chunk, on_rows, compare)
    return conclude(request, plan, partial, files)


def conclude(request: Request, plan: Plan, partial: Partial, files: tuple[str, ...]) -> Evaluation:
    """Save the states when asked (``--save-state``) and finish: the last step of every engine."""
    if request.save_state is not None:
        from lossctl.statefile import save

        save(request.save_state, plan, partial, files)
    sig = signature(request.chunk_size, request.nan, input_sizes(files), plan.plugins(), plan.replication)
    return finish(plan, partial, files, sig)
