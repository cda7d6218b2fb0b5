"""Read a plans YAML file into a frozen PlanStudy, or fail with the field path, the value and the fix.

Why here and not in harness/scenario: a plans file is the capacity model's
input, not a run's. It reuses the shared spellings, though: `load:` is read by
harness.load.codec (the kinds Locust runs), `faults:` by the scenario loader's
fault parser (the faults a live run injects), so one file format per concept.

    name: end-of-quarter
    seed: 7
    replications: 5
    load: {kind: surge, base_rate_per_s: 300, peak_rate_per_s: 1500, ...}
    faults: [{kind: toxic, link: consumer_postgres, toxic: latency, start_s: 60, duration_s: 30,
              attributes: {latency: 40}}]
    slo: {latency_ms_p99_max: 2000, shed_share_max: 0.001, attainment_min: 0.8}
    system: {partitions: 16, batch_size_max: 100, overhead: {kind: lognormal, mean_s: 0.004, cv: 0.5}, ...}
    plans:
      - {name: fixed-6, consumers: 6}
      - {name: reactive, consumers: 2, scaling: {kind: reactive, backlog_high_events: 2000, ...}}
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.capacity.config import (
    DISTRIBUTION_KINDS,
    ModelConfig,
    NoScaling,
    Ownership,
    PredictiveScaling,
    ReactiveScaling,
    RetryPolicy,
    Workers,
)
from harness.capacity.plans import REPLICATIONS_MAX, Plan, PlanStudy, Slo
from harness.errors import ScenarioError
from harness.faults.schedule import FaultSchedule
from harness.files import read_yaml_file
from harness.load.codec import profile_from_dict
from harness.scenario.fields import enum_at as _enum
from harness.scenario.fields import join_path as _join
from harness.scenario.fields import known_keys as _known
from harness.scenario.fields import mapping_at
from harness.scenario.fields import number_at as _number

__all__ = ["load_plans_file", "study_from_mapping", "PLANS_BYTES_MAX"]

PLANS_BYTES_MAX = 1_000_000
PLANS_COUNT_MAX = 100

_TOP_KEYS = ("name", "description", "seed", "replications", "load", "faults", "slo", "system", "plans")
_SCALING_KINDS = {"none": NoScaling, "reactive": ReactiveScaling, "predictive": PredictiveScaling}
# What `system:` and each plan may set: every ModelConfig field.
_CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig))


def load_plans_file(path: Path) -> PlanStudy:
    """Parse and validate a plans file."""
    path = Path(path)
    raw = read_yaml_file(path, "plans file", PLANS_BYTES_MAX)
    return study_from_mapping(raw, default_name=path.stem)


def study_from_mapping(raw: Any, default_name: str = "plans") -> PlanStudy:
    """Build a PlanStudy from an already-parsed document (tests, the explorer)."""
    top = _mapping(raw, "")
    _known(top, _TOP_KEYS, "")
    seed = int(_number(top.get("seed", 0), "seed", 0, 2**63 - 1, whole=True))
    replications = int(_number(top.get("replications", 5), "replications", 1, REPLICATIONS_MAX, whole=True))
    if "load" not in top:
        raise ScenarioError("load: missing; name one load profile, e.g. {kind: steady, base_rate_per_s: 500, "
                            "duration_s: 600}")  # fmt: skip
    profile = _built("load", lambda: profile_from_dict(_mapping(top["load"], "load"), where="load"), prefix=False)
    faults = _faults(top.get("faults") or [])
    slo = _dataclass_from(Slo, _mapping(top.get("slo"), "slo"), "slo")
    system = dict(_mapping(top.get("system") or {}, "system"))
    _known(system, tuple(k for k in _CONFIG_KEYS if k != "scaling"), "system")
    raw_plans = top.get("plans")
    if not isinstance(raw_plans, list) or not raw_plans:
        raise ScenarioError(f"plans: {raw_plans!r} is not a non-empty list of plans; add e.g. [{{name: four, "
                            "consumers: 4}]")  # fmt: skip
    if len(raw_plans) > PLANS_COUNT_MAX:
        raise ScenarioError(f"plans: {len(raw_plans)} plans is more than {PLANS_COUNT_MAX}; split the file")
    plans, seen = [], set()
    for index, item in enumerate(raw_plans):
        where = f"plans[{index}]"
        section = _mapping(item, where)
        _known(section, ("name",) + _CONFIG_KEYS, where)
        name = section.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ScenarioError(f"{where}.name: {name!r} is not a name; give each plan a short unique name")
        if name in seen:
            raise ScenarioError(f"{where}.name: {name!r} is used twice; plan names must be unique")
        seen.add(name)
        merged = {**system, **{k: v for k, v in section.items() if k != "name"}}
        plans.append(Plan(name, _config(merged, where, system)))
    return _built(
        "",
        lambda: PlanStudy(
            str(top.get("name") or default_name), profile, faults, slo, tuple(plans), replications, seed
        ),  # fmt: skip
    )


def _config(values: Mapping[str, Any], where: str, system: Mapping[str, Any]) -> ModelConfig:
    """A ModelConfig from a plan merged over `system:`; an error names where the value was written."""

    def at(key: str) -> str:
        return f"{where}.{key}" if key in values and (key not in system or values[key] is not system[key]) \
            else f"system.{key}"  # fmt: skip

    kwargs = {}
    for key, value in values.items():
        w = at(key)
        if key in ("overhead", "per_event"):
            kwargs[key] = _distribution(value, w)
        elif key == "retry":
            kwargs[key] = _dataclass_from(RetryPolicy, _mapping(value, w), w)
        elif key == "scaling":
            kwargs[key] = _scaling(value, w)
        elif key == "ownership":
            kwargs[key] = _enum(Ownership, value, w)
        elif key == "partition_weights":
            kwargs[key] = _weights(value, w, values.get("partitions", ModelConfig.partitions))
        elif key == "workers":
            kwargs[key] = _enum(Workers, value, w)
        elif key == "backlog_high_water_events" and value is None:
            kwargs[key] = None
        else:
            whole = isinstance(dataclasses.fields(ModelConfig)[_CONFIG_KEYS.index(key)].default, int)
            kwargs[key] = _number(value, w, 0, float("inf"), whole=whole)
    try:
        return ModelConfig(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(_locate(str(exc), where, at)) from None


def _weights(raw: Any, where: str, partitions: Any):
    """A list of shares, or {accounts, zipf_exponent}: the load generator's hot keys over these partitions."""
    if isinstance(raw, list):
        return tuple(_number(v, f"{where}[{i}]", 0, float("inf")) for i, v in enumerate(raw))
    section = _mapping(raw, where)
    _known(section, ("accounts", "zipf_exponent"), where)
    from harness.capacity.skew import partition_weights
    from harness.load.generator import GeneratorConfig

    generator = _built(where, lambda: GeneratorConfig(**dict(section)))
    if not isinstance(partitions, int) or partitions < 1:
        raise ScenarioError(f"{where}: needs a whole number of partitions >= 1, got {partitions!r}")
    return partition_weights(generator, partitions)


def _distribution(raw: Any, where: str):
    section = _mapping(raw, where)
    kind = section.get("kind")
    if kind not in DISTRIBUTION_KINDS:
        raise ScenarioError(f"{where}.kind: {kind!r} is not a distribution; use one of "
                            f"{', '.join(DISTRIBUTION_KINDS)}")  # fmt: skip
    return _dataclass_from(DISTRIBUTION_KINDS[kind], {k: v for k, v in section.items() if k != "kind"}, where)


def _scaling(raw: Any, where: str):
    section = _mapping(raw, where)
    kind = section.get("kind", "none")
    if kind not in _SCALING_KINDS:
        raise ScenarioError(f"{where}.kind: {kind!r} is not a scaling policy; use one of {', '.join(_SCALING_KINDS)}")
    return _dataclass_from(_SCALING_KINDS[kind], {k: v for k, v in section.items() if k != "kind"}, where)


def _faults(raw: Any) -> FaultSchedule:
    # The scenario loader's parser, so that a plans file spells faults exactly as a scenario does.
    from harness.scenario.loader import faults_from_list as scenario_faults

    return scenario_faults(raw)


# --- helpers: every error says where, what and the fix --------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    return mapping_at(value, where, top="plans file")


_QUOTED_FIELD = re.compile(r'^"(\w+)"')


def _locate(message: str, where: str, at: Callable[[str], str] | None = None) -> str:
    """Put the path in front of a domain error: '"cv" must be > 0' at x.y becomes 'x.y.cv: "cv" must be > 0'."""
    match = _QUOTED_FIELD.match(message)
    if match:
        field = match.group(1)
        path = at(field) if at else _join(where, field)
        return f"{path}: {message}"
    return f"{where or 'plans file'}: {message}"


def _built(where: str, build: Callable[[], Any], prefix: bool = True) -> Any:
    try:
        return build()
    except ScenarioError:
        raise
    except (ValueError, TypeError) as exc:
        raise ScenarioError(_locate(str(exc), where) if prefix else str(exc)) from None


def _dataclass_from(cls, section: Mapping[str, Any], where: str):
    names = tuple(f.name for f in dataclasses.fields(cls))
    _known(section, names, where)
    for key, value in section.items():
        if value is not None and not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ScenarioError(f"{_join(where, key)}: {value!r} is not a number")
    return _built(where, lambda: cls(**section))
