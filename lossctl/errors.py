"""Exit codes and the two expected error kinds (SPEC section 6).

The library raises :class:`UsageProblem` (exit 2) or :class:`DataError`
(exit 3); ``lossctl.cli.main`` turns them into one line on standard error.
Anything else that escapes is a bug and exits 70.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes, one place."""

    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    DATA = 3
    INTERNAL = 70
    OUTPUT = 74
    HANGUP = 129
    INTERRUPTED = 130
    TERMINATED = 143


class LossctlError(Exception):
    """Base of the expected errors; ``exit_status`` says how the CLI exits."""

    exit_status: ExitStatus = ExitStatus.INTERNAL


class UsageProblem(LossctlError):
    """The request is wrong: unknown name, bad parameter, a column lossctl cannot pick (exit 2)."""

    exit_status = ExitStatus.USAGE


class DataError(LossctlError):
    """The data is wrong or unreadable: missing file or named column, corrupt, bad values (exit 3)."""

    exit_status = ExitStatus.DATA


class Stopped(BaseException):
    """A signal asked the process to stop (SIGINT, SIGTERM, SIGHUP): raised in the main thread.

    A ``BaseException`` like ``KeyboardInterrupt``, so that it passes the
    library's ``except Exception`` and runs every ``finally`` and cleanup on
    the way out (no temporary or partial output file is left).
    """

    def __init__(self, message: str, status: ExitStatus) -> None:
        super().__init__(message)
        self.exit_status = status


class OutputError(LossctlError):
    """The result could not be written: disk full, file too large, standard output closed (exit 74)."""

    exit_status = ExitStatus.OUTPUT


class ValueProblem(Exception):
    """Raised by per-chunk value checks; the engine adds file, column and global row.

    Attributes:
        role: ``y_true``, ``y_pred`` or ``weight``; ``None`` when a function
            (a plugin's) failed rather than a column's value.
        index: 0-based position of the first offending row within the chunk.
        message: what is wrong with that row, e.g. ``label 7 is out of range``.
    """

    def __init__(self, role: str | None, index: int, message: str) -> None:
        super().__init__(message)
        self.role = role
        self.index = index
        self.message = message
