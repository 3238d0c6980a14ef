"""Parquet: a file, a directory of files, or a glob, read as one table.

Row groups stream through ``ParquetFile.iter_batches`` with only the needed
columns decoded; files are read in natural order (``part-9`` before ``part-10``).
Local files are read from a memory map; URIs (``s3://...``) through
``pyarrow.fs`` (``lossctl.io.remote``). A table lists its row groups
(``parts``) and :func:`open_parquet_piece` reads some of them alone, with
their global row numbers.
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
from lossctl.io.remote import is_uri, kind, listed, open_input

PARQUET_EXTENSIONS = (".parquet", ".pq", ".parq")
_REMOTE_OPENS = 16


def _is_parquet_name(name: str) -> bool:
    return name.lower().endswith(PARQUET_EXTENSIONS) and not name.startswith((".", "_"))


def parquet_files(path: str) -> list[str]:
    """The files a Parquet argument stands for, in natural order."""
    if is_uri(path):
        if glob.has_magic(path):
            found = listed(path, lambda name: not name.startswith((".", "_")))
            if not found:
                raise DataError(f"{path}: no files match")
            return sorted(found, key=natural_key)
        if kind(path) == "directory":
            found = listed(path, _is_parquet_name)
            if not found:
                raise DataError(f"{path}: directory holds no Parquet files")
            return sorted(found, key=natural_key)
        return [path]
    if os.path.isdir(path):
        found = [
            os.path.join(root, name)
            for root, _, names in os.walk(path)
            for name in names
            if _is_parquet_name(name)
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

    def batches(self, names: Sequence[str], rows: int, row_groups: Sequence[int] | None = None) -> Iterator[pa.RecordBatch]:
        meta = self.file.metadata
        chosen = list(range(meta.num_row_groups)) if row_groups is None else list(row_groups)
        groups = [meta.row_group(i) for i in chosen]
        group, first_row, done = 0, 0, 0
        released: dict[int, int] = {}  # column -> offset released up to, in the current group
        batches = self.file.iter_batches(batch_size=rows, columns=list(names), row_groups=chosen, use_threads=True)
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


class _Remote:
    """A Parquet file read through ``pyarrow.fs`` (footer and column chunks by range requests)."""

    def __init__(self, uri: str) -> None:
        self.file = pq.ParquetFile(open_input(uri), pre_buffer=True, page_checksum_verification=True)

    def batches(self, names: Sequence[str], rows: int, row_groups: Sequence[int] | None = None) -> Iterator[pa.RecordBatch]:
        return self.file.iter_batches(batch_size=rows, columns=list(names), row_groups=row_groups, use_threads=True)

    def close(self) -> None:
        """Nothing held open between reads (the input stream closes with the file object)."""


def _open(path: str) -> _Mapped | _Remote:
    with opening(path):
        return _Remote(path) if is_uri(path) else _Mapped(path)


def _footer(path: str) -> pq.FileMetaData:
    """A file's footer, the file closed again (a dataset may hold more files than a process may open)."""
    with opening(path):
        if is_uri(path):
            return pq.read_metadata(open_input(path))
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
    if len(files) > 1 and is_uri(path):
        # Each remote footer is a round trip or two: fetch them side by side.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(_REMOTE_OPENS, len(files) - 1)) as pool:
            footers += list(pool.map(_footer, files[1:]))
    else:
        footers += [_footer(f) for f in files[1:]]
    for f, footer in zip(files[1:], footers[1:], strict=True):
        names = footer.schema.to_arrow_schema().names
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
    table.parts = [(f, i, m.row_group(i).num_rows) for f, m in zip(files, footers, strict=True) for i in range(m.num_row_groups)]
    if len(files) > 1 or files[0] != path:
        table.files = [(f, m.num_rows) for f, m in zip(files, footers, strict=True)]
    return table


def open_parquet_piece(path: str, row_groups: Sequence[int], label: str, first_row: int) -> ArrowTable:
    """Some row groups of one Parquet file as a table of their own, labelled and numbered as in the whole."""
    pf = _open(path)
    num_rows = sum(pf.file.metadata.row_group(i).num_rows for i in row_groups)

    def batches(names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
        return pf.batches(names, rows, row_groups)

    return ArrowTable(label, pf.file.schema_arrow, batches, num_rows, first_row)
