"""What every reader gives: a schema and a stream of column chunks.

Readers know files, never metrics. A :class:`Table` lists its columns and
yields ``{column: array}`` chunks for the columns asked for, each array
``(n,)`` for one value per row or ``(n, k)`` for a list column or a 2-D
array. :func:`rechunk` cuts any stream into chunks of exactly the requested
size, so that results do not depend on how a file happens to be split.
"""

from __future__ import annotations

import mmap
import os
import queue
import re
import stat
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from lossctl.errors import DataError

Arrays = dict[str, np.ndarray]
# Per column, a conversion that replaces the float64 one: (values as read, an
# Arrow array or a NumPy array; the chunk's first row) -> NumPy array.
Converters = Mapping[str, Callable[[Any, int], np.ndarray]]


@dataclass(frozen=True)
class ColumnInfo:
    """One column of a table.

    Attributes:
        name: the column's name.
        kind: ``number``, ``bool``, ``list`` (a vector per row), ``text`` or ``other``.
        width: values per row: 1 for scalars, ``k`` for a fixed-size list or a
            2-D array, ``None`` for a variable-size list (known once read).
        dtype: the storage type, for ``inspect`` and messages.
    """

    name: str
    kind: str
    width: int | None
    dtype: str


class Table(ABC):
    """A readable table: a label for messages, columns, and a chunk stream."""

    label: str
    columns: tuple[ColumnInfo, ...]
    # The pieces a distributed run may read apart: (file, Parquet row group, rows), in row order;
    # None when the table cannot be split (a CSV's row counts are not known before reading it).
    parts: list[tuple[str, int, int]] | None = None

    @property
    def num_rows(self) -> int | None:
        """The row count when it is known without reading the data."""
        return None

    def column(self, name: str) -> ColumnInfo | None:
        """The column of that exact name, or ``None``."""
        for col in self.columns:
            if col.name == name:
                return col
        return None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @abstractmethod
    def chunks(self, names: Sequence[str], rows: int, convert: Converters | None = None) -> Iterator[Arrays]:
        """Yield the named columns in row order, chunks of about ``rows`` rows.

        Columns are float64 (float32 where the file stores float32 without
        missing values: the consumer widens them); a column named in
        ``convert`` is given to its converter as read instead (``--by`` keys).
        """


class RowShapes:
    """The shape of each column's values per row, fixed for the whole table (SPEC section 2).

    Files or row groups whose list columns have other widths (3 class
    probabilities, then 2), or a column that is a list in one file and a
    number in another, are a data error naming the file, the column, the
    row and both shapes, whatever the chunk size: never averaged together.
    The readers check every piece they yield; a concatenated table checks
    across its files.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[int, ...], str | None]] = {}

    def width(self, name: str) -> int | None:
        """The values per row of a list column seen so far (``None`` before its first piece)."""
        shape = self._seen.get(name, ((),))[0]
        return shape[0] if len(shape) == 1 else None

    def check(self, name: str, values: np.ndarray, label: str, row: int, source: str | None = None) -> None:
        """``values`` (one piece of column ``name``, from ``source`` when the table has several) begin at ``row`` of ``label``."""
        shape = tuple(values.shape[1:])
        seen = self._seen.setdefault(name, (shape, source))
        if seen[0] != shape:
            where = "earlier rows have" if seen[1] == source else f"{seen[1]} has"
            raise DataError(
                f"{label} row {row}: column '{name}' has {_per_row(shape)} where {where} {_per_row(seen[0])}; "
                "a column's width is fixed for the whole table"
            )


def _per_row(shape: tuple[int, ...]) -> str:
    if not shape:
        return "1 value per row"
    if len(shape) == 1:
        return f"{shape[0]} values per row"
    return f"values of shape {shape} per row"


def natural_key(text: str) -> tuple[object, ...]:
    """Sort key that orders embedded numbers by value (``prob_9`` < ``prob_10``)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def rechunk(stream: Iterator[Arrays], rows: int) -> Iterator[Arrays]:
    """Regroup a stream of column chunks into chunks of exactly ``rows`` rows.

    The last chunk may be shorter. Whole chunks inside a piece are views of it;
    only the rows of a chunk that straddles two pieces are copied.
    """
    pending: list[Arrays] = []  # the start of the next chunk, fewer than `rows` rows
    have = 0
    for piece in stream:
        n = _length(piece)
        at = 0
        if pending and n:
            at = min(rows - have, n)
            pending.append(_rows(piece, 0, at))
            have += at
            if have < rows:
                continue
            yield _concat(pending)
            pending, have = [], 0
        while n - at >= rows:
            yield _rows(piece, at, at + rows)
            at += rows
        if at < n:
            pending, have = [_rows(piece, at, n)], n - at
    if pending:
        yield _concat(pending)


def _rows(arrays: Arrays, begin: int, end: int) -> Arrays:
    if begin == 0 and end == _length(arrays):
        return arrays
    return {k: v[begin:end] for k, v in arrays.items()}


def _length(arrays: Arrays) -> int:
    for v in arrays.values():
        return int(v.shape[0])
    return 0


def _concat(pieces: list[Arrays]) -> Arrays:
    if len(pieces) == 1:
        return pieces[0]
    keys = pieces[0].keys()
    return {k: np.concatenate([p[k] for p in pieces]) for k in keys}


def is_pipe(path: str) -> bool:
    """A FIFO or a character device (``/dev/fd/N`` of a shell's process substitution): readable once, front to back."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # missing or unreadable: opening it says which
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def check_unchanged(now: int, size: int, label: str) -> None:
    """Stop with a data error when a file's size ``now`` is no longer its ``size`` when opened (SPEC section 10).

    Touching a page past the end of a file truncated under its map kills the
    process with SIGBUS; the mapped readers call this with the map's current
    size (one ``fstat``) before each chunk they read from it, so a file
    truncated, or grown, while it is read is exit 3. A truncation between
    this check and the read of that very chunk is not caught: the window is
    one chunk's copy.
    """
    if now != size:
        raise DataError(
            f"{label}: the file changed while being read ({size} bytes when opened, {now} now); "
            "read a file that is not being written"
        )


def release_pages(mapped: mmap.mmap, begin: int, end: int) -> int:
    """Drop mapped pages of bytes ``[begin, end)`` from this process (they stay in the page cache).

    Mapped pages of a file count as the process's memory, and the file may be
    larger than memory. Returns the page-aligned end actually released, where
    the next call begins. A page released while still in use is read again.
    """
    end -= end % mmap.PAGESIZE
    if end > begin:
        release_range(mapped, begin, end)
        return end
    return begin


def release_range(mapped: mmap.mmap, begin: int, end: int) -> None:
    """Drop the whole mapped pages inside bytes ``[begin, end)`` from this process (see release_pages)."""
    begin += -begin % mmap.PAGESIZE
    end -= end % mmap.PAGESIZE
    if end > begin and hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_DONTNEED, begin, end - begin)


T = TypeVar("T")
_END = object()


def prefetch(items: Iterator[T], depth: int = 3) -> Iterator[T]:
    """Run ``items`` in a background thread, ``depth`` items ahead of the consumer.

    Decoding (pyarrow releases the GIL while it parses and decompresses)
    then overlaps with the NumPy work of the consumer on the second core.
    Memory grows by at most ``depth`` chunks. An exception in the producer is
    raised in the consumer at the same point of the stream; a consumer that
    stops early stops the producer.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            slots.put(_Failure(exc))

    worker = threading.Thread(target=produce, name="lossctl-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]  # everything else came from `items`
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue, then let it finish. A
        # producer blocked reading (a pipe or FIFO whose writer is idle) never
        # sees ``stop``: after a second it is left to end with the process, so
        # that a signal or an early stop is never held up by a silent input.
        deadline = time.monotonic() + 1.0
        while worker.is_alive() and time.monotonic() < deadline:
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
