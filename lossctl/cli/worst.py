"""``lossctl worst``: the rows with the largest per-row loss, with their row numbers."""

from __future__ import annotations

from dataclasses import replace

import click

from lossctl.cli.common import (
    ProgressBar,
    build_request,
    common_options,
    config_options,
    load_defaults,
    output_options_for,
    say,
)
from lossctl.cli.outputs import plan_outputs
from lossctl.completion import complete_specs
from lossctl.errors import ExitStatus, UsageProblem
from lossctl.options import click_options

FORMATS = ("table", "json", "csv")


@click.command("worst")
@click.argument("files", nargs=-1, metavar="[FILE]...", type=click.Path(allow_dash=True))
@click.option("-l", "--loss", "loss", metavar="SPEC", shell_complete=complete_specs, help="The per-row loss (or metric) to rank rows by: NAME[:key=value...].  [required]")
@click.option("-n", "count", type=click.IntRange(min=1), default=10, show_default=True, help="How many rows to show.")
@click_options("worst")
@output_options_for(FORMATS)
@config_options
@common_options
def worst_command(
    files: tuple[str, ...],
    loss: str | None,
    count: int,
    fmt: str | None,
    outputs: tuple[str, ...],
    config_path: str | None,
    no_config: bool,
    quiet: bool,
    traceback: bool,
    **options: object,
) -> int:
    """Show the N rows of FILE(s) with the worst per-row loss.

    Rows are ranked by the loss's per-row value (largest first; smallest
    first for a metric where higher is better, such as binary_accuracy),
    ties by row number, and shown with their 0-based row numbers, y_true,
    y_pred and weight. Only entries with a value per row qualify; metrics
    computed over the whole table (r2, auc, precision, rmse) do not.
    One pass, memory for N rows plus one chunk.

    \b
    Examples:
      lossctl worst sample_data/regression.csv --loss mse -n 5
      lossctl worst sample_data/binary.csv --loss binary_crossentropy -f csv
    """
    from lossctl.api import worst
    from lossctl.render.worst import worst_csv, worst_json, worst_table

    if not loss:
        raise UsageProblem("worst needs --loss NAME (a per-row loss such as mse)")
    config = load_defaults(config_path, no_config)
    targets = plan_outputs(fmt, outputs, config.format, FORMATS)
    request = replace(build_request("worst", files, options, config, targets.paths), losses=(loss,))
    progress = ProgressBar.for_terminal(quiet)
    try:
        result = worst(request, count, on_chunk=progress)
    finally:
        progress.close()
    renderers = {"json": worst_json, "csv": worst_csv}
    targets.write(lambda fmt, stdout: renderers[fmt](result) if fmt in renderers else worst_table(result, stdout=stdout))
    for warning in result.evaluation.warnings:
        say(f"warning: {warning}", quiet)
    return int(ExitStatus.OK)
