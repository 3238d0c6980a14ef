"""Which columns hold ``y_true``, ``y_pred`` and the weights (SPEC section 2).

Given the FILE arguments' table and the ``--true/--pred/--weight`` values,
decide for each role its table and columns: a name, a comma list, a glob
(ordered by the number in the name), a list column, or another file
(``PATH`` / ``PATH:COLUMN``). Without an option, pick from common names
and say so. Errors list the columns that exist and suggest the flag.

A column the user named that the file lacks is a data error (exit 3, SPEC
section 2: the data does not hold what the command says it holds); a
choice lossctl cannot make by itself (no common name, or two of them) is a
usage error (exit 2): naming the column fixes it.
"""

from __future__ import annotations

import fnmatch
import glob as _glob
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from lossctl.errors import DataError, UsageProblem
from lossctl.io import ColumnInfo, Table, data_extension, natural_key
from lossctl.params import did_you_mean

TRUE_NAMES = (
    "y_true", "ytrue", "true", "label", "labels", "target", "targets", "y", "truth",
    "ground_truth", "actual", "gt",
)
PRED_NAMES = (
    "y_pred", "ypred", "pred", "preds", "prediction", "predictions", "score", "scores",
    "prob", "probs", "proba", "probability", "probabilities", "y_hat", "yhat",
    "y_score", "y_prob", "y_proba", "output", "logit", "logits",
)
FLAGS = {"y_true": "--true", "y_pred": "--pred", "weight": "--weight"}
_AUTO = {"y_true": TRUE_NAMES, "y_pred": PRED_NAMES}


@dataclass(frozen=True)
class RoleColumns:
    """The columns of one role: which table, which columns, and how they were chosen."""

    role: str
    table: Table
    columns: tuple[str, ...]
    picked: bool = False

    @property
    def source(self) -> str:
        """How the output names it: ``label``, ``p0,p1,p2`` or ``labels.npy:col``."""
        cols = ",".join(self.columns) if len(self.columns) <= 4 else f"{self.columns[0]}..{self.columns[-1]} ({len(self.columns)})"
        return cols


@dataclass(frozen=True)
class Selection:
    """The resolved roles; ``weight`` is ``None`` without ``--weight``."""

    y_true: RoleColumns
    y_pred: RoleColumns
    weight: RoleColumns | None

    def roles(self) -> list[RoleColumns]:
        return [r for r in (self.y_true, self.y_pred, self.weight) if r is not None]


def _columns_list(table: Table) -> str:
    names = table.names
    shown = ", ".join(names[:30]) + (f", … ({len(names)} in all)" if len(names) > 30 else "")
    return shown or "(none)"


def _looks_like_path(value: str) -> bool:
    return data_extension(value) is not None or os.sep in value or _glob.has_magic(value) and "/" in value


def _match_in(table: Table, value: str, role: str) -> tuple[str, ...] | None:
    """Columns of ``table`` named by ``value`` (name, comma list, glob), or None if it names none."""
    names = table.names
    if value in names:
        return (value,)
    if "," in value:
        out: list[str] = []
        for part in value.split(","):
            part = part.strip()
            found = _match_in(table, part, role) if part else None
            if not found:
                raise DataError(
                    f"{table.label}: no column '{part}' (in {FLAGS[role]} {value}); "
                    f"columns are {_columns_list(table)}"
                )
            out += found
        return tuple(out)
    if _glob.has_magic(value):
        hits = sorted((n for n in names if fnmatch.fnmatchcase(n, value)), key=natural_key)
        return tuple(hits) if hits else None
    folded = [n for n in names if n.lower() == value.lower()]
    if len(folded) > 1:
        raise UsageProblem(
            f"{table.label}: columns {' and '.join(repr(n) for n in folded)} differ only in case; "
            f"name one exactly with {FLAGS[role]}"
        )
    if len(folded) == 1:
        return (folded[0],)
    return None


def _split_source(value: str) -> tuple[str, str | None] | None:
    """``PATH`` or ``PATH:COLUMN`` when ``value`` names a data file, else None."""
    if os.path.exists(value) or data_extension(value):
        return value, None
    path, sep, column = value.rpartition(":")
    if sep and path and (os.path.exists(path) or data_extension(path)):
        return path, column
    return None


def _default_column(table: Table, role: str, value: str) -> tuple[str, ...]:
    if len(table.columns) == 1:
        return (table.columns[0].name,)
    preferred = {"y_true": ("y_true",), "y_pred": ("y_pred",), "weight": ("weight", "sample_weight")}[role]
    for name in preferred:
        if name in table.names:
            return (name,)
    cols = _auto_pick(table, role)
    if cols:
        return cols
    # An NPZ names its arrays: one without the role's default array lacks it (exit 3).
    error = DataError if data_extension(value) == "npz" else UsageProblem
    raise error(
        f"{table.label}: cannot tell which column is {role}; columns are "
        f"{_columns_list(table)} (try {FLAGS[role]} {value}:COLUMN)"
    )


def _family(names: list[str], prefixes: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    families: dict[str, list[str]] = {}
    for prefix in prefixes:
        pattern = re.compile(rf"^{re.escape(prefix)}[_\-.]?(\d+)$", re.IGNORECASE)
        hits = [n for n in names if pattern.match(n)]
        if len(hits) >= 2:
            families[prefix] = sorted(hits, key=natural_key)
    return {k: tuple(v) for k, v in families.items()}


def _auto_pick(table: Table, role: str) -> tuple[str, ...] | None:
    candidates = _AUTO.get(role, ())
    exact = list(dict.fromkeys(n for c in candidates for n in table.names if n.lower() == c))
    if len(exact) > 1:
        raise UsageProblem(
            f"{table.label}: both {' and '.join(repr(e) for e in exact)} could be {role}; "
            f"name one with {FLAGS[role]} (columns are {_columns_list(table)})"
        )
    if exact:
        return (exact[0],)
    families = _family(table.names, candidates)
    if len(families) > 1:
        raise UsageProblem(
            f"{table.label}: column groups {', '.join(f'{k}_*' for k in families)} could all be {role}; "
            f"name one with {FLAGS[role]}"
        )
    if families:
        return next(iter(families.values()))
    return None


# Name words of a column that identifies rows rather than measuring them.
_ID_WORDS = frozenset({"id", "ids", "idx", "index", "key", "uuid", "guid", "pk", "row", "rowid", "rownum", "row_number"})


def id_like(name: str) -> bool:
    """A row id or key by its name: ``id``, ``customer_id``, ``userId``, ``row``, ``index``, ``Unnamed: 0``."""
    words = re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    return not words or name.lower().startswith("unnamed") or any(w in _ID_WORDS for w in words)


def _suggestion(table: Table, role: str) -> str | None:
    """A column worth trying for ``role``: never an id or a key, nor a column of the other roles.

    Numeric columns whose name contains a word of the role's common names
    (``yhat_model`` for y_pred) come first; for y_pred, decimals before
    integers (an integer column is more often a key or a label).
    """
    others = set(TRUE_NAMES) if role == "y_pred" else set(PRED_NAMES)
    others |= {"weight", "weights", "sample_weight"}
    candidates = [
        c for c in table.columns
        if c.kind in ("number", "list") and c.name.lower() not in others and not id_like(c.name)
    ]
    if not candidates:
        return None
    words = [w for w in _AUTO.get(role, ()) if len(w) > 2]

    def rank(c: ColumnInfo) -> tuple[bool, bool]:
        named = any(w in c.name.lower() for w in words)
        integer = role == "y_pred" and c.dtype.startswith(("int", "uint"))
        return (not named, integer)

    return min(candidates, key=rank).name


def _hint(table: Table, role: str, value: str) -> str:
    """"did you mean" for a near miss, else a column to try with the flag."""
    close = did_you_mean(value, table.names)
    if close:
        return close
    column = _suggestion(table, role)
    return f" (try {FLAGS[role]} {column})" if column else ""


def resolve_role(
    role: str,
    value: str | None,
    table: Table | None,
    open_source: Callable[[str], Table],
) -> RoleColumns | None:
    """Resolve one role's columns; ``None`` only for an absent ``--weight``."""
    if value is not None and table is not None:
        found = _match_in(table, value, role)
        if found:
            return RoleColumns(role, table, found)
    if value is not None:
        split = _split_source(value) if (table is None or _looks_like_path(value) or _split_source(value)) else None
        if split is not None:
            path, column = split
            source = open_source(path)
            if column is None:
                return RoleColumns(role, source, _default_column(source, role, value))
            found = _match_in(source, column, role)
            if not found:
                raise DataError(
                    f"{source.label}: no column '{column}'; columns are {_columns_list(source)}"
                    + did_you_mean(column, source.names)
                )
            return RoleColumns(role, source, found)
        if table is None:
            raise UsageProblem(
                f"{FLAGS[role]} {value}: no FILE was given and '{value}' is not a data file"
            )
        raise DataError(
            f"{table.label}: no column '{value}'; columns are {_columns_list(table)}"
            + _hint(table, role, value)
        )
    if role == "weight":
        return None
    if table is None:
        raise UsageProblem("no input: give a FILE, or name files with --true and --pred")
    picked = _auto_pick(table, role)
    if picked is None:
        raise UsageProblem(
            f"{table.label}: no {role} column among common names; columns are "
            f"{_columns_list(table)}" + (_hint(table, role, "") or f" (name it with {FLAGS[role]} COL)")
        )
    return RoleColumns(role, table, picked, picked=True)


def select(
    table: Table | None,
    true: str | None,
    pred: str | None,
    weight: str | None,
    open_source: Callable[[str], Table],
) -> Selection:
    """Resolve all roles; a table opened as a source is shared between roles."""
    cache: dict[str, Table] = {}

    def cached(path: str) -> Table:
        if path not in cache:
            cache[path] = open_source(path)
        return cache[path]

    y_true = resolve_role("y_true", true, table, cached)
    y_pred = resolve_role("y_pred", pred, table, cached)
    w = resolve_role("weight", weight, table, cached)
    assert y_true is not None and y_pred is not None
    if set(y_true.columns) & set(y_pred.columns) and y_true.table is y_pred.table:
        raise UsageProblem(
            f"{y_true.table.label}: the same column serves as y_true and y_pred "
            f"({', '.join(sorted(set(y_true.columns) & set(y_pred.columns)))}); name them with --true and --pred"
        )
    return Selection(y_true, y_pred, w)
