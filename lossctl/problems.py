"""What is wrong with a chunk, said with its file, column and global row.

Non-finite values (``--nan``), value problems met by a kernel, and the first
of them over a whole pass: the messages of the engines (local and Dask).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lossctl import pairing
from lossctl.batch import F64
from lossctl.chunks import GROUP
from lossctl.columns import Selection
from lossctl.errors import DataError, ValueProblem
from lossctl.partial import Partial

Chunks = Iterator[tuple[int, dict[str, F64]]]


def finite_mask(arrays: dict[str, F64]) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Rows holding NaN or infinity (``None`` when there are none), and per role."""
    bad_by_role: dict[str, np.ndarray] = {}
    # Callers run under np.errstate(all="ignore") (the lanes, run).
    for role, a in arrays.items():
        if role == GROUP:
            continue
        if np.isfinite(np.add.reduce(a.ravel(order="K"))):
            # A finite sum means no NaN and no infinity: one fast pass, no mask,
            # in memory order (a column-major matrix too; see chunks._role_array).
            # (A sum that overflows falls through to the exact check.)
            continue
        ok = np.isfinite(a)
        if a.ndim >= 2:
            ok = ok.reshape(len(a), -1).all(axis=1)
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
    rc = next(r for r in selection.roles() if r.role == role)
    return rc.table.label, rc.source


def located(
    problem: ValueProblem,
    selection: Selection,
    start: int,
    kept: np.ndarray | None = None,
    arm: str | None = None,
    per_row: int = 1,
) -> str:
    """The message of a value problem met in the chunk starting at ``start``, with its global row.

    A problem of a column names the table, the row and the column; one of a
    function (a plugin's, ``role`` None) the table, the chunk's first row and,
    when it is another, the row at fault. ``kept``: the rows ``--nan drop``
    left in the chunk (the problem's index counts those).
    """
    index = problem.index // per_row  # an element row of an input of more than two dimensions
    offset = index if kept is None else int(np.flatnonzero(kept)[index])
    # The candidate's predictions are their own role (a comparison).
    pred = pairing.PRED if arm == pairing.CANDIDATE else "y_pred"
    if problem.role is None:
        label = describe(selection, pred)[0]
        at = f" (in the chunk from row {start})" if offset else ""
        return f"{label} row {start + offset}{at}: {problem.message}"
    label, source = describe(selection, pred if problem.role == "y_pred" else problem.role)
    return f"{label} row {start + offset}: column '{source}': {problem.message}"


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
