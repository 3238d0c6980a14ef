"""The one table of options: Click options, API keywords, config keys and Request fields.

Each :class:`Option` is described once; from :data:`OPTIONS` come the
``Request`` dataclass (``lossctl.request``), the command-line options of
every command that takes it (:func:`click_options`), the keywords of
``lossctl.evaluate`` (:func:`request_from_keywords`) and the keys a config
file may set (:func:`config_keys`). Adding an option is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CHUNK_ROWS = 1 << 16
NAN_POLICIES = ("error", "drop", "propagate")
INPUT_FORMATS = ("csv", "tsv", "parquet", "arrow", "jsonl", "npy", "npz")


class Option:
    """One option of an evaluation.

    Attributes:
        field: the Request field (and the Click parameter name).
        flags: command-line flags (``("-l", "--loss")``).
        help: the ``--help`` text.
        default: the Request default.
        multiple: repeatable; a tuple of strings in the Request.
        keyword: the ``lossctl.evaluate`` keyword (``loss`` for ``losses``);
            ``None``: same as ``field``; ``""``: not in the API.
        config: the config-file key (``columns.true``); ``None``: not configurable.
        type: ``str``, ``int`` or a tuple of choices (case-insensitive).
        metavar: the placeholder in ``--help``.
        commands: the commands that take it.
        complete: shell completion: ``path`` (a file name, ``click.Path``) or
            a completer of :mod:`lossctl.completion` (``specs``, ``check``, ``column``).
    """

    __slots__ = ("field", "flags", "help", "default", "multiple", "keyword", "config", "type", "metavar", "commands", "complete")

    def __init__(
        self,
        field: str,
        flags: tuple[str, ...],
        help: str,
        default: Any = None,
        multiple: bool = False,
        keyword: str | None = None,
        config: str | None = None,
        type: Any = str,
        metavar: str | None = None,
        commands: frozenset[str] = frozenset({"eval"}),
        complete: str | None = None,
    ) -> None:
        self.field, self.flags, self.help, self.default = field, flags, help, default
        self.multiple, self.keyword, self.config, self.type = multiple, keyword, config, type
        self.metavar, self.commands, self.complete = metavar, commands, complete

    @property
    def api_name(self) -> str:
        return self.field if self.keyword is None else self.keyword

    def normalise(self, value: Any) -> Any:
        """A value from the CLI, the API or the config, in the Request's form."""
        if value is None:
            return self.default
        if self.multiple:
            if isinstance(value, str) or callable(value):
                return (value,)
            return tuple(value)
        if isinstance(self.type, tuple) and isinstance(value, str):
            return value.lower()
        return value


EVAL, WORST, INSPECT, COMPARE = "eval", "worst", "inspect", "compare"
_READ = frozenset({EVAL, WORST, INSPECT, COMPARE})
_EVALS = frozenset({EVAL, COMPARE})
# Every command that resolves loss and metric names.
_NAMES = frozenset({EVAL, WORST, COMPARE, "list", "explain"})

OPTIONS: tuple[Option, ...] = (
    Option("losses", ("-l", "--loss"), "Loss(es) to evaluate: NAME[:key=value...], comma lists allowed, repeatable.",
           default=(), multiple=True, keyword="loss", config="losses", metavar="SPEC", commands=_EVALS, complete="specs"),
    Option("metrics", ("-m", "--metric"), "Metric(s) to evaluate, same syntax as --loss.",
           default=(), multiple=True, keyword="metric", config="metrics", metavar="SPEC", commands=_EVALS, complete="specs"),
    Option("checks", ("-c", "--check"),
           "Quality gate 'NAME OP NUMBER' (OP: < <= > >= == !=), repeatable; exit 1 when one fails. "
           "Compares the unrounded value; an undefined value fails. A NAME not requested is evaluated too.",
           default=(), multiple=True, config="checks", metavar="EXPR", commands=frozenset({EVAL, COMPARE, "merge"}), complete="check"),
    Option("true", ("--true",), "y_true column(s): a name, comma list or glob; or a file.",
           config="columns.true", metavar="COL|PATH[:COL]", commands=_READ, complete="column"),
    Option("pred", ("--pred",), "y_pred column(s): a name, comma list or glob; or a file.",
           config="columns.pred", metavar="COL|PATH[:COL]", commands=_READ, complete="column"),
    Option("weight", ("--weight",), "Per-row sample weights.",
           config="columns.weight", metavar="COL|PATH[:COL]", commands=_READ, complete="column"),
    Option("classes", ("--classes",),
           "Class labels in order (cat,dog,bird): y_true's labels (text or numbers) become class 0, 1, 2… "
           "[default: the suffixes of the probability columns, prob_cat,prob_dog]",
           config="columns.classes", metavar="A,B,C", commands=_READ),
    Option("pos_label", ("--pos-label",),
           "With one probability column: y_true's label of the positive class (the other label is negative).",
           config="columns.pos_label", metavar="VALUE", commands=_READ),
    Option("chunk_size", ("--chunk-size",), "Rows per chunk (memory is bounded by it).  [default: 65536]",
           default=DEFAULT_CHUNK_ROWS, type=int, metavar="ROWS", commands=_READ),
    Option("input_format", ("--input-format",), "Read FILEs as this format, whatever their extension.",
           type=INPUT_FORMATS, commands=_READ),
    Option("delimiter", ("--delimiter",), "CSV delimiter (sniffed when not given).", metavar="CHAR", commands=_READ),
    Option("max_line_bytes", ("--max-line-bytes",),
           "A CSV line (record) longer than this is a data error (an unclosed quote would join every line after it).  [default: 64 MiB]",
           default=64 << 20, type=int, metavar="BYTES", commands=_READ),
    Option("nan", ("--nan",),
           "NaN or infinite values (or empty cells): stop (exit 3), drop those rows, or let them through as Keras would.  [default: error]",
           default="error", type=NAN_POLICIES, commands=_READ),
    Option("by", ("--by",),
           "Evaluate every loss and metric per group of COL as well as overall (repeatable: the observed "
           "combinations of several columns), in the same pass.",
           default=(), multiple=True, config="by", metavar="COL", commands=_EVALS),
    Option("max_groups", ("--max-groups",), "Stop (exit 3) past this many --by groups.  [default: 10000]",
           default=10_000, type=int, metavar="N", commands=_EVALS),
    Option("ci", ("--ci",),
           "Add a LEVEL confidence interval (e.g. 0.95) to every result, overall and per group, "
           "by the Poisson bootstrap in the same pass.",
           type=float, config="ci", metavar="LEVEL", commands=_EVALS),
    Option("bootstrap", ("--bootstrap",), "Bootstrap replicates for --ci.  [default: 1000]",
           default=1000, type=int, config="bootstrap", metavar="B", commands=_EVALS),
    Option("seed", ("--seed",),
           "Seed of the bootstrap weights (the same seed, the same intervals, however the rows are split).  [default: 0]",
           default=0, type=int, config="seed", metavar="S", commands=_EVALS),
    Option("first_row", ("--first-row",),
           "The global number of the input's first row, for --ci over shards evaluated apart "
           "(--save-state): shard k gives the rows before it, so every row keeps its own bootstrap weights.  [default: 0]",
           default=0, type=int, metavar="N", commands=frozenset({EVAL})),
    Option("key", ("--key",),
           "Match the two files' rows by this id column instead of by position (their keys are held in "
           "memory, and the candidate's columns: memory grows with the rows).",
           metavar="COL", commands=frozenset({COMPARE}), complete="column"),
    Option("max_regressions", ("--max-regression",),
           "Fail (exit 1) when the candidate is worse than the baseline by more than AMOUNT, absolute or "
           "AMOUNT% of the baseline, in NAME's bad direction; repeatable.",
           default=(), multiple=True, keyword="max_regression", config="max_regression", metavar="NAME=AMOUNT[%]",
           commands=frozenset({COMPARE})),
    Option("plugins", ("--plugin",),
           "Custom losses: a Python file (PATH.py) or module (package.module) whose functions "
           "fn(y_true, y_pred) become names; repeatable. A plugin is code: it runs.",
           default=(), multiple=True, config="plugins", metavar="PATH.py|MODULE", commands=_NAMES),
    Option("engine", ("--engine",),
           "Where the rows are folded: here on threads, or on a Dask cluster, one task per file or Parquet "
           "row group (pip install 'lossctl[dask]').  [default: local]",
           default="local", type=("local", "dask"), config="engine", commands=frozenset({EVAL})),
    Option("scheduler", ("--scheduler",),
           "With --engine dask: the address of a running Dask scheduler; without it a local cluster sized "
           "to this machine is started and closed.",
           config="scheduler", metavar="ADDRESS", commands=frozenset({EVAL})),
    Option("per_row", ("--per-row",),
           "Also write each row's loss (row number + one column per per-row loss) to FILE (.parquet or .csv), streaming.",
           metavar="FILE", complete="path"),
    Option("save_state", ("--save-state",),
           "Also write the run's partial states to FILE, for 'lossctl merge' (sharded evaluation).",
           metavar="FILE", complete="path"),
)

BY_FIELD = {o.field: o for o in OPTIONS}


def for_command(command: str) -> list[Option]:
    return [o for o in OPTIONS if command in o.commands]


def click_options(command: str, only: Iterable[str] | None = None) -> Callable[[F], F]:
    """The Click options of ``command`` (all of its options, or those named in ``only``)."""
    import click

    chosen = [o for o in for_command(command) if only is None or o.field in set(only)]

    def apply(fn: F) -> F:
        for o in reversed(chosen):
            kind = click.Choice(o.type, case_sensitive=False) if isinstance(o.type, tuple) else o.type
            extra: dict[str, Any] = {}
            if o.complete == "path":
                kind = click.Path(dir_okay=False)
            elif o.complete is not None:
                extra["shell_complete"] = _completer(o.complete)
            fn = click.option(
                *o.flags, o.field, type=kind, multiple=o.multiple, default=None, metavar=o.metavar, help=o.help, **extra
            )(fn)
        return fn

    return apply


def _completer(name: str) -> Callable[..., Any]:
    """The completer ``complete_<name>`` of :mod:`lossctl.completion`, imported only when the shell asks."""

    def complete(ctx: Any, param: Any, incomplete: str) -> Any:
        from lossctl import completion

        return getattr(completion, f"complete_{name}")(ctx, param, incomplete)

    return complete


def config_keys() -> dict[str, Option]:
    """``{config key: option}`` of every configurable option (``columns.true`` included)."""
    return {o.config: o for o in OPTIONS if o.config is not None}


def merged_fields(given: Mapping[str, Any], config: Mapping[str, Any], command: str = EVAL) -> dict[str, Any]:
    """Request fields for ``command``: a given value wins, then the config, then the default.

    ``given`` holds the command line's values by field (``None`` or an empty
    tuple: not given); ``config`` the config file's by config key.
    """
    out: dict[str, Any] = {}
    for o in for_command(command):
        value = given.get(o.field)
        if value is None or value == ():
            value = config.get(o.config) if o.config is not None else None
        out[o.field] = o.normalise(value)
    return out


def request_from_keywords(files: tuple[str, ...], keywords: Mapping[str, Any]) -> dict[str, Any]:
    """Request fields from ``lossctl.evaluate``'s keywords; an unknown one is a TypeError with a hint."""
    from lossctl.params import did_you_mean

    by_keyword = {o.api_name: o for o in OPTIONS if o.api_name}
    fields: dict[str, Any] = {"files": tuple(files)}
    for name, value in keywords.items():
        option = by_keyword.get(name)
        if option is None:
            raise TypeError(f"evaluate() got an unexpected keyword argument '{name}'" + did_you_mean(name, list(by_keyword)))
        fields[option.field] = option.normalise(value)
    return fields
