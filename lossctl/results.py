"""Result objects returned by ``lossctl.evaluate`` (leaves: no I/O, no metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class MetricResult:
    """One row of the results table: a spec's value for one group (slice) and arm (compared model).

    ``value`` is ``None`` when undefined, with ``note`` saying why. ``group``
    is ``None`` for the overall result; ``arm`` is ``None`` outside a
    comparison. :attr:`key` identifies the row.
    """

    name: str
    spec: str
    kind: str
    params: Mapping[str, Any]
    value: float | None
    rows: int
    direction: str
    note: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    group: Mapping[str, Any] | None = None
    arm: str | None = None
    ci: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[str, tuple[tuple[str, Any], ...] | None, str | None]:
        """``(spec, group, arm)``: the row's place in the results table."""
        group = None if self.group is None else tuple(self.group.items())
        return self.spec, group, self.arm

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "spec": self.spec,
            "kind": self.kind,
            "params": dict(self.params),
            "value": self.value,
            "rows": self.rows,
            "direction": self.direction,
        }
        if self.note is not None:
            out["note"] = self.note
        if self.group is not None:
            out["group"] = dict(self.group)
        if self.arm is not None:
            out["arm"] = self.arm
        if self.ci is not None:
            out["ci"] = dict(self.ci)
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class RoleInfo:
    """Where one role's values came from."""

    role: str
    source: str
    columns: tuple[str, ...]
    picked: bool
    width: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "columns": list(self.columns),
            "picked": self.picked,
            "width": self.width,
        }


@dataclass(frozen=True)
class InputSummary:
    """What was read: files, columns per role, the inferred task, rows read and dropped."""

    files: tuple[str, ...]
    roles: Mapping[str, RoleInfo]
    task: str | None
    rows: int
    rows_dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "columns": {role: info.to_dict() for role, info in self.roles.items()},
            "task": self.task,
            "rows": self.rows,
            "rows_dropped": self.rows_dropped,
        }


@dataclass(frozen=True)
class Evaluation:
    """The result of one evaluation: input summary, results, warnings, signature."""

    input: InputSummary
    results: tuple[MetricResult, ...]
    version: str
    signature: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    checks: tuple[Mapping[str, Any], ...] = ()
    # The --by columns: results then hold every spec overall (group None) and per group.
    by: tuple[str, ...] = ()
    # A comparison's arms (baseline, candidate): results then hold each arm and the delta.
    arms: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(bool(c.get("passed")) for c in self.checks)

    def __getitem__(self, name: str) -> MetricResult:
        """The overall result of a spec, by the spec as written or the canonical name."""
        return self.lookup(name)

    def lookup(self, name: str, group: Mapping[str, Any] | None = None, arm: str | None = None) -> MetricResult:
        """The row of the results table for ``(spec or name, group, arm)``.

        In a comparison ``arm`` is ``baseline``, ``candidate`` or ``delta`` (the default).
        """
        if arm is None and self.arms:
            arm = "delta"
        wanted = None if group is None else tuple(group.items())
        for r in self.results:
            if (r.spec == name or r.name == name) and r.key[1:] == (wanted, arm):
                return r
        raise KeyError((name, group, arm))

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of SPEC section 5."""
        doc: dict[str, Any] = {
            "lossctl": self.version,
            "schema": 2,
            "input": self.input.to_dict(),
            "results": [self._result_dict(r) for r in self.results],
            "checks": [dict(c) for c in self.checks],
            "passed": self.passed,
            "signature": dict(self.signature),
            "warnings": list(self.warnings),
        }
        if self.arms:
            doc["compare"] = {"baseline": self.input.files[0], "candidate": self.input.files[-1]}
        return doc

    def _result_dict(self, r: MetricResult) -> dict[str, Any]:
        out = r.to_dict()
        if self.by and r.group is None:
            out["group"] = None
        return out

    @property
    def overall(self) -> tuple[MetricResult, ...]:
        """The results over all rows (one per spec), without the per-group ones."""
        return tuple(r for r in self.results if r.group is None)

    def to_pandas(self) -> pd.DataFrame:
        """One row per result: name, spec, kind, value, note, rows, params."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "name": r.name,
                    "spec": r.spec,
                    "kind": r.kind,
                    **({c: (None if r.group is None else r.group.get(c)) for c in self.by}),
                    **({"arm": r.arm} if self.arms else {}),
                    "value": r.value,
                    "note": r.note,
                    "rows": r.rows,
                    "params": dict(r.params),
                }
                for r in self.results
            ]
        )
