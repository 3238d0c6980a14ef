"""Arrow-backed tables (CSV, Parquet, IPC, JSON Lines) and Arrow → NumPy conversion."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from lossctl.errors import DataError
from lossctl.io.base import Arrays, ColumnInfo, Converters, RowShapes, Table

BatchSource = Callable[[Sequence[str], int], Iterator[pa.RecordBatch]]


def column_info(field: pa.Field) -> ColumnInfo:
    """Describe an Arrow field as a lossctl column."""
    t = field.type
    if pa.types.is_fixed_size_list(t):
        return ColumnInfo(field.name, "list", t.list_size, str(t))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return ColumnInfo(field.name, "list", None, str(t))
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return ColumnInfo(field.name, "number", 1, str(t))
    if pa.types.is_boolean(t):
        return ColumnInfo(field.name, "bool", 1, str(t))
    if pa.types.is_null(t):
        return ColumnInfo(field.name, "number", 1, str(t))
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return ColumnInfo(field.name, "text", 1, str(t))
    return ColumnInfo(field.name, "other", 1, str(t))


def schema_columns(schema: pa.Schema) -> tuple[ColumnInfo, ...]:
    return tuple(column_info(f) for f in schema)


_NUMPY_TYPES = {
    pa.int8().id: np.int8, pa.int16().id: np.int16, pa.int32().id: np.int32, pa.int64().id: np.int64,
    pa.uint8().id: np.uint8, pa.uint16().id: np.uint16, pa.uint32().id: np.uint32, pa.uint64().id: np.uint64,
    pa.float32().id: np.float32,
}


def _primitive_view(array: pa.Array, dtype: type[np.generic]) -> np.ndarray:
    """The values buffer of a primitive Arrow array without nulls, as NumPy (zero-copy)."""
    offset, n = array.offset, len(array)
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=offset + n)[offset:]


def float64_view(array: pa.Array) -> np.ndarray:
    """A float64 Arrow array as NumPy, zero-copy when it has no nulls; nulls become NaN.

    Read from the buffers directly: ``Array.to_numpy`` imports pandas on
    first use, which costs a quarter of a second of start-up.
    """
    n, offset = len(array), array.offset
    buffers = array.buffers()
    if len(buffers) < 2 or buffers[1] is None:  # the null type: no values at all
        return np.full(n, np.nan)
    validity, data = buffers[0], buffers[1]
    values = np.frombuffer(data, dtype=np.float64, count=offset + n)[offset:]
    if array.null_count:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        values = np.where(bits[offset : offset + n].astype(bool), values, np.nan)
    return values


def to_numpy(array: pa.Array | pa.ChunkedArray, label: str, name: str, start: int, width: int | None = None) -> np.ndarray:
    """Convert one Arrow column chunk to a float64 (n,) or (n, k) array.

    Float32 values without nulls stay float32 (zero-copy): the consumer
    widens them when it computes (``lossctl.chunks``, ``Batch.y_pred``).
    Nulls become NaN (the ``--nan`` policy decides what happens to them);
    text and ragged lists are data errors naming the file, column and row.
    ``width``: the values per row of a list column in the rows before.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    t = array.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_null(t) or pa.types.is_decimal(t):
        if pa.types.is_float32(t) and not array.null_count:
            return _primitive_view(array, np.float32)
        if not pa.types.is_float64(t):
            native = _NUMPY_TYPES.get(t.id)
            if native is not None and not array.null_count:
                # Integers (class labels): widen in NumPy, not through pyarrow.compute.
                return _primitive_view(array, native).astype(np.float64)
            array = array.cast(pa.float64())
        return float64_view(array)
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        return _list_to_numpy(array, label, name, start, width)
    if pa.types.is_dictionary(t):
        return to_numpy(array.dictionary_decode(), label, name, start)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _text_to_numpy(array, label, name, start)
    raise DataError(f"{label}: column '{name}' has type {t}, which is not numeric")


def _text_to_numpy(array: pa.Array, label: str, name: str, start: int) -> np.ndarray:
    # A CSV column that pyarrow typed as text: accept numbers written as text
    # (and empty cells as missing), otherwise name the first bad row.
    import pyarrow.compute as pc  # only for text columns: its import costs 50 ms

    stripped = pc.utf8_trim_whitespace(array)
    empty = pc.equal(stripped, "")
    cleaned = pc.if_else(empty, pa.scalar(None, pa.string()), stripped)
    try:
        return cleaned.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Error path only: find the first value Arrow itself cannot read (Python's
    # float() is more lenient, e.g. with non-ASCII digits, so it cannot judge).
    for i, value in enumerate(cleaned.to_pylist()):
        if value is None:
            continue
        try:
            pa.array([value], pa.string()).cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(
                f"{label} row {start + i}: column '{name}' holds non-numeric value {shown(value)}"
            ) from None
    raise DataError(f"{label}: column '{name}' is not numeric")


def _list_to_numpy(array: pa.Array, label: str, name: str, start: int, width: int | None) -> np.ndarray:
    n = len(array)
    if array.null_count:
        first = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{label} row {start + first}: column '{name}' is null")
    if pa.types.is_fixed_size_list(array.type):
        width = array.type.list_size
        values = array.flatten()
    else:
        offsets = array.offsets
        lengths = np.diff(_primitive_view(offsets, np.int64 if pa.types.is_large_list(array.type) else np.int32))
        if width is None:
            width = int(lengths[0]) if n else 0
        bad = np.flatnonzero(lengths != width)
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"{label} row {start + i}: column '{name}' has {int(lengths[i])} values "
                f"where earlier rows have {width}"
            )
        values = array.flatten()
    flat = to_numpy(values, label, name, start)
    if flat.ndim != 1:
        raise DataError(f"{label}: column '{name}' is a list of lists; expected a list of numbers")
    return flat.reshape(n, width)


class ArrowTable(Table):
    """A table whose chunks come from an Arrow record-batch source.

    ``first_row``: the row number of its first row in a larger table (a
    piece of a dataset read on its own), so that messages name global rows.
    """

    def __init__(
        self, label: str, schema: pa.Schema, batches: BatchSource, num_rows: int | None = None, first_row: int = 0
    ) -> None:
        self.label = label
        self.schema = schema
        self.columns = schema_columns(schema)
        self._batches = batches
        self._num_rows = num_rows
        self.first_row = first_row
        self.files: list[tuple[str, int]] = []  # (file, rows) of a table read from several files

    @property
    def num_rows(self) -> int | None:
        return self._num_rows

    def chunks(self, names: Sequence[str], rows: int, convert: Converters | None = None) -> Iterator[Arrays]:
        convert = convert or {}
        for name in dict.fromkeys(names):
            count = len(self.schema.get_all_field_indices(name))
            if count > 1:
                # Which of the two would be read is arbitrary: refuse rather than guess.
                raise DataError(f"{self.label}: column '{name}' appears {count} times; give the columns distinct names")
        start = self.first_row
        shapes = RowShapes()
        for batch in guarded(self.label, self._batches(names, rows)):
            out: Arrays = {}
            for name in names:
                special = convert.get(name)
                column = batch.column(name)
                if special is None:
                    source = self.source_of(start - self.first_row)
                    label = self.label if source is None else f"{self.label} ({source})"
                    values = to_numpy(column, label, name, start, shapes.width(name))
                    shapes.check(name, values, label, start, source)
                    out[name] = values
                else:
                    out[name] = special(column, start)
            start += batch.num_rows
            yield out

    def source_of(self, row: int) -> str | None:
        """The file that holds ``row`` when the table spans several (a Parquet directory or glob)."""
        first = 0
        for path, count in self.files:
            first += count
            if row < first:
                return path
        return None


READ_ERRORS = (pa.ArrowException, OSError, ValueError, EOFError)


def shown(text: str, limit: int = 60) -> str:
    """File content quoted for a message: one line, control characters escaped, cut at ``limit``."""
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def unreadable(label: str, exc: BaseException) -> DataError:
    """A DataError for a file that cannot be read, with the reader's reason on one line."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    reason = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in reason)
    if len(reason) > 200:
        reason = reason[:200] + "…"
    return DataError(f"{label}: cannot read: {reason}")


@contextlib.contextmanager
def opening(label: str) -> Iterator[None]:
    """Failures to open or start reading a file as one-line DataErrors (missing, not permitted, unreadable)."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{label}: no such file") from None
    except PermissionError:
        raise DataError(f"{label}: permission denied") from None
    except READ_ERRORS as exc:
        raise unreadable(label, exc) from exc


def guarded(label: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Re-raise reader failures in the middle of a file as one-line DataErrors."""
    try:
        yield from batches
    except DataError:
        raise
    except READ_ERRORS as exc:
        raise unreadable(label, exc) from exc
