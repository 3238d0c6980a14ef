"""The Python API (SPEC section 8): ``evaluate``, ``merge`` and ``get``; ``worst`` for the CLI.

The CLI calls these functions, these call the engine: one way down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lossctl.batch import F64, Batch
from lossctl.errors import DataError, UsageProblem
from lossctl.params import parse_spec
from lossctl.registry import lookup, parse_params, resolve_params
from lossctl.request import Request
from lossctl.results import Evaluation

if TYPE_CHECKING:
    from lossctl.perrow import WorstRows


def _keywords_doc() -> str:
    from lossctl.options import OPTIONS

    return "\n    ".join(f"{o.api_name}: {o.help}" for o in OPTIONS if o.api_name)


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def evaluate(*files: str, **options: Any) -> Evaluation:
    """Evaluate losses and metrics over prediction files, as ``lossctl eval`` does.

    ``files`` are read as one table (CSV, Parquet, Arrow, JSONL, NPY, NPZ);
    the keywords are ``eval``'s options (``lossctl.options``), a list or a
    string where the option repeats:

    {keywords}

    Returns:
        An :class:`~lossctl.results.Evaluation` with ``to_dict()`` and ``to_pandas()``.

    Example:
        >>> ev = evaluate("sample_data/regression.csv", loss=["mse", "huber:delta=2"], checks="mse < 30")  # doctest: +SKIP
        >>> ev["mse"].value  # doctest: +SKIP
    """
    from lossctl.options import request_from_keywords

    return run(Request(**request_from_keywords(files, options)))


def run(request: Request, on_chunk: Callable[[int], None] | None = None) -> Evaluation:
    """Evaluate a :class:`Request` (what ``lossctl eval`` does), writing ``--per-row`` on the way.

    The request's plugins (and functions given as losses) are registered for the run only.
    """
    from lossctl.plugins import activated

    with activated(request) as request:
        return _run(request, on_chunk)


def _run(request: Request, on_chunk: Callable[[int], None] | None) -> Evaluation:
    from lossctl import engine

    if request.per_row is None:
        return engine.run(request, on_chunk)
    from dataclasses import replace

    from lossctl.perrow import PerRowWriter

    # The writer fills a temporary file and renames it only on success, so a
    # failed run never leaves a plausible-looking partial file behind.
    writer = PerRowWriter(request.per_row, [*request.files, request.true, request.pred, request.weight])
    try:
        evaluation = engine.run(request, on_chunk, writer.chain(None))
        writer.close(evaluation)
    except BaseException:
        writer.abort()
        raise
    return replace(evaluation, warnings=(*evaluation.warnings, *writer.warnings))


def worst(request: Request, n: int = 10, on_chunk: Callable[[int], None] | None = None) -> WorstRows:
    """The ``n`` rows with the worst per-row value of the one spec in ``request`` (``lossctl worst``)."""
    from dataclasses import replace

    from lossctl import engine
    from lossctl.perrow import Worst, worst_rows
    from lossctl.plugins import activated
    from lossctl.registry import resolve_all

    with activated(request) as request:
        specs = resolve_all(request.losses, request.metrics)
        if len(specs) != 1:
            raise UsageProblem(f"worst takes one loss or metric, not {len(specs)} ({', '.join(r.spec for r in specs) or 'none'})")
        hook = Worst(n)
        hook.check(specs[0])
        evaluation = engine.run(replace(request, checks=(), per_row=None, save_state=None), on_chunk, hook)
        return worst_rows(evaluation, hook, specs[0], n)


def merge(*states: str, checks: str | Sequence[str] | None = None) -> Evaluation:
    """Combine state files written by ``evaluate(..., save_state=...)`` on shards (``lossctl merge``).

    The result is what one pass over all their rows gives (1e-9). States of
    different plans are a usage error saying what differs; a corrupt or
    truncated state, or the same rows given twice, is a data error.
    """
    from lossctl.merging import merge_files

    return merge_files(tuple(states), _as_tuple(checks))


evaluate.__doc__ = (evaluate.__doc__ or "").replace("{keywords}", _keywords_doc())


def _as_array(values: Any, role: str) -> F64:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim > 2:
        a = a.reshape(a.shape[0], -1)
    return a


def get(name: str | Callable[..., Any], **params: Any) -> Callable[..., float | None]:
    """Return ``fn(y_true, y_pred, sample_weight=None) -> float`` for a loss or metric.

    ``name`` may carry parameters (``"huber:delta=2"``); keyword ``params``
    override them. Values are checked now, as on the command line. ``name``
    may also be a function written as a Keras loss, ``f(y_true, y_pred)``
    returning one value per row (or a factory returning one, as a plugin
    defines them): the result is its weighted mean.

    Example:
        >>> import lossctl
        >>> lossctl.get("mse")([0.0, 1.0], [1.0, 1.0])
        0.5
    """
    if callable(name):
        from lossctl.plugins import from_callable

        entry = from_callable(name)
        merged = resolve_params(entry, params)
        entry.accumulator(merged, entry.kind)  # a factory is called now: its failure is a usage error
    else:
        raw = parse_spec(name)
        entry = lookup(raw.name)
        merged = resolve_params(entry, {**parse_params(entry, raw), **params})

    def fn(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float | None:
        yt, yp = _as_array(y_true, "y_true"), _as_array(y_pred, "y_pred")
        if len(yt) != len(yp):
            raise DataError(f"y_true has {len(yt)} rows but y_pred has {len(yp)}")
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if w is not None and len(w) != len(yt):
            raise DataError(f"sample_weight has {len(w)} rows but y_true has {len(yt)}")
        state = entry.make_state(merged, entry.kind)
        batch = Batch(yt, yp, w)
        if entry.validate is not None and len(batch):
            entry.validate(batch, **merged)
        if len(batch):
            state.update(batch)
        return state.result().value

    fn.__name__ = entry.name
    fn.__doc__ = f"{entry.summary}\n\nFormula: {entry.formula}"
    return fn
