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
COUNTS = np.array([94, 95, 46, 16, 4, 1]) / 256.0

# Rows per block of generated weights: B x ROWS float64 stays a few MB.
ROWS = 2048


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64's finaliser, in place."""
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def octet_keys(seed: int, first: int, count: int) -> NDArray[np.uint64]:
    """The 64-bit keys of octets ``first .. first + count - 1`` (SplitMix64's stream from the seed)."""
    with np.errstate(over="ignore"):
        base = _mix(np.array([seed % 2**64], dtype=np.uint64))[0]
        z = base + GAMMA * np.arange(first + 1, first + count + 1, dtype=np.uint64)
    return _mix(z)


def counts(seed: int, rows: NDArray[np.integer], first: int, count: int) -> NDArray[np.uint8]:
    """``(count, len(rows))`` weights (uint8) of replicates ``first .. first + count - 1``."""
    rows = np.asarray(rows).astype(np.uint64, copy=False)
    lo, hi = first // PER_HASH, -(-(first + count) // PER_HASH)
    keys = octet_keys(seed, lo, hi - lo)
    with np.errstate(over="ignore"):
        z = np.add(keys[:, None], rows * GAMMA)
    _mix(z)
    u = z.view(np.uint8)
    if not np.little_endian:  # byte k of the number, whatever the machine
        u = z.byteswap().view(np.uint8)
    u = u.reshape(hi - lo, len(rows), PER_HASH)
    w = np.greater_equal(u, THRESHOLDS[0]).view(np.uint8)
    for t in THRESHOLDS[1:]:
        w += np.greater_equal(u, t).view(np.uint8)
    # (octets, rows, 8) -> (octets, 8, rows): replicate 8o + k is row k of octet o.
    flat = w.transpose(0, 2, 1).reshape((hi - lo) * PER_HASH, len(rows))
    skip = first - lo * PER_HASH
    return flat[skip : skip + count]


def weights(seed: int, rows: NDArray[np.integer], first: int, count: int) -> NDArray[np.float64]:
    """:func:`counts` as float64, ready for a matrix product."""
    return counts(seed, rows, first, count).astype(np.float64)


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
