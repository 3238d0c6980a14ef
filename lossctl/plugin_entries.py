"""Registry entries made from users' functions (SPEC section 8): the kernel adapter and the header records.

A plugin function is written the Keras way, ``fn(y_true, y_pred) -> one
value per row``. :class:`PluginKernel` adapts it to a per-row kernel of the
registry: it hands the function a chunk's arrays 2-D like Keras batches
(read-only; a scalar column as ``(N, 1)``), takes the result through
``numpy.asarray`` (so ``keras.ops`` results work) and insists on one finite
value per row. Anything else is a :class:`~lossctl.errors.ValueProblem`
that names the plugin and the function; the engine adds the row. The
accumulator is :class:`~lossctl.accumulate.Mean`, keyed by the plugin's
content hash, so weights, reductions, chunk invariance and state files
behave as for any built-in entry.

A state file records the plugins its specs use (:func:`records`) and
``merge`` rebuilds them from that record alone (:func:`stand_ins`): a
stand-in entry has the same accumulator key and no code.
"""

from __future__ import annotations

import math
import re
import shlex
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Mean
from lossctl.batch import F64, Batch
from lossctl.errors import DataError, UsageProblem, ValueProblem
from lossctl.params import Param
from lossctl.registry import MetricDef

INPUTS = (
    "whatever the function accepts: NumPy arrays of one chunk, 2-D like Keras batches "
    "(a scalar column as (N, 1)); it returns one value per row"
)
_TYPES = {"float": float, "int": int, "bool": bool, "str": str}
_SHA = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Source:
    """Where a plugin's code comes from: ``name`` as given (``PATH.py`` or ``package.module``), the file, its hash."""

    name: str
    sha256: str
    path: str | None = None

    def record(self) -> dict[str, str]:
        """Name and content hash (the ``signature`` of a result records these)."""
        return {"name": self.name, "sha256": self.sha256}


@dataclass(frozen=True)
class PluginDef(MetricDef):
    """A registry entry defined by a plugin's function.

    Attributes:
        source: the plugin it comes from.
        function: the Python function's name (a factory's, for a factory).
        signature: how it is called, e.g. ``huber_loss_with_threshold(t=1.0) -> huber_loss(y_true, y_pred)``.
        doc: the function's docstring.
    """

    source: Source | None = None
    function: str = ""
    signature: str = ""
    doc: str = ""

    @property
    def identity(self) -> str:
        """What the accumulator key names: the entry and the content of its plugin."""
        assert self.source is not None
        return f"plugin:{self.name}@{self.source.sha256}"

    @property
    def where(self) -> str:
        """``plugin NAME, function F`` for messages."""
        assert self.source is not None
        return f"plugin {self.source.name}, function {self.function}"

    def about(self) -> dict[str, Any]:
        """What ``list --json`` and ``explain --json`` add for a plugin's entry."""
        assert self.source is not None
        return {**self.source.record(), "function": self.function, "signature": self.signature, "doc": self.doc}

    def about_lines(self) -> list[str]:
        """The ``explain`` lines of a plugin's entry: where its code is, how it is called, its docstring."""
        assert self.source is not None
        lines = ["", f"{'plugin:':<16}{self.source.name} (sha256 {self.source.sha256})",
                 f"{'signature:':<16}{self.signature}"]
        if self.doc:
            lines += ["", "Docstring:", *(f"  {line}" for line in self.doc.splitlines())]
        return lines

    def commands(self) -> list[str]:
        """Commands that evaluate the entry (``explain``'s "Try it")."""
        assert self.source is not None
        option = "--loss" if self.kind == "loss" else "--metric"
        return [f"lossctl eval FILE --plugin {shlex.quote(self.source.name)} {option} {self.name}"]


def _mean(identity: Callable[[], str], kernel: PluginKernel) -> Callable[[Mapping[str, Any]], Accumulator]:
    def state(params: Mapping[str, Any]) -> Accumulator:
        kernel_params = {k: v for k, v in params.items() if k != "reduction"}
        kernel.prepare(kernel_params)
        return Mean(kernel, kernel_params, params.get("reduction", "mean"), identity=identity())

    return state


# --------------------------------------------------------------------------
# The kernel adapter


def _quiet_torch() -> None:
    """Torch warns on every read-only array it is given (Keras's torch backend): they are read-only on purpose."""
    if "torch" in sys.modules:
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


def _keras_view(a: F64) -> F64:
    """A read-only 2-D view: ``(N,)`` becomes ``(N, 1)`` as Keras batches a scalar column."""
    view = a[:, None] if a.ndim == 1 else a.view()
    view.flags.writeable = False
    return view


def _as_values(out: Any) -> np.ndarray:
    """The function's result as float64 NumPy (``numpy.asarray``; tensors that refuse it via ``.numpy()``)."""
    try:
        return np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        if "keras" in sys.modules:
            convert = getattr(getattr(sys.modules["keras"], "ops", None), "convert_to_numpy", None)
            if convert is not None:
                return np.asarray(convert(out), dtype=np.float64)
        if hasattr(out, "numpy"):
            return np.asarray(out.numpy(), dtype=np.float64)
        raise


class PluginKernel:
    """A user function as a registry kernel ``(batch, **params) -> (N,)``.

    ``fn`` is the loss itself; with ``factory`` set, ``fn`` is ``None`` and the
    loss is ``factory(**params)``, made once per parameter set (:meth:`prepare`).
    ``keywords``: the loss's own parameters, passed by keyword.
    """

    def __init__(self, where: str, fn: Callable[..., Any] | None, factory: Callable[..., Any] | None = None) -> None:
        self.where = where
        self.fn = fn
        self.factory = factory
        self._made: dict[tuple[tuple[str, Any], ...], Callable[..., Any]] = {}
        self._lock = threading.Lock()
        self._quieted = False

    def prepare(self, params: Mapping[str, Any]) -> Callable[..., Any]:
        """The loss for these parameters; a factory that fails or returns no loss is a usage error."""
        if self.factory is None:
            assert self.fn is not None
            return self.fn
        key = tuple(sorted(params.items()))
        with self._lock:
            made = self._made.get(key)
            if made is None:
                args = ", ".join(f"{k}={v!r}" for k, v in key)
                try:
                    made = self.factory(**params)
                except Exception as exc:  # noqa: BLE001 - the user's code: its message, exit 2
                    raise UsageProblem(f"{self.where}({args}) raised {type(exc).__name__}: {exc}") from None
                if not callable(made):
                    raise UsageProblem(f"{self.where}({args}) returned {type(made).__name__}, not a loss function")
                self._made[key] = made
        return made

    def __call__(self, batch: Batch, **params: Any) -> F64:
        if self.factory is None:
            fn, keywords = self.fn, params
        else:
            fn, keywords = self.prepare(params), {}
        assert fn is not None
        n = len(batch)
        if not self._quieted:
            _quiet_torch()
            self._quieted = True
        try:
            out = fn(_keras_view(batch.y_true), _keras_view(batch.y_pred), **keywords)
        except Exception as exc:  # noqa: BLE001 - the user's code: a data error naming it
            text = " ".join(str(exc).split())
            if "read-only" in text:
                text += " (the arrays are shared: copy one before changing it in place)"
            raise ValueProblem(None, 0, f"{self.where}: raised {type(exc).__name__}: {text}") from exc
        try:
            values = _as_values(out)
        except Exception as exc:  # noqa: BLE001 - whatever the array library raises
            text = " ".join(str(exc).split())
            raise ValueProblem(
                None, 0, f"{self.where}: returned {type(out).__name__}, not numbers (numpy.asarray: {text})"
            ) from exc
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1 or len(values) != n:
            got = "a scalar" if values.ndim == 0 else f"shape {values.shape}"
            raise ValueProblem(
                None, 0,
                f"{self.where}: returned {got} for a chunk of {n} rows; return one value per row, "
                "shape (N,) (e.g. reduce with np.mean(..., axis=-1)); lossctl takes the weighted mean",
            )
        if not math.isfinite(float(np.add.reduce(values))):
            self._check_finite(values, batch)
        return values

    def _check_finite(self, values: F64, batch: Batch) -> None:
        """NaN or infinity for a row whose inputs are finite is a data error (under --nan propagate the others pass)."""
        bad = ~np.isfinite(values)
        for a in (batch.y_true, batch.y_pred):
            ok = np.isfinite(a)
            bad &= ok if ok.ndim == 1 else ok.all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            what = "NaN" if np.isnan(values[i]) else "an infinite value"
            raise ValueProblem(None, i, f"{self.where}: returned {what} for finite inputs")


# --------------------------------------------------------------------------
# Parameters from Python signatures


def _annotated_type(annotation: Any) -> tuple[type | None, bool]:
    """``(type, optional)`` from an annotation (``float``, ``"int | None"``, ``Optional[bool]``)."""
    if isinstance(annotation, str):
        parts = [p.strip() for p in re.sub(r"^Optional\[(.*)\]$", r"\1 | None", annotation.strip()).split("|")]
        optional = "None" in parts
        names = [p for p in parts if p != "None"]
        return (_TYPES.get(names[0]) if len(names) == 1 else None), optional
    if annotation in _TYPES.values():
        return annotation, False
    args = getattr(annotation, "__args__", ())
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and rest[0] in _TYPES.values():
            return rest[0], True
    return None, False


def param_of(owner: str, name: str, default: Any, annotation: Any) -> Param | None:
    """A spec parameter typed from the annotation, else the default; ``None``: not settable from a spec."""
    kind, optional = _annotated_type(annotation)
    if kind is None and default is not None:
        kind = next((t for t in (bool, int, float, str) if type(default) is t), None)
    if kind is None:
        return None
    if default is None:
        optional = True
    elif not isinstance(default, kind) or (kind is int and isinstance(default, bool)):
        if not (kind is float and type(default) is int):
            return None
        default = float(default)
    return Param(name, default, kind, f"keyword parameter of {owner}", optional=optional)


# --------------------------------------------------------------------------
# Entries


def make_entry(
    source: Source,
    *,
    name: str,
    function: str,
    signature: str,
    doc: str,
    kernel: PluginKernel,
    params: tuple[Param, ...],
    kind: str = "loss",
    direction: str = "min",
    aliases: tuple[str, ...] = (),
    formula: str | None = None,
    task: str | None = None,
) -> PluginDef:
    """The registry entry of one plugin function (or factory)."""
    summary = doc.strip().splitlines()[0].strip() if doc.strip() else f"Custom {kind} from plugin {source.name}."
    holder: list[PluginDef] = []
    entry = PluginDef(
        name=name,
        kind=kind,  # type: ignore[arg-type]  # checked by the decorators
        task=task or "any",
        direction=direction,  # type: ignore[arg-type]
        formula=formula or f"weighted mean over rows of {signature}",
        summary=summary,
        inputs=INPUTS,
        aliases=aliases,
        params=params,
        kernel=kernel,
        state=_mean(lambda: holder[0].identity, kernel),
        shapes="any",
        source=source,
        function=function,
        signature=signature,
        doc=doc,
    )
    holder.append(entry)
    return entry


def records(entries: Iterable[MetricDef]) -> list[dict[str, Any]]:
    """The plugins these entries come from, with what ``merge`` needs to rebuild them (no code)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    seen: set[int] = set()
    for entry in entries:
        if not isinstance(entry, PluginDef) or entry.source is None or id(entry) in seen:
            continue
        seen.add(id(entry))
        src = entry.source
        rec = out.setdefault((src.name, src.sha256), {**src.record(), "file": src.path, "entries": []})
        rec["entries"].append(
            {
                "name": entry.name,
                "aliases": list(entry.aliases),
                "function": entry.function,
                "kind": entry.kind,
                "direction": entry.direction,
                "params": [
                    {"name": p.name, "type": p.type.__name__, "default": p.default, "optional": p.optional}
                    for p in entry.params
                ],
            }
        )
    return list(out.values())


def _no_code(batch: Batch, **params: Any) -> F64:
    raise DataError("a plugin entry rebuilt from a state file has no code to run")


def stand_ins(docs: Sequence[Mapping[str, Any]]) -> dict[str, PluginDef]:
    """Entries rebuilt from a state file's plugin records, by name: same keys, no code (``merge``)."""
    out: dict[str, PluginDef] = {}
    for doc in docs:
        sha = str(doc["sha256"])
        if not _SHA.match(sha):
            raise ValueError(f"plugin {doc['name']!r}: sha256 {sha!r}")
        file = doc.get("file")
        source = Source(str(doc["name"]), sha, None if file is None else str(file))
        for e in doc["entries"]:
            if e["kind"] not in ("loss", "metric") or e["direction"] not in ("min", "max"):
                raise ValueError(f"plugin entry {e['name']!r}: kind {e['kind']!r}, direction {e['direction']!r}")
            params = tuple(
                Param(str(p["name"]), p["default"], _TYPES[p["type"]], optional=bool(p["optional"])) for p in e["params"]
            )
            name = str(e["name"])
            out[name] = make_entry(
                source,
                name=name,
                function=str(e["function"]),
                signature=f"{e['function']}(...)",
                doc="",
                kernel=PluginKernel(f"plugin {source.name}, function {e['function']}", _no_code),
                params=params,
                kind=e["kind"],
                direction=e["direction"],
                aliases=tuple(str(a) for a in e["aliases"]),
                formula=f"{e['function']} of plugin {source.name} (sha256 {sha[:12]}), as recorded in a state file",
            )
    return out


def differences(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> list[str]:
    """What differs between the plugin code two plans used (a path may differ between shards; the code may not)."""
    def code(docs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        return {e["name"]: d["sha256"] for d in docs for e in d["entries"]}

    ca, cb = code(a), code(b)
    changed: dict[tuple[str, str], list[str]] = {}
    for name in sorted(ca.keys() & cb.keys()):
        if ca[name] != cb[name]:
            changed.setdefault((ca[name], cb[name]), []).append(name)
    return [f"plugin code of {', '.join(names)}: sha256 {x[:12]} vs {y[:12]}" for (x, y), names in changed.items()]
