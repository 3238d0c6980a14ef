"""Declared array states: data only, one generic merge, a leading slot axis.

A :class:`State` is a small set of named NumPy arrays. Each array has a
*merge kind* that says how two states over different rows combine:

- ``sum``: added (weighted counts, totals, histograms);
- ``max`` / ``min``: element-wise maximum / minimum;
- ``comoment``: a block of weighted co-moments (weight, means, centred
  second moments) combined with the pairwise update of Chan et al.;
- ``concat``: rows kept as they came (exact AUC's scores), a list of
  chunks per slot, concatenated on merge;
- ``keyed``: sums over a key set that grows with the data (a confusion
  matrix over the class labels seen so far): every axis after the slot axis
  is indexed by the sorted keys ``NAME#keys``; merging maps both arrays
  onto the union of the keys.

Every array has a leading *slot* axis: slot ``s`` of a state is a complete
state of its own (one group of a sliced run, one bootstrap replicate). A
chunk is folded into one slot, :attr:`Batch.slot`.

Behaviour (how a chunk updates a state, how a state becomes a value) lives
in an accumulator (``lossctl.accumulate``) bound to a registry entry's
parameters, never in the state: a state can therefore be saved
(:meth:`State.to_arrays`), loaded (:meth:`State.from_arrays`), merged
anywhere and shared by every entry whose accumulator has the same ``key``
(precision, recall and F1 fill one set of confusion counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossctl.batch import F64
from lossctl.comoments import chan, chan_all
from lossctl.errors import DataError

KINDS = ("sum", "max", "min", "comoment", "concat", "keyed")
OFFSETS = "#offsets"
KEYS = "#keys"
_FILL = {"sum": 0, "max": -np.inf, "min": np.inf, "comoment": 0}


class State:
    """Named arrays with merge kinds and a leading slot axis; no behaviour.

    ``rows`` (``sum``, one integer per slot) is always present. Other arrays
    are declared on first use (:meth:`declare`), because their trailing shape
    (the number of classes) is known only from the data.
    """

    __slots__ = ("slots", "kinds", "data")

    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError("a state has at least one slot")
        self.slots = slots
        self.kinds: dict[str, str] = {"rows": "sum"}
        self.data: dict[str, Any] = {"rows": np.zeros(slots, dtype=np.int64)}

    # -- declaring and filling ---------------------------------------------

    def declare(self, name: str, kind: str, tail: tuple[int, ...] = (), dtype: Any = np.float64) -> np.ndarray:
        """The array ``name`` of shape ``(slots, *tail)``, created filled with its kind's identity.

        A second declaration with another trailing shape is a data error: the
        rows seen so far had another number of classes or columns.
        """
        if kind in ("concat", "keyed"):
            raise ValueError(f"{kind} arrays are filled with append() / add_keyed()")
        existing = self.data.get(name)
        if existing is None:
            self.kinds[name] = kind
            array = np.full((self.slots, *tail), _FILL[kind], dtype=dtype)
            self.data[name] = array
            return array
        if existing.shape[1:] != tuple(tail):
            raise DataError(
                f"cannot combine {_describe(existing.shape[1:], kind)} with {_describe(tuple(tail), kind)}"
            )
        return existing

    def get(self, name: str) -> np.ndarray | None:
        """A declared fixed-shape array, or ``None`` when no chunk declared it yet."""
        return self.data.get(name)

    def append(self, name: str, slot: int, chunk: np.ndarray) -> list[np.ndarray]:
        """Keep ``chunk`` (rows on axis 0) in the concat array ``name`` of ``slot``; returns that slot's list."""
        lists = self.data.get(name)
        if lists is None:
            self.kinds[name] = "concat"
            lists = self.data[name] = [[] for _ in range(self.slots)]
        lists[slot].append(chunk)
        return lists[slot]

    def add_keyed(self, name: str, keys: np.ndarray, values: np.ndarray, slot: int) -> None:
        """Add ``values`` (every axis indexed by the sorted unique ``keys``) into ``slot`` of keyed ``name``."""
        current = self.data.get(name)
        if current is None:
            self.kinds[name] = "keyed"
            current = (np.zeros(0, dtype=keys.dtype), np.zeros((self.slots, *((0,) * values.ndim))))
        union, array = _union_keyed(current, keys)
        at = np.searchsorted(union, keys)
        array[(slot, *np.ix_(*([at] * values.ndim)))] += values
        self.data[name] = (union, array)

    def keyed(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(keys, array)`` of keyed ``name``, the array ``(slots, K, ...)``; ``None`` before any chunk."""
        return self.data.get(name)

    def chunks(self, name: str, slot: int) -> list[np.ndarray]:
        """The chunks of concat array ``name`` in ``slot`` (an empty list when never filled)."""
        lists = self.data.get(name)
        return [] if lists is None else lists[slot]

    def rows(self, slot: int = 0) -> int:
        return int(self.data["rows"][slot])

    def names(self) -> list[str]:
        return list(self.data)

    # -- slots ---------------------------------------------------------------

    def grow(self, slots: int) -> None:
        """Make room for ``slots`` slots (new slots are empty: each kind's identity)."""
        extra = slots - self.slots
        if extra <= 0:
            return
        for name, kind in self.kinds.items():
            value = self.data[name]
            if kind == "concat":
                value.extend([] for _ in range(extra))
            elif kind == "keyed":
                keys, array = value
                pad = np.zeros((extra, *array.shape[1:]), dtype=array.dtype)
                self.data[name] = (keys, np.concatenate([array, pad]))
            else:
                pad = np.full((extra, *value.shape[1:]), _FILL[kind], dtype=value.dtype)
                self.data[name] = np.concatenate([value, pad])
        self.slots = slots

    def relabel(self, targets: np.ndarray, slots: int) -> State:
        """A new state of ``slots`` slots whose slot ``targets[i]`` is this state's slot ``i``.

        The slots of this state not named in ``targets`` (past its end) must be empty.
        """
        out = State(slots)
        out.kinds, out.data = dict(self.kinds), {}
        # Targets past this state's slots are groups it never saw a row of: nothing to move.
        targets = targets[: self.slots]
        for name, kind in self.kinds.items():
            value = self.data[name]
            if kind == "concat":
                lists: list[list[np.ndarray]] = [[] for _ in range(slots)]
                for i, t in enumerate(targets.tolist()):
                    lists[t] = list(value[i])
                out.data[name] = lists
                continue
            keys, array = value if kind == "keyed" else (None, value)
            moved = np.full((slots, *array.shape[1:]), 0 if kind == "keyed" else _FILL[kind], dtype=array.dtype)
            moved[targets] = array[: len(targets)]
            out.data[name] = (keys, moved) if kind == "keyed" else moved
        return out

    def collapse(self, slots: int | None = None, stride: int = 1) -> State:
        """The merge of groups ``0 .. slots-1`` (all of them by default), each ``stride`` slots wide.

        Slot ``g * stride + r`` is slot ``r`` of group ``g`` (``r`` a bootstrap
        replicate, 0 the plain rows); the result has ``stride`` slots, slot
        ``r`` the merge of every group's slot ``r``.
        """
        n = (self.slots if slots is None else slots * stride) // stride
        out = State(stride)
        out.kinds, out.data = dict(self.kinds), {}
        for name, kind in self.kinds.items():
            value = self.data[name]
            if kind == "concat":
                out.data[name] = [[c for g in range(n) for c in value[g * stride + r]] for r in range(stride)]
                continue
            keys, array = value if kind == "keyed" else (None, value)
            # (groups, stride, ...): merge over the groups axis.
            blocks = array[: n * stride].reshape(n, stride, *array.shape[1:])
            if kind in ("sum", "keyed"):
                merged = blocks.sum(axis=0)
            elif kind == "max":
                merged = blocks.max(axis=0) if n else array[:stride].copy()
            elif kind == "min":
                merged = blocks.min(axis=0) if n else array[:stride].copy()
            else:
                merged = chan_all(blocks)[0] if n else np.zeros((stride, *array.shape[1:]))
            out.data[name] = (keys, merged) if kind == "keyed" else merged
        return out

    # -- saving and loading ------------------------------------------------

    def parts(self) -> dict[str, list[np.ndarray]]:
        """Every array as the pieces that, joined on axis 0, make it (no copy of concat rows).

        A concat array also gives ``NAME#offsets`` (its rows per slot, as
        ``slots + 1`` offsets); a keyed one ``NAME#keys``.
        """
        out: dict[str, list[np.ndarray]] = {}
        for name, kind in self.kinds.items():
            value = self.data[name]
            if kind == "keyed":
                out[name + KEYS], out[name] = [value[0]], [value[1]]
                continue
            if kind != "concat":
                out[name] = [value]
                continue
            pieces = [c for slot in value for c in slot]
            counts = [sum(len(c) for c in slot) for slot in value]
            offsets = np.zeros(self.slots + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            out[name] = pieces or [np.zeros(0)]
            out[name + OFFSETS] = [offsets]
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every array as one NumPy array (see :meth:`parts`)."""
        return {name: p[0] if len(p) == 1 else np.concatenate(p) for name, p in self.parts().items()}

    def layout(self) -> dict[str, str]:
        """``{name: kind}`` of every array (a state file's header keeps it)."""
        return dict(self.kinds)

    @classmethod
    def from_arrays(cls, kinds: Mapping[str, str], arrays: Mapping[str, np.ndarray]) -> State:
        """The state :meth:`to_arrays` and :meth:`layout` describe; a malformed one is a data error."""
        rows = arrays.get("rows")
        if rows is None or rows.ndim != 1 or len(rows) < 1 or kinds.get("rows") != "sum":
            raise DataError("state has no valid 'rows' array")
        state = cls(len(rows))
        expected = set(kinds) | {n + OFFSETS for n, k in kinds.items() if k == "concat"}
        expected |= {n + KEYS for n, k in kinds.items() if k == "keyed"}
        if set(arrays) != expected:
            raise DataError(f"state arrays {sorted(arrays)} do not match its layout {sorted(expected)}")
        for name, kind in kinds.items():
            if kind not in KINDS:
                raise DataError(f"state array '{name}' has an unknown merge kind '{kind}'")
            value = arrays[name]
            if kind == "keyed":
                keys = arrays[name + KEYS]
                if (
                    keys.ndim != 1
                    or value.ndim < 2
                    or value.shape[0] != state.slots
                    or any(n != len(keys) for n in value.shape[1:])
                    or np.any(np.diff(keys) <= 0)
                ):
                    raise DataError(f"state array '{name}' does not match its keys")
                state.kinds[name] = kind
                state.data[name] = (keys, value)
                continue
            if kind != "concat":
                if value.ndim < 1 or value.shape[0] != state.slots:
                    raise DataError(f"state array '{name}' has {value.shape[:1]} slots, not {state.slots}")
                state.kinds[name] = kind
                state.data[name] = value
                continue
            offsets = arrays[name + OFFSETS]
            if (
                offsets.shape != (state.slots + 1,)
                or offsets[0] != 0
                or offsets[-1] != len(value)
                or np.any(np.diff(offsets) < 0)
            ):
                raise DataError(f"state array '{name}' has inconsistent offsets")
            state.kinds[name] = kind
            state.data[name] = [[value[offsets[s] : offsets[s + 1]]] for s in range(state.slots)]
        return state


def _union_keyed(current: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fresh array over the union of ``current``'s keys and ``keys``, holding ``current``'s values."""
    old_keys, old = current
    union = np.union1d(old_keys, keys)
    array = np.zeros((old.shape[0], *((len(union),) * (old.ndim - 1))))
    at = np.searchsorted(union, old_keys)
    array[(slice(None), *np.ix_(*([at] * (old.ndim - 1))))] = old
    return union, array


def _describe(tail: tuple[int, ...], kind: str = "sum") -> str:
    if kind == "comoment":
        return f"co-moments of {tail[-1]} column{'s' if tail[-1] != 1 else ''}"
    if not tail:
        return "one value"
    if len(tail) == 1:
        return f"{tail[0]} classes or columns"
    return "shape " + "x".join(map(str, tail))


def merge(a: State, b: State) -> State:
    """A new state equal to one pass over both states' rows; ``a`` and ``b`` are unchanged.

    Arrays present in one state only are taken as they are (the other state
    saw no chunk that declared them). Arrays of different trailing shapes or
    kinds cannot be combined (a data error).
    """
    if a.slots != b.slots:
        # Slots are groups that grow with the data: the shorter state's extra slots are empty.
        big = max(a.slots, b.slots)
        a, b = (a.relabel(np.arange(a.slots), big) if a.slots < big else a), (
            b.relabel(np.arange(b.slots), big) if b.slots < big else b
        )
    out = State(a.slots)
    out.kinds, out.data = {}, {}
    for name in dict.fromkeys([*a.kinds, *b.kinds]):
        ka, kb = a.kinds.get(name), b.kinds.get(name)
        if ka is not None and kb is not None and ka != kb:
            raise DataError(f"cannot merge state array '{name}': merge kinds {ka} and {kb} differ")
        kind = ka or kb
        assert kind is not None
        out.kinds[name] = kind
        if ka is None or kb is None:
            source = b if ka is None else a
            value = source.data[name]
            if kind == "concat":
                out.data[name] = [list(s) for s in value]
            elif kind == "keyed":
                out.data[name] = (value[0], value[1].copy())
            else:
                out.data[name] = value.copy()
            continue
        x, y = a.data[name], b.data[name]
        if kind == "keyed":
            union, array = _union_keyed(x, y[0])
            at = np.searchsorted(union, y[0])
            array[(slice(None), *np.ix_(*([at] * (array.ndim - 1))))] += y[1]
            out.data[name] = (union, array)
            continue
        if kind == "concat":
            out.data[name] = [sx + sy for sx, sy in zip(x, y, strict=True)]
            continue
        if x.shape != y.shape:
            raise DataError(f"cannot combine {_describe(x.shape[1:], kind)} with {_describe(y.shape[1:], kind)}")
        if kind == "sum":
            out.data[name] = x + y
        elif kind == "max":
            out.data[name] = np.maximum(x, y)
        elif kind == "min":
            out.data[name] = np.minimum(x, y)
        else:
            out.data[name] = chan(x, y)
    return out


def fold_comoments(state: State, name: str, block: F64, slot: int | None) -> None:
    """Combine a chunk's co-moment block into ``slot`` of array ``name`` (every slot's: ``slot=None``)."""
    if slot is None:
        array = state.declare(name, "comoment", block.shape[1:])
        array[:] = chan(array, block)
        return
    array = state.declare(name, "comoment", block.shape)
    array[slot] = chan(array[slot], block)
