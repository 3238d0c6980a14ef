"""``lossctl inspect``: schema, row count, the columns eval would pick, the task (no evaluation)."""

from __future__ import annotations

import click

from lossctl.cli.common import (
    build_request,
    common_options,
    config_options,
    load_defaults,
    output_options_for,
    say,
)
from lossctl.cli.outputs import plan_outputs
from lossctl.errors import ExitStatus
from lossctl.options import click_options

FORMATS = ("table", "json")


@click.command("inspect")
@click.argument("files", nargs=-1, metavar="FILE...", type=click.Path(allow_dash=True))
@click_options("inspect")
@output_options_for(FORMATS)
@config_options
@common_options
def inspect_command(
    files: tuple[str, ...],
    fmt: str | None,
    outputs: tuple[str, ...],
    config_path: str | None,
    no_config: bool,
    quiet: bool,
    traceback: bool,
    **options: object,
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
    from lossctl.inspection import inspect
    from lossctl.render.inspect import inspection_json, inspection_table

    config = load_defaults(config_path, no_config)
    targets = plan_outputs(fmt, outputs, config.format, FORMATS)
    request = build_request("inspect", files, options, config, targets.paths)
    result = inspect(request)
    targets.write(lambda fmt, stdout: inspection_json(result) if fmt == "json" else inspection_table(result, stdout=stdout))
    if result.problem:
        # The same line eval would print, and the same exit status.
        click.echo(f"lossctl: {result.problem}", err=True)
        return result.problem_status
    if result.stats:
        for role, stats in result.stats.items():
            if stats.nonfinite:
                say(f"warning: {role}: {stats.nonfinite} rows are NaN, infinite or empty (eval stops on them unless --nan drop or propagate)", quiet)
    return int(ExitStatus.OK)
