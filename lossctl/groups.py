"""Slices (``--by COL``): group keys read as integer ids, never a Python object per row.

Each ``--by`` column is encoded chunk by chunk: an Arrow column through its
dictionary (a string column costs an integer per row; only the chunk's
distinct values become Python objects), a NumPy column through
``np.unique``. Values get a code per column in order of first appearance;
the observed combinations of the columns' codes get the group ids, again in
order of first appearance, so the ids depend only on the row order. Null
(NaN, an empty text cell) is a key of its own. More groups than ``max_groups`` is a data
error.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossctl.errors import DataError

I64 = np.ndarray
Key = tuple[Any, ...]


def _plain(value: Any) -> Any:
    """A key value as a plain, hashable, JSON-friendly Python value (NaN: None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and not value.strip():
        return None  # an empty CSV cell is a missing key, as it is a missing number
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class GroupIndex:
    """Group ids for the observed combinations of the ``--by`` columns' values."""

    def __init__(self, columns: Sequence[str], max_groups: int) -> None:
        self.columns = tuple(columns)
        self.max_groups = max_groups
        self._codes: list[dict[Any, int]] = [{} for _ in self.columns]
        self._values: list[list[Any]] = [[] for _ in self.columns]
        # Per column and NumPy kind: the numbers seen so far, sorted, and their codes.
        self._known: list[dict[str, tuple[np.ndarray, np.ndarray]]] = [{} for _ in self.columns]
        self._combos: dict[tuple[int, ...], int] = {}
        self._keys: list[Key] = []

    @property
    def keys(self) -> list[Key]:
        """The key of every group id."""
        if len(self.columns) == 1:
            # One column: its codes are the group ids (both in order of first appearance).
            values = self._values[0]
            self._keys.extend((v,) for v in values[len(self._keys) :])
        return self._keys

    def __len__(self) -> int:
        return len(self._values[0]) if len(self.columns) == 1 else len(self._keys)

    def _code(self, column: int, value: Any) -> int:
        codes = self._codes[column]
        value = _plain(value)
        code = codes.get(value)
        if code is None:
            code = codes[value] = len(codes)
            self._values[column].append(value)
        return code

    def encode(self, column: int, values: Any, label: str, start: int) -> I64:
        """Per-column codes (int64) of one chunk of column ``column`` (an Arrow or NumPy array)."""
        if isinstance(values, np.ndarray):
            if values.ndim != 1:
                raise DataError(f"{label}: --by column '{self.columns[column]}' holds several values per row")
            if values.dtype.kind in "iufb":
                return self._encode_numbers(column, values)
            uniques, inverse = np.unique(values, return_inverse=True, equal_nan=True)
            lut = np.array([self._code(column, v) for v in uniques.tolist()], dtype=np.int64)
            return lut[inverse.reshape(-1)]
        return self._encode_arrow(column, values, label)

    def _encode_numbers(self, column: int, values: np.ndarray) -> I64:
        """Codes of numeric keys, vectorised: only values never seen before reach Python, once each."""
        kind = values.dtype.kind
        if kind == "b":
            values = values.view(np.uint8)
        uniques, first, inverse = np.unique(values, return_index=True, return_inverse=True)
        known, known_codes = self._known[column].get(kind, (uniques[:0], np.zeros(0, dtype=np.int64)))
        lut = np.empty(len(uniques), dtype=np.int64)
        if len(known):
            at = np.minimum(np.searchsorted(known, uniques), len(known) - 1)
            hit = known[at] == uniques
            lut[hit] = known_codes[at[hit]]
        else:
            hit = np.zeros(len(uniques), dtype=bool)
        new = np.flatnonzero(~hit)
        if new.size:
            # New keys get codes in order of first appearance in the chunk.
            new = new[np.argsort(first[new], kind="stable")]
            plain = uniques[new].astype(bool).tolist() if kind == "b" else uniques[new].tolist()
            for i, value in zip(new.tolist(), plain, strict=True):
                lut[i] = self._code(column, value)
            keep = hit.copy()
            keep[new] = True
            # NaN (never equal to itself) is coded each time but must not enter the sorted array twice.
            numbers = ~np.isnan(uniques) if kind == "f" else np.ones(len(uniques), dtype=bool)
            merged = np.concatenate([known, uniques[new][numbers[new]]])
            merged_codes = np.concatenate([known_codes, lut[new][numbers[new]]])
            order = np.argsort(merged, kind="stable")
            self._known[column][kind] = (merged[order], merged_codes[order])
        return lut[inverse.reshape(-1)]

    def _encode_arrow(self, column: int, array: Any, label: str) -> I64:
        import pyarrow as pa

        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        t = array.type
        if pa.types.is_nested(t):
            raise DataError(f"{label}: --by column '{self.columns[column]}' holds lists, not keys")
        if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)) and not array.null_count:
            return self._encode_numbers(column, _numbers(array))
        encoded = array if pa.types.is_dictionary(t) else array.dictionary_encode()
        dictionary = encoded.dictionary.to_pylist()
        indices = encoded.indices
        # The null key gets a code only when a row has it: every code is a group with rows.
        nulls = [self._code(column, None)] if indices.null_count else [0]
        lut = np.array([self._code(column, v) for v in dictionary] + nulls, dtype=np.int64)
        n, offset = len(indices), indices.offset
        width = indices.type.bit_width // 8
        raw = np.frombuffer(indices.buffers()[1], dtype=f"<i{width}", count=offset + n)[offset:].astype(np.int64)
        if indices.null_count:
            bits = np.unpackbits(np.frombuffer(indices.buffers()[0], dtype=np.uint8), bitorder="little")
            raw = np.where(bits[offset : offset + n].astype(bool), raw, len(dictionary))
        return lut[raw]

    def combine(self, codes: Sequence[I64]) -> I64:
        """Group ids (int64) of one chunk from its per-column codes; new combinations get new ids."""
        if len(codes) == 1:
            if len(self._values[0]) > self.max_groups:
                raise DataError(
                    f"--by {self.columns[0]}: more than {self.max_groups} groups "
                    "(raise --max-groups, or slice by a column with fewer values)"
                )
            return codes[0]
        stacked = np.stack(codes, axis=1)
        unique_rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
        combos = [tuple(int(c) for c in row) for row in unique_rows]
        ids = np.empty(len(combos), dtype=np.int64)
        for i, combo in enumerate(combos):
            gid = self._combos.get(combo)
            if gid is None:
                if len(self._keys) >= self.max_groups:
                    raise DataError(
                        f"--by {','.join(self.columns)}: more than {self.max_groups} groups "
                        "(raise --max-groups, or slice by a column with fewer values)"
                    )
                gid = self._combos[combo] = len(self._keys)
                self._keys.append(tuple(self._values[c][code] for c, code in enumerate(combo)))
            ids[i] = gid
        return ids[inverse.reshape(-1)]


def _numbers(array: Any) -> np.ndarray:
    """A numeric Arrow array without nulls as NumPy, from its buffers (no pandas import)."""
    import pyarrow as pa

    if pa.types.is_boolean(array.type):
        n, offset = len(array), array.offset
        bits = np.unpackbits(np.frombuffer(array.buffers()[1], dtype=np.uint8), bitorder="little")
        return bits[offset : offset + n].astype(bool)
    dtype = np.dtype(array.type.to_pandas_dtype())
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=array.offset + len(array))[array.offset :]


def sort_key(key: Key) -> tuple[Any, ...]:
    """Keys sorted by value, nulls last, values of different types apart (numbers before text)."""
    out: list[Any] = []
    for v in key:
        if v is None:
            out.append((3, 0, ""))
        elif isinstance(v, bool):
            out.append((0, int(v), ""))
        elif isinstance(v, (int, float)):
            out.append((0, v, ""))
        elif isinstance(v, (dt.date, dt.datetime)):
            out.append((1, 0, v.isoformat()))
        else:
            out.append((2, 0, str(v)))
    return tuple(out)


def jsonable(value: Any) -> Any:
    """A key value for JSON and for state files: dates as ISO text."""
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def key_dict(columns: Sequence[str], key: Key) -> dict[str, Any]:
    return {c: jsonable(v) for c, v in zip(columns, key, strict=True)}


def group_text(group: Mapping[str, Any]) -> str:
    """A group as ``COL=VALUE[,COL=VALUE]``: how checks name it (``auc[region=eu]``) and messages show it."""
    return ",".join(f"{k}={v}" for k, v in group.items())
