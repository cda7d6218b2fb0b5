"""Settings of the reference system: one frozen dataclass shared by every process, and its flags.

Why one dataclass for all processes: the API and every consumer must agree on
the partition count, the variant and the limits, or partitions and idempotency
records stop lining up. The harness passes the same flags to each process; a
bad value exits 2 with a sentence naming the flag (see `SettingsError`).
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["Variant", "Settings", "SettingsError", "add_settings_flags", "settings_from_args"]


class Variant(enum.Enum):
    """Which single realistic defect is switched on (`correct`: none)."""

    CORRECT = "correct"
    ACK_BEFORE_COMMIT = "ack_before_commit"
    NO_IDEMPOTENCY = "no_idempotency"
    NO_LEASE = "no_lease"
    NO_BACKPRESSURE = "no_backpressure"
    NO_TIMEOUTS = "no_timeouts"
    PROJECTION_OUTSIDE_TXN = "projection_outside_txn"


class SettingsError(ValueError):
    """A setting is out of range; the message names the flag and the fix."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"{flag}: {message}")
        self.flag = flag


@dataclass(frozen=True)
class Settings:
    """Every knob of the reference system, validated once (see `validate`)."""

    partitions: int = 4
    variant: Variant = Variant.CORRECT
    high_water_mark: int = 10_000
    batch_size: int = 256
    linger_ms: int = 10
    redis_timeout_ms: int = 500
    postgres_timeout_ms: int = 2_000
    lease_ms: int = 2_000
    max_attempts: int = 5
    backoff_ms_base: int = 20
    backoff_ms_max: int = 1_000
    currencies: tuple[str, ...] = ("EUR", "USD", "GBP")
    amount_minor_max: int = 1_000_000_000_000
    max_body_bytes: int = 4_096
    idempotency_ttl_s: int = 7 * 24 * 3600
    retry_after_s: int = 1
    drain_s_max: float = 4.0
    breaker_enabled: bool = True
    breaker_warmup_events: int = 500
    breaker_amount_orders: float = 1.5  # ~30x: a x100 unit bug shifts the median by 2
    breaker_rate_factor: float = 50.0
    breaker_rate_per_s_min: float = 5_000.0  # per partition: above what this machine sustains in total

    def validate(self) -> Settings:
        """Raise SettingsError naming the first bad flag; return self when all hold."""
        _at_least("--partitions", self.partitions, 1, 1024)
        _at_least("--high-water-mark", self.high_water_mark, 1, 10**9)
        _at_least("--batch-size", self.batch_size, 1, 10_000)
        _at_least("--linger-ms", self.linger_ms, 0, 1_000)
        _at_least("--redis-timeout-ms", self.redis_timeout_ms, 10, 60_000)
        _at_least("--postgres-timeout-ms", self.postgres_timeout_ms, 10, 120_000)
        _at_least("--lease-ms", self.lease_ms, 300, 600_000)
        _at_least("--max-attempts", self.max_attempts, 1, 100)
        _at_least("--backoff-ms-base", self.backoff_ms_base, 1, 60_000)
        _at_least("--backoff-ms-max", self.backoff_ms_max, self.backoff_ms_base, 600_000)
        _at_least("--amount-minor-max", self.amount_minor_max, 1, 2**62)
        _at_least("--max-body-bytes", self.max_body_bytes, 256, 1_048_576)
        _at_least("--idempotency-ttl-s", self.idempotency_ttl_s, 60, 10**8)
        _at_least("--retry-after-s", self.retry_after_s, 1, 3600)
        _at_least("--breaker-warmup-events", self.breaker_warmup_events, 10, 10**7)
        if not self.currencies:
            raise SettingsError("--currencies", "is empty; give a comma-separated list such as EUR,USD,GBP")
        for code in self.currencies:
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise SettingsError(
                    "--currencies", f"{code!r} is not an ISO 4217 code; use three capital letters such as EUR"
                )
        if not 0.0 < self.drain_s_max <= 5.0:
            raise SettingsError("--drain-s-max", f"{self.drain_s_max} is outside (0, 5]; the stop bound is 5 s")
        if not 0.5 <= self.breaker_amount_orders <= 12:
            raise SettingsError("--breaker-amount-orders", f"{self.breaker_amount_orders} is outside [0.5, 12]")
        if not 1.5 <= self.breaker_rate_factor <= 10_000:
            raise SettingsError("--breaker-rate-factor", f"{self.breaker_rate_factor} is outside [1.5, 10000]")
        if self.breaker_rate_per_s_min < 1:
            raise SettingsError("--breaker-rate-per-s-min", f"{self.breaker_rate_per_s_min} is below 1")
        return self

    @property
    def timeouts_on(self) -> bool:
        """False only in the `no_timeouts` variant: downstream calls then wait forever."""
        return self.variant is not Variant.NO_TIMEOUTS

    def to_argv(self) -> list[str]:
        """The flags that reproduce these settings (used by `serve` to start children)."""
        argv: list[str] = []
        for item in fields(self):
            value = getattr(self, item.name)
            flag = "--" + item.name.replace("_", "-")
            if isinstance(value, Variant):
                value = value.value
            elif isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            argv += [flag, str(value)]
        return argv


def _at_least(flag: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise SettingsError(flag, f"{value} is outside [{low}, {high}]; pick a value in that range")


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; use true or false")


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per Settings field, named after it (`batch_size` -> `--batch-size`)."""
    defaults = Settings()
    for item in fields(Settings):
        flag = "--" + item.name.replace("_", "-")
        default = getattr(defaults, item.name)
        if item.name == "variant":
            parser.add_argument(flag, default=default.value, choices=[v.value for v in Variant])
        elif item.name == "currencies":
            parser.add_argument(flag, default=",".join(default), metavar="EUR,USD,...")
        elif isinstance(default, bool):
            parser.add_argument(flag, type=_bool, default=default, metavar="true|false")
        elif isinstance(default, int):
            parser.add_argument(flag, type=int, default=default)
        else:
            parser.add_argument(flag, type=float, default=default)


def settings_from_args(args: argparse.Namespace | Mapping[str, Any]) -> Settings:
    """Build and validate Settings from parsed flags; raise SettingsError on a bad value."""
    values = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args)
    kwargs: dict[str, Any] = {}
    for item in fields(Settings):
        if item.name not in values:
            continue
        value = values[item.name]
        if item.name == "variant" and not isinstance(value, Variant):
            value = Variant(value)
        elif item.name == "currencies" and isinstance(value, str):
            value = tuple(code.strip() for code in value.split(",") if code.strip())
        elif item.name == "currencies":
            value = tuple(value)
        kwargs[item.name] = value
    return Settings(**kwargs).validate()


def parse_settings(argv: Sequence[str]) -> Settings:
    """Parse only settings flags (tests and tools); raises SystemExit(2) on an unknown flag."""
    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    return settings_from_args(parser.parse_args(list(argv)))
