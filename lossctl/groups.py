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
from collections.abc import Sequence
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
        self._combos: dict[tuple[int, ...], int] = {}
        self.keys: list[Key] = []

    def __len__(self) -> int:
        return len(self.keys)

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
            uniques, inverse = np.unique(values, return_inverse=True, equal_nan=True)
            lut = np.array([self._code(column, v) for v in uniques.tolist()], dtype=np.int64)
            return lut[inverse.reshape(-1)]
        return self._encode_arrow(column, values, label)

    def _encode_arrow(self, column: int, array: Any, label: str) -> I64:
        import pyarrow as pa

        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        t = array.type
        if pa.types.is_nested(t):
            raise DataError(f"{label}: --by column '{self.columns[column]}' holds lists, not keys")
        encoded = array if pa.types.is_dictionary(t) else array.dictionary_encode()
        dictionary = encoded.dictionary.to_pylist()
        lut = np.array([self._code(column, v) for v in dictionary] + [self._code(column, None)], dtype=np.int64)
        indices = encoded.indices
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
            unique, inverse = np.unique(codes[0], return_inverse=True)
            combos = [(int(c),) for c in unique]
        else:
            stacked = np.stack(codes, axis=1)
            unique_rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
            combos = [tuple(int(c) for c in row) for row in unique_rows]
        ids = np.empty(len(combos), dtype=np.int64)
        for i, combo in enumerate(combos):
            gid = self._combos.get(combo)
            if gid is None:
                if len(self.keys) >= self.max_groups:
                    raise DataError(
                        f"--by {','.join(self.columns)}: more than {self.max_groups} groups "
                        "(raise --max-groups, or slice by a column with fewer values)"
                    )
                gid = self._combos[combo] = len(self.keys)
                self.keys.append(tuple(self._values[c][code] for c, code in enumerate(combo)))
            ids[i] = gid
        return ids[inverse.reshape(-1)]


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
