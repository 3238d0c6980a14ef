"""``lossctl eval``: parse options into one Request, run it, render, pick the exit code."""

from __future__ import annotations

import click

from lossctl.cli.common import (
    common_options,
    config_options,
    evaluate_and_report,
    output_options,
)
from lossctl.options import click_options


@click.command("eval")
@click.argument("files", nargs=-1, metavar="[FILE]...", type=click.Path(allow_dash=True))
@click_options("eval")
@output_options
@config_options
@common_options
def eval_command(
    files: tuple[str, ...],
    fmt: str | None,
    outputs: tuple[str, ...],
    config_path: str | None,
    no_config: bool,
    quiet: bool,
    traceback: bool,
    **options: object,
) -> int:
    """Evaluate losses and metrics over the rows of FILE(s).

    FILEs (CSV/TSV, Parquet file/dir/glob, Arrow IPC, JSON Lines, NPY, NPZ;
    '-' reads CSV from standard input) are read as one table, in one pass.
    Columns are picked from common names (y_true, label, target / y_pred,
    pred, score, prob, ...) unless --true/--pred name them.

    Defaults for --loss, --metric, --check, the columns, --plugin and -f
    come from ./lossctl.toml or [tool.lossctl] in ./pyproject.toml; an
    option given here replaces the configured value.

    With --plugin FILE.py, the file's functions fn(y_true, y_pred) (one value
    per row) and factories returning one are names too (docs/plugins.md).

    With --by COL, every value is also computed per group of COL (and the
    observed combinations of several --by columns), in the same pass.

    FILEs may be s3://, gs://, hdfs:// or file:// paths (directories and
    globs too). With --engine dask the rows are folded on a Dask cluster,
    one task per Parquet file's row groups, with the same numbers.

    With --save-state FILE, the run's partial states are written too: run
    eval on each shard of a dataset, then 'lossctl merge' the states for the
    result one pass over all rows gives.

    Exit status: 0 done and every check held, 1 a check failed, 2 usage
    error, 3 data error (unreadable file, bad values), 70 internal error,
    74 the result could not be written (disk full, closed output), 130/143
    interrupted by SIGINT/SIGTERM.

    \b
    Examples:
      lossctl eval sample_data/regression.csv --loss mse,huber:delta=2 --metric r2
      lossctl eval sample_data/regression.parquet -m rmse -f json
      lossctl eval sample_data/regression.csv -l mse --check "mse < 30" --check "r2 >= 0.5"
      lossctl eval sample_data/binary.csv -m auc --check "auc >= 0.8" -f markdown
      lossctl eval sample_data/binary.csv -m auc,f1 -c "auc >= 0.8" -o report.json -o report.xml -o -
      lossctl eval --true sample_data/multiclass_labels.npy --pred sample_data/multiclass_probs.npy -m acc
      lossctl eval sample_data/binary.csv -m auc,acc --by channel --check "auc[*] >= 0.8"
      lossctl eval sample_data/binary.csv -m auc --ci 0.95 --check "auc.low >= 0.9"
      lossctl eval sample_data/regression.parquet -l mse,mae -m rmse --save-state shard.lcstate
      lossctl eval sample_data/regression.csv --plugin examples/plugins/huber.py -l huber_loss_with_threshold:t=2
    """
    from lossctl.api import run

    return evaluate_and_report("eval", files, options, (fmt, outputs, config_path, no_config, quiet), run)
