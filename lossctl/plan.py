"""The Plan: everything decided before the rows are folded, and serialisable.

A plan holds the resolved specs (what ``acc`` resolved to included), the
columns of each role and their widths, the task, the NaN policy and the
checks. It is decided from the request and the first chunk; it is the
header of a state file and what ``merge`` compares. Each spec has an
accumulator (``lossctl.state``); specs whose accumulators share a key share
one state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator
from lossctl.batch import F64
from lossctl.checks import Bound, bind_checks, parse_checks, parse_regression
from lossctl.columns import Selection
from lossctl.errors import DataError, UsageProblem
from lossctl.plugin_entries import differences as plugin_differences
from lossctl.plugin_entries import records as plugin_records
from lossctl.plugin_entries import stand_ins as plugin_stand_ins
from lossctl.registry import Resolved, lookup, resolve_all, resolve_params
from lossctl.replicates import Replication
from lossctl.state import State

# What `eval` computes on regression input when no --loss/--metric is given
# (classification defaults depend on the shapes too: see `default_specs`).
REGRESSION_DEFAULTS = ("mean_squared_error", "mean_absolute_error", "root_mean_squared_error", "r2_score")


class Role:
    """Where one role's values come from: table label, columns, picked or named, width."""

    __slots__ = ("role", "source", "columns", "picked", "width")

    def __init__(self, role: str, source: str, columns: tuple[str, ...], picked: bool, width: int | None = None) -> None:
        self.role, self.source, self.columns, self.picked, self.width = role, source, columns, picked, width


class Plan:
    """Resolved specs with their accumulators, checks, roles, task and NaN policy.

    ``accumulators`` holds one accumulator per spec; ``by_key`` the first
    accumulator of each distinct key (the one that updates the shared state).
    """

    __slots__ = ("specs", "checks", "roles", "task", "nan", "by", "replication", "arms", "accumulators", "by_key")

    def __init__(
        self,
        specs: list[Resolved],
        checks: list[Bound] | None = None,
        roles: dict[str, Role] | None = None,
        task: str | None = None,
        nan: str = "error",
        by: tuple[str, ...] = (),
        replication: Replication | None = None,
        arms: tuple[str, ...] = (),
    ) -> None:
        self.specs = specs
        # A comparison's arms (baseline, candidate): every state once per arm.
        self.arms = tuple(arms)
        self.by = tuple(by)
        self.replication = replication
        self.checks = checks or []
        self.roles = roles or {}
        self.task = task
        self.nan = nan
        self.accumulators: list[Accumulator] = [r.entry.accumulator(r.params, r.kind) for r in specs]
        self.by_key: dict[str, Accumulator] = {}
        for acc in self.accumulators:
            self.by_key.setdefault(acc.key, acc)

    def plugins(self) -> list[dict[str, Any]]:
        """The plugins whose entries the specs use: name, content hash, what a state file needs of them."""
        return plugin_records(r.entry for r in self.specs)

    def state_key(self, arm: str | None, key: str) -> str:
        """The key of an accumulator's state in one arm (the key itself outside a comparison)."""
        return key if arm is None else f"{arm}:{key}"

    def state_keys(self) -> dict[str, Accumulator]:
        """Every state's key (per arm in a comparison) and its accumulator."""
        return {self.state_key(arm, key): acc for arm in (self.arms or (None,)) for key, acc in self.by_key.items()}

    def new_states(self, slots: int = 1) -> dict[str, State]:
        """One fresh state per distinct key (and arm)."""
        return {key: acc.new(slots) for key, acc in self.state_keys().items()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (a state file's header); :meth:`from_dict` reads it back."""
        return {
            "specs": [
                {
                    "spec": r.spec,
                    "kind": r.kind,
                    "name": r.name,
                    "params": {k: _json(v) for k, v in r.params.items()},
                    "resolved_from": r.resolved_from,
                    "state": acc.key,
                }
                for r, acc in zip(self.specs, self.accumulators, strict=True)
            ],
            "columns": {
                role.role: {"columns": list(role.columns), "width": role.width} for role in self.roles.values()
            },
            "task": self.task,
            "nan": self.nan,
            "by": list(self.by),
            "ci": None if self.replication is None else self.replication.to_dict(),
            "arms": list(self.arms),
            "plugins": self.plugins(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> Plan:
        """The plan a state file's header describes; a malformed one is a data error."""
        try:
            # A plugin's entries are rebuilt from the record: its code is never loaded here.
            recorded = plugin_stand_ins(doc.get("plugins") or [])
            specs = []
            for s in doc["specs"]:
                entry = recorded.get(s["name"]) or lookup(s["name"])
                params = resolve_params(entry, {k: _unjson(v) for k, v in s["params"].items()})
                specs.append(Resolved(s["spec"], s["kind"], entry, params, s.get("resolved_from")))
            roles = {
                name: Role(name, (sources or {}).get(name, ""), tuple(c["columns"]), False, c["width"])
                for name, c in doc["columns"].items()
            }
            ci = doc.get("ci")
            rep = None if ci is None else Replication(float(ci["level"]), int(ci["replicates"]), int(ci["seed"]))
            plan = cls(
                specs,
                roles=roles,
                task=doc["task"],
                nan=doc["nan"],
                by=tuple(doc.get("by", ())),
                replication=rep,
                arms=tuple(doc.get("arms", ())),
            )
        except UsageProblem:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise DataError(f"malformed plan ({type(exc).__name__}: {exc})") from None
        for s, acc in zip(doc["specs"], plan.accumulators, strict=True):
            if s.get("state") != acc.key:
                raise DataError(f"{s['spec']}: the state was written by another version of this metric")
        return plan

    def differences(self, other: Plan) -> list[str]:
        """What differs between two plans (empty when states of both can be merged)."""
        a, b = self.to_dict(), other.to_dict()
        out = []
        sa = [(s["name"], s["kind"], s["params"], s["resolved_from"]) for s in a["specs"]]
        sb = [(s["name"], s["kind"], s["params"], s["resolved_from"]) for s in b["specs"]]
        if sa != sb:
            out.append(f"specs {_specs_text(a)} vs {_specs_text(b)}")
        # Column names may differ between shards (an NPY shard has none): the
        # widths may not (3-class and 2-class probabilities never mix).
        wa = {role: c["width"] for role, c in a["columns"].items()}
        wb = {role: c["width"] for role, c in b["columns"].items()}
        if wa != wb:
            out.append(f"values per row {wa} vs {wb}")
        for key in ("task", "nan", "by", "ci", "arms"):
            if a.get(key) != b.get(key):
                out.append(f"{key} {a[key]} vs {b[key]}")
        return out + plugin_differences(a["plugins"], b["plugins"])


def _specs_text(doc: Mapping[str, Any]) -> str:
    parts = []
    for s in doc["specs"]:
        params = ":".join(f"{k}={v}" for k, v in s["params"].items())
        parts.append(f"{s['name']}:{params}" if params else s["name"])
    return "[" + ", ".join(parts) + "]"


def _json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _unjson(value: Any) -> Any:
    return tuple(_unjson(v) for v in value) if isinstance(value, list) else value


# --------------------------------------------------------------------------
# Deciding a plan


def requested(
    losses: Sequence[str], metrics: Sequence[str], checks: Sequence[str], regressions: Sequence[str] = ()
) -> tuple[list[Resolved], list[Bound]]:
    """The specs asked for (and those the checks and ``--max-regression`` add), before any data is read."""
    specs = resolve_all(tuple(losses), tuple(metrics))
    return bind_checks([*parse_checks(checks), *(parse_regression(t) for t in regressions)], specs)


def decide(
    specs: list[Resolved],
    checks: list[Bound],
    selection: Selection,
    nan: str,
    first: Mapping[str, F64] | None,
    by: tuple[str, ...] = (),
    replication: Replication | None = None,
    arms: tuple[str, ...] = (),
) -> Plan:
    """The plan for this input: defaults by task, convenience names resolved, shapes checked.

    ``first`` is the first chunk's role arrays (``None`` for an input with no rows).
    """
    from lossctl.elements import flatten
    from lossctl.task import infer_task

    widths: dict[str, int] = {}
    task = None
    if first is not None:
        # Inputs of more than two dimensions are their element rows (the last axis the class axis).
        try:
            e = flatten(first["y_true"], first["y_pred"], first.get("weight"))
        except DataError as exc:
            # Name the file and column the shape comes from (the first rows).
            weighted = selection.weight is not None and str(exc).startswith("the weight")
            role = selection.weight if weighted else selection.y_pred
            assert role is not None
            raise DataError(f"{role.table.label}: column '{role.source}': {exc}") from None
        y_true, y_pred = e.y_true, e.y_pred
        task = infer_task(y_true, y_pred)
        if not specs:
            specs = default_specs(task, y_true, y_pred)
        specs = [_resolve_convenience(r, y_true, y_pred) for r in specs]
        check_shapes(selection, y_true, y_pred, specs, e.weight)
        elements = {"y_true": y_true, "y_pred": y_pred, "weight": e.weight}
        widths = {k: (1 if v.ndim == 1 else int(v.shape[1])) for k, v in elements.items() if v is not None}
    elif not specs:
        specs = default_specs("regression")
    roles = {
        rc.role: Role(rc.role, rc.table.label, rc.columns, rc.picked, widths.get(rc.role)) for rc in selection.roles()
    }
    return Plan(specs, checks, roles, task, nan, by, replication, arms)


def _resolve_convenience(r: Resolved, y_true: F64, y_pred: F64) -> Resolved:
    """Replace a convenience name (``acc``) by the entry it stands for on this input."""
    if r.entry.resolve is None:
        return r
    entry, params = r.entry.resolve(y_true, y_pred, r.params)
    return Resolved(spec=r.spec, kind=r.kind, entry=entry, params=params, resolved_from=r.entry.name)


def check_shapes(
    selection: Selection | None, y_true: F64, y_pred: F64, specs: list[Resolved], weight: F64 | None = None
) -> None:
    """Shapes each spec needs, and per-element weights only for the entries that weigh elements.

    ``selection`` names the inputs in messages (``None``: ``lossctl.get``'s arrays).
    """
    wt = 1 if y_true.ndim == 1 else y_true.shape[1]
    wp = 1 if y_pred.ndim == 1 else y_pred.shape[1]
    if weight is not None and weight.ndim == 2:
        for r in specs:
            if not r.entry.element_weights:
                raise DataError(
                    f"the weight has {weight.shape[1]} values per row (a weight per element, as Keras's "
                    f"sample_weight of the labels' shape), but {r.name} gives one value per row (Keras "
                    "cannot broadcast such a weight either); give one weight per row"
                )
    if selection is None:
        true_label = true_source = "y_true"
        pred_label = pred_source = "y_pred"
    else:
        true_label, true_source = selection.y_true.table.label, selection.y_true.source
        pred_label, pred_source = selection.y_pred.table.label, selection.y_pred.source
    for r in specs:
        if r.entry.shapes == "same" and wt != wp:
            raise DataError(
                f"{pred_label}: y_pred has {wp} value(s) per row "
                f"({pred_source}) but y_true has {wt} ({true_source}); "
                f"{r.name} needs the same shape"
            )
        if (r.entry.shapes == "sparse" and wt != 1) or (r.entry.shapes == "labels" and wt not in (1, wp)):
            raise DataError(
                f"{true_label}: y_true has {wt} values per row ({true_source}) "
                f"but {r.name} needs one integer label per row (one-hot labels go with the categorical names)"
            )


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
