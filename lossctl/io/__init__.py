"""Readers: one module per format family, chosen by extension (SPEC section 2).

``open_table(paths)`` returns one :class:`~lossctl.io.base.Table` for one or
several FILE arguments (several files are one concatenated table). A path
with a scheme (``s3://``, ``gs://``, ``hdfs://``, ``file://``) is read
through ``pyarrow.fs`` (``lossctl.io.remote``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence

from lossctl.errors import DataError, UsageProblem
from lossctl.io import remote
from lossctl.io.base import (
    Arrays,
    ColumnInfo,
    Converters,
    RowShapes,
    Table,
    is_pipe,
    natural_key,
    rechunk,
)

__all__ = ["FORMATS", "Arrays", "ColumnInfo", "Table", "detect_format", "natural_key", "open_one", "open_table", "rechunk"]

FORMATS = ("csv", "tsv", "parquet", "arrow", "jsonl", "npy", "npz")

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".npy": "npy",
    ".npz": "npz",
}
_COMPRESSED = (".gz", ".gzip", ".bz2", ".zst", ".zstd")


def data_extension(path: str) -> str | None:
    """The format an extension stands for (compression suffixes looked through)."""
    lower = path.lower()
    for ext in _COMPRESSED:
        if lower.endswith(ext):
            lower = lower[: -len(ext)]
            break
    return _EXTENSIONS.get(os.path.splitext(lower)[1])


def detect_format(path: str, override: str | None = None) -> str:
    """Choose the reader for a path: ``--input-format`` wins, then the extension."""
    if override:
        return override
    if path == "-":
        return "csv"
    fmt = data_extension(path)
    if fmt:
        return fmt
    if remote.is_uri(path):
        return _remote_format(path)
    if os.path.isdir(path):
        return "parquet"
    if glob.has_magic(path):
        matches = sorted(glob.glob(path), key=natural_key)
        if matches and all(data_extension(m) == "parquet" for m in matches):
            return "parquet"
        if not matches:
            raise DataError(f"{path}: no files match")
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    raise UsageProblem(
        f"{path}: unknown file type; name the format with --input-format ({', '.join(FORMATS)})"
    )


def _remote_format(uri: str) -> str:
    """The format of a URI without a data extension: a directory or glob of Parquet files, or none."""
    if glob.has_magic(uri):
        matches = remote.listed(uri, lambda name: True)
        if not matches:
            raise DataError(f"{uri}: no files match")
        if all(data_extension(m) == "parquet" for m in matches):
            return "parquet"
    else:
        found = remote.kind(uri)
        if found == "directory":
            return "parquet"
        if found == "missing":
            raise DataError(f"{uri}: no such file")
    raise UsageProblem(f"{uri}: unknown file type; name the format with --input-format ({', '.join(FORMATS)})")


def _open_remote(uri: str, fmt: str, delimiter: str | None, max_line_bytes: int) -> Table:
    """A URI in a format other than Parquet: read from a local temporary copy, labelled by its URI."""
    local = remote.local_copy(uri)
    try:
        table = open_one(local, fmt, delimiter, max_line_bytes)
    except DataError as exc:
        raise DataError(str(exc).replace(local, uri)) from None
    if hasattr(table, "schema"):  # an Arrow-backed reader: its label is only a label
        table.label = uri
    return table


def open_one(path: str, input_format: str | None = None, delimiter: str | None = None, max_line_bytes: int = 64 << 20) -> Table:
    """Open one FILE argument with the reader its format calls for (``max_line_bytes``: CSV's --max-line-bytes)."""
    if remote.scheme(path) == "file":
        path = remote.filesystem(path)[1]  # a local file: the local readers, memory maps included
    fmt = detect_format(path, input_format)
    if remote.is_uri(path) and fmt != "parquet":
        return _open_remote(path, fmt, delimiter, max_line_bytes)
    if path != "-" and fmt != "parquet" and os.path.isdir(path):
        raise DataError(f"{path}: is a directory")
    if fmt not in ("csv", "tsv") and is_pipe(path):
        # Never opened: with no writer yet, opening would block where no signal can stop it.
        raise DataError(f"{path}: is a pipe; {fmt} input must be a file (only CSV reads from a pipe or standard input)")
    if fmt in ("csv", "tsv"):
        from lossctl.io.csv import open_csv_table

        return open_csv_table(path, delimiter or ("\t" if fmt == "tsv" else None), max_line_bytes)
    if fmt == "parquet":
        from lossctl.io.parquet import open_parquet_table

        return open_parquet_table(path)
    if fmt == "arrow":
        from lossctl.io.ipc import open_ipc_table

        return open_ipc_table(path)
    if fmt == "jsonl":
        from lossctl.io.jsonl import open_jsonl_table

        return open_jsonl_table(path)
    if fmt == "npy":
        from lossctl.io.numpy import NpyTable

        return NpyTable(path)
    if fmt == "npz":
        from lossctl.io.numpy import NpzTable

        return NpzTable(path)
    raise UsageProblem(f"unknown input format '{fmt}'; choose one of {', '.join(FORMATS)}")


class ConcatTable(Table):
    """Several tables with the same columns, read one after the other."""

    def __init__(self, tables: Sequence[Table]) -> None:
        self.tables = list(tables)
        first = self.tables[0]
        self.label = ", ".join(t.label for t in self.tables)
        self.columns = first.columns
        for t in self.tables[1:]:
            if t.names != first.names:
                raise DataError(
                    f"{t.label}: columns {', '.join(t.names)} differ from "
                    f"{first.label}: {', '.join(first.names)}; several files must share one schema"
                )

        parts = [t.parts for t in self.tables]
        self.parts = None if any(p is None for p in parts) else [x for p in parts for x in p or ()]

    @property
    def num_rows(self) -> int | None:
        counts = [t.num_rows for t in self.tables]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    def chunks(self, names: Sequence[str], rows: int, convert: Converters | None = None) -> Iterator[Arrays]:
        # A converter keeps its own state (group ids) across the tables, in row order.
        shapes = RowShapes()
        special = set(convert or ())
        for t in self.tables:
            start = 0
            for chunk in t.chunks(names, rows, convert):
                for name, values in chunk.items():
                    if name not in special:
                        shapes.check(name, values, t.label, start, t.label)
                start += next((len(v) for v in chunk.values()), 0)
                yield chunk


def open_table(
    paths: Sequence[str], input_format: str | None = None, delimiter: str | None = None, max_line_bytes: int = 64 << 20
) -> Table:
    """Open FILE arguments as one table."""
    if list(paths).count("-") > 1:
        raise UsageProblem("standard input ('-') can be given only once")
    tables = [open_one(p, input_format, delimiter, max_line_bytes) for p in paths]
    return tables[0] if len(tables) == 1 else ConcatTable(tables)
