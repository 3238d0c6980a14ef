"""``lossctl merge``: partial states of shards → the result of one pass over all their rows."""

from __future__ import annotations

import click

from lossctl.cli.common import (
    check_output_path,
    common_options,
    output_options,
    report,
)
from lossctl.cli.outputs import plan_outputs
from lossctl.options import click_options
from lossctl.render import FORMATS


@click.command("merge")
@click.argument("states", nargs=-1, required=True, metavar="STATE...", type=click.Path(dir_okay=False))
@click_options("merge")
@output_options
@common_options
def merge_command(
    states: tuple[str, ...],
    fmt: str | None,
    outputs: tuple[str, ...],
    quiet: bool,
    traceback: bool,
    checks: tuple[str, ...],
) -> int:
    """Combine state files saved by 'eval --save-state' into one result.

    Evaluate each shard of a dataset on its own (on different machines, at
    different times), saving its states, then merge them: the values are
    those one pass over all the shards' rows gives (to 1e-9), in any order,
    with checks and outputs as in eval. States of runs with different
    metrics, columns or NaN policies cannot be merged (exit 2, saying what
    differs); a corrupt or truncated state file, or the same rows given
    twice, is exit 3.

    \b
    Examples:
      lossctl eval sample_data/shards/part-0.parquet -l mse -m rmse --save-state part-0.lcstate
      lossctl eval sample_data/shards/part-1.parquet -l mse -m rmse --save-state part-1.lcstate
      lossctl merge part-0.lcstate part-1.lcstate --check "rmse < 5" -f json
    """
    from lossctl.api import merge

    targets = plan_outputs(fmt, outputs, None, FORMATS)
    for path in targets.paths:
        check_output_path(path, states)
    with targets.reporting_errors(states):
        evaluation = merge(*states, checks=checks)
    return report(evaluation, targets, quiet)
