"""Quality-gate checks (SPEC section 6): ``--check "NAME OP NUMBER"``.

Small pure functions, in the way coverage.py's ``should_fail_under`` is:
:func:`parse_check` validates the expression (and its threshold) before any
data is read, :func:`bind_checks` ties each check to one requested spec (or
adds the name as a metric when nobody asked for it), and :func:`judge`
compares the *unrounded* values. Rounding is for display only. A check
against an undefined value (``None``: no rows, a zero denominator) fails.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lossctl.errors import UsageProblem
from lossctl.groups import group_text
from lossctl.params import RawSpec, normalize_name, parse_spec
from lossctl.registry import Resolved, resolve

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
# Two-character operators first, so that "<=" is not read as "<" and "=...".
# NAME may carry parameters (huber:delta=2), so a single "=" is part of it.
_NAME = r"[^<>!=\s]+(?:=[^<>!=\s]+)*"
_EXPR = re.compile(rf"^\s*(?P<name>{_NAME})\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<number>[^<>!=\s]+)\s*$")
# compare's targets: delta(NAME), baseline(NAME), candidate(NAME), optionally .low/.high.
_ARM = re.compile(r"^(?P<arm>delta|baseline|candidate)\((?P<name>.+)\)(?P<bound>\.(?:low|high))?$", re.IGNORECASE)
SYNTAX = "expected NAME OP NUMBER with OP one of < <= > >= == != (e.g. 'mse < 0.25')"


@dataclass(frozen=True)
class Check:
    """One parsed check: ``mse < 0.25`` is name ``mse``, op ``<``, threshold ``0.25``.

    ``scope`` is ``None`` for the overall value, ``"*"`` for every ``--by``
    group (``auc[*] >= 0.85``), or the group's ``COL=VALUE`` pairs
    (``auc[region=eu]``).
    """

    expr: str
    name: str
    op: str
    threshold: float
    scope: str | None = None
    bound: str | None = None  # "low" or "high": an interval bound (--ci)
    arm: str | None = None  # compare: "delta", "baseline" or "candidate"
    relative: bool = False  # --max-regression NAME=AMOUNT%

    def read(self, result: Any) -> tuple[float | None, str | None]:
        """The number this check reads from a result: its value or an interval bound, and a note."""
        if self.bound is None:
            return result.value, result.note
        ci = result.ci or {}
        return ci.get(self.bound), ci.get("note") or result.note

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` satisfies the check; an undefined value never does."""
        if value is None or not math.isfinite(value):
            return False
        return OPERATORS[self.op](value, self.threshold)


@dataclass(frozen=True)
class Bound:
    """A check tied to the index of the spec (and so of the result) it reads."""

    check: Check
    index: int
    added: bool


def parse_check(text: str) -> Check:
    """Parse ``NAME OP NUMBER``; a malformed expression is a usage error (exit 2).

    Example:
        >>> parse_check("acc >= 0.9")
        Check(expr='acc >= 0.9', name='acc', op='>=', threshold=0.9)
    """
    expr = " ".join(text.split())
    m = _EXPR.match(expr)
    if m is None:
        hint = "; use == for equality" if re.search(r"\s=\s|^[^:]*[^<>!=:]=(?![=<>])", expr) else ""
        raise UsageProblem(f"--check '{expr}': {SYNTAX}{hint}")
    name, op, number = m.group("name"), m.group("op"), m.group("number")
    try:
        threshold = float(number)
    except ValueError:
        raise UsageProblem(f"--check '{expr}': '{number}' is not a number; {SYNTAX}") from None
    if not math.isfinite(threshold):
        raise UsageProblem(f"--check '{expr}': the threshold must be a finite number, not '{number}'")
    written = name
    arm = None
    armed = _ARM.match(name)
    if armed is not None:
        arm = armed.group("arm").lower()
        name = armed.group("name") + (armed.group("bound") or "")
    bound = None
    tail = re.match(r"^(?P<name>.+)\.(?P<bound>low|high)$", name, re.IGNORECASE)
    if tail is not None:
        name, bound = tail.group("name"), tail.group("bound").lower()
    scope = None
    scoped = re.match(r"^(?P<name>[^\[\]]+)\[(?P<scope>[^\[\]]*)\]$", name)
    if scoped is not None:
        scope = scoped.group("scope").strip()
        if scope != "*" and not all("=" in part for part in scope.split(",")):
            raise UsageProblem(f"--check '{expr}': write a group as NAME[COL=VALUE] (or NAME[*] for every group)")
        name = scoped.group("name")
    elif "[" in name or "]" in name:
        raise UsageProblem(f"--check '{expr}': write a group as NAME[COL=VALUE] (or NAME[*] for every group)")
    return Check(
        expr=f"{written} {op} {number}", name=name, op=op, threshold=threshold, scope=scope, bound=bound, arm=arm
    )


def parse_regression(text: str) -> Check:
    """``--max-regression NAME=AMOUNT`` (or ``AMOUNT%``): the candidate may be worse by at most AMOUNT."""
    name, sep, amount = text.strip().rpartition("=")
    relative = amount.strip().endswith("%")
    number = amount.strip().rstrip("%").strip()
    try:
        threshold = float(number)
    except ValueError:
        threshold = math.nan
    if not sep or not name.strip() or not math.isfinite(threshold) or threshold < 0:
        raise UsageProblem(
            f"--max-regression '{text}': expected NAME=AMOUNT or NAME=AMOUNT% with AMOUNT a non-negative number "
            "(e.g. 'auc=0.005' or 'mse=2%')"
        )
    return Check(
        expr=f"max-regression {name.strip()}={amount.strip()}",
        name=name.strip(),
        op="regression",
        threshold=threshold,
        arm="delta",
        relative=relative,
    )


def parse_checks(texts: Iterable[str]) -> list[Check]:
    """Parse every ``--check`` value, in order."""
    return [parse_check(t) for t in texts]


def _same_text(a: RawSpec, b: RawSpec) -> bool:
    def key(raw: RawSpec) -> tuple[str, tuple[tuple[str, str], ...]]:
        return normalize_name(raw.name), tuple((normalize_name(k), v.strip().lower()) for k, v in raw.params)

    return key(a) == key(b)


def _target(check: Check) -> tuple[RawSpec, Resolved]:
    try:
        raw = parse_spec(check.name)
        return raw, resolve(raw, "metric")
    except UsageProblem as exc:
        raise UsageProblem(f"--check '{check.expr}': {exc}") from None


def bind_checks(checks: Sequence[Check], specs: Sequence[Resolved]) -> tuple[list[Resolved], list[Bound]]:
    """Tie every check to a requested spec; add the names nobody requested as metrics.

    A check's NAME matches a requested spec written the same way, or one
    for the same registry entry (an alias: ``acc`` matches ``accuracy``,
    ``mse`` matches ``mean_squared_error``) with the same parameters. A bare
    name (no parameters) matches the one requested spec of its entry; among
    several it takes the one with default parameters, and is a usage error
    when none has them.

    Returns:
        The specs to evaluate (the requested ones, then the added ones) and
        one :class:`Bound` per check, in order.
    """
    out = list(specs)
    bound: list[Bound] = []
    requested = len(out)
    for check in checks:
        raw, target = _target(check)
        index = next((i for i, r in enumerate(out) if _same_text(parse_spec(r.spec), raw)), None)
        if index is None:
            same = [i for i, r in enumerate(out) if r.entry is target.entry]
            if raw.params:
                same = [i for i in same if dict(out[i].params) == dict(target.params)]
            else:
                defaults = [i for i in same if dict(out[i].params) == dict(target.params)]
                if len(same) > 1 and not defaults:
                    choices = " or ".join(f"'{out[i].spec}'" for i in same)
                    raise UsageProblem(
                        f"--check '{check.expr}': '{check.name}' could mean {choices}; write the spec as requested"
                    )
                same = defaults or same
            index = same[0] if same else None
        if index is None:
            out.append(Resolved(spec=raw.text, kind="metric", entry=target.entry, params=target.params))
            index = len(out) - 1
        bound.append(Bound(check, index, added=index >= requested))
    return out, bound


def outcome(check: Check, value: float | None, note: str | None = None) -> dict[str, Any]:
    """The JSON form of one check's result: expression, value, pass/fail and why."""
    passed = check.holds(value)
    label = check.name if check.bound is None else f"{check.name}.{check.bound}"
    out: dict[str, Any] = {
        "expr": check.expr,
        "name": check.name,
        "op": check.op,
        "threshold": check.threshold,
        "value": value,
        "passed": passed,
    }
    if value is None:
        out["note"] = f"{label} has no value ({note or 'undefined'}); an undefined value fails every check"
    elif not passed:
        out["note"] = f"{label} = {value!r} does not satisfy {check.op} {check.threshold!r}"
    return out


def _matches(scope: str, group: Mapping[str, Any]) -> bool:
    """Whether ``COL=VALUE[,COL=VALUE]`` names this group (values compared as text; ``null`` is null)."""
    wanted = dict(part.split("=", 1) for part in scope.split(","))
    wanted = {k.strip(): v.strip() for k, v in wanted.items()}
    if set(wanted) != set(group):
        return False
    return all(("null" if group[k] is None else str(group[k])) == v for k, v in wanted.items())


def _judge_groups(check: Check, rows: list[Any]) -> dict[str, Any]:
    """A group check: ``[*]`` holds when every group holds, ``[COL=VALUE]`` when that group does."""
    scope = check.scope
    assert scope is not None
    if scope != "*":
        rows = [g for g in rows if _matches(scope, g.group)]
    failing = [g for g in rows if not check.holds(check.read(g)[0])]
    doc: dict[str, Any] = {
        "expr": check.expr,
        "name": check.name,
        "op": check.op,
        "threshold": check.threshold,
        "passed": bool(rows) and not failing,
        "groups": len(rows),
    }
    if scope != "*" and len(rows) == 1:
        doc["value"] = check.read(rows[0])[0]
    if not rows:
        what = "no groups" if scope == "*" else f"no group {scope} in the data"
        doc["note"] = f"{check.name}[{scope}] has no value ({what}); it fails"
    elif failing:
        shown = "; ".join(f"[{group_text(g.group)}] = {check.read(g)[0]!r}" for g in failing[:10])
        more = f" and {len(failing) - 10} more" if len(failing) > 10 else ""
        doc["failing"] = [dict(g.group) for g in failing]
        doc["note"] = (
            f"{len(failing)} of {len(rows)} group(s) fail {check.op} {check.threshold!r} "
            f"(undefined values fail): {shown}{more}"
        )
    return doc


def _regression(check: Check, delta: Any) -> dict[str, Any]:
    """``--max-regression``: the candidate worse than the baseline by at most the amount (undefined fails)."""
    baseline = delta.extra.get("baseline") if delta.extra else None
    allowed = check.threshold * abs(baseline) / 100.0 if check.relative and baseline is not None else check.threshold
    worse = None if delta.value is None else (-delta.value if delta.direction == "max" else delta.value)
    passed = worse is not None and (not check.relative or baseline is not None) and worse <= allowed
    doc: dict[str, Any] = {
        "expr": check.expr,
        "name": check.name,
        "op": "max-regression",
        "threshold": check.threshold,
        "relative": check.relative,
        "allowed": allowed,
        "value": delta.value,
        "passed": passed,
    }
    if worse is None:
        doc["note"] = f"delta({check.name}) has no value ({delta.note or 'undefined'}); it fails"
    elif not passed:
        doc["note"] = (
            f"the candidate is worse by {worse!r} (delta {delta.value!r}), more than the {allowed!r} allowed"
        )
    return doc


def judge(
    bound: Sequence[Bound],
    results: Sequence[Any],
    grouped: Mapping[int, Sequence[Any]] | None = None,
    arms: Mapping[str, tuple[Sequence[Any], Mapping[int, Sequence[Any]] | None]] | None = None,
) -> tuple[Mapping[str, Any], ...]:
    """Evaluate bound checks against results (``MetricResult``-like: value, note, name, spec, group).

    ``results`` are the overall results, one per spec; ``grouped`` the
    results of every ``--by`` group by spec index. In a comparison ``arms``
    holds both per arm (``baseline``, ``candidate``, ``delta``), read by the
    checks that name one; the others read ``results`` (the candidate's).
    """
    out = []
    for b in bound:
        if b.check.arm is not None:
            if arms is None:
                raise UsageProblem(
                    f"--check '{b.check.expr}': {b.check.arm}(...) compares a baseline with a candidate; "
                    "use it with 'lossctl compare'"
                )
        rows, per_group = (results, grouped) if b.check.arm is None or arms is None else arms[b.check.arm]
        r = rows[b.index]
        scope = b.check.scope
        if b.check.op == "regression":
            doc = _regression(b.check, r)
        elif scope is None:
            doc = outcome(b.check, *b.check.read(r))
        else:
            if per_group is None:
                raise UsageProblem(f"--check '{b.check.expr}': a group check needs --by")
            doc = _judge_groups(b.check, list(per_group.get(b.index, ())))
        doc["metric"] = r.name
        doc["spec"] = r.spec
        doc["added"] = b.added
        if scope is not None:
            doc["scope"] = scope
        if b.check.bound is not None:
            doc["bound"] = b.check.bound
        if b.check.arm is not None:
            doc["arm"] = b.check.arm
        out.append(doc)
    return tuple(out)
