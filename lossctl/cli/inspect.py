"""``lossctl inspect``: schema, row count, the columns eval would pick, the task (no evaluation)."""

from __future__ import annotations

import sys

import click

from lossctl.cli.common import (
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

FORMATS = ("table", "json")


@click.command("inspect")
@click.argument("files", nargs=-1, metavar="FILE...")
@input_options
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), help="Output format (table on a terminal, json otherwise).")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of standard output.")
@config_options
@common_options
def inspect_command(
    files: tuple[str, ...],
    true: str | None,
    pred: str | None,
    weight: str | None,
    chunk_size: int | None,
    input_format: str | None,
    delimiter: str | None,
    nan: str,
    fmt: str | None,
    output: str | None,
    config_path: str | None,
    no_config: bool,
    quiet: bool,
    traceback: bool,
) -> int:
    """Show what `eval` would read from FILE(s), without evaluating anything.

    The schema of each input, the row count, the columns eval would pick
    (with --true/--pred/--weight and the config's columns applied), the
    task it would infer, the losses and metrics it computes by default,
    and the range and non-finite count of the picked columns. If eval
    could not pick its columns, the schema is shown with the reason and
    the exit status is the one eval would give.

    \b
    Examples:
      lossctl inspect sample_data/binary.csv
      lossctl inspect sample_data/multiclass.parquet -f json
    """
    from lossctl.request import DEFAULT_CHUNK_ROWS, Request
    from lossctl.inspection import inspect
    from lossctl.render.inspect import inspection_json, inspection_table

    config = load_defaults(config_path, no_config)
    columns = config.columns
    request = Request(
        files=files,
        true=true or columns.get("true"),
        pred=pred or columns.get("pred"),
        weight=weight or columns.get("weight"),
        chunk_size=DEFAULT_CHUNK_ROWS if chunk_size is None else chunk_size,
        input_format=input_format.lower() if input_format else None,
        delimiter=delimiter_value(delimiter),
        nan=nan.lower(),
    )
    fmt = choose_format(fmt, output, config.format if config.format in FORMATS else None, FORMATS)
    check_output_path(output, [*files, request.true, request.pred, request.weight])
    result = inspect(request)
    if fmt == "json":
        text = inspection_json(result)
    else:
        text = inspection_table(result, color=output is None and sys.stdout.isatty())
    emit(text, output)
    if result.problem:
        # The same line eval would print, and the same exit status.
        click.echo(f"lossctl: {result.problem}", err=True)
        return result.problem_status
    if result.stats:
        for role, stats in result.stats.items():
            if stats.nonfinite:
                say(f"warning: {role}: {stats.nonfinite} rows are NaN, infinite or empty (eval stops on them unless --nan drop or propagate)", quiet)
    return int(ExitStatus.OK)
