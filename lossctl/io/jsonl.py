"""JSON Lines (``.jsonl``, ``.ndjson``), streamed with pyarrow's JSON reader."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.json as pajson

from lossctl.errors import DataError
from lossctl.io.arrow import ArrowTable, opening
from lossctl.io.csv import _open_binary

BLOCK_SIZE = 1 << 22


def open_jsonl_table(path: str) -> ArrowTable:
    """Open a JSON Lines file as a streaming table (one object per line)."""
    options = pajson.ReadOptions(block_size=BLOCK_SIZE)
    with opening(path):
        with _open_binary(path) as probe:
            if not probe.read(1 << 12).strip():
                raise DataError(f"{path}: empty file")
        schema = pajson.open_json(_open_binary(path), read_options=options).schema

    def batches(names: Sequence[str], rows: int) -> Iterator[pa.RecordBatch]:
        explicit = pa.schema([schema.field(n) for n in names])
        parse = pajson.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="ignore")
        for batch in pajson.open_json(_open_binary(path), read_options=options, parse_options=parse):
            yield batch

    return ArrowTable(path, schema, batches)
