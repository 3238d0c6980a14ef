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
from lossctl.io.arrow import ArrowTable, opening
from lossctl.io.base import check_unchanged, natural_key, release_range

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
        self.path, self.size = path, size
        source = pa.BufferReader(pa.py_buffer(self.map)) if self.map is not None else path
        # Page checksums, when the writer stored them, are verified: a flipped
        # byte in the data then fails the read instead of changing a number.
        self.file = pq.ParquetFile(source, pre_buffer=False, page_checksum_verification=True)

    def batches(self, names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
        meta = self.file.metadata
        groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
        group, first_row, done = 0, 0, 0
        released: dict[int, int] = {}  # column -> offset released up to, in the current group
        batches = self.file.iter_batches(batch_size=rows, columns=list(names), use_threads=True)
        while True:
            # pyarrow reads the next pages from the map in the next step: the file must still be whole.
            if self.map is not None:
                check_unchanged(self.map.size(), self.size, self.path)
            batch = next(batches, None)
            if batch is None:
                break
            done += batch.num_rows
            if self.map is not None:
                while group < len(groups) and done >= first_row + groups[group].num_rows:
                    _release_columns(self.map, groups[group], 1.0, released)
                    released.clear()
                    first_row += groups[group].num_rows
                    group += 1
                if group < len(groups):
                    share = (done - first_row) / max(groups[group].num_rows, 1)
                    _release_columns(self.map, groups[group], share, released)
            yield batch
        if self.map is not None:
            release_range(self.map, 0, len(self.map))

    def close(self) -> None:
        """Unmap the file (its descriptor goes with the map); batches still in use keep what they need."""
        self.file = None  # type: ignore[assignment]  # closed: never read again
        if self.map is not None:
            try:
                self.map.close()
            except BufferError:  # a batch still views the map: it goes with the last view
                pass


# Column chunks are decoded front to back as the rows come out; what lies
# behind, a margin short of the estimated decoding point (pages are decoded
# whole, a little ahead of the rows handed out), is handed back in steps of
# at least _STEP bytes: each release is a system call that also flushes the
# other core's address translations. Narrow chunks wait for the group's end.
_MARGIN = 4 << 20
_STEP = 16 << 20


def _release_columns(mapped: mmap.mmap, group: pq.RowGroupMetaData, share: float, released: dict[int, int]) -> None:
    """Release the first ``share`` of every column chunk of a row group (all of it at 1.0)."""
    for j in range(group.num_columns):
        chunk = group.column(j)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        end = start + chunk.total_compressed_size
        if share < 1.0:
            end = start + int(share * chunk.total_compressed_size) - _MARGIN
        begin = released.get(j, start)
        if share >= 1.0 or end - begin >= _STEP:
            release_range(mapped, begin, end)
            released[j] = end


def _open(path: str) -> _Mapped:
    with opening(path):
        return _Mapped(path)


def _footer(path: str) -> pq.FileMetaData:
    """A file's footer, the file closed again (a dataset may hold more files than a process may open)."""
    with opening(path):
        return pq.read_metadata(path)


def open_parquet_table(path: str) -> ArrowTable:
    """Open a Parquet file, directory or glob as a streaming table.

    Every footer is read (the schemas must agree, the row counts add up),
    but a file is opened for its rows only when they are read, and closed
    after them: one file open at a time, however many the dataset holds.
    """
    files = parquet_files(path)
    first = _open(files[0])
    schema: pa.Schema = first.file.schema_arrow
    footers = [first.file.metadata]
    first.close()
    for f in files[1:]:
        footers.append(_footer(f))
        names = footers[-1].schema.to_arrow_schema().names
        if names != schema.names:
            raise DataError(f"{f}: columns {', '.join(names)} differ from {files[0]}: {', '.join(schema.names)}")
    num_rows = sum(m.num_rows for m in footers)

    def batches(names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
        for f in files:
            pf = _open(f)
            try:
                yield from pf.batches(names, rows)
            finally:
                pf.close()

    table = ArrowTable(path, schema, batches, num_rows)
    if len(files) > 1 or files[0] != path:
        table.files = [(f, m.num_rows) for f, m in zip(files, footers, strict=True)]
    return table
