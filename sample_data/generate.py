"""Make the small, realistic files in sample_data/ (deterministic; run from the repo root).

    python sample_data/generate.py

regression.*: daily demand forecasts (counts, model predictions, store weights), and the
same rows split into shards/part-0.parquet and shards/part-1.parquet;
binary.*: churn labels with model scores; multiclass.*: 10-class softmax outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SEED = 20261121
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("web", "app", "store")


def regression(rng: np.random.Generator, n: int = 3000) -> pa.Table:
    demand = np.round(rng.lognormal(mean=3.0, sigma=0.6, size=n), 0)
    # Forecasts are positive rates (the deviance metrics need y_pred > 0).
    forecast = np.clip(demand * rng.normal(1.0, 0.12, size=n) + rng.normal(0.0, 2.0, size=n), 0.5, None)
    weight = rng.choice([1.0, 1.0, 2.0, 3.0], size=n)
    store = rng.integers(1, 60, size=n)
    return pa.table(
        {
            "store_id": pa.array(store, pa.int32()),
            "y_true": demand,
            "y_pred": np.round(forecast, 3),
            "weight": weight,
            # A slice to evaluate by (--by region): the store's region.
            "region": np.array(REGIONS)[store % len(REGIONS)],
        }
    )


def binary(rng: np.random.Generator, n: int = 4000) -> pa.Table:
    label = (rng.random(n) < 0.3).astype(np.int8)
    logit = rng.normal(-1.0, 1.0, size=n) + 2.2 * label
    score = np.round(1.0 / (1.0 + np.exp(-logit)), 4)
    return pa.table(
        {
            "customer_id": pa.array(np.arange(100000, 100000 + n), pa.int64()),
            "label": label,
            "score": score,
            "weight": rng.choice([1.0, 0.5, 2.0], size=n),
            # A slice to evaluate by (--by channel): where the customer signed up.
            "channel": np.array(CHANNELS)[np.arange(n) * 7 % 11 % len(CHANNELS)],
        }
    )


def multiclass(rng: np.random.Generator, n: int = 3000, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    label = rng.integers(0, k, size=n)
    logits = rng.normal(0.0, 1.0, size=(n, k))
    logits[np.arange(n), label] += rng.normal(2.0, 1.0, size=n)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return label.astype(np.int64), np.round(probs, 6)


def main() -> None:
    rng = np.random.default_rng(SEED)
    reg = regression(rng)
    pacsv.write_csv(reg, HERE / "regression.csv")
    pq.write_table(reg, HERE / "regression.parquet", row_group_size=1000)
    np.savez(HERE / "regression.npz", y_true=reg["y_true"].to_numpy(), y_pred=reg["y_pred"].to_numpy())
    # The same rows as two shards, as a sharded batch-inference job writes them
    # (eval --save-state on each, then lossctl merge).
    (HERE / "shards").mkdir(exist_ok=True)
    half = reg.num_rows // 2
    pq.write_table(reg.slice(0, half), HERE / "shards" / "part-0.parquet")
    pq.write_table(reg.slice(half), HERE / "shards" / "part-1.parquet")

    binr = binary(rng)
    pacsv.write_csv(binr, HERE / "binary.csv")
    pq.write_table(binr, HERE / "binary.parquet", row_group_size=1000)

    label, probs = multiclass(rng)
    k = probs.shape[1]
    wide = pa.table({"label": label, **{f"prob_{i}": probs[:, i] for i in range(k)}})
    pacsv.write_csv(wide, HERE / "multiclass.csv")
    probs_col = pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), k)
    pq.write_table(pa.table({"label": label, "probs": probs_col}), HERE / "multiclass.parquet", row_group_size=1000)
    np.save(HERE / "multiclass_labels.npy", label)
    np.save(HERE / "multiclass_probs.npy", probs)

    # Two models' scores for the same customers (lossctl compare): the binary
    # file's model as the baseline, a retrained one as the candidate, and the
    # candidate's rows in another order (compare --key id).
    (HERE / "compare").mkdir(exist_ok=True)
    ids, labels = binr["customer_id"].to_numpy(), binr["label"].to_numpy()
    base = binr["score"].to_numpy()
    logit = np.log(base / (1 - base)) + 0.35 * (2 * labels - 1) + rng.normal(0, 0.35, len(base))
    cand = np.round(1 / (1 + np.exp(-logit)), 4).clip(0.0001, 0.9999)
    common = {"id": ids, "y_true": labels, "channel": binr["channel"]}
    pq.write_table(pa.table({**common, "y_pred": base}), HERE / "compare" / "baseline.parquet")
    candidate = pa.table({**common, "y_pred": cand})
    pq.write_table(candidate, HERE / "compare" / "candidate.parquet")
    pq.write_table(candidate.take(rng.permutation(candidate.num_rows)), HERE / "compare" / "shuffled.parquet")


if __name__ == "__main__":
    main()
