"""The metric registry: one entry is the only place a loss or metric is defined.

An entry (:class:`MetricDef`) carries everything that ``eval``, ``list``,
``explain``, the generated docs and the registry-wide tests need. Families
of metrics live in ``lossctl/metrics/``; each registers its entries with
:func:`register`, most of them as a decorated per-row kernel.
"""

from __future__ import annotations

import importlib
import operator
import pkgutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from lossctl.accumulate import REDUCTIONS, Accumulator, Bound, Mean, Transformed
from lossctl.errors import UsageProblem
from lossctl.params import (
    Param,
    RawSpec,
    did_you_mean,
    normalize_name,
    parse_spec,
    split_specs,
)

Kernel = Callable[..., Any]

Kind = Literal["loss", "metric"]
Direction = Literal["min", "max"]

REDUCTION = Param(
    "reduction",
    "mean",
    str,
    "mean: divide by the sum of weights (Keras metric); sum_over_batch_size: "
    "by the row count (Keras loss); sum: no division",
    choices=REDUCTIONS,
)


@dataclass(frozen=True)
class Example:
    """A tiny hand-checked example: inputs and the value they must give."""

    y_true: list[Any]
    y_pred: list[Any]
    value: float
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricDef:
    """Everything about one loss or metric.

    Attributes:
        name: canonical name (Keras 3's snake case, else scikit-learn's).
        aliases: other accepted names (normalized on lookup).
        kind: ``loss`` (a Keras loss, also usable as a metric) or ``metric``.
        task: which inputs it is for: ``regression``, ``binary``,
            ``multiclass`` or ``multilabel``; several joined by ``|``
            (``binary|multilabel``), the first being the typical one.
        params: parameters with Keras's names and defaults.
        direction: ``min`` when lower is better, ``max`` otherwise.
        formula: the per-row or whole-table formula in plain arithmetic.
        summary: one line for ``list``.
        inputs: the input contract (shapes and ranges).
        keras: the Keras equivalent, or ``None``.
        sklearn: the scikit-learn equivalent, or ``None``.
        kernel: per-row function ``(batch, **params) -> (N,)`` for mean-type
            entries; ``None`` when ``state`` is given.
        state: factory ``(params) -> Accumulator`` for whole-table metrics;
            ``None`` means the weighted mean of ``kernel`` (:class:`Mean`).
        memory: ``constant`` or a statement of the per-row memory cost.
        legacy: Keras 2 names kept for old code, mapped to this entry.
        deviations: where lossctl deliberately differs from Keras.
        example: a hand-checked example; its ``params`` also serve the
            registry-wide tests when a parameter has no usable default.
        validate: optional value checks ``(batch, **params) -> None`` run per
            chunk before the kernel; they raise ``ValueProblem``.
        shapes: ``same`` when ``y_true`` and ``y_pred`` must have the same
            width, ``sparse`` for integer labels against a probability
            matrix, ``labels`` for those or label matrices of the same
            width (read cell by cell), ``any`` when the entry checks the
            shapes itself.
        metric_negates: the value requested with ``--metric`` is the negative
            of the loss (Keras's cosine similarity: negative as a loss,
            positive as a metric); the direction flips with it.
        weighted_sum: the value is a sum of weights (a TP count), not a
            weighted mean, so it scales with the weights.
        warn: optional ``(batch, **params) -> str | None``: something that
            looks suspicious without being an error (zero targets under
            MAPE); the first message per spec is reported as a warning.
        resolve: for convenience names (``accuracy``): ``(y_true, y_pred,
            params) -> (entry, params)`` picks the real entry from the first
            chunk's shapes and values, as Keras's ``compile`` does.
        element_weights: accepts a weight per cell of an ``(N, C)`` input
            (Keras's per-element ``sample_weight``) and weighs each cell as
            Keras does; for other entries such a weight is a data error.
    """

    name: str
    kind: Kind
    task: str
    direction: Direction
    formula: str
    summary: str
    inputs: str
    aliases: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    keras: str | None = None
    sklearn: str | None = None
    kernel: Kernel | None = None
    state: Callable[[Mapping[str, Any]], Accumulator] | None = None
    memory: str = "constant"
    legacy: tuple[str, ...] = ()
    deviations: str = ""
    example: Example | None = None
    validate: Callable[..., None] | None = None
    shapes: Literal["same", "sparse", "labels", "any"] = "same"
    metric_negates: bool = False
    weighted_sum: bool = False
    warn: Callable[..., str | None] | None = None
    resolve: Callable[..., tuple[MetricDef, dict[str, Any]]] | None = None
    element_weights: bool = False

    @property
    def all_params(self) -> tuple[Param, ...]:
        """Declared parameters, plus ``reduction`` for losses."""
        if self.kind == "loss":
            return (*self.params, REDUCTION)
        return self.params

    @property
    def names(self) -> tuple[str, ...]:
        """Canonical name, aliases and legacy names."""
        return (self.name, *self.aliases, *self.legacy)

    def defaults(self) -> dict[str, Any]:
        """Parameter defaults, ``reduction`` included for losses."""
        return {p.name: p.default for p in self.all_params}

    def accumulator(self, params: Mapping[str, Any], kind: Kind | None = None) -> Accumulator:
        """The behaviour for these resolved parameters, requested as ``kind``."""
        if self.state is not None:
            acc = self.state(params)
            if kind == "metric" and hasattr(acc, "as_metric"):
                # Keras computes some entries differently as a metric than as a loss.
                acc = acc.as_metric()
        else:
            assert self.kernel is not None, f"{self.name} has neither kernel nor state"
            kernel_params = {k: v for k, v in params.items() if k != "reduction"}
            acc = Mean(self.kernel, kernel_params, params.get("reduction", "mean"))
        if self.metric_negates and kind == "metric":
            return Transformed(acc, operator.neg)
        return acc

    def make_state(self, params: Mapping[str, Any], kind: Kind | None = None) -> Bound:
        """A fresh state bound to its accumulator: ``update``, ``merge``, ``result``."""
        return Bound(self.accumulator(params, kind))

    def direction_for(self, kind: Kind | None) -> Direction:
        """``min``/``max`` for the value as requested (see ``metric_negates``)."""
        if self.metric_negates and kind == "metric":
            return "max" if self.direction == "min" else "min"
        return self.direction


_ENTRIES: dict[str, MetricDef] = {}
_BY_NAME: dict[str, MetricDef] = {}
_loaded = False
# Plugins' entries: layers over the built-ins, newest last (see register_plugin).
_LAYERS: list[dict[str, MetricDef]] = []


def register(entry: MetricDef) -> MetricDef:
    """Add an entry; every name and alias must be new (after normalization)."""
    if entry.kernel is None and entry.state is None:
        raise TypeError(f"{entry.name}: give a kernel or a state factory")
    for name in entry.names:
        key = normalize_name(name)
        if key in _BY_NAME:
            raise ValueError(f"name '{name}' of {entry.name} is taken by {_BY_NAME[key].name}")
        _BY_NAME[key] = entry
    _ENTRIES[entry.name] = entry
    return entry


def kernel(**fields: Any) -> Callable[[Kernel], Kernel]:
    """Register a per-row kernel as a mean-type entry; returns the kernel unchanged.

    Example::

        @kernel(name="mean_squared_error", aliases=("mse",), kind="loss", ...)
        def mean_squared_error(b: Batch) -> F64:
            return row_mean(b.sq_diff)
    """

    def decorate(fn: Kernel) -> Kernel:
        register(MetricDef(kernel=fn, **fields))
        return fn

    return decorate


def _load() -> None:
    """Import every family module in ``lossctl/metrics/`` (each registers its entries)."""
    global _loaded
    if not _loaded:
        _loaded = True
        import lossctl.metrics as families

        for info in sorted(pkgutil.iter_modules(families.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{families.__name__}.{info.name}")


def register_plugin(new: Sequence[MetricDef], label: str = "plugin", *, shadow: bool = False) -> dict[str, MetricDef]:
    """Add plugin entries as one layer over the built-ins; :func:`unregister` takes the layer away.

    A name of a built-in entry is a usage error, and so is a name another
    registered plugin entry has, unless it is the same entry (a plugin
    loaded twice) or ``shadow`` is set (``merge``'s stand-ins for recorded
    entries hide live ones of the same name). Returns the layer (its token).
    """
    _load()
    layer: dict[str, MetricDef] = {}
    for entry in new:
        for name in entry.names:
            key = normalize_name(name)
            other = _BY_NAME.get(key)
            if other is not None:
                raise UsageProblem(
                    f"{label}: '{name}' shadows the built-in {other.name}; rename the function "
                    "or name it with @lossctl.loss(name=...)"
                )
            other = layer.get(key) or (None if shadow else next((lay[key] for lay in _LAYERS if key in lay), None))
            if other is not None and other is not entry:
                where = getattr(other, "where", other.name)
                raise UsageProblem(f"{label}: the name '{name}' is taken by {where}")
            layer[key] = entry
    _LAYERS.append(layer)
    return layer


def unregister(layer: dict[str, MetricDef]) -> None:
    """Take away a layer added by :func:`register_plugin` (nothing when it is gone already)."""
    for i, existing in enumerate(_LAYERS):
        if existing is layer:
            del _LAYERS[i]
            return


@contextmanager
def plugins_registered(new: Sequence[MetricDef], label: str = "plugin", *, shadow: bool = False) -> Iterator[None]:
    """:func:`register_plugin` for the duration of a ``with`` block."""
    layer = register_plugin(new, label, shadow=shadow)
    try:
        yield
    finally:
        unregister(layer)


def _plugin_entries() -> list[MetricDef]:
    seen: dict[int, MetricDef] = {}
    for layer in _LAYERS:
        for entry in layer.values():
            seen.setdefault(id(entry), entry)
    return list(seen.values())


def entries() -> list[MetricDef]:
    """Every registered entry, in registration order (plugins' entries last)."""
    _load()
    return [*_ENTRIES.values(), *_plugin_entries()]


def lookup(name: str) -> MetricDef:
    """Find an entry by any of its names, or raise UsageProblem with a suggestion."""
    _load()
    key = normalize_name(name)
    if key in _BY_NAME:
        return _BY_NAME[key]
    for layer in reversed(_LAYERS):
        if key in layer:
            return layer[key]
    suggestion = did_you_mean(key, [*_BY_NAME, *(k for layer in _LAYERS for k in layer)])
    hint = suggestion or "; see 'lossctl list'"
    raise UsageProblem(f"unknown loss or metric '{name}'{hint}")


@dataclass(frozen=True)
class Resolved:
    """A spec resolved against the registry, parameters parsed and defaulted."""

    spec: str
    kind: Kind
    entry: MetricDef
    params: Mapping[str, Any]
    resolved_from: str | None = None

    @property
    def name(self) -> str:
        return self.entry.name


def parse_params(entry: MetricDef, raw: RawSpec) -> dict[str, Any]:
    """Defaults overridden by the spec's ``key=value`` texts, each parsed and validated."""
    declared = {normalize_name(p.name): p for p in entry.all_params}
    params = entry.defaults()
    for key, text in raw.params:
        param = declared.get(normalize_name(key))
        if param is None:
            if declared:
                hint = did_you_mean(normalize_name(key), list(declared)) or (
                    "; parameters are " + ", ".join(p.name for p in entry.all_params)
                )
            else:
                hint = "; it takes no parameters"
            raise UsageProblem(f"{entry.name}: unknown parameter '{key}'{hint}")
        params[param.name] = param.parse(entry.name, text)
    return params


def resolve(raw: RawSpec, kind: Kind) -> Resolved:
    """Resolve one parsed spec; unknown, bad or missing parameters are usage errors."""
    entry = lookup(raw.name)
    params = parse_params(entry, raw)
    _check_required(entry, params)
    return Resolved(spec=raw.text, kind=kind, entry=entry, params=params)


def _check_required(entry: MetricDef, params: Mapping[str, Any]) -> None:
    for p in entry.all_params:
        if p.required and params.get(p.name) is None:
            raise UsageProblem(
                f"{entry.name}: parameter '{p.name}' is required, e.g. {entry.name}:{p.name}=VALUE "
                f"(expected {p.describe()})"
            )


def resolve_all(losses: tuple[str, ...] | list[str], metrics: tuple[str, ...] | list[str]) -> list[Resolved]:
    """Resolve ``--loss`` and ``--metric`` option values, in the order given."""
    out = [resolve(raw, "loss") for raw in split_specs(losses)]
    out += [resolve(raw, "metric") for raw in split_specs(metrics)]
    return out


def not_applicable(r: Resolved, true_width: int, pred_width: int) -> list[str]:
    """Warnings for the parameters the spec gives that cannot change the result on this input.

    Only parameters written in the spec count (a default the user did not
    ask for says nothing); the value is what it is either way, but the user
    asked for something the input cannot give (``f1:average=macro`` on one
    probability column is the positive class's F1, not a macro average).
    """
    declared = {normalize_name(p.name): p for p in r.entry.all_params}
    out = []
    for key, text in parse_spec(r.spec).params:
        param = declared.get(normalize_name(key))
        if param is None or param.applies is None or param.applies.test(r.params, true_width, pred_width):
            continue
        shape = "one y_pred column" if pred_width == 1 else f"{pred_width} y_pred columns"
        out.append(
            f"{r.spec}: {param.name}={text} does not apply to {shape} (only to {param.applies.where}); "
            f"{param.applies.otherwise}"
        )
    return out


def resolve_params(entry: MetricDef, given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overridden by Python keyword values, each validated."""
    declared = {p.name: p for p in entry.all_params}
    params = entry.defaults()
    for key, value in given.items():
        param = declared.get(key)
        if param is None:
            raise UsageProblem(
                f"{entry.name}: unknown parameter '{key}'" + did_you_mean(key, list(declared))
            )
        param.check(entry.name, value)
        params[key] = value
    _check_required(entry, params)
    return params
