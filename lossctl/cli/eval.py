"""``lossctl eval``: parse options into one Request, run it, render, pick the exit code."""

from __future__ import annotations

import sys

import click

from lossctl.cli.common import (
    ProgressBar,
    check_output_path,
    choose_format,
    common_options,
    config_options,
    delimiter_value,
    emit,
    input_options,
    load_defaults,
    say,
)
from lossctl.errors import ExitStatus

FORMATS = ("table", "json", "csv", "markdown", "junit")


@click.command("eval")
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option("-l", "--loss", "losses", multiple=True, metavar="SPEC", help="Loss(es) to evaluate: NAME[:key=value...], comma lists allowed, repeatable.")
@click.option("-m", "--metric", "metrics", multiple=True, metavar="SPEC", help="Metric(s) to evaluate, same syntax as --loss.")
@click.option(
    "-c",
    "--check",
    "checks",
    multiple=True,
    metavar="EXPR",
    help="Quality gate 'NAME OP NUMBER' (OP: < <= > >= == !=), repeatable; exit 1 when one fails. "
    "Compares the unrounded value; an undefined value fails. A NAME not requested is evaluated too.",
)
@input_options
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), help="Output format (table on a terminal, json otherwise; markdown for a CI job summary, junit: one test case per check).")
@click.option("-o", "--output", metavar="FILE", help="Write the result to FILE instead of standard output (the format follows .json/.csv/.md/.xml).")
@click.option("--per-row", "per_row", metavar="FILE", help="Also write each row's loss (row number + one column per per-row loss) to FILE (.parquet or .csv), streaming.")
@config_options
@common_options
def eval_command(
    files: tuple[str, ...],
    losses: tuple[str, ...],
    metrics: tuple[str, ...],
    checks: tuple[str, ...],
    true: str | None,
    pred: str | None,
    weight: str | None,
    chunk_size: int | None,
    input_format: str | None,
    delimiter: str | None,
    nan: str,
    fmt: str | None,
    output: str | None,
    per_row: str | None,
    config_path: str | None,
    no_config: bool,
    quiet: bool,
    traceback: bool,
) -> int:
    """Evaluate losses and metrics over the rows of FILE(s).

    FILEs (CSV/TSV, Parquet file/dir/glob, Arrow IPC, JSON Lines, NPY, NPZ;
    '-' reads CSV from standard input) are read as one table, in one pass.
    Columns are picked from common names (y_true, label, target / y_pred,
    pred, score, prob, ...) unless --true/--pred name them.

    Defaults for --loss, --metric, --check, the columns and -f come from
    ./lossctl.toml or [tool.lossctl] in ./pyproject.toml; an option given
    here replaces the configured value.

    Exit status: 0 done and every check held, 1 a check failed, 2 usage
    error, 3 data error (unreadable file, bad values), 70 internal error.

    \b
    Examples:
      lossctl eval sample_data/regression.csv --loss mse,huber:delta=2 --metric r2
      lossctl eval sample_data/regression.parquet -m rmse -f json
      lossctl eval sample_data/regression.csv -l mse --check "mse < 30" --check "r2 >= 0.5"
      lossctl eval sample_data/binary.csv -m auc --check "auc >= 0.8" -f markdown
      lossctl eval --true sample_data/multiclass_labels.npy --pred sample_data/multiclass_probs.npy -m acc
    """
    from lossctl.api import run
    from lossctl.request import DEFAULT_CHUNK_ROWS, Request
    from lossctl.render import render

    config = load_defaults(config_path, no_config)
    columns = config.columns
    request = Request(
        files=files,
        losses=losses or config.losses,
        metrics=metrics or config.metrics,
        checks=checks or config.checks,
        true=true or columns.get("true"),
        pred=pred or columns.get("pred"),
        weight=weight or columns.get("weight"),
        chunk_size=DEFAULT_CHUNK_ROWS if chunk_size is None else chunk_size,
        input_format=input_format.lower() if input_format else None,
        delimiter=delimiter_value(delimiter),
        nan=nan.lower(),
        per_row=per_row,
    )
    fmt = choose_format(fmt, output, config.format, FORMATS)
    check_output_path(output, [*files, request.true, request.pred, request.weight])
    progress = ProgressBar.for_terminal(quiet)
    try:
        evaluation = run(request, on_chunk=progress)
    finally:
        progress.close()
    text = render(evaluation, fmt, color=fmt == "table" and output is None and sys.stdout.isatty())
    emit(text, output)
    # After the result, so that on a terminal (and in a CI log) they are the last lines shown.
    for warning in evaluation.warnings:
        say(f"warning: {warning}", quiet)
    for check in evaluation.checks:
        if not check.get("passed"):
            say(f"check failed: {check.get('expr')} ({check.get('note')})", quiet)
    return int(ExitStatus.OK if evaluation.passed else ExitStatus.CHECK_FAILED)
