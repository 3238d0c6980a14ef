"""CSV / TSV / TXT, plain or gzip/bz2/zstd compressed, or standard input ('-').

Every source is cut the same way into blocks of whole records
(:mod:`lossctl.io.records`: quoted fields with delimiters and line ends,
``\n``, ``\r\n`` and ``\r`` line ends, a BOM), so a file reads exactly as
the same bytes on standard input, whatever the block size. The header and
the first block give the columns and their types; the blocks are parsed on
two threads with only the needed columns decoded, as numbers. A plain file
is read at offsets (never memory-mapped: a truncated file is a data error,
not SIGBUS); a compressed file, a pipe or standard input as a stream.
"""

from __future__ import annotations

import csv as _csv
import os
import re
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from lossctl.errors import DataError, UsageProblem
from lossctl.io.arrow import READ_ERRORS, ArrowTable, opening, shown, unreadable
from lossctl.io.base import check_unchanged, is_pipe
from lossctl.io.records import MAX_RECORD_BYTES, Read, Stream, read_full, records

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


def _prefixed(head: bytes, read: Read) -> Read:
    """``read`` with its already-read first bytes put back in front (they were read for sniffing)."""

    def read_on(size: int) -> bytes:
        nonlocal head
        if head:
            out, head = head[:size], head[size:]
            return out
        return read(size)

    return read_on


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


def _row_error(label: str, exc: BaseException, names: Sequence[str], shift: int) -> DataError:
    """pyarrow's parse or conversion error as lossctl's one line with the 0-based table row.

    pyarrow counts the records it parsed from 1 (blank lines skipped, a
    record with quoted line ends counted once): its ``Row #N`` is table row
    ``N + shift`` (``shift`` is -2 when the header was parsed too, as row #1).
    """
    text = " ".join(str(exc).split())
    m = _ROW.search(text)
    where = f"{label} row {int(m.group(1)) + shift}" if m else label
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


def open_csv_table(path: str, delimiter: str | None = None, max_line_bytes: int = MAX_RECORD_BYTES) -> ArrowTable:
    """Open a delimited text file (or ``-`` for standard input) as a streaming table."""
    label = "<stdin>" if path == "-" else path
    if max_line_bytes < 1:
        raise UsageProblem(f"--max-line-bytes must be a positive number of bytes, not {max_line_bytes}")
    # Standard input and pipes (`<(zcat preds.csv.gz)`) can be read only once, front to back.
    once = path == "-" or is_pipe(path)
    if path == "-" and sys.stdin is None:
        raise DataError("<stdin>: standard input is closed; pipe the CSV in, or name a file")
    with opening(label):
        if once:
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - read to its end below
            sample = read_full(stream.read, _SNIFF_BYTES)
        else:
            with _open_binary(path) as raw:
                sample = read_full(raw.read, _SNIFF_BYTES)
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
    parse = pacsv.ParseOptions(delimiter=sep, newlines_in_values=True)

    def blocks() -> Iterator[memoryview]:
        if once:
            return records(Stream(_prefixed(sample, stream.read)), sep.encode(), BLOCK_SIZE, label, max_line_bytes)
        return _file_records(path, sep.encode(), label, max_line_bytes)

    source = blocks()
    try:
        header = next(source)
        first = next(source, None)
    except DataError:
        raise
    except READ_ERRORS as exc:
        raise unreadable(label, exc) from exc
    schema = _schema(label, header, first, parse)
    state: dict[str, Iterable[memoryview]] = {}
    if once:
        # Standard input goes on from the blocks already read; a file is read again from its start.
        state["held"] = chain([first] if first is not None else [], source)
    else:
        source.close()

    def batches(names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
        held = state.pop("held", None)
        if held is None:
            if once:
                raise DataError(f"{label}: standard input or a pipe can be read only once")
            fresh = blocks()
            next(fresh)  # the header
            held = fresh
        # Only the needed columns, as numbers: a later block with text then
        # fails as a conversion error at its row, and a column that turns
        # from integers to decimals later in the file reads as it should.
        # Boolean columns (true/false labels) stay boolean: as float64 they would fail.
        types = {
            n: pa.bool_() if pa.types.is_boolean(schema.field(n).type) else pa.float64()
            for n in names
            if schema.field(n).type != pa.string()
        }
        convert = pacsv.ConvertOptions(include_columns=list(names), column_types=types)
        yield from _parallel_blocks(held, label, schema.names, parse, convert)

    return ArrowTable(label, schema, batches)


def _schema(label: str, header: memoryview, first: memoryview | None, parse: pacsv.ParseOptions) -> pa.Schema:
    """The columns, their types inferred from the header and the first block."""
    text = bytes(header) + bytes(first) if first is not None else bytes(header)
    if not text.endswith((b"\n", b"\r")):
        text += b"\n"  # a header alone without its line end: pyarrow would see no columns
    options = pacsv.ReadOptions(use_threads=False, block_size=len(text) + 1)
    try:
        return pacsv.read_csv(pa.py_buffer(text), read_options=options, parse_options=parse).schema
    except READ_ERRORS as exc:
        raise _row_error(label, exc, [], -2) from None


class _FileWindow:
    """A plain file read at offsets (``pread``), for :func:`lossctl.io.records.records`.

    The text never stays in memory beyond the blocks in flight, and a file
    that is truncated or grows while it is read is a data error (exit 3),
    never a crash (a memory map would die by SIGBUS on a truncated file).
    """

    def __init__(self, fd: int, path: str) -> None:
        self.fd, self.path = fd, path
        self.size = os.fstat(fd).st_size
        self.offset = 0

    def fetch(self, size: int) -> tuple[bytes, bool]:
        check_unchanged(os.fstat(self.fd).st_size, self.size, self.path)
        want = min(size, self.size - self.offset)
        data = os.pread(self.fd, want, self.offset)
        if len(data) < want:
            check_unchanged(os.fstat(self.fd).st_size, self.size, self.path)
            raise DataError(f"{self.path}: the file changed while being read (it ended early)")
        return data, self.offset + want >= self.size

    def advance(self, end: int) -> None:
        self.offset += end


def _file_records(path: str, delimiter: bytes, label: str, limit: int = MAX_RECORD_BYTES) -> Iterator[memoryview]:
    """The header record, then blocks of whole records, of a file (compressed ones as a stream)."""
    if compression_of(path):
        with _open_binary(path) as source:
            yield from records(Stream(source.read), delimiter, BLOCK_SIZE, label, limit)
        return
    with open(path, "rb") as fh:
        yield from records(_FileWindow(fh.fileno(), path), delimiter, BLOCK_SIZE, label, limit)


_POOL: ThreadPoolExecutor | None = None


def _parse_pool() -> ThreadPoolExecutor:
    """One pool of parse threads for the process: several files reuse the same threads
    (each new thread would keep its own allocator heap, and memory would grow per file)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="lossctl-csv")
    return _POOL


def _parallel_blocks(
    blocks: Iterable[memoryview], label: str, header: Sequence[str], parse: pacsv.ParseOptions, convert: pacsv.ConvertOptions
) -> Iterator[pa.RecordBatch]:
    """Parse blocks of whole records on two threads, yielding batches in file order.

    pyarrow's streaming reader parses one block at a time; its parallel
    ``read_csv`` would hold the whole table. Parsing blocks of whole records
    concurrently (pyarrow releases the GIL) gives the parallel speed with
    memory bounded by the blocks in flight.

    When every column is read as a number, a block is first converted with no
    null markers (the markers are compared with every cell); a block with an
    empty or ``NA`` cell, or any other failure, is converted again with
    pyarrow's markers, so the result is the same either way. A block's
    error names its row in the table: the rows of the blocks before it are
    counted as they are handed out.
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

    def parse_block(block: memoryview) -> pa.Table:
        # The whole block is one pyarrow block: one batch, no record straddles.
        # Serial (use_threads=False): pyarrow then names the row of an error.
        options = pacsv.ReadOptions(column_names=list(header), use_threads=False, block_size=len(block) + 1)
        data = pa.py_buffer(block)
        if fast is not None:
            try:
                return pacsv.read_csv(data, read_options=options, parse_options=parse, convert_options=fast)
            except READ_ERRORS:
                pass
        return pacsv.read_csv(data, read_options=options, parse_options=parse, convert_options=convert)

    pool = _parse_pool()
    pending: deque[Future[pa.Table]] = deque()
    done = 0

    def finished() -> Iterator[pa.RecordBatch]:
        nonlocal done
        try:
            table = pending.popleft().result()
        except READ_ERRORS as exc:
            raise _row_error(label, exc, header, done - 1) from None
        done += table.num_rows
        yield from table.to_batches()

    try:
        for block in blocks:
            pending.append(pool.submit(parse_block, block))
            while len(pending) > PARSE_THREADS:
                yield from finished()
        while pending:
            yield from finished()
    finally:
        for future in pending:
            future.cancel()
        # Let blocks already submitted finish their parse before the file goes.
        for future in pending:
            if not future.cancelled():
                future.exception()
