"""The ``lossctl`` command group and the single error boundary (SPEC section 6).

Library code raises ``UsageProblem`` (exit 2) or ``DataError`` (exit 3);
this module turns them, and Click's own usage errors, into one line on
standard error. Anything else is a bug: one "internal error" line and exit
70, with the traceback only under ``--traceback``.
"""

from __future__ import annotations

import os

# One BLAS thread: lossctl's own reader thread uses the second core, and a
# multithreaded BLAS spinning against it made a dot product 100x slower.
# Set before anything imports NumPy (the API leaves the caller's setting alone).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402 - after the environment above, as it must be
import traceback
from collections.abc import Sequence
from typing import Any

import click

from lossctl._version import __version__
from lossctl.errors import ExitStatus, LossctlError, Stopped


def _fail(message: str, status: int) -> None:
    # Messages quote file content and column names: escape control characters
    # so that a hostile file cannot break the line or drive the terminal.
    message = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in message)
    click.echo(f"lossctl: {message}", err=True)
    sys.exit(int(status))


def _internal(exc: BaseException, show_traceback: bool) -> None:
    if show_traceback:
        traceback.print_exc()
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    _fail(
        f"internal error ({detail}); this is a bug, please report it (run again with --traceback for details)",
        ExitStatus.INTERNAL,
    )


def _resource_message(exc: BaseException) -> str | None:
    """The one line for a resource limit met (SPEC section 10), or None when ``exc`` is not one.

    Out of memory, a thread that cannot start, too many open files: the
    input could not be evaluated within the limits the process was given.
    SPEC names no exit code for them; they are exit 3, like a file that
    cannot be read, never the internal error's 70.
    """
    import errno

    detail = " ".join(str(exc).split())
    if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM):
        return f"out of memory ({detail or type(exc).__name__}); lower --chunk-size, or give the process more memory"
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        return f"too many open files ({detail}); raise the limit (ulimit -n)"
    if isinstance(exc, RuntimeError) and "start new thread" in detail:
        return f"cannot start a thread ({detail}): a limit on processes or memory (ulimit -u, ulimit -v)"
    return None


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until the process ends


class LossctlGroup(click.Group):
    """A Click group whose ``main`` is the one place errors become exit codes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `lossctl` alone prints the help on standard output and exits 0, as
        # git, pip and click's own groups did before Click 8.2 made it an error.
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        # The command's words as typed, for completion (lossctl.completion): an
        # option still waiting for its value stops Click's parsing before the FILEs.
        ctx.meta["lossctl.words"] = tuple(rest)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        # Click turns Ctrl-C into Abort after printing an empty line; keep it one line.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Stopped("interrupted (SIGINT)", ExitStatus.INTERRUPTED) from None
        except BrokenPipeError as exc:
            # Click would exit 1 (a failed check) on a broken pipe: it is exit 74.
            from lossctl.outfile import stdout_failed

            raise stdout_failed(exc) from None

    def main(  # type: ignore[override]  # same signature, narrower use
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        show_traceback = "--traceback" in argv
        try:
            status = super().main(argv, prog_name or "lossctl", complete_var, standalone_mode=False, **extra)
            # The result is complete only once it left the buffer: a full disk
            # or a closed pipe behind standard output shows here (exit 74).
            sys.stdout.flush()
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", ExitStatus.INTERRUPTED)
        except click.UsageError as exc:
            where = f"lossctl {exc.ctx.info_name}" if exc.ctx and exc.ctx.parent else "lossctl"
            _fail(f"{exc.format_message()} (see '{where} --help')", ExitStatus.USAGE)
        except click.ClickException as exc:
            _fail(exc.format_message(), ExitStatus.USAGE)
        except LossctlError as exc:
            if show_traceback:
                traceback.print_exc()
            _fail(" ".join(str(exc).split()), exc.exit_status)
        except MemoryError as exc:
            _fail(_resource_message(exc) or "out of memory", ExitStatus.DATA)
        except OSError as exc:
            from lossctl.outfile import WRITE_FAILURES, stdout_failed

            if _resource_message(exc):
                _fail(_resource_message(exc) or "", ExitStatus.DATA)
            if exc.errno not in WRITE_FAILURES:
                _internal(exc, show_traceback)
            # Standard output is closed, broken (`| head`) or full: the
            # consumer did not get the whole result (SPEC section 6).
            _silence_stdout()
            _fail(str(stdout_failed(exc)), ExitStatus.OUTPUT)
        except KeyboardInterrupt:
            _fail("interrupted (SIGINT)", ExitStatus.INTERRUPTED)
        except Stopped as exc:
            _fail(str(exc), exc.exit_status)
        except Exception as exc:  # noqa: BLE001 - the boundary for bugs
            message = _resource_message(exc)
            if message:
                _fail(message, ExitStatus.DATA)
            _internal(exc, show_traceback)
        sys.exit(int(status or 0))


@click.group(cls=LossctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="lossctl", message="%(prog)s %(version)s")
@click.option("--traceback", is_flag=True, hidden=True, help="Show the Python traceback of an error.")
def cli(traceback: bool) -> None:
    """Evaluate losses and metrics over model-prediction files.

    \b
    Example:
      lossctl eval sample_data/regression.csv --loss mse,mae --metric r2
    """


def _register_commands() -> None:
    from lossctl.cli.compare import compare_command
    from lossctl.cli.eval import eval_command
    from lossctl.cli.explain import explain_command
    from lossctl.cli.inspect import inspect_command
    from lossctl.cli.list import list_command
    from lossctl.cli.merge import merge_command
    from lossctl.cli.worst import worst_command

    cli.add_command(eval_command)
    cli.add_command(inspect_command)
    cli.add_command(worst_command)
    cli.add_command(merge_command)
    cli.add_command(compare_command)
    cli.add_command(list_command)
    cli.add_command(explain_command)


_register_commands()


def _tune_malloc() -> None:
    """Keep chunk-sized NumPy temporaries on the heap (glibc only; a no-op elsewhere).

    glibc serves blocks above 128 KiB with a fresh mmap and returns them on
    free, so every 512 KiB temporary of a 64k-row chunk paid for new pages:
    a third of the run time on a 20M-row file. Raising the mmap threshold to
    16 MiB reuses that memory; the trim threshold stays at 16 MiB too, so each
    thread's heap gives back what it does not need (at 64 MiB, the heaps of
    the reader and the two lanes held 50 MB more at the peak).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 16 << 20)
    mallopt(m_trim_threshold, 16 << 20)


_STOPPING = {"SIGTERM": ExitStatus.TERMINATED, "SIGHUP": ExitStatus.HANGUP}


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise :class:`Stopped` in the main thread, as SIGINT raises KeyboardInterrupt.

    The default action would kill the process at once, leaving the
    temporary files of the outputs behind; the exception unwinds through
    their cleanup instead. A signal the parent set to be ignored (``nohup``)
    stays ignored.
    """
    import signal

    def stop(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        raise Stopped(f"terminated ({name})", _STOPPING[name])

    for name in _STOPPING:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, stop)


def _checked_stdout() -> None:
    """Make every failed or short write to standard output raise (and so exit 74).

    Closed (``>&-``): a stand-in whose writes fail. Unbuffered (``-u``,
    PYTHONUNBUFFERED): the text layer writes straight to the file and drops
    the rest of a short write (a file size limit, a nearly full disk)
    without an error; a buffered writer retries it and raises.
    """
    import io

    if sys.stdout is None:
        from lossctl.outfile import ClosedStream

        sys.stdout = ClosedStream()  # type: ignore[assignment]  # the writes it takes
        return
    raw = getattr(sys.stdout, "buffer", None)
    if isinstance(raw, io.FileIO):
        sys.stdout = io.TextIOWrapper(
            io.BufferedWriter(raw), encoding=sys.stdout.encoding, errors=sys.stdout.errors, write_through=True
        )
    _escape_what_the_encoding_lacks()


def _escape_what_the_encoding_lacks() -> None:
    """Standard output in an encoding short of Unicode (PYTHONIOENCODING=latin-1): write ``\\uXXXX`` escapes.

    In JSON they sit inside strings, where they read back as the very
    characters; elsewhere they show what the name was. Never an internal error.
    """
    import codecs

    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        if codecs.lookup(encoding).name.startswith("utf"):
            return
        codecs.register_error("lossctl-escape", _json_escape)
        sys.stdout.reconfigure(errors="lossctl-escape")  # type: ignore[union-attr]  # a TextIOWrapper here
    except (LookupError, AttributeError, ValueError):
        pass


def _json_escape(error: UnicodeError) -> tuple[str, int]:
    """A character the encoding lacks as JSON's ``\\uXXXX`` (a surrogate pair beyond the first plane)."""
    assert isinstance(error, UnicodeEncodeError)
    out = []
    for char in error.object[error.start : error.end]:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out), error.end


def main() -> None:
    """Console-script entry point.

    The process ends with ``os._exit`` once the output is flushed: tearing
    down the interpreter (a garbage collection over every module NumPy and
    pyarrow loaded, then freeing them one by one) took 40-60 ms, a tenth of
    a short run, and nothing is left to clean up: files are closed, and the
    reader and lane threads have finished.
    """
    _tune_malloc()
    _stop_on_signals()
    _checked_stdout()
    if sys.stderr is None:
        # Standard error closed (2>&-): diagnostics have nowhere to go; the exit status still says it all.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives until the process ends
    if "--traceback" not in sys.argv:
        # A thread's failure reaches the main thread (and its one line) through
        # lossctl's own hand-offs; a second one met while handing it over (out
        # of memory) would print a traceback: stay quiet.
        import threading

        threading.excepthook = lambda args: None

    try:
        cli.main()
        status: object = 0
    except SystemExit as exc:
        status = exc.code
    if status is not None and not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, or a stream closed by the caller
            pass
    os._exit(int(status or 0))
