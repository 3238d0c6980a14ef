"""Parquet: a file, a directory of files, or a glob, read as one table.

Row groups stream through ``ParquetFile.iter_batches`` with only the needed
columns decoded; files are read in natural order (``part-9`` before ``part-10``).
"""

from __future__ import annotations

import glob
import mmap
import os
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from lossctl.errors import DataError
from lossctl.io.arrow import READ_ERRORS, ArrowTable, unreadable
from lossctl.io.base import natural_key, release_pages

PARQUET_EXTENSIONS = (".parquet", ".pq", ".parq")


def parquet_files(path: str) -> list[str]:
    """The files a Parquet argument stands for, in natural order."""
    if os.path.isdir(path):
        found = [
            os.path.join(root, name)
            for root, _, names in os.walk(path)
            for name in names
            if name.lower().endswith(PARQUET_EXTENSIONS) and not name.startswith((".", "_"))
        ]
        if not found:
            raise DataError(f"{path}: directory holds no Parquet files")
        return sorted(found, key=natural_key)
    if glob.has_magic(path):
        found = [p for p in glob.glob(path, recursive=True) if os.path.isfile(p)]
        if not found:
            raise DataError(f"{path}: no files match")
        return sorted(found, key=natural_key)
    return [path]


class _Mapped:
    """A Parquet file read from a memory map, its pages handed back as the rows stream past.

    Reads are zero-copy slices of the map (no read calls, no read buffer to
    copy through); the pages of row groups already decoded are released, so
    the mapped file does not accumulate in memory.
    """

    def __init__(self, path: str) -> None:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            # mmap refuses an empty file; pyarrow then names what is wrong.
            self.map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        source = pa.BufferReader(pa.py_buffer(self.map)) if self.map is not None else path
        # Page checksums, when the writer stored them, are verified: a flipped
        # byte in the data then fails the read instead of changing a number.
        self.file = pq.ParquetFile(source, pre_buffer=False, page_checksum_verification=True)

    def batches(self, names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
        meta = self.file.metadata
        # (last row + 1, first byte) of each row group: once the rows of group i
        # are out, every byte before group i + 1 has been decoded.
        ends: list[tuple[int, int]] = []
        total = 0
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            total += group.num_rows
            after = meta.row_group(i + 1) if i + 1 < meta.num_row_groups else None
            ends.append((total, _first_byte(after) if after is not None else 0))
        done = released = 0
        group = 0
        for batch in self.file.iter_batches(batch_size=rows, columns=list(names), use_threads=True):
            done += batch.num_rows
            while group < len(ends) and done >= ends[group][0]:
                if self.map is not None and ends[group][1]:
                    released = release_pages(self.map, released, ends[group][1])
                group += 1
            yield batch


def _first_byte(group: pq.RowGroupMetaData) -> int:
    return min(
        min(c.data_page_offset, c.dictionary_page_offset or c.data_page_offset)
        for c in (group.column(j) for j in range(group.num_columns))
    )


def _open(path: str) -> _Mapped:
    try:
        return _Mapped(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except READ_ERRORS as exc:
        raise unreadable(path, exc) from exc


def open_parquet_table(path: str) -> ArrowTable:
    """Open a Parquet file, directory or glob as a streaming table."""
    files = parquet_files(path)
    opened = [_open(f) for f in files]
    schema: pa.Schema = opened[0].file.schema_arrow
    for f, pf in zip(files[1:], opened[1:], strict=True):
        if pf.file.schema_arrow.names != schema.names:
            raise DataError(
                f"{f}: columns {', '.join(pf.file.schema_arrow.names)} differ from "
                f"{files[0]}: {', '.join(schema.names)}"
            )
    num_rows = sum(pf.file.metadata.num_rows for pf in opened)

    def batches(names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
        for pf in opened:
            yield from pf.batches(names, rows)

    label = path if len(files) > 1 or files[0] != path else path
    return ArrowTable(label, schema, batches, num_rows)
