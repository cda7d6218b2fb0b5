"""Queueing formulas the model is proven against, and the batch-means confidence interval.

Why written here rather than imported: the proofs must not depend on the code
they check, and these few formulas are short enough to read against a textbook
(Kleinrock, Queueing Systems vol. 1; Law, Simulation Modeling and Analysis, §9.5).
Pure functions over floats and numpy arrays; no SimPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq

import numpy as np

__all__ = [
    "erlang_b",
    "erlang_c",
    "mmc_mean_wait_s",
    "mg1_mean_wait_s",
    "md1_mean_wait_s",
    "t_quantile_975",
    "batch_means_ci",
]


def _check_stable(arrival_rate_per_s: float, service_rate_per_s: float, servers: int) -> None:
    if arrival_rate_per_s <= 0 or service_rate_per_s <= 0:
        raise ValueError("rates must be > 0")
    if servers < 1:
        raise ValueError(f'"servers" must be >= 1, got {servers}')
    if arrival_rate_per_s >= servers * service_rate_per_s:
        raise ValueError(
            f"unstable queue: λ={arrival_rate_per_s} >= c·μ={servers * service_rate_per_s}; "
            "the waiting time has no steady state"
        )


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B blocking probability B(c, a), by the stable recursion B(k) = a·B(k-1) / (k + a·B(k-1))."""
    if servers < 0 or offered_load < 0:
        raise ValueError("servers and offered_load must be >= 0")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c, with a = λ/μ and a < c.

    C = B / (1 − ρ(1 − B)) with ρ = a/c; avoids the factorials of the textbook form.
    """
    if offered_load >= servers:
        raise ValueError(f"offered_load a={offered_load} must be < servers c={servers} for a steady state")
    b = erlang_b(servers, offered_load)
    rho = offered_load / servers
    return b / (1.0 - rho * (1.0 - b))


def mmc_mean_wait_s(arrival_rate_per_s: float, service_rate_per_s: float, servers: int) -> float:
    """Mean time in queue (before service) of M/M/c: W_q = C(c, a) / (c·μ − λ)."""
    _check_stable(arrival_rate_per_s, service_rate_per_s, servers)
    a = arrival_rate_per_s / service_rate_per_s
    return erlang_c(servers, a) / (servers * service_rate_per_s - arrival_rate_per_s)


def mg1_mean_wait_s(arrival_rate_per_s: float, service_mean_s: float, service_second_moment_s2: float) -> float:
    """Pollaczek–Khinchine mean time in queue of M/G/1: W_q = λ·E[S²] / (2(1 − ρ)), ρ = λ·E[S]."""
    _check_stable(arrival_rate_per_s, 1.0 / service_mean_s, 1)
    rho = arrival_rate_per_s * service_mean_s
    return arrival_rate_per_s * service_second_moment_s2 / (2.0 * (1.0 - rho))


def md1_mean_wait_s(arrival_rate_per_s: float, service_s: float) -> float:
    """M/D/1 mean time in queue: P-K with E[S²] = D², i.e. W_q = ρ·D / (2(1 − ρ))."""
    return mg1_mean_wait_s(arrival_rate_per_s, service_s, service_s * service_s)


# Student t 0.975 quantiles for 1..30 degrees of freedom (any statistics table).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with df degrees of freedom (two-sided 95%).

    A table up to 30, then the Cornish–Fisher expansion around z = 1.95996
    (error below 1e-4 for df > 30). Why not scipy: it is not a dependency.
    """
    if df < 1:
        raise ValueError(f'"df" must be >= 1, got {df}')
    if df <= 30:
        return _T975[df - 1]
    z = 1.959963984540054
    g1 = (z**3 + z) / 4.0
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
    return z + g1 / df + g2 / df**2 + g3 / df**3


def batch_means_ci(samples: Seq[float], batches: int = 30, warmup_share: float = 0.1) -> tuple[float, float]:
    """Mean and 95% half-width of a correlated output series by the method of batch means.

    Why batch means: successive waits in a queue are strongly correlated, so
    the naive standard error is far too small. Dropping the first warmup_share
    of the series removes the start-empty bias; the rest is cut into `batches`
    consecutive batches whose means are close to independent when batches are
    long compared to the correlation time.
    """
    if not 2 <= batches <= 1000:
        raise ValueError(f'"batches" must be within [2, 1000], got {batches}')
    if not 0.0 <= warmup_share < 1.0:
        raise ValueError(f'"warmup_share" must be within [0, 1), got {warmup_share}')
    data = np.asarray(samples, dtype=float)
    data = data[int(len(data) * warmup_share) :]
    size = len(data) // batches
    if size < 10:
        raise ValueError(
            f"{len(data)} samples after warm-up are too few for {batches} batches of >= 10; simulate longer"
        )
    means = data[: size * batches].reshape(batches, size).mean(axis=1)
    grand = float(means.mean())
    half = t_quantile_975(batches - 1) * float(means.std(ddof=1)) / math.sqrt(batches)
    return grand, half
