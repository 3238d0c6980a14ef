"""``lossctl compare``: two models' predictions over the same rows, paired, as a CI gate."""

from __future__ import annotations

import click

from lossctl.cli.common import (
    common_options,
    config_options,
    evaluate_and_report,
    output_options,
)
from lossctl.options import click_options


@click.command("compare", short_help="Compare two models on the same rows, paired (deltas, gates).")
@click.argument("baseline", metavar="BASELINE", type=click.Path(allow_dash=False))
@click.argument("candidate", metavar="CANDIDATE", type=click.Path(allow_dash=False))
@click_options("compare")
@output_options
@config_options
@common_options
def compare_command(
    baseline: str,
    candidate: str,
    fmt: str | None,
    outputs: tuple[str, ...],
    config_path: str | None,
    no_config: bool,
    quiet: bool,
    traceback: bool,
    **options: object,
) -> int:
    """Compare a CANDIDATE model with the BASELINE on the same rows, in one pass.

    Both files hold predictions for the same rows (by position, or matched by
    an id column with --key); y_true and the weights come from BASELINE, and
    CANDIDATE's y_true must equal it row by row (or give one with --true
    PATH:COL). Every loss and metric is computed for both, with the delta
    (candidate - baseline) and whether it is better given the metric's
    direction. With --ci, the delta's paired interval (both models share the
    bootstrap weights) and its two-sided p-value; with --by, all of it per
    group.

    Gates: --check "delta(auc) >= -0.005", "delta(mse).high < 0",
    "candidate(auc) >= 0.9", "baseline(...)"; a plain NAME is the
    candidate's. --max-regression NAME=AMOUNT (or AMOUNT%) fails when the
    candidate is worse than the baseline by more than that.

    Exit status as for eval: 0 every gate held, 1 a gate failed, 2 usage
    error, 3 data error (row counts, keys or y_true that differ), 74 the
    result could not be written.

    \b
    Examples:
      lossctl compare sample_data/compare/baseline.parquet sample_data/compare/candidate.parquet -m auc,acc
      lossctl compare sample_data/compare/baseline.parquet sample_data/compare/candidate.parquet -m auc --ci 0.95 --check "delta(auc).low > 0"
      lossctl compare sample_data/compare/baseline.parquet sample_data/compare/shuffled.parquet --key id -m auc --max-regression auc=0.005
      lossctl compare sample_data/compare/baseline.parquet sample_data/compare/candidate.parquet -m auc --by channel -f markdown
    """
    from lossctl.api import run_compare

    return evaluate_and_report("compare", (baseline, candidate), options, (fmt, outputs, config_path, no_config, quiet), run_compare)
