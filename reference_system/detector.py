"""Anomaly detector for one flow (partition): learns a baseline in warm-up, then flags batches.

Why no scikit-learn model: the two faults to catch are a producer whose amounts
are off by orders of magnitude (a unit bug: cents sent as units, or x1000) and a
rate explosion (a producer stuck in a loop). Both are shifts of a scale on a log
axis, which a per-account median of log10(amount) and a counted rate catch
exactly, explainably, in microseconds per batch and with no training step that
could fail. An IsolationForest would flag the same events but with an opaque
score, a fit at the end of warm-up, and a contamination knob to guess. Pure: no
I/O, no clock (time comes from the stream entry ids).
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Observation", "Detector", "Verdict"]

FLOW_WINDOW = 16  # the flow's last amounts whose median is compared with the baseline median
ACCOUNT_MARGIN_ORDERS = 0.5  # an account's warm-up range is widened by this on each side
ACCOUNTS_MAX = 100_000  # bound on tracked accounts; beyond it the flow's median is used
WARMUP_SAMPLES_MAX = 64
ACCOUNT_SAMPLES_MIN = 20  # fewer warm-up samples: the account is judged against the flow's range  # per-account samples kept to estimate its median


@dataclass(frozen=True)
class Observation:
    account: str
    amount_minor: int
    at_ms: int  # when the broker accepted it (stream entry id)


@dataclass(frozen=True)
class Verdict:
    trip: bool
    reason: str = ""
    suspects: tuple[int, ...] = ()  # indexes into the batch of events judged off-scale


class Detector:
    """Baseline per account (log10 amount range) and per flow (rate); judge() before apply."""

    def __init__(self, warmup_events: int, amount_orders: float, rate_factor: float, rate_per_s_min: float) -> None:
        self.warmup_events = warmup_events
        self.amount_orders = amount_orders
        self.rate_factor = rate_factor
        self.rate_per_s_min = rate_per_s_min
        self._seen = 0
        self._first_ms: int | None = None
        self._last_ms: int | None = None
        self._samples: dict[str, list[float]] = {}
        self._flow_samples: list[float] = []
        self._bounds: dict[str, tuple[float, float]] = {}
        self._flow_bounds = (0.0, 0.0)
        self._flow_median = 0.0
        self.rate_per_s_baseline = 0.0
        self._recent: collections.deque = collections.deque(maxlen=FLOW_WINDOW)
        self._bucket_s: int | None = None
        self._bucket_count = 0

    @property
    def armed(self) -> bool:
        return self._seen >= self.warmup_events

    def _score(self, obs: Observation) -> float:
        """Orders of magnitude outside the account's warm-up range (0 inside it)."""
        low, high = self._bounds.get(obs.account, self._flow_bounds)
        low, high = min(low, self._flow_bounds[0]), max(high, self._flow_bounds[1])
        value = math.log10(max(obs.amount_minor, 1))
        return max(value - high, low - value, 0.0)

    def judge(self, batch: Sequence[Observation]) -> Verdict:
        """Would applying this batch spread a faulty producer's postings? Does not learn."""
        if not self.armed or not batch:
            return Verdict(False)
        suspects = tuple(i for i, obs in enumerate(batch) if self._score(obs) >= self.amount_orders)
        for i in suspects:
            obs = batch[i]
            # Only upward: a log axis stretches the low tail of ordinary amounts (1, 2, 3 minor units)
            # far below any baseline, while a single amount 1000x above every amount seen is a unit bug.
            if self._score(obs) >= 2 * self.amount_orders and math.log10(obs.amount_minor) > self._flow_median:
                low, high = self._bounds.get(obs.account, self._flow_bounds)
                return Verdict(
                    True,
                    f"amount: account {obs.account} posted {obs.amount_minor}, >= {2 * self.amount_orders:g} orders "
                    f"of magnitude outside its baseline range [{10**low:.0f}, {10**high:.0f}] minor units",
                    suspects,
                )
        window = collections.deque(self._recent, maxlen=FLOW_WINDOW)
        for obs in batch:
            window.append(math.log10(max(obs.amount_minor, 1)))
            if len(window) == FLOW_WINDOW:
                shift = _median(sorted(window)) - self._flow_median
                if abs(shift) >= self.amount_orders:
                    return Verdict(
                        True,
                        f"amount: the median of the last {FLOW_WINDOW} amounts is {shift:+.1f} orders of magnitude "
                        f"from the flow's baseline median ({10**self._flow_median:.0f} minor units)",
                        suspects or tuple(range(len(batch))),
                    )
        rate = self._rate_if_applied(batch)
        if rate is not None:
            return Verdict(
                True,
                f"rate: {rate:.0f} events/s exceeds {self.rate_factor:g} x baseline "
                f"{self.rate_per_s_baseline:.0f} events/s",
                (),
            )
        return Verdict(False, "", suspects)

    def explain(self, obs: Observation) -> str:
        """Why one event is off-scale (for its dead letter), in the terms of the baseline."""
        low, high = self._bounds.get(obs.account, self._flow_bounds)
        low, high = min(low, self._flow_bounds[0]), max(high, self._flow_bounds[1])
        return (
            f"amount: {obs.amount_minor} from account {obs.account} is {self._score(obs):.1f} orders of magnitude "
            f"outside its baseline range [{10**low:.0f}, {10**high:.0f}] minor units"
        )

    def _rate_if_applied(self, batch: Sequence[Observation]) -> float | None:
        bucket, count = self._bucket_s, self._bucket_count
        limit = max(self.rate_factor * self.rate_per_s_baseline, self.rate_per_s_min)
        for obs in batch:
            second = obs.at_ms // 1000
            if bucket != second:
                bucket, count = second, 0
            count += 1
            if count > limit:
                return float(count)
        return None

    def learn(self, batch: Sequence[Observation]) -> None:
        """Account for applied events: warm-up samples, then suspicion windows and the rate bucket."""
        for obs in batch:
            value = math.log10(max(obs.amount_minor, 1))
            second = obs.at_ms // 1000
            if self._bucket_s != second:
                self._bucket_s, self._bucket_count = second, 0
            self._bucket_count += 1
            if not self.armed:
                self._seen += 1
                self._first_ms = obs.at_ms if self._first_ms is None else self._first_ms
                self._last_ms = obs.at_ms
                samples = self._samples.setdefault(obs.account, []) if len(self._samples) < ACCOUNTS_MAX else None
                if samples is not None and len(samples) < WARMUP_SAMPLES_MAX:
                    bisect.insort(samples, value)
                if len(self._flow_samples) < 4 * WARMUP_SAMPLES_MAX * 16:
                    bisect.insort(self._flow_samples, value)
                if self.armed:
                    self._finish_warmup()
                continue
            self._recent.append(value)

    def _finish_warmup(self) -> None:
        flow = self._flow_samples
        self._flow_median = _median(flow)
        self._flow_bounds = (flow[len(flow) // 100], flow[-1 - len(flow) // 100])
        margin = ACCOUNT_MARGIN_ORDERS
        self._bounds = {
            a: (s[0] - margin, s[-1] + margin) for a, s in self._samples.items() if len(s) >= ACCOUNT_SAMPLES_MIN
        }
        span_s = max(((self._last_ms or 0) - (self._first_ms or 0)) / 1000, 1.0)
        self.rate_per_s_baseline = self._seen / span_s
        self._samples.clear()
        self._flow_samples.clear()

    def accept_rate(self, rate_per_s: float) -> None:
        """An operator confirmed the current rate as legitimate: raise the baseline to it."""
        self.rate_per_s_baseline = max(self.rate_per_s_baseline, rate_per_s / self.rate_factor)
        self._bucket_s, self._bucket_count = None, 0

    def to_dict(self) -> dict:
        return {
            "armed": self.armed,
            "seen": self._seen,
            "flow_median_log10": self._flow_median,
            "accounts": len(self._bounds),
            "rate_per_s_baseline": self.rate_per_s_baseline,
        }


def _median(sorted_values: Sequence[float]) -> float:
    if not sorted_values:
        return 0.0
    mid = len(sorted_values) // 2
    if len(sorted_values) % 2:
        return sorted_values[mid]
    return (sorted_values[mid - 1] + sorted_values[mid]) / 2
