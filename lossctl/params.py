"""Parameter declarations and the ``NAME:key=value`` spec syntax (SPEC section 3).

A :class:`Param` declares its type, default and constraint next to its name,
in the way scikit-learn's ``Interval`` / ``StrOptions`` do, so values are
checked once, while names are resolved, before any data is read.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossctl.errors import UsageProblem

_TRUE = frozenset({"true", "1", "yes", "y", "on", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "off", "f"})


def normalize_name(name: str) -> str:
    """Fold a metric or parameter name: case-insensitive, ``-`` equals ``_``."""
    return name.strip().lower().replace("-", "_")


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Applies:
    """Where a parameter can change the result (SPEC section 3: elsewhere lossctl says so).

    Attributes:
        test: ``(params, true_width, pred_width) -> bool``: whether the
            parameter applies to an input with these values per row.
        where: the inputs it applies to, in words (for ``explain`` and warnings).
        otherwise: what the value is where it does not apply, and how to get
            what the parameter asks for.
    """

    test: Callable[[Mapping[str, Any], int, int], bool]
    where: str
    otherwise: str


def several_columns(params: Mapping[str, Any], true_width: int, pred_width: int) -> bool:
    """An input with several values per row (a probability matrix, several outputs)."""
    return max(true_width, pred_width) > 1


ONE_SCORE_PER_COLUMN = Applies(
    several_columns,
    "several output columns",
    "with one column there is one score, the same under every way of combining",
)


@dataclass(frozen=True)
class Param:
    """One parameter of a loss or metric: Keras's name, type and default.

    Attributes:
        name: Keras's keyword name.
        default: Keras's default value (``None`` when Keras has none).
        type: ``float``, ``int``, ``bool`` or ``str``.
        doc: one line for ``explain``.
        low, high: bounds for numbers; ``None`` is unbounded.
        low_open, high_open: whether the bound itself is excluded.
        choices: allowed values for strings (compared case-insensitively).
        optional: ``None`` is an allowed value ("none"/"null" on the command line).
        required: there is no default; the spec must give a value (Keras
            requires it too, e.g. ``recall_at_precision:precision=0.8``).
        excluded: an open interval of numbers that is not allowed inside the
            bounds (Tweedie's power may not lie in (0, 1)).
        applies: where the parameter can change the result; ``None``: everywhere.
    """

    name: str
    default: Any
    type: type
    doc: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    required: bool = False
    excluded: tuple[float, float] | None = None
    applies: Applies | None = None

    def describe(self) -> str:
        """The constraint in words, for help texts and error messages."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is bool:
            return "a boolean (true/false/1/0/yes/no)"
        kind = "an integer" if self.type is int else "a number"
        if self.low is None and self.high is None:
            if self.excluded is not None:
                return f"{kind} outside ({self.excluded[0]:g}, {self.excluded[1]:g})"
            return kind
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        text = f"{kind} in {left}{lo}, {hi}{right}"
        if self.excluded is not None:
            text += f" outside ({self.excluded[0]:g}, {self.excluded[1]:g})"
        return text

    def parse(self, owner: str, text: str) -> Any:
        """Convert the command-line text of this parameter, or raise UsageProblem."""
        raw = text.strip()
        problem = UsageProblem(
            f"{owner}: bad value '{text}' for parameter '{self.name}'; expected {self.describe()}"
        )
        if self.optional and raw.lower() in {"none", "null"}:
            return None
        if self.type is bool:
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise problem
        if self.type is str:
            if self.choices:
                for choice in self.choices:
                    if choice.lower() == raw.lower():
                        return choice
                raise UsageProblem(
                    f"{owner}: bad value '{text}' for parameter '{self.name}'; "
                    f"expected {self.describe()}"
                    + did_you_mean(raw, [c.lower() for c in self.choices])
                )
            return raw
        try:
            number: float | int = float(raw) if self.type is float else _parse_int(raw)
            self.check(owner, number)
        except (ValueError, UsageProblem):
            raise problem from None
        return number

    def check(self, owner: str, value: Any) -> None:
        """Validate a value given from Python (the same rules as the command line)."""
        if value is None and self.optional:
            return
        if self.type in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageProblem(
                    f"{owner}: bad value {value!r} for parameter '{self.name}'; "
                    f"expected {self.describe()}"
                )
            if self.type is int and not float(value).is_integer():
                raise UsageProblem(
                    f"{owner}: bad value {value!r} for parameter '{self.name}'; "
                    f"expected {self.describe()}"
                )
            v = float(value)
            ok = math.isfinite(v)
            if ok and self.low is not None:
                ok = v > self.low if self.low_open else v >= self.low
            if ok and self.high is not None:
                ok = v < self.high if self.high_open else v <= self.high
            if ok and self.excluded is not None:
                ok = not (self.excluded[0] < v < self.excluded[1])
            if not ok:
                raise UsageProblem(
                    f"{owner}: bad value {value!r} for parameter '{self.name}'; "
                    f"expected {self.describe()}"
                )
        elif self.type is bool and not isinstance(value, bool):
            raise UsageProblem(
                f"{owner}: bad value {value!r} for parameter '{self.name}'; expected a boolean"
            )
        elif self.type is str and self.choices and value not in self.choices:
            raise UsageProblem(
                f"{owner}: bad value {value!r} for parameter '{self.name}'; "
                f"expected {self.describe()}"
            )


def _parse_int(raw: str) -> int:
    value = float(raw)
    if not value.is_integer():
        raise ValueError(raw)
    return int(value)


@dataclass(frozen=True)
class ListParam(Param):
    """A tuple of numbers, written joined by ``+`` on the command line (``0+2``, ``0.2+0.5``).

    Commas separate specs (``--metric iou,auc``), so items are joined by ``+``
    (``;`` and spaces are accepted too, when quoted). Subclasses say what an
    item is (:meth:`convert`).
    """

    def convert(self, value: Any) -> tuple[Any, ...]:
        """The value as a tuple; ``TypeError`` or ``ValueError`` when it is not one of these."""
        raise NotImplementedError

    def parse(self, owner: str, text: str) -> Any:
        if self.optional and text.strip().lower() in {"none", "null"}:
            return None
        try:
            return self.convert(text)
        except (TypeError, ValueError):
            raise UsageProblem(
                f"{owner}: bad value '{text}' for parameter '{self.name}'; expected {self.describe()}"
            ) from None

    def check(self, owner: str, value: Any) -> None:
        if value is None and self.optional:
            return
        try:
            self.convert(value)
        except (TypeError, ValueError):
            raise UsageProblem(
                f"{owner}: bad value {value!r} for parameter '{self.name}'; expected {self.describe()}"
            ) from None


def _items(value: Any) -> Any:
    """``"0+2"`` as ``["0", "2"]``; anything else unchanged."""
    if isinstance(value, str):
        return [p for p in re.split(r"[+;\s]+", value.strip()) if p]
    return value


@dataclass(frozen=True)
class ClassIdsParam(ListParam):
    """A tuple of class ids (non-negative integers): ``target_class_ids=0+2``, ``labels=0+2``."""

    def describe(self) -> str:
        return "class ids joined by '+' (e.g. 0+2), or a sequence of non-negative integers"

    def convert(self, value: Any) -> tuple[Any, ...]:
        return class_ids(value)


def class_ids(value: Any) -> tuple[int, ...]:
    """Normalise a ``target_class_ids`` value (int, sequence or ``0+2`` text) to a tuple."""
    value = _items(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    out = []
    for v in value:
        if isinstance(v, bool):
            raise TypeError(v)
        f = float(v)
        if not f.is_integer() or f < 0:
            raise ValueError(v)
        out.append(int(f))
    if not out:
        raise ValueError(value)
    return tuple(out)


@dataclass(frozen=True)
class NumbersParam(ListParam):
    """A tuple of numbers within ``[low, high]``: ``thresholds=0.2+0.5+0.8``."""

    def describe(self) -> str:
        bounds = "" if self.low is None or self.high is None else f" in [{self.low:g}, {self.high:g}]"
        return f"numbers{bounds} joined by '+' (e.g. 0.2+0.5)"

    def convert(self, value: Any) -> tuple[Any, ...]:
        value = _items(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = (value,)
        if not value or any(isinstance(v, bool) for v in value):
            raise ValueError(value)
        out = tuple(float(v) for v in value)
        for v in out:
            if not math.isfinite(v) or (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
                raise ValueError(v)
        return out


@dataclass(frozen=True)
class ChoiceOrWeightsParam(NumbersParam):
    """One of ``choices``, or weights joined by ``+`` (scikit-learn's ``multioutput``: a name or an array)."""

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices) + ", or non-negative weights joined by '+' (e.g. 0.3+0.7)"

    def convert(self, value: Any) -> Any:
        if isinstance(value, str):
            for choice in self.choices:
                if choice.lower() == value.strip().lower():
                    return choice
        return super().convert(value)


@dataclass(frozen=True)
class RawSpec:
    """A spec as written: ``huber:delta=2`` is name ``huber``, params ``{"delta": "2"}``."""

    text: str
    name: str
    params: tuple[tuple[str, str], ...]


def split_specs(texts: tuple[str, ...] | list[str]) -> list[RawSpec]:
    """Split repeated options and comma lists into individual specs.

    ``["mse,huber:delta=2", "mae"]`` gives three specs. Empty items are usage
    errors, so a stray comma does not silently drop a metric.
    """
    specs: list[RawSpec] = []
    for text in texts:
        for item in text.split(","):
            item = item.strip()
            if not item:
                raise UsageProblem(f"empty name in '{text}'; write names separated by commas")
            specs.append(parse_spec(item))
    return specs


def parse_spec(item: str) -> RawSpec:
    """Parse one ``NAME[:key=value]...`` item."""
    name, *rest = item.split(":")
    if not name.strip():
        raise UsageProblem(f"'{item}': missing name before ':'")
    params: list[tuple[str, str]] = []
    for part in rest:
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageProblem(
                f"'{item}': parameter '{part}' is not key=value (e.g. huber:delta=2)"
            )
        params.append((key.strip(), value.strip()))
    return RawSpec(text=item, name=name.strip(), params=tuple(params))
