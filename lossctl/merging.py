"""``lossctl merge``: state files of shards → the evaluation one pass over all rows gives.

Every state file is read and checked (``lossctl.statefile``), the plans must
agree (a usage error says what differs), no rows may be given twice (a data
error: a silent double count would be a wrong number), and the partials are
merged in the order given; the result does not depend on that order (1e-9).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from lossctl.checks import bind_checks, parse_checks
from lossctl.errors import DataError, UsageProblem
from lossctl.finish import finish, signature
from lossctl.partial import merge
from lossctl.plugin_entries import PluginDef
from lossctl.registry import plugins_registered
from lossctl.results import Evaluation
from lossctl.statefile import Loaded, load


def _same_path(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_distinct(loaded: Sequence[Loaded]) -> None:
    """Refuse the same state file, or the same input data, given twice."""
    seen: dict[tuple[int, str], str] = {}
    for i, item in enumerate(loaded):
        for earlier in loaded[:i]:
            if _same_path(item.path, earlier.path):
                raise DataError(f"{item.path}: given twice (the same rows would count twice)")
        for f in item.inputs:
            if f.get("sha256") is None:
                continue
            key = (f["size"], f["sha256"])
            if key in seen:
                raise DataError(
                    f"{item.path}: holds rows of {f['path']}, which {seen[key]} holds too "
                    "(the same rows would count twice)"
                )
        for f in item.inputs:
            if f.get("sha256") is not None:
                seen[(f["size"], f["sha256"])] = item.path


def _request_differences(a: Loaded, b: Loaded) -> list[str]:
    """What differs between the specs as asked (and the NaN policy) of two states."""
    out = []
    asked_a = [(r.spec, r.kind) for r in a.plan.specs]
    asked_b = [(r.spec, r.kind) for r in b.plan.specs]
    if asked_a != asked_b:
        out.append(f"specs {[s for s, _ in asked_a]} vs {[s for s, _ in asked_b]}")
    if a.plan.nan != b.plan.nan:
        out.append(f"nan {a.plan.nan} vs {b.plan.nan}")
    return out


def _check_row_ranges(loaded: Sequence[Loaded]) -> None:
    """With --ci, shards must hold different global rows: shared row numbers share bootstrap weights."""
    spans = sorted((item.partial.first_row, item.partial.first_row + item.partial.rows, item.path) for item in loaded)
    for (a0, a1, a), (b0, b1, b) in zip(spans, spans[1:]):
        if b0 < a1:
            raise DataError(
                f"{b}: its rows {b0}..{b1 - 1} overlap rows {a0}..{a1 - 1} of {a}; with --ci each shard "
                "must be evaluated with --first-row (the number of rows before it), so that every row "
                "has its own bootstrap weights"
            )


def merge_files(paths: Sequence[str], checks: Sequence[str] = ()) -> Evaluation:
    """The evaluation of the merged states; see :func:`lossctl.api.merge`."""
    if not paths:
        raise UsageProblem("merge needs at least one state file (written by eval --save-state FILE)")
    parsed = parse_checks(checks)
    loaded = [load(p) for p in paths]
    _check_distinct(loaded)
    # A shard with no rows decided nothing from data (task, widths, what acc
    # stands for): it must have asked for the same specs, and adds nothing.
    full = [item for item in loaded if item.partial.rows > 0] or loaded[:1]
    first = full[0]
    for item in loaded:
        if item is first:
            continue
        if item.partial.rows == 0:
            differences = _request_differences(first, item)
        else:
            differences = first.plan.differences(item.plan)
        if differences:
            raise UsageProblem(
                f"{item.path}: cannot merge with {first.path}: the plans differ: " + "; ".join(differences)
            )
    every, loaded = loaded, full
    plan = first.plan
    # Checks may name the plugins' entries: the stand-ins rebuilt from the header answer to them.
    recorded = list({id(r.entry): r.entry for r in plan.specs if isinstance(r.entry, PluginDef)}.values())
    with plugins_registered(recorded, "state file", shadow=True):
        specs, bound = bind_checks(parsed, plan.specs)
    if len(specs) > len(plan.specs):
        missing = ", ".join(r.spec for r in specs[len(plan.specs) :])
        raise UsageProblem(f"--check: {missing} was not evaluated in these states; evaluated: "
                           + ", ".join(r.spec for r in plan.specs))
    plan.checks = bound
    if plan.replication is not None:
        _check_row_ranges(loaded)
    for name, role in plan.roles.items():
        sources = dict.fromkeys(item.plan.roles[name].source for item in loaded)
        role.source = ", ".join(s for s in sources if s)
    partial = first.partial
    for item in loaded[1:]:
        partial = merge(partial, item.partial)
    files = tuple(f["path"] for item in every for f in item.inputs)
    sizes = {f["path"]: f["size"] for item in every for f in item.inputs}
    return finish(plan, partial, files, signature(None, plan.nan, sizes, plan.plugins(), plan.replication))
