"""Arrow IPC files and streams (``.arrow``, ``.feather`` v2, ``.ipc``), memory-mapped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from lossctl.io.arrow import READ_ERRORS, ArrowTable, opening, unreadable


def open_ipc_table(path: str) -> ArrowTable:
    """Open an Arrow IPC file (or stream) as a table; batches are sliced to the chunk size."""
    with opening(path):
        source = pa.memory_map(path, "r")
    try:
        reader = pa.ipc.open_file(source)
        schema = reader.schema
        num_rows: int | None = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
        is_file = True
    except READ_ERRORS:
        try:
            source.seek(0)
            schema = pa.ipc.open_stream(source).schema
        except READ_ERRORS as exc:
            raise unreadable(path, exc) from exc
        num_rows, is_file = None, False

    def batches(names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
        src = pa.memory_map(path, "r")
        if is_file:
            rd = pa.ipc.open_file(src)
            parts: Iterator[pa.RecordBatch] = (rd.get_batch(i) for i in range(rd.num_record_batches))
        else:
            parts = iter(pa.ipc.open_stream(src))
        for batch in parts:
            batch = batch.select(list(names))
            for offset in range(0, batch.num_rows, rows):
                yield batch.slice(offset, rows)

    return ArrowTable(path, schema, batches, num_rows)
