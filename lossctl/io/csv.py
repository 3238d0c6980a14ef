"""CSV / TSV / TXT, plain or gzip/bz2/zstd compressed, or standard input ('-').

The header and the first block are read with pyarrow's streaming reader (to
learn the columns and their types). A file is then read again in blocks of
whole lines, memory-mapped when it is not compressed, parsed on two threads,
with only the needed columns decoded. Standard input streams through
pyarrow's reader as it is.
"""

from __future__ import annotations

import csv as _csv
import io
import os
import re
import stat
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from lossctl.errors import DataError
from lossctl.io.arrow import READ_ERRORS, ArrowTable, shown, unreadable
from lossctl.io.base import check_unchanged

BLOCK_SIZE = 1 << 22
PARSE_THREADS = 2
COMPRESSION = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}
_SNIFF_BYTES = 1 << 16


def compression_of(path: str) -> str | None:
    lower = path.lower()
    for ext, codec in COMPRESSION.items():
        if lower.endswith(ext):
            return codec
    return None


def _open_binary(path: str) -> BinaryIO:
    codec = compression_of(path)
    stream = pa.input_stream(path, compression=codec) if codec else pa.OSFile(path, "rb")
    return stream  # type: ignore[return-value]  # pyarrow NativeFile is file-like


class _Prefixed(io.RawIOBase):
    """Standard input with its already-read first bytes put back in front (for sniffing)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # RawIOBase protocol
        view = memoryview(buffer)
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _sniff(sample: bytes, path: str) -> str:
    lower = path.lower()
    for ext in (".gz", ".gzip", ".bz2", ".zst", ".zstd"):
        if lower.endswith(ext):
            lower = lower[: -len(ext)]
    if lower.endswith(".tsv") or lower.endswith(".tab"):
        return "\t"
    text = sample.decode("utf-8", errors="replace")
    lines = text.splitlines()[:50]
    if len(lines) > 1 and not text.endswith("\n"):
        lines = lines[:-1]
    head = "\n".join(lines)
    if lower.endswith(".csv") and "," in (lines[0] if lines else ""):
        return ","
    try:
        return _csv.Sniffer().sniff(head, delimiters=",\t;| ").delimiter
    except _csv.Error:
        return ","


_ROW = re.compile(r"Row #(\d+)")
_COLUMN = re.compile(r"In CSV column #(\d+)")
_VALUE = re.compile(r"invalid value '(.*)'$")
_FIELDS = re.compile(r"Expected (\d+) columns, got (\d+)(?:: (.*))?$")


def _row_error(label: str, exc: BaseException, names: Sequence[str]) -> DataError:
    """pyarrow's parse or conversion error as lossctl's one line with the 0-based table row.

    pyarrow counts non-empty lines from 1 with the header as row 1, so the
    first data row is ``Row #2``: table row = N - 2.
    """
    text = " ".join(str(exc).split())
    m = _ROW.search(text)
    where = f"{label} row {int(m.group(1)) - 2}" if m else label
    if "conversion error" in text:
        c = _COLUMN.search(text)
        index = int(c.group(1)) if c else -1
        column = f"column '{names[index]}'" if 0 <= index < len(names) else "a column"
        v = _VALUE.search(text)
        value = f" {shown(v.group(1))}" if v else ""
        return DataError(f"{where}: {column} holds non-numeric value{value}")
    f = _FIELDS.search(text)
    if f:
        expected, got, line = f.group(1), f.group(2), f.group(3)
        quoted = f" ({shown(line)})" if line else ""
        return DataError(
            f"{where}: {got} fields where the header has {expected}{quoted}; check the delimiter (--delimiter) and quoting"
        )
    return unreadable(where, exc)


def _not_utf8(sample: bytes) -> int | None:
    """Offset of the first byte that is not UTF-8, ignoring a character cut at the sample's end."""
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(sample) < _SNIFF_BYTES or exc.start < len(sample) - 4:
            return int(exc.start)
    return None


def _is_pipe(path: str) -> bool:
    """A FIFO or a character device (``/dev/fd/N`` of a shell's process substitution)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # missing or unreadable: opening it says which
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def open_csv_table(path: str, delimiter: str | None = None) -> ArrowTable:
    """Open a delimited text file (or ``-`` for standard input) as a streaming table."""
    label = "<stdin>" if path == "-" else path
    # Standard input and pipes (`<(zcat preds.csv.gz)`) can be read only once, front to back.
    once = path == "-" or _is_pipe(path)
    if path == "-" and sys.stdin is None:
        raise DataError("<stdin>: standard input is closed; pipe the CSV in, or name a file")
    try:
        if once:
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - read to its end by pyarrow
            sample = stream.read(_SNIFF_BYTES)
            raw: BinaryIO = _Prefixed(sample, stream)
        else:
            raw = _open_binary(path)
            sample = raw.read(_SNIFF_BYTES)
            raw.close()
            raw = _open_binary(path)
    except FileNotFoundError:
        raise DataError(f"{label}: no such file") from None
    except PermissionError:
        raise DataError(f"{label}: permission denied") from None
    except READ_ERRORS as exc:
        raise unreadable(label, exc) from exc
    if b"\x00" in sample:
        raise DataError(f"{label}: not a text file (binary data); pass --input-format if the extension is wrong")
    bad = _not_utf8(sample)
    if bad is not None:
        raise DataError(
            f"{label}: not UTF-8 text (byte {bad}); lossctl reads UTF-8 CSV: convert the file, "
            "or pass --input-format if it is not CSV"
        )
    if not sample.strip():
        raise DataError(f"{label}: empty file (no header)")
    sep = delimiter or _sniff(sample, path)
    parse = pacsv.ParseOptions(delimiter=sep)
    # Serial reading (use_threads=False) is what makes pyarrow put "Row #N" in
    # its errors; the first block is read this way, the rest with threads.
    serial = pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=False)
    try:
        first = pacsv.open_csv(raw, read_options=serial, parse_options=parse)
    except READ_ERRORS as exc:
        raise _row_error(label, exc, []) from None
    schema = first.schema

    def locate(exc: BaseException, convert: pacsv.ConvertOptions | None) -> DataError:
        # Error path only: the threaded reader leaves the row out, so read the
        # file again serially up to the same error to learn its row.
        if not once and not _ROW.search(str(exc)):
            try:
                for _ in pacsv.open_csv(_open_binary(path), read_options=serial, parse_options=parse, convert_options=convert):
                    pass
            except READ_ERRORS as again:
                exc = again
        return _row_error(label, exc, schema.names)

    state = {"first": first}

    def batches(names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
        reader = state.pop("first", None)
        if not once:
            if reader is not None:
                reader.close()
            # Reopen decoding only the needed columns, as numbers: a later
            # block with text then fails as a conversion error at its row.
            # Boolean columns (true/false labels) stay boolean: as float64 they would fail.
            types = {
                n: pa.bool_() if pa.types.is_boolean(schema.field(n).type) else pa.float64()
                for n in names
                if schema.field(n).type != pa.string()
            }
            convert: pacsv.ConvertOptions | None = pacsv.ConvertOptions(include_columns=list(names), column_types=types)
            reader = _parallel_blocks(path, schema.names, parse, convert)
        elif reader is None:
            raise DataError(f"{label}: standard input or a pipe can be read only once")
        else:
            convert = None
        try:
            for batch in reader:
                yield batch
        except READ_ERRORS as exc:
            raise locate(exc, convert) from None

    return ArrowTable(label, schema, batches)


_POOL: ThreadPoolExecutor | None = None


def _parse_pool() -> ThreadPoolExecutor:
    """One pool of parse threads for the process: several files reuse the same threads
    (each new thread would keep its own allocator heap, and memory would grow per file)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="lossctl-csv")
    return _POOL


class _Blocks:
    """A file's data lines (the header dropped) as blocks of whole lines, about BLOCK_SIZE bytes each.

    A plain file is read block by block at known offsets (``pread``): the
    text never stays in memory beyond the blocks in flight, and a file that
    is truncated or grows while it is read is a data error (exit 3), never a
    crash (a memory map would die by SIGBUS on a truncated file). A
    compressed file is read as a stream, a partial last line carried into
    the next block.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def __iter__(self) -> Iterator[tuple[pa.Buffer, int]]:
        """``(block, end)``: ``end`` is the file offset after the block (0 for a stream)."""
        if compression_of(self.path):
            yield from self._streamed()
            return
        with open(self.path, "rb") as fh:
            fd = fh.fileno()
            size = os.fstat(fd).st_size
            start = self._data_start(fd, size)
            while start < size:
                check_unchanged(os.fstat(fd).st_size, size, self.path)
                want = min(BLOCK_SIZE, size - start)
                while True:
                    data = os.pread(fd, want, start)
                    if len(data) < want:
                        check_unchanged(os.fstat(fd).st_size, size, self.path)
                        raise DataError(f"{self.path}: the file changed while being read (it ended early)")
                    cut = len(data) if start + want >= size else data.rfind(b"\n") + 1
                    if cut:
                        break
                    want = min(2 * want, size - start)  # a line longer than a block: the block ends with it
                yield pa.py_buffer(memoryview(data)[:cut]), start + cut
                start += cut

    def _data_start(self, fd: int, size: int) -> int:
        """The offset after the header line (blank lines before it skipped)."""
        data = b""
        while len(data) < size:
            more = os.pread(fd, BLOCK_SIZE, len(data))
            if not more:
                break
            data += more
            first = len(data) - len(data.lstrip(b"\r\n"))
            if first < len(data):
                newline = data.find(b"\n", first)
                if newline >= 0:
                    return newline + 1
        return size

    def _streamed(self) -> Iterator[tuple[pa.Buffer, int]]:
        with _open_binary(self.path) as source:
            data = b""
            while True:  # up to the end of the header line, blank lines before it dropped
                more = source.read(BLOCK_SIZE)
                data = (data + more).lstrip(b"\r\n")
                if not more or b"\n" in data:
                    break
            head = data.split(b"\n", 1)[1] if b"\n" in data else b""
            while True:
                data = source.read(BLOCK_SIZE)
                if not data:
                    if head.strip():
                        yield pa.py_buffer(head), 0
                    return
                data = head + data
                cut = data.rfind(b"\n") + 1
                head = data[cut:]
                if cut:
                    yield pa.py_buffer(memoryview(data)[:cut]), 0


def _parallel_blocks(
    path: str, header: Sequence[str], parse: pacsv.ParseOptions, convert: pacsv.ConvertOptions
) -> Iterator[pa.RecordBatch]:
    """Parse a CSV file in line-aligned blocks on two threads, yielding batches in file order.

    pyarrow's streaming reader parses one block at a time; its parallel
    ``read_csv`` would hold the whole table. Cutting the bytes at line ends and
    parsing blocks concurrently (pyarrow releases the GIL) gives the parallel
    speed with memory bounded by the blocks in flight. Like pyarrow's own
    default (``newlines_in_values=False``), a newline always ends a row.

    When every column is read as a number, a block is first converted with no
    null markers (the markers are compared with every cell); a block with an
    empty or ``NA`` cell, or any other failure, is converted again with
    pyarrow's markers, so the result is the same either way.
    """
    numeric = convert.column_types and set(convert.column_types) >= set(convert.include_columns)
    fast = (
        pacsv.ConvertOptions(
            include_columns=convert.include_columns,
            column_types=convert.column_types,
            null_values=[],
            quoted_strings_can_be_null=False,
        )
        if numeric
        else None
    )

    def parse_block(block: pa.Buffer) -> pa.Table:
        # The whole block is one pyarrow block: one batch, no line straddles.
        options = pacsv.ReadOptions(column_names=list(header), use_threads=False, block_size=block.size + 1)
        if fast is not None:
            try:
                return pacsv.read_csv(block, read_options=options, parse_options=parse, convert_options=fast)
            except READ_ERRORS:
                pass
        try:
            return pacsv.read_csv(block, read_options=options, parse_options=parse, convert_options=convert)
        except READ_ERRORS as exc:
            # Its row number counts from this block's start: drop it, so that
            # the caller reads the file serially to name the row in the table.
            raise ValueError(_ROW.sub("", str(exc))) from exc

    pool = _parse_pool()
    pending: deque[Future[pa.Table]] = deque()
    try:
        for block, _end in _Blocks(path):
            pending.append(pool.submit(parse_block, block))
            while len(pending) > PARSE_THREADS:
                yield from _finished(pending)
        while pending:
            yield from _finished(pending)
    finally:
        for future in pending:
            future.cancel()
        # Let blocks already submitted finish their parse before the file goes.
        for future in pending:
            if not future.cancelled():
                future.exception()


def _finished(pending: deque[Future[pa.Table]]) -> Iterator[pa.RecordBatch]:
    table = pending.popleft().result()
    yield from table.to_batches()
