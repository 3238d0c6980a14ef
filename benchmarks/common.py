"""Definitions shared by the benchmark generator, the peer scripts and the harness.

Only the standard library is imported here, so that importing this module costs
nothing measurable inside a timed peer process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent

#: Where data goes when neither ``--out``/``--data`` nor ``LOSSCTL_BENCH_DATA`` is given.
#: ``benchmarks/data/`` is git-ignored (top-level ``.gitignore``).
DEFAULT_DATA_DIR = Path(os.environ.get("LOSSCTL_BENCH_DATA", BENCH_DIR / "data"))

#: Keras's ``backend.epsilon()``.
EPSILON = 1e-7

#: Relative tolerance of the agreement check between tools.
REL_TOL = 1e-6
#: Absolute floor of the agreement check, for values that are (close to) zero.
ABS_TOL = 1e-12

#: Number of classes in the multiclass datasets.
N_CLASSES = 10
#: The per-class probability columns of the ``columns`` layout.
PROB_COLUMNS: tuple[str, ...] = tuple(f"prob_{k}" for k in range(N_CLASSES))
#: ``k`` of the sparse top-k accuracy.
TOP_K = 5

# Metric keys: the names under which every tool reports its numbers.
REGRESSION_METRICS: tuple[str, ...] = (
    "mse",
    "mae",
    "mape",
    "msle",
    "huber",
    "log_cosh",
    "rmse",
    "r2",
)
BINARY_METRICS: tuple[str, ...] = ("binary_crossentropy", "binary_accuracy", "roc_auc")
MULTICLASS_METRICS: tuple[str, ...] = (
    "sparse_categorical_crossentropy",
    "sparse_categorical_accuracy",
    "sparse_top_5_accuracy",
)


@dataclass(frozen=True)
class LossctlRequest:
    """How a workload is asked of the ``lossctl`` CLI.

    ``specs`` maps each spec string as written on the command line to the
    benchmark's metric key; it is also how the JSON ``results`` are matched
    back (by ``spec``, falling back to the canonical ``name``).
    """

    losses: tuple[str, ...]
    metrics: tuple[str, ...]
    specs: dict[str, str]


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: the files it reads and the numbers it computes."""

    name: str
    title: str
    kind: str  # "regression" | "binary" | "multiclass"
    fmt: str  # "parquet" | "csv" | "npy"
    files: tuple[str, ...]
    metrics: tuple[str, ...]
    lossctl: LossctlRequest
    tools: tuple[str, ...] = field(default=())
    #: The label column and the prediction column (``"list"`` layout: one column, a
    #: fixed-size list per row for multiclass); the ``"columns"`` layout has one
    #: float32 probability column per class instead, ``PROB_COLUMNS``.
    true: str = "y_true"
    pred: str = "y_pred"
    layout: str = "list"  # "list" | "columns"

    def paths(self, data_dir: Path) -> list[Path]:
        """Absolute paths of the workload's input files under ``data_dir``."""
        return [data_dir / f for f in self.files]

    @property
    def pred_columns(self) -> tuple[str, ...]:
        """The columns holding the predictions."""
        return PROB_COLUMNS if self.layout == "columns" else (self.pred,)

    @property
    def columns(self) -> list[str]:
        """Every column the workload reads: the label, then the predictions."""
        return [self.true, *self.pred_columns]

    @property
    def pred_option(self) -> str:
        """What ``lossctl eval --pred`` is given: the column, or a glob over the class columns."""
        return "prob_*" if self.layout == "columns" else self.pred


_REGRESSION_LOSSCTL = LossctlRequest(
    losses=("mse", "mae", "mape", "msle", "huber:delta=1", "log_cosh"),
    metrics=("rmse", "r2"),
    specs={
        "mse": "mse",
        "mae": "mae",
        "mape": "mape",
        "msle": "msle",
        "huber:delta=1": "huber",
        "log_cosh": "log_cosh",
        "rmse": "rmse",
        "r2": "r2",
        # canonical names, used when a result carries no usable ``spec``
        "mean_squared_error": "mse",
        "mean_absolute_error": "mae",
        "mean_absolute_percentage_error": "mape",
        "mean_squared_logarithmic_error": "msle",
        "huber": "huber",
        "root_mean_squared_error": "rmse",
        "r2_score": "r2",
    },
)

_BINARY_LOSSCTL = LossctlRequest(
    losses=("binary_crossentropy",),
    metrics=("binary_accuracy", "auc"),
    specs={
        "binary_crossentropy": "binary_crossentropy",
        "binary_accuracy": "binary_accuracy",
        "auc": "roc_auc",
    },
)

_MULTICLASS_LOSSCTL = LossctlRequest(
    losses=("sparse_categorical_crossentropy",),
    metrics=("sparse_categorical_accuracy", f"sparse_top_k_categorical_accuracy:k={TOP_K}"),
    specs={
        "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
        "sparse_categorical_accuracy": "sparse_categorical_accuracy",
        f"sparse_top_k_categorical_accuracy:k={TOP_K}": "sparse_top_5_accuracy",
        "sparse_top_k_categorical_accuracy": "sparse_top_5_accuracy",
    },
)

_TABULAR_TOOLS = ("floor", "lossctl", "duckdb", "polars", "sklearn", "numpy", "torchmetrics")
#: DuckDB and Polars have no NPY reader; they are reported as not applicable.
_NPY_TOOLS = ("floor", "lossctl", "sklearn", "numpy", "torchmetrics")

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            name="regression_parquet",
            title="(a) regression, Parquet",
            kind="regression",
            fmt="parquet",
            files=("regression.parquet",),
            metrics=REGRESSION_METRICS,
            lossctl=_REGRESSION_LOSSCTL,
            tools=_TABULAR_TOOLS,
        ),
        Workload(
            name="regression_csv",
            title="(b) regression, CSV",
            kind="regression",
            fmt="csv",
            files=("regression.csv",),
            metrics=REGRESSION_METRICS,
            lossctl=_REGRESSION_LOSSCTL,
            tools=_TABULAR_TOOLS,
        ),
        Workload(
            name="binary_parquet",
            title="(c) binary classification, Parquet",
            kind="binary",
            fmt="parquet",
            files=("binary.parquet",),
            metrics=BINARY_METRICS,
            lossctl=_BINARY_LOSSCTL,
            tools=_TABULAR_TOOLS,
        ),
        Workload(
            name="multiclass_parquet",
            title="(d) 10-class, Parquet (fixed-size-list probabilities)",
            kind="multiclass",
            fmt="parquet",
            files=("multiclass.parquet",),
            metrics=MULTICLASS_METRICS,
            lossctl=_MULTICLASS_LOSSCTL,
            tools=_TABULAR_TOOLS,
        ),
        Workload(
            name="multiclass_columns_parquet",
            title="(d2) 10-class, Parquet (label + ten float32 prob_* columns)",
            kind="multiclass",
            fmt="parquet",
            files=("multiclass_columns.parquet",),
            metrics=MULTICLASS_METRICS,
            lossctl=_MULTICLASS_LOSSCTL,
            tools=_TABULAR_TOOLS,
            true="label",
            layout="columns",
        ),
        Workload(
            name="multiclass_columns_csv",
            title="(d3) 10-class, CSV (label + ten float32 prob_* columns)",
            kind="multiclass",
            fmt="csv",
            files=("multiclass_columns.csv",),
            metrics=MULTICLASS_METRICS,
            lossctl=_MULTICLASS_LOSSCTL,
            tools=_TABULAR_TOOLS,
            true="label",
            layout="columns",
        ),
        Workload(
            name="multiclass_npy",
            title="(e) 10-class, NPY (labels + probability matrix)",
            kind="multiclass",
            fmt="npy",
            files=("multiclass_labels.npy", "multiclass_probs.npy"),
            metrics=MULTICLASS_METRICS,
            lossctl=_MULTICLASS_LOSSCTL,
            tools=_NPY_TOOLS,
        ),
    )
}

#: Every tool the harness knows, in default run order.
ALL_TOOLS: tuple[str, ...] = (
    "floor",
    "lossctl",
    "duckdb",
    "polars",
    "sklearn",
    "numpy",
    "torchmetrics",
)

#: Command-line shorthands for tool names.
TOOL_ALIASES: dict[str, str] = {
    "pandas": "sklearn",
    "pandas_sklearn": "sklearn",
    "pandas+sklearn": "sklearn",
    "scikit-learn": "sklearn",
    "np": "numpy",
    "pyarrow": "floor",
}

#: How tools are labelled in RESULTS.md.
TOOL_LABELS: dict[str, str] = {
    "floor": "floor (pyarrow read)",
    "lossctl": "lossctl",
    "duckdb": "duckdb (SQL)",
    "polars": "polars (lazy)",
    "sklearn": "pandas + scikit-learn",
    "numpy": "numpy",
    "torchmetrics": "torchmetrics",
}

#: Tools that only read the data; they compute no metric and take no part in the
#: agreement check.
READ_ONLY_TOOLS = frozenset({"floor"})

#: Exit status with which a peer script says "this tool is not installed".
EXIT_UNAVAILABLE = 4
#: Exit status with which a peer script says "this tool does not do this workload".
EXIT_NOT_APPLICABLE = 5


# RESULTS.md holds run.py's report and, between these markers, scale.py's section:
# each script rewrites its own part and keeps the other's.
SCALE_BEGIN, SCALE_END = "<!-- scale:begin -->", "<!-- scale:end -->"


def scale_section(text: str) -> str:
    """The scale section of a report (empty when it has none)."""
    if SCALE_BEGIN not in text or SCALE_END not in text:
        return ""
    return SCALE_BEGIN + text.split(SCALE_BEGIN, 1)[1].split(SCALE_END, 1)[0] + SCALE_END + "\n"


def with_scale_section(text: str, section: str) -> str:
    """``text`` with its scale section replaced by ``section`` (appended when it has none)."""
    if not section:
        return text
    old = scale_section(text)
    if old:
        return text.replace(old, section)
    return text.rstrip("\n") + "\n\n" + section
