"""The two prediction files of ``compare.py``: two models over the same rows, and one shuffled.

In ``DATA/compare-ROWS/``: ``baseline.parquet`` holds ``id`` (the row
number), and ``generate.py``'s regression ``y_true`` and ``y_pred`` (the same
values as ``regression.parquet``'s first ROWS rows); ``candidate.parquet`` the
same ``id`` and ``y_true`` with a second model's ``y_pred``;
``candidate_shuffled.parquet`` the candidate's rows in a random order. Written
chunk by chunk from seeded streams, skipped when ``manifest.json`` says they
are already there.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# NumPy, pyarrow and generate.py are imported by the functions: compare.py imports FILES and
# must stay small (see there).

#: The candidate's random stream, apart from generate.py's datasets.
CANDIDATE_STREAM = 11
FILES = ("baseline.parquet", "candidate.parquet", "candidate_shuffled.parquet")


def _candidate_chunk(
    base: pa.Table, seed: int, index: int, start: int
) -> tuple[pa.Table, pa.Table]:
    """The baseline's chunk with ``id``, and the candidate's: same ``y_true``, another ``y_pred``.

    The candidate keeps 80 % of the baseline's error and adds a smaller one of
    its own: a better, correlated model, as a retraining gives.
    """
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(np.random.SeedSequence([seed, CANDIDATE_STREAM, index]))
    t = base.column("y_true").to_numpy()
    p = base.column("y_pred").to_numpy()
    own = rng.normal(0.0, 1.0, len(t)) * (0.1 + 0.05 * t)
    p_c = np.maximum(t + 0.8 * (p - t) + own, 1e-3)
    ids = pa.array(np.arange(start, start + len(t), dtype=np.int64))
    return (
        pa.table({"id": ids, "y_true": t, "y_pred": p}),
        pa.table({"id": ids, "y_true": t, "y_pred": p_c}),
    )


def _shuffled(candidate: Path, out: Path, seed: int, chunk_rows: int) -> None:
    """The candidate's rows in a random order (the whole file in memory once)."""
    import generate
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(candidate)
    order = np.random.default_rng(np.random.SeedSequence([seed, CANDIDATE_STREAM + 1]))
    table = table.take(pa.array(order.permutation(table.num_rows)))
    pq.write_table(table, generate._tmp(out), row_group_size=chunk_rows)
    os.replace(generate._tmp(out), out)


def prepare(data: Path, rows: int, seed: int, chunk_rows: int) -> Path:
    """The folder of the three files for ``rows`` rows, generated unless already there."""
    import generate
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = data / f"compare-{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    params = asdict(generate.DatasetParams(rows=rows, seed=seed, chunk_rows=chunk_rows))
    manifest = generate.load_manifest(folder)
    entry = manifest.get("compare", {})
    sizes = entry.get("bytes", {})
    if entry.get("params") == params and all(
        (folder / f).is_file() and (folder / f).stat().st_size == sizes.get(f) for f in FILES
    ):
        return folder
    base_path, cand_path, shuf_path = (folder / f for f in FILES)
    started = time.perf_counter()
    schema = pa.schema([("id", pa.int64()), ("y_true", pa.float64()), ("y_pred", pa.float64())])
    writers = [pq.ParquetWriter(generate._tmp(p), schema) for p in (base_path, cand_path)]
    try:
        for index, start, stop in generate._chunks(rows, chunk_rows):
            chunk = generate.regression_chunk(
                generate._rng(seed, "regression", index), stop - start
            )
            for writer, table in zip(
                writers, _candidate_chunk(chunk, seed, index, start), strict=True
            ):
                writer.write_table(table, row_group_size=chunk_rows)
            generate._progress("compare", stop, rows, started)
    finally:
        for writer in writers:
            writer.close()
    os.replace(generate._tmp(base_path), base_path)
    os.replace(generate._tmp(cand_path), cand_path)
    _shuffled(cand_path, shuf_path, seed, chunk_rows)
    manifest["compare"] = {
        "params": params,
        "files": list(FILES),
        "bytes": {f: (folder / f).stat().st_size for f in FILES},
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    generate.save_manifest(folder, manifest)
    print(f"\n  compare: {rows:,} rows in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return folder
