"""Input files of the slices and intervals benchmark, derived from ``generate.py``'s data.

``regression_by-N.parquet`` is the first ``N`` rows of ``regression.parquet``
plus two group keys: ``segment``, text in 20 groups stored dictionary-encoded,
and ``cell``, an int64 in 100,000 groups; both uniform, drawn row group by row
group from ``numpy`` generators seeded by ``(SEED, row group)``, so the first
``N / 2`` rows of the ``N``-row file are the ``N / 2``-row file. ``binary-N.parquet``
is the first ``N`` rows of ``binary.parquet`` (the file itself when it has
exactly ``N`` rows). A derived file carries a stamp of what it was made from
and is rewritten only when that changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import generate
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20240610
#: Bump when the derived values change for the same stamp.
VERSION = 1
SEGMENTS = 20
CELLS = 100_000
STAMP_KEY = b"lossctl-bench-slices"


def source(data: Path, dataset: str, rows: int) -> Path:
    """``generate.py``'s file of ``dataset`` in ``data``, generated when missing or too short."""
    path = data / generate.DATASET_FILES[dataset][0]
    if not path.is_file() or pq.ParquetFile(path).metadata.num_rows < rows:
        generate.main(["--out", str(data), "--only", dataset, f"--rows-{dataset}", str(rows)])
    return path


def keys(n: int, row_group: int) -> dict[str, pa.Array]:
    """The ``segment`` and ``cell`` keys of ``n`` rows of one row group."""
    rng = np.random.default_rng(np.random.SeedSequence([SEED, row_group]))
    names = pa.array([f"seg_{k:02d}" for k in range(SEGMENTS)])
    segment = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, SEGMENTS, n, dtype=np.int32)), names
    )
    return {"segment": segment, "cell": pa.array(rng.integers(0, CELLS, n, dtype=np.int64))}


def derive(src: Path, dst: Path, rows: int, with_keys: bool) -> Path:
    """The first ``rows`` rows of ``src`` (plus the keys if asked) written to ``dst``, once."""
    meta = pq.ParquetFile(src).metadata
    if not with_keys and meta.num_rows == rows:
        return src
    stamp = json.dumps(
        {"source": src.name, "bytes": src.stat().st_size, "rows": rows, "keys": with_keys,
         "seed": SEED, "version": VERSION},
        sort_keys=True,
    ).encode()
    if dst.is_file() and (pq.read_schema(dst).metadata or {}).get(STAMP_KEY) == stamp:
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    pf, written, writer = pq.ParquetFile(src), 0, None
    tmp = generate._tmp(dst)
    try:
        for index in range(pf.num_row_groups):
            if written >= rows:
                break
            table = pf.read_row_group(index).slice(0, rows - written)
            if with_keys:
                for name, column in keys(table.num_rows, index).items():
                    table = table.append_column(name, column)
            table = table.replace_schema_metadata({STAMP_KEY: stamp})
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=table.num_rows)
            written += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, dst)
    return dst


def prepare(data: Path, rows: int) -> dict[str, Path]:
    """The benchmark's files for ``rows`` rows: keyed regression at ``rows`` and ``rows // 2``, binary."""
    reg, binary = source(data, "regression", rows), source(data, "binary", rows)
    out = data / "slices"
    return {
        "by": derive(reg, out / f"regression_by-{rows}.parquet", rows, True),
        "by_half": derive(reg, out / f"regression_by-{rows // 2}.parquet", rows // 2, True),
        "binary": derive(binary, out / f"binary-{rows}.parquet", rows, False),
    }
