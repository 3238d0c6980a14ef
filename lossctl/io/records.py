"""Delimited text cut into blocks of whole records, as pyarrow's CSV parser reads them.

A record ends at ``\\n``, ``\\r\\n`` or ``\\r`` outside quotes; a quote opens
a quoted field only at a field's start, ``""`` inside it is one quote, and
the field's text may hold delimiters and line ends (RFC 4180). A block of
whole records can then be parsed on its own, on any thread, and a file reads
the same from disk as from standard input, whatever the block size.

Finding the last record end of a block costs, by what the block holds:

- no quote at all (numeric files): the last line end (``memrchr``);
- well-formed quoting: the parity of the quotes before each line end, with
  every quote checked to sit where RFC 4180 puts it (NumPy, a few ms a block);
- anything else (a quote inside an unquoted field, text after a closing
  quote): an exact scan with a regular expression of pyarrow's rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Protocol

import numpy as np

from lossctl.errors import DataError

QUOTE = ord('"')
MAX_RECORD_BYTES = 64 << 20  # a record (line) longer than this is a data error (SPEC section 10)


@lru_cache(maxsize=8)
def _exact(delimiter: bytes) -> re.Pattern[bytes]:
    """Whole records from the start of the text, by pyarrow's rules (possessive: never backtracks)."""
    d = re.escape(delimiter)
    field = rb'(?:"(?:[^"]|"")*+"[^' + d + rb"\r\n]*+|[^\"" + d + rb"\r\n][^" + d + rb"\r\n]*+)?+"
    record = field + rb"(?:" + d + field + rb")*+(?:\r\n|\n|\r)"
    return re.compile(rb"(?:" + record + rb")*+")


@lru_cache(maxsize=8)
def _header(delimiter: bytes) -> re.Pattern[bytes]:
    """A BOM and blank lines, then the first record (the header)."""
    records = _exact(delimiter).pattern
    one = records[len(b"(?:") : -len(b")*+")]
    return re.compile(rb"(?:\xef\xbb\xbf)?[\r\n]*+(?=[^\r\n])" + one)


def header_end(data: bytes, delimiter: bytes) -> int:
    """Offset after the header record (BOM and blank lines before it included); 0 when it does not end in ``data``."""
    m = _header(delimiter).match(data)
    return m.end() if m else 0


def records_end(data: bytes, delimiter: bytes) -> int:
    """Offset after the last whole record of ``data`` (which starts at a record's start); 0 when none ends in it."""
    if data.find(b'"') < 0:
        newline = data.rfind(b"\n")
        return max(newline, data.rfind(b"\r", newline + 1)) + 1  # a \r after the last \n: only the tail is searched
    end = _parity_end(data, delimiter)
    if end is None:
        m = _exact(delimiter).match(data)
        end = m.end() if m else 0
    return end


def _parity_end(data: bytes, delimiter: bytes) -> int | None:
    """The last record end by the parity of quotes, or ``None`` when a quote is not where RFC 4180 puts it."""
    text = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(text == QUOTE)
    # The last line end with an even number of quotes before it (each search goes on where the last stopped).
    newline, carriage = data.rfind(b"\n"), data.rfind(b"\r")
    while True:
        at = max(newline, carriage)
        if at < 0:
            return 0
        if int(np.searchsorted(quotes, at)) % 2 == 0:
            break
        if at == newline:
            newline = data.rfind(b"\n", 0, at)
        else:
            carriage = data.rfind(b"\r", 0, at)
    end = at + 1
    quotes = quotes[: np.searchsorted(quotes, end)]
    if not quotes.size:
        return end
    # Under parity, even quotes open a field and odd ones close it, except that a
    # closing quote followed at once by another is one escaped quote (""): the
    # pair leaves the field open. Every opening quote must start a field and
    # every closing one end it, or the parity says nothing about the state.
    odd = np.zeros(quotes.size, dtype=bool)
    odd[1::2] = True
    pair = np.zeros(quotes.size, dtype=bool)
    pair[:-1] = odd[:-1] & (quotes[1:] == quotes[:-1] + 1)
    second = np.zeros(quotes.size, dtype=bool)
    second[1:] = pair[:-1]
    opening = quotes[~odd & ~second]
    closing = quotes[odd & ~pair]  # never the last byte: a line end follows it
    before = text[opening[opening > 0] - 1]
    after = text[closing + 1]
    sep = delimiter[0]
    if _all_ends(before, sep) and _all_ends(after, sep):
        return end
    return None


def _all_ends(chars: np.ndarray, sep: int) -> bool:
    """Whether every byte is a line end or the delimiter."""
    return bool(((chars == 10) | (chars == 13) | (chars == sep)).all())


Read = Callable[[int], bytes]


class Stream:
    """A stream read front to back (standard input, a pipe, a decompressor): the window is the bytes not yet handed out."""

    def __init__(self, read: Read) -> None:
        self._read = read
        self._data = b""
        self._eof = False

    def fetch(self, size: int) -> tuple[bytes, bool]:
        """The next ``size`` bytes not handed out (fewer at the end), read as needed; and whether the stream ended."""
        missing = size - len(self._data)
        if not self._eof and missing > 0:
            more = read_full(self._read, missing)
            self._eof = len(more) < missing
            self._data = self._data + more if self._data else more
        return self._data, self._eof

    def advance(self, end: int) -> None:
        self._data = self._data[end:]


def read_full(read: Read, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end of the stream."""
    data = read(size)
    if len(data) < size and data:
        parts = [data]
        have = len(data)
        while have < size:
            more = read(size - have)
            if not more:
                break
            parts.append(more)
            have += len(more)
        data = b"".join(parts)
    return data


class Window(Protocol):
    """What :func:`records` reads from: a :class:`Stream`, or a file read at offsets."""

    def fetch(self, size: int) -> tuple[bytes, bool]: ...

    def advance(self, end: int) -> None: ...


def records(window: Window, delimiter: bytes, block_size: int, label: str, limit: int = MAX_RECORD_BYTES) -> Iterator[memoryview]:
    """The header record, then blocks of whole data records of about ``block_size`` bytes.

    The first item is the header (with any BOM and blank lines before it;
    empty for an empty input); the last block holds whatever is left, a
    last record without a line end included. Each block is cut from a
    window that starts at a record's start, so the cuts, and every result,
    are the same for a file and a stream. A record that does not end within
    ``limit`` bytes of its start is a data error (``--max-line-bytes``); a
    record longer than a block is read in growing windows up to it.
    """
    block_size = min(block_size, limit)  # then no record in a window's middle can pass the limit
    header, want = True, block_size
    while True:
        data, eof = window.fetch(want)
        if header:
            end = header_end(data, delimiter) or (len(data) if eof else 0)
        else:
            end = len(data) if eof else records_end(data, delimiter)
        if end or eof:
            if header or end:
                yield memoryview(data)[:end]
            window.advance(end)
            if eof and end == len(data):
                return
            header, want = False, block_size
            continue
        if len(data) >= limit:
            raise too_long(label, limit)
        want = min(2 * want, limit)


def too_long(label: str, limit: int) -> DataError:
    return DataError(
        f"{label}: a line (record) is longer than {limit:,} bytes (--max-line-bytes); "
        "check the quoting (an unclosed quote joins every line after it)"
    )
