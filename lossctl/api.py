"""The Python API (SPEC section 8): ``evaluate``, ``merge`` and ``get``; ``worst`` for the CLI.

The CLI calls these functions, these call the engine: one way down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lossctl.batch import F64
from lossctl.errors import DataError, UsageProblem, ValueProblem
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

    if request.engine == "dask":
        from lossctl import dask_engine

        return dask_engine.run(request, on_chunk)
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


def compare(baseline: str, candidate: str, **options: Any) -> Evaluation:
    """Evaluate two models' predictions over the same rows, paired, as ``lossctl compare`` does.

    The keywords are ``eval``'s (``loss``, ``metric``, ``checks``, ``by``,
    ``ci``, ...) plus ``key`` (match rows by an id column) and
    ``max_regression`` (``"NAME=AMOUNT"`` or ``"NAME=AMOUNT%"``). Results hold
    every spec per arm: ``baseline``, ``candidate`` and ``delta`` (candidate -
    baseline, with ``change`` better/worse/same and, with ``ci``, the paired
    interval and its p-value); ``result["auc"]`` is the delta.
    """
    from lossctl.options import request_from_keywords

    return run_compare(Request(**request_from_keywords((baseline, candidate), options)))


def run_compare(request: Request, on_chunk: Callable[[int], None] | None = None) -> Evaluation:
    """Compare the request's two files (what ``lossctl compare`` does)."""
    from lossctl import engine
    from lossctl.plugins import activated

    with activated(request) as request:
        return engine.run(request, on_chunk, compare=True)


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
    """An input as float64, as the readers give it: a non-numeric value is the CLI's data error."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raw = np.asarray(values, dtype=object)
        flat = raw.reshape(len(raw), -1) if raw.ndim > 1 else raw.reshape(-1, 1)
        for i, row in enumerate(flat):
            for v in row:
                try:
                    float(v)
                except (TypeError, ValueError):
                    if role == "y_true":
                        # As eval: text labels need an order of the classes (a usage error, exit 2).
                        raise UsageProblem(
                            f"y_true ('y_true') holds text labels ({str(v)!r}): give class indices, or "
                            "evaluate with classes=A,B,C or pos_label=VALUE (--classes, --pos-label)"
                        ) from None
                    raise DataError(f"{role} row {i}: column '{role}' holds non-numeric value {str(v)!r}") from None
        raise DataError(f"{role}: not an array of numbers") from None
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    return a


def get(name: str | Callable[..., Any], *, kind: str | None = None, **params: Any) -> Callable[..., float | None]:
    """Return ``fn(y_true, y_pred, sample_weight=None) -> float`` for a loss or metric.

    ``name`` may carry parameters (``"huber:delta=2"``); keyword ``params``
    override them. Values are checked now, as on the command line. ``name``
    may also be a function written as a Keras loss, ``f(y_true, y_pred)``
    returning one value per row (or a factory returning one, as a plugin
    defines them): the result is its weighted mean. ``kind="metric"``
    computes a loss as ``--metric`` does (Keras's metric of that name:
    ``keras.metrics.get`` rather than ``keras.losses.get``).

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
    if kind not in (None, "loss", "metric"):
        raise UsageProblem(f"kind must be 'loss' or 'metric', not {kind!r}")
    as_kind = entry.kind if kind is None else kind

    def fn(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float | None:
        from lossctl.elements import element_batch, first_negative, negative_text
        from lossctl.plan import check_shapes
        from lossctl.registry import Resolved

        yt, yp = _as_array(y_true, "y_true"), _as_array(y_pred, "y_pred")
        if len(yt) != len(yp):
            raise DataError(f"y_true has {len(yt)} rows but y_pred has {len(yp)}")
        w = None if sample_weight is None else _as_array(sample_weight, "sample_weight")
        if w is not None and len(w) != len(yt):
            raise DataError(f"sample_weight has {len(w)} rows but y_true has {len(yt)}")
        if w is not None:
            # The CLI's checks, with its words: a negative weight or a non-finite sum is a data error.
            i = first_negative(w)
            if i is not None:
                raise DataError(f"sample_weight row {i}: column 'sample_weight': {negative_text(w[i])}")
            if not np.isfinite(np.add.reduce(w, axis=None)):
                raise DataError("sample_weight: the sum of weights is not finite")
        batch = element_batch(yt, yp, w)
        use, params = entry, merged
        if entry.resolve is not None and len(batch):
            # A convenience name (accuracy) picks its entry from the input, as eval does.
            use, params = entry.resolve(batch.y_true, batch.y_pred, merged)
        if len(batch):
            check_shapes(None, batch.y_true, batch.y_pred, [Resolved(entry.name, as_kind, use, params)], batch.weight)  # type: ignore[arg-type]  # checked above
        state = use.make_state(params, as_kind)  # type: ignore[arg-type]
        try:
            if use.validate is not None and len(batch):
                use.validate(batch, **params)
            if len(batch):
                state.update(batch)
        except ValueProblem as problem:
            # The row of the input as given (an element row of an input of more than two dimensions is in one).
            problem.index //= batch.per_input_row
            raise
        return state.result().value

    fn.__name__ = entry.name
    fn.__doc__ = f"{entry.summary}\n\nFormula: {entry.formula}"
    return fn
