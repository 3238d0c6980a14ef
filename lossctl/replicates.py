"""Counter-based Poisson bootstrap weights: replicate ``b`` of global row ``i``.

``--ci`` runs the Poisson bootstrap in the same pass as the point estimate:
replicate ``b`` gives row ``i`` a Poisson(1)-distributed weight. The weight
is a pure function of ``(seed, b, i)``, computed where it is needed, never
drawn from a generator whose position depends on how the rows were cut. So a
chunk, a lane, a shard or a Dask task that holds row ``i`` computes the same
weight for it, and two prediction files over the same rows get the same
weights (``compare`` is paired for free).

The generator: replicates come in octets ``o = b // 8``; each octet has a
64-bit key derived from the seed (SplitMix64's stream); ``z = key_o + i *
GAMMA`` is mixed by the SplitMix64 finaliser (the output function of a
generator that passes BigCrush), and the eight bytes of ``z`` are eight
replicates' uniforms. A byte becomes a count by five comparisons (SIMD, no
table lookup): the counts 0-5 have probabilities 94, 95, 46, 16, 4 and 1 in
256, Poisson(1) to within 1/256 with mean and variance exactly 1. A
replicate's weights do not depend on how many replicates there are:
``--bootstrap 200`` is the first 200 replicates of ``--bootstrap 1000``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
PER_HASH = 8  # one-byte uniforms per 64-bit hash

# A byte u counts the thresholds it reaches: P(count = k) = (94, 95, 46, 16, 4, 1)[k] / 256.
THRESHOLDS = tuple(np.uint8(t) for t in (94, 189, 235, 251, 255))


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64's finaliser, in place."""
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


@functools.lru_cache(maxsize=16)
def octet_keys(seed: int, first: int, count: int) -> NDArray[np.uint64]:
    """The 64-bit keys of octets ``first .. first + count - 1`` (SplitMix64's stream from the seed).

    Cached (every block of a run asks for the same keys); the array is read-only.
    """
    with np.errstate(over="ignore"):
        base = _mix(np.array([seed % 2**64], dtype=np.uint64))[0]
        z = base + GAMMA * np.arange(first + 1, first + count + 1, dtype=np.uint64)
    keys = _mix(z)
    keys.flags.writeable = False
    return keys


def _counts(seed: int, rows: NDArray[np.integer], first: int, count: int) -> NDArray[np.uint8]:
    """``(len(rows), count)`` counts: row-major, each row's replicates side by side."""
    rows = np.asarray(rows).astype(np.uint64, copy=False)
    lo, hi = first // PER_HASH, -(-(first + count) // PER_HASH)
    keys = octet_keys(seed, lo, hi - lo)
    with np.errstate(over="ignore"):
        z = np.add((rows * GAMMA)[:, None], keys[None, :])
    _mix(z)
    if not np.little_endian:  # byte k of the number, whatever the machine
        z = z.byteswap()
    # Byte k of octet o's hash is replicate 8o + k: (rows, octets * 8), no copy.
    u = z.view(np.uint8).reshape(len(rows), (hi - lo) * PER_HASH)
    w = np.greater_equal(u, THRESHOLDS[0]).view(np.uint8)
    for t in THRESHOLDS[1:]:
        w += np.greater_equal(u, t).view(np.uint8)
    skip = first - lo * PER_HASH
    return w[:, skip : skip + count]


def counts(seed: int, rows: NDArray[np.integer], first: int, count: int) -> NDArray[np.uint8]:
    """``(count, len(rows))`` weights (uint8) of replicates ``first .. first + count - 1``."""
    return _counts(seed, rows, first, count).T


def weights(seed: int, rows: NDArray[np.integer], first: int, count: int) -> NDArray[np.float64]:
    """:func:`counts` as float64, C-contiguous ``(count, len(rows))``: each replicate's row runs along memory.

    (The one-byte counts are transposed, not the float64s: a skinny float64
    transpose costs ten times more.)
    """
    return np.ascontiguousarray(counts(seed, rows, first, count)).astype(np.float64)


def by_row(seed: int, rows: NDArray[np.integer], count: int) -> NDArray[np.float64]:
    """``(len(rows), count)`` float64 weights of the first ``count`` replicates, C-contiguous.

    The layout of the bootstrap's matrix product ``C.T @ W`` (``C`` a block's
    per-row columns): the fastest of the forms measured, the replicates being
    the long axis.
    """
    return _counts(seed, rows, 0, count).astype(np.float64)


def block_rows(replicates: int) -> int:
    """Rows per block of weights: a block's ``rows x replicates`` float64 stays near 2 MB (cache-sized)."""
    return int(min(4096, max(64, (1 << 18) // max(replicates, 1))))


@dataclass(frozen=True)
class Replication:
    """``--ci LEVEL --bootstrap B --seed S``."""

    level: float
    replicates: int
    seed: int

    @property
    def stride(self) -> int:
        """Slots per group: the plain rows and every replicate."""
        return self.replicates + 1

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "replicates": self.replicates, "seed": self.seed, "method": "percentile"}

    def weigh(self, rows: np.ndarray, first: int, count: int) -> np.ndarray:
        """``(count, len(rows))`` weights of replicates ``first ..``."""
        return weights(self.seed, rows, first, count)


def replication(level: float | None, replicates: int, seed: int) -> Replication | None:
    """``--ci/--bootstrap/--seed`` checked (a usage error names the option), or ``None`` without ``--ci``."""
    from lossctl.errors import UsageProblem

    if level is None:
        return None
    if not 0.0 < level < 1.0:
        raise UsageProblem(f"--ci must be a level between 0 and 1 (e.g. 0.95), not {level:g}")
    if replicates < 2:
        raise UsageProblem(f"--bootstrap must be at least 2 replicates, not {replicates}")
    if replicates > 100_000:
        raise UsageProblem(f"--bootstrap {replicates}: at most 100000 replicates")
    if not 0 <= seed < 2**63:
        raise UsageProblem(f"--seed must be a non-negative integer below 2**63, not {seed}")
    return Replication(float(level), int(replicates), int(seed))
