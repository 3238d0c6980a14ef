"""Output files written whole or not at all (SPEC sections 5 and 10).

Every file lossctl writes (``-o``, ``--per-row``, ``--save-state``) is
filled as a temporary file in the target's folder and renamed over the
target only once complete; on failure the temporary file is removed, so an
existing file keeps its old content and no partial file is left. The file
gets the mode any file the user creates gets (``0o666`` less the umask).
A target that exists and is not a regular file (``/dev/stdout``, a FIFO, a
device) is written in place: renaming over it would replace the device.

A write that fails for lack of room (disk full, file size limit, an I/O
error, standard output closed) is an :class:`OutputError`, exit 74 (SPEC
section 6); an output that cannot be created at all is a usage error.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence

from lossctl.errors import LossctlError, OutputError, UsageProblem

# The write itself failed: the consumer did not get the whole result (exit 74).
WRITE_FAILURES = frozenset(
    {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EPIPE, errno.EBADF, errno.EROFS}
)


def cannot_write(flag: str, path: str, exc: OSError) -> LossctlError:
    """The one error of an output that cannot be written: exit 74 if writing failed, else 2."""
    reason = exc.strerror or str(exc)
    if exc.errno in WRITE_FAILURES:
        return OutputError(f"{flag} {path}: cannot write: {reason}; the result was not written")
    return UsageProblem(f"{flag} {path}: cannot write: {reason}")


def stdout_failed(exc: OSError) -> OutputError:
    """Standard output could not take the whole result (closed, broken, full): exit 74."""
    if isinstance(exc, BrokenPipeError):
        reason = "closed by its reader (broken pipe)"
    else:
        reason = exc.strerror or str(exc)
    return OutputError(f"cannot write standard output: {reason}; the result was not written whole")


class ClosedStream:
    """Stands for a standard stream the caller closed (``>&-``): every write fails with EBADF."""

    encoding = "utf-8"
    errors = "strict"

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "it is closed")

    def flush(self) -> None:
        pass


def _in_place(path: str) -> bool:
    """Whether ``path`` exists and is no regular file (a device, a FIFO): written without a rename."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def check_writable(flag: str, path: str) -> None:
    """Refuse, before anything is read, a path whose folder is missing or that is a folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageProblem(f"{flag} {path}: cannot write: is a directory")
    if not os.path.isdir(folder):
        raise UsageProblem(f"{flag} {path}: cannot write: no such directory {os.path.dirname(path) or '.'}")


def same_path(a: str, b: str) -> bool:
    """Whether two paths name one file (the same path, or one file by two names)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def input_files(sources: Sequence[str | None]) -> Iterator[str]:
    """Every file the inputs stand for: a FILE, the path of a ``PATH:COLUMN``, each file in an input directory or glob."""
    for source in sources:
        if not source or source == "-" or "://" in source:
            continue
        path = source
        if not os.path.exists(path) and ":" in path:
            path = path.rpartition(":")[0]
        if os.path.isdir(path):
            for root, _, names in os.walk(path):
                yield from (os.path.join(root, name) for name in names)
        elif glob.has_magic(path):
            yield from input_files(glob.glob(path, recursive=True))
        else:
            yield path


def refuse_inputs(flag: str, output: str | None, sources: Sequence[str | None]) -> None:
    """An output (``-o``, ``--per-row``, ``--save-state``) naming an input is a usage error, before anything is read (SPEC section 10)."""
    if not output or output == "-":
        return
    for path in input_files(sources):
        if same_path(path, output):
            raise UsageProblem(f"{flag} {output}: is an input file; name another file")


class Replacement:
    """A temporary file next to ``path``: :meth:`commit` renames it over ``path``, :meth:`discard` removes it.

    ``flag`` names the option in messages (``-o``, ``--per-row``).
    """

    def __init__(self, path: str, flag: str) -> None:
        self.path, self.flag = path, flag
        self.in_place = _in_place(path)
        if self.in_place:
            self.tmp = path
            return
        folder = os.path.dirname(os.path.abspath(path))
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise cannot_write(flag, path, exc) from None
        os.close(fd)

    def commit(self) -> None:
        """Give the file the usual mode and move it into place."""
        if self.in_place:
            return
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if self.in_place:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def write_whole(texts: Mapping[str, str], flag: str = "-o") -> None:
    """Write each ``{path: text}`` whole, or none of them: every temporary file first, then the renames."""
    pending: list[Replacement] = []
    path = ""
    try:
        for path, text in texts.items():
            pending.append(Replacement(path, flag))
            with open(pending[-1].tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
        for replacement in pending:
            path = replacement.path
            replacement.commit()
    except BaseException as exc:
        for replacement in pending:
            replacement.discard()
        if isinstance(exc, OSError):
            raise cannot_write(flag, path, exc) from None
        raise
