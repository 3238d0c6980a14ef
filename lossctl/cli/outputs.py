"""Where a command's result goes: ``-f`` and the repeatable ``-o`` (SPEC section 5).

Each ``-o FILE`` takes the format its extension names (``.json``, ``.csv``,
``.md``, ``.xml`` for JUnit, ``.txt`` for the table); ``-o -`` is standard
output. ``-f`` is the format of standard output and of a file whose
extension names none. Without ``-o`` the result goes to standard output:
``-f``, else the config's format, else the table on a terminal and JSON
elsewhere. Everything is decided and checked before the input is read
(an impossible output costs no pass over the data); after the one pass,
every file is written whole or not at all, then standard output.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import click

from lossctl.errors import DataError, UsageProblem

STDOUT = "-"


@dataclass(frozen=True)
class Target:
    """One destination: a file path, or ``None`` for standard output, and its format."""

    path: str | None
    format: str


def extension_format(path: str) -> str | None:
    """The format a file name's extension names, or ``None``."""
    from lossctl.render import BY_EXTENSION

    lowered = path.lower()
    for ext, name in BY_EXTENSION.items():
        if lowered.endswith(ext):
            return name
    return None


class Outputs:
    """The destinations of one run, checked; :meth:`write` renders and writes each once."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self.targets = tuple(targets)

    @property
    def paths(self) -> tuple[str, ...]:
        """The files to write (standard output left out)."""
        return tuple(t.path for t in self.targets if t.path is not None)

    def write(self, render: Callable[[str, bool], str]) -> None:
        """``render(format, stdout)`` for each target; the files (all or none), then standard output."""
        from lossctl.outfile import write_whole

        texts = [(t, render(t.format, t.path is None)) for t in self.targets]
        write_whole({t.path: text for t, text in texts if t.path is not None})
        for t, text in texts:
            if t.path is None:
                # The table's colours are rich's decision (a terminal, NO_COLOR, FORCE_COLOR): Click keeps them.
                click.echo(text, nl=False, color=True if t.format == "table" else None)

    @contextlib.contextmanager
    def reporting_errors(self, files: Sequence[str]) -> Iterator[None]:
        """On a data error, the JUnit and markdown outputs still get written, holding the error.

        A CI system then shows why the gate stopped (exit 3) where it shows
        the report; the other formats are left unwritten.
        """
        try:
            yield
        except DataError as exc:
            from lossctl.render import render_error

            message = " ".join(str(exc).split())
            texts = {t: render_error(t.format, message, files) for t in self.targets}
            shown = [(t, text) for t, text in texts.items() if text is not None]
            with contextlib.suppress(UsageProblem):  # the data error is the one to report
                from lossctl.outfile import write_whole

                write_whole({t.path: text for t, text in shown if t.path is not None})
            for t, text in shown:
                if t.path is None:
                    click.echo(text, nl=False)
            raise


def plan_outputs(fmt: str | None, outputs: Sequence[str], configured: str | None, formats: Sequence[str]) -> Outputs:
    """The targets of ``-f`` / ``-o``, or a usage error (checked before anything is read)."""
    fmt = fmt.lower() if fmt else None
    default = fmt or (configured if configured in formats else None)
    to_stdout = default or ("table" if "table" in formats and sys.stdout.isatty() else "json")
    if not outputs:
        return Outputs([Target(None, to_stdout)])
    from lossctl.outfile import check_writable, same_path

    targets: list[Target] = []
    for path in outputs:
        if path == STDOUT:
            if any(t.path is None for t in targets):
                raise UsageProblem("-o - given twice: standard output takes one format")
            targets.append(Target(None, to_stdout))
            continue
        named = extension_format(path)
        if named is not None and named not in formats:
            raise UsageProblem(
                f"-o {path}: this command does not write {named} (the extension's format); "
                f"its formats are {', '.join(formats)}"
            )
        check_writable("-o", path)
        for t in targets:
            if t.path is not None and same_path(t.path, path):
                raise UsageProblem(f"-o {path} given twice")
        targets.append(Target(path, named or default or "json"))
    if fmt and all(t.format != fmt for t in targets):
        shown = ", ".join(f"{t.path} as {t.format}" for t in targets if t.path is not None)
        raise UsageProblem(
            f"-f {fmt} applies to no output: each -o FILE's format follows its extension ({shown}); "
            "add -o - to also write standard output, or name a file without a known extension"
        )
    return Outputs(targets)
