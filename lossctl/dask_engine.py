"""The Dask engine (``--engine dask``, SPEC section 7): the same numbers as the local engine, on a cluster.

The driver opens the input and decides the plan exactly as the local
engine does (``engine.prepare``: the request and the first chunk), then
maps one task per piece (``lossctl.shards``: a Parquet file's row groups,
each with its global first row, so messages keep global row numbers),
each returning its partial as state-file bytes; the results are merged in
a fixed tree (``MERGE_FAN_IN`` a step) on the cluster, and only the root
comes back. The earliest error by row wins, with the local engine's
message. Without ``--scheduler`` a local cluster of processes sized to the
machine is started and closed; with it, that cluster is used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from lossctl.errors import DataError, UsageProblem
from lossctl.problems import raise_first_problem
from lossctl.request import Request
from lossctl.results import Evaluation

MERGE_FAN_IN = 8
CONNECT_SECONDS = 10
INSTALL = "pip install 'lossctl[dask]'"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageProblem(f"--engine dask needs Dask's distributed scheduler: {INSTALL}") from None
    return distributed


@contextlib.contextmanager
def client_for(scheduler: str | None) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a local cluster started (and closed) for the run."""
    distributed = _distributed()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise UsageProblem(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({reason})") from None
        with client:
            yield client
        return
    workers = os.cpu_count() or 1
    with distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


def run(request: Request, on_chunk: Callable[[int], None] | None = None) -> Evaluation:
    """Evaluate a request on Dask (see the module's description); raise UsageProblem or DataError as locally."""
    from lossctl import engine
    from lossctl.plugin_entries import PluginDef
    from lossctl.shards import FIELDS, from_wire, pieces, plugin_payload

    _distributed()
    if request.per_row is not None:
        raise UsageProblem("--per-row writes the rows in order: it needs the local engine (drop --engine dask)")
    if "-" in request.files:
        raise UsageProblem("--engine dask: standard input ('-') cannot be read by Dask workers; name files")
    payload = plugin_payload(request.plugins or ())
    plan, selection, slicer, chunks, stream = engine.prepare(request, on_chunk)
    close = getattr(stream, "close", None)
    if close is not None:
        close()  # the driver read the first chunk only: stop its reader
    del chunks
    given = set(request.plugins or ())
    for r in plan.specs:
        if isinstance(r.entry, PluginDef) and r.entry.source is not None and r.entry.source.name not in given:
            raise UsageProblem(
                f"{r.spec}: a function handed to the API cannot travel to Dask workers; "
                "put it in a plugin file or module (plugins=...)"
            )
    label = selection.y_pred.table.label
    split = pieces(selection) or [None]
    base = {
        "plan": plan.to_dict(),
        "request": {f: getattr(request, f) for f in FIELDS},
        "label": label,
        "plugins": payload,
    }
    with client_for(request.scheduler) as client:
        result = _map_reduce(client, base, split, on_chunk, engine.known_rows(selection) or 0)
    _, partial = from_wire(result)
    raise_first_problem(partial, selection, iter(()))
    if slicer is not None:
        partial.groups = partial.groups or []
        if len(partial.groups) > request.max_groups:
            raise DataError(
                f"--by {','.join(dict.fromkeys(request.by))}: more than {request.max_groups} groups "
                "(raise --max-groups, or slice by a column with fewer values)"
            )
    return engine.conclude(request, plan, partial, engine.input_files(request, plan))


def _map_reduce(
    client: Any,
    base: dict[str, Any],
    split: list[dict[str, Any] | None],
    on_chunk: Callable[[int], None] | None,
    total: int,
) -> Any:
    """One fold task per piece, merged in a fixed tree on the cluster; the root's result."""
    from distributed import as_completed

    from lossctl.shards import fold_piece, merge_results

    run_id = uuid.uuid4().hex[:12]
    leaves = [
        client.submit(fold_piece, {**base, "piece": piece}, key=f"lossctl-fold-{run_id}-{i}", pure=False)
        for i, piece in enumerate(split)
    ]
    rows = {leaf.key: total if piece is None else piece["rows"] for leaf, piece in zip(leaves, split, strict=True)}
    level, depth = leaves, 0
    while len(level) > 1:
        depth += 1
        level = [
            client.submit(merge_results, *level[i : i + MERGE_FAN_IN], key=f"lossctl-merge-{run_id}-{depth}-{i}", pure=False)
            for i in range(0, len(level), MERGE_FAN_IN)
        ]
    if on_chunk is not None:
        with client.as_current():
            for done in as_completed(leaves):
                on_chunk(rows[done.key])
    return level[0].result()
