"""Options and helpers shared by ``eval``, ``merge``, ``inspect`` and ``worst``.

The evaluation options themselves come from the one table in
``lossctl.options``; here each command folds their values (and the config
file's) into one :class:`~lossctl.request.Request`. Also here: the ``-f`` /
``-o`` options (their targets are ``lossctl.cli.outputs``), the report of
an evaluation, and the progress bar (standard error only, only on a
terminal, only on long runs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from lossctl.errors import UsageProblem

F = TypeVar("F", bound=Callable[..., Any])

def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(fn: F) -> F:
        for d in reversed(decorators):
            fn = d(fn)
        return fn

    return apply


def config_options(fn: F) -> F:
    """``--config FILE`` and ``--no-config``."""
    return _stack(
        click.option("--config", "config_path", metavar="FILE", type=click.Path(dir_okay=False), help="Read defaults from FILE (TOML) instead of ./lossctl.toml or [tool.lossctl] in ./pyproject.toml."),
        click.option("--no-config", is_flag=True, help="Ignore lossctl.toml and pyproject.toml."),
    )(fn)


def output_options_for(formats: Sequence[str]) -> Callable[[F], F]:
    """``-f/--format`` (one of ``formats``) and the repeatable ``-o/--output``."""
    return _stack(
        click.option("-f", "--format", "fmt", type=click.Choice(formats, case_sensitive=False), help=f"Format of standard output and of an -o FILE whose extension names none: {', '.join(formats)} (default: table on a terminal, json otherwise)."),
        click.option("-o", "--output", "outputs", metavar="FILE", multiple=True, type=click.Path(dir_okay=False, allow_dash=True), help="Write the result to FILE instead of standard output; repeatable, one pass writing them all, each FILE's format following its extension (.json .csv .md .xml .txt); '-' is standard output."),
    )


def output_options(fn: F) -> F:
    """``-f/--format`` and ``-o/--output`` of ``eval`` and ``merge`` (every evaluation format)."""
    from lossctl.render import FORMATS

    return output_options_for(FORMATS)(fn)


def report(evaluation: Any, outputs: Any, quiet: bool) -> int:
    """Render and write the result to every output, then warnings and failed checks; the exit status."""
    from lossctl.errors import ExitStatus
    from lossctl.render import render

    outputs.write(lambda fmt, stdout: render(evaluation, fmt, stdout=stdout))
    # After the result, so that on a terminal (and in a CI log) they are the last lines shown.
    for warning in evaluation.warnings:
        say(f"warning: {warning}", quiet)
    for check in evaluation.checks:
        if not check.get("passed"):
            say(f"check failed: {check.get('expr')} ({check.get('note')})", quiet)
    return int(ExitStatus.OK if evaluation.passed else ExitStatus.CHECK_FAILED)


def common_options(fn: F) -> F:
    """``-q/--quiet`` and ``--traceback``."""
    return _stack(
        click.option("-q", "--quiet", is_flag=True, help="Print nothing but the result (no warnings, no progress)."),
        click.option("--traceback", is_flag=True, help="Show the Python traceback of an error (for bug reports)."),
    )(fn)


def build_request(command: str, files: tuple[str, ...], given: dict[str, Any], config: Any, outputs: Sequence[str] = ()) -> Any:
    """The Request of ``command``: options given, else the config's, else the defaults.

    An output (``-o`` files, ``--per-row``, ``--save-state``) naming an input
    or another output is refused here, before anything is read.
    """
    from lossctl.options import merged_fields
    from lossctl.outfile import same_path
    from lossctl.request import Request

    fields = merged_fields(given, config.values, command)
    if "delimiter" in fields:
        fields["delimiter"] = delimiter_value(fields["delimiter"])
    request = Request(files=files, **fields)
    inputs = [*files, request.true, request.pred, request.weight]
    for output in outputs:
        check_output_path(output, inputs)
    named = [("-o", path) for path in outputs]
    for flag, path in (("--per-row", getattr(request, "per_row", None)), ("--save-state", getattr(request, "save_state", None))):
        if path is None:
            continue
        check_output_path(path, inputs, flag)
        for other_flag, other in named:
            if same_path(path, other):
                raise UsageProblem(f"{flag} {path}: is also {other_flag} {other}; name another file")
        named.append((flag, path))
    return request


def plugin_names(given: tuple[str, ...], config_path: str | None, no_config: bool) -> tuple[str, ...]:
    """``--plugin`` values, else the config's ``plugins`` (for ``list`` and ``explain``)."""
    from lossctl.options import merged_fields

    config = load_defaults(config_path, no_config)
    return tuple(merged_fields({"plugins": given}, config.values, "list")["plugins"])


def delimiter_value(delimiter: str | None) -> str | None:
    """``\\t`` and friends as typed in a shell; exactly one character."""
    if delimiter is None:
        return None
    try:
        value = delimiter.encode().decode("unicode_escape")
    except UnicodeDecodeError:
        value = delimiter
    if len(value) != 1:
        raise UsageProblem(f"--delimiter must be one character, not '{delimiter}'")
    return value


def load_defaults(config_path: str | None, no_config: bool) -> Any:
    """The config file's defaults (an empty Config with ``--no-config``)."""
    from lossctl.config import Config, load_config

    if no_config:
        if config_path is not None:
            raise UsageProblem("--config and --no-config exclude each other")
        return Config()
    return load_config(config_path)


def check_output_path(output: str | None, inputs: Sequence[str | None], flag: str = "-o") -> None:
    """Refuse an output (``-o``, ``--save-state``) naming one of the inputs (it would be overwritten)."""
    from lossctl.outfile import refuse_inputs

    refuse_inputs(flag, output, inputs)


def say(message: str, quiet: bool) -> None:
    """A diagnostic line on standard error (silenced by ``--quiet``)."""
    if not quiet:
        click.echo(f"lossctl: {message}", err=True)


class ProgressBar:
    """Rows read so far, on standard error, for runs longer than ``delay`` seconds.

    With the row count known before reading (:meth:`expect`, called by the
    engine: Parquet, NPY, Arrow), a bar with the total, the percentage and
    the time remaining; otherwise a spinner with the rows read. Costs one
    clock read per chunk; the display is redrawn at most once per
    ``interval`` (a few times a second) and only when standard error is a
    terminal. Pass the instance as the engine's ``on_chunk`` callback; call
    :meth:`close` when done (it erases the bar).
    """

    def __init__(
        self,
        enabled: bool,
        *,
        delay: float = 0.5,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        console: Any = None,
    ) -> None:
        self.enabled = enabled
        self.rows = 0
        self.total: int | None = None
        self.redraws = 0
        self._clock = clock
        self._interval = interval
        self._next = clock() + delay
        self._console = console
        self._progress: Any = None
        self._task: Any = None

    @classmethod
    def for_terminal(cls, quiet: bool) -> ProgressBar:
        """Enabled only when standard error is a terminal and ``--quiet`` is off."""
        return cls(not quiet and sys.stderr.isatty())

    def expect(self, total: int | None) -> None:
        """The rows the input holds, when known before reading."""
        self.total = total

    def __call__(self, rows: int) -> None:
        self.rows += rows
        if not self.enabled:
            return
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._interval
        if self._progress is None:
            self._start()
        self._progress.update(self._task, completed=self.rows)
        self._progress.refresh()
        self.redraws += 1

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = self._console or Console(stderr=True)
        if self.total:
            columns: tuple[Any, ...] = (
                TextColumn("reading"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
        else:
            columns = (SpinnerColumn(), TextColumn("reading"), TextColumn("{task.completed:,.0f} rows"), TimeElapsedColumn())
        # auto_refresh=False: no background thread; we redraw from the callback.
        self._progress = Progress(
            *columns, console=console, transient=True, auto_refresh=False, get_time=self._clock
        )
        self._progress.start()
        self._task = self._progress.add_task("rows", total=self.total or None)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def evaluate_and_report(
    command: str,
    files: tuple[str, ...],
    options: dict[str, Any],
    outputs: tuple[str, tuple[str, ...], str | None, bool, bool],
    run: Any,
) -> int:
    """The body of ``eval`` and ``compare``: the request from the options and config, the run with a
    progress bar, the outputs written; ``outputs`` is ``(fmt, -o paths, --config, --no-config, --quiet)``."""
    from lossctl.cli.outputs import plan_outputs
    from lossctl.render import FORMATS

    fmt, paths, config_path, no_config, quiet = outputs
    config = load_defaults(config_path, no_config)
    targets = plan_outputs(fmt, paths, config.format, FORMATS)
    request = build_request(command, files, options, config, targets.paths)
    progress = ProgressBar.for_terminal(quiet)
    try:
        with targets.reporting_errors(files):
            evaluation = run(request, on_chunk=progress)
    finally:
        progress.close()
    return report(evaluation, targets, quiet)
