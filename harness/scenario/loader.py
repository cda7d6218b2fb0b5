"""Read a scenario YAML file into a frozen `Scenario`, or fail with the field path, the value and the fix.

Validation happens once, here, at the edge (STYLE habit 8). Each section is
checked for unknown keys (with a "did you mean") and built into the domain's
own types, whose own checks speak in field names; this module only prefixes the
path, so an error reads `faults[2].duration_s: -1 ... must be > 0`.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ScenarioError
from harness.faults.schedule import (
    Direction,
    FaultSchedule,
    Link,
    LinkDown,
    ProcessAction,
    ProcessFault,
    ProcessTarget,
    ToxicFault,
    ToxicType,
)
from harness.files import read_yaml_file
from harness.scenario.explore_bounds import ExploreSpec
from harness.scenario.fields import enum_at as _enum
from harness.scenario.fields import join_path as _join
from harness.scenario.fields import known_keys as _known
from harness.scenario.fields import mapping_at as _mapping
from harness.scenario.fields import number_at as _number
from harness.scenario.model import (
    VARIANTS,
    LoadSpec,
    PhaseSpec,
    Scenario,
    StackMode,
    StackSpec,
    SystemSpec,
    Variant,
)

if TYPE_CHECKING:
    from harness.checkers.config import CheckConfig

__all__ = [
    "load_scenario",
    "scenario_from_mapping",
    "with_overrides",
    "faults_from_list",
    "REPEAT_COUNT_MAX",
    "DURATION_S_MAX",
]

REPEAT_COUNT_MAX = 1000
DURATION_S_MAX = 24 * 3600.0
SCENARIO_BYTES_MAX = 1_000_000

_TOP_KEYS = (
    "name",
    "description",
    "seed",
    "duration_s_max",
    "stack",
    "system",
    "load",
    "faults",
    "phases",
    "invariants",
    "explore",
)


def load_scenario(path: Path, seed: int | None = None) -> Scenario:
    """Parse and validate a scenario file. `seed` overrides the file's seed (for replays)."""
    path = Path(path)
    raw = read_yaml_file(path, "scenario file", SCENARIO_BYTES_MAX)
    try:
        return scenario_from_mapping(raw, source=path, seed=seed)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def with_overrides(scenario: Scenario, seed: int | None = None, variant: str | None = None) -> Scenario:
    """The scenario with the command line's overrides applied (the one place they are applied).

    What runs is this value, and `scenario.resolved.yaml` is written from it, so a replay of the
    resolved file runs the overridden scenario, not the file's.
    """
    if seed is not None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ScenarioError(f"--seed: {seed!r} is not a whole number >= 0")
        scenario = dataclasses.replace(scenario, seed=seed)
    if variant is not None:
        if variant not in VARIANTS:
            close = difflib.get_close_matches(str(variant), VARIANTS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ScenarioError(f"--variant: {variant!r} is not a variant; {hint}use one of {', '.join(VARIANTS)}")
        scenario = dataclasses.replace(scenario, system=dataclasses.replace(scenario.system, variant=Variant(variant)))
    return scenario


def scenario_from_mapping(raw: Any, source: Path | None = None, seed: int | None = None) -> Scenario:
    """Validate an already-parsed scenario (used by the explorer to build reproducers)."""
    top = _mapping(raw, "scenario")
    _known(top, _TOP_KEYS, "")
    name = _required(top, "name", "")
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError("name: must be a non-empty text, e.g. name: microburst")
    run_seed = seed if seed is not None else top.get("seed", 1)
    if not isinstance(run_seed, int) or isinstance(run_seed, bool) or run_seed < 0:
        raise ScenarioError(f"seed: {run_seed!r} is not a whole number >= 0; e.g. seed: 42")
    duration = _number(top.get("duration_s_max", 300), "duration_s_max", low=1, high=DURATION_S_MAX)
    load = _load(_required(top, "load", ""))
    faults = _faults(top.get("faults") or [])
    phases = _phases(top.get("phases") or {})
    scenario = Scenario(
        name=name.strip(),
        description=str(top.get("description", "")).strip(),
        seed=run_seed,
        duration_s_max=duration,
        load=load,
        faults=faults,
        stack=_stack(top.get("stack") or {}),
        system=_system(top.get("system") or {}),
        phases=phases,
        invariants=_invariants(top.get("invariants") or {}, len(faults)),
        explore=_explore(top.get("explore")),
        source=source,
    )
    _cross_checks(scenario)
    return scenario


# -- helpers ---------------------------------------------------------------------------


def _required(section: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in section or section[key] is None:
        raise ScenarioError(f"{_join(where, key)}: missing; this setting is required")
    return section[key]


def _built(where: str, build: Callable[[], Any]) -> Any:
    """Run a domain constructor; turn its ValueError/TypeError into a ScenarioError at `where`."""
    try:
        return build()
    except ScenarioError:
        raise
    except (ValueError, TypeError) as exc:
        message = str(exc)
        raise ScenarioError(f"{where}: {message}") from None


def _dataclass_from(cls, section: Mapping[str, Any], where: str, convert: Mapping[str, Callable] | None = None):
    names = [f.name for f in dataclasses.fields(cls)]
    _known(section, names, where)
    values = dict(section)
    for key, fn in (convert or {}).items():
        if key in values:
            values[key] = fn(values[key], _join(where, key))
    return _built(where, lambda: cls(**values))


# -- sections ---------------------------------------------------------------------------


def _stack(raw: Any) -> StackSpec:
    section = _mapping(raw, "stack")
    spec = _dataclass_from(StackSpec, section, "stack", {"mode": lambda v, w: _enum(StackMode, v, w)})
    if spec.mode is StackMode.ATTACH and not (spec.redis_url and spec.postgres_url):
        raise ScenarioError(
            "stack: mode attach needs redis_url and postgres_url (and toxiproxy_url for network faults), "
            "or set LEDGERCHAOS_REDIS_URL / LEDGERCHAOS_POSTGRES_URL and leave mode local"
        )
    return spec


# Settings that would drive a system other than the reference system. They are refused by name
# until that exists: a run that started the reference system instead would judge the wrong one.
_NOT_YET = ("api_url", "command", "health_url", "links", "processes", "observe", "setup", "request")


def _system(raw: Any) -> SystemSpec:
    section = dict(_mapping(raw, "system"))
    kind = section.pop("kind", "reference")
    if kind != "reference":
        raise ScenarioError(
            f"system.kind: {kind!r} is not supported yet; only the bundled reference system can be driven "
            "(kind: reference). Judging your own service's history works today: see docs/history-format.md"
        )
    for key in _NOT_YET:
        if key in section:
            raise ScenarioError(
                f"system.{key}: driving your own service is not supported yet, so nothing would be sent to it "
                "and the reference system would be judged instead; remove it. Judging your own service's "
                "history works today: see docs/history-format.md"
            )
    variant = section.get("variant", Variant.CORRECT.value)
    if variant not in VARIANTS:
        close = difflib.get_close_matches(str(variant), VARIANTS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ScenarioError(f"system.variant: {variant!r} is not a variant; {hint}use one of {', '.join(VARIANTS)}")
    spec = _dataclass_from(SystemSpec, {**section, "variant": Variant(variant)}, "system")
    _number(spec.consumers, "system.consumers", 1, 64, whole=True)
    _number(spec.partitions, "system.partitions", 1, 1024, whole=True)
    _number(spec.batch_size, "system.batch_size", 1, 10_000, whole=True)
    _number(spec.high_water_mark, "system.high_water_mark", 1, 100_000_000, whole=True)
    _number(spec.start_timeout_s, "system.start_timeout_s", 1, 600)
    if not isinstance(spec.options, Mapping):
        raise ScenarioError("system.options: expected a mapping of flag: value, e.g. {lease_ms: 2000}")
    return spec


def _load(raw: Any) -> LoadSpec:
    from harness.load.codec import profile_from_dict
    from harness.load.config import LoadModel, RetryPolicy
    from harness.load.generator import GeneratorConfig

    section = _mapping(raw, "load")
    _known(section, [f.name for f in dataclasses.fields(LoadSpec)], "load")
    profile = _built(
        "load",
        lambda: profile_from_dict(_mapping(_required(section, "profile", "load"), "load.profile"), "load.profile"),
    )
    generator = _built(
        "load.generator", lambda: GeneratorConfig.from_dict(_mapping(section.get("generator") or {}, "load.generator"))
    )
    retry = _dataclass_from(RetryPolicy, _mapping(section.get("retry") or {}, "load.retry"), "load.retry")
    model = _enum(LoadModel, section.get("model", "open"), "load.model")
    spec = LoadSpec(
        profile=profile,
        generator=generator,
        retry=retry,
        model=model,
        users=int(_number(section.get("users", 200), "load.users", 1, 20_000, whole=True)),
        workers=int(_number(section.get("workers", 1), "load.workers", 1, 64, whole=True)),
        request_timeout_s=_number(section.get("request_timeout_s", 2.0), "load.request_timeout_s", 0.01, 600),
        think_time_s=_number(section.get("think_time_s", 1.0), "load.think_time_s", 0, 3600),
        ops_max=int(_number(section.get("ops_max", 2_000_000), "load.ops_max", 2, 50_000_000, whole=True)),
    )
    return spec


_FAULT_KINDS = ("toxic", "down", "process")
_FAULT_KEYS = {
    "toxic": ("kind", "link", "toxic", "direction", "toxicity", "attributes", "start_s", "duration_s", "repeat"),
    "down": ("kind", "link", "start_s", "duration_s", "repeat"),
    "process": ("kind", "action", "target", "start_s", "duration_s", "repeat"),
}


def faults_from_list(raw: Any) -> FaultSchedule:
    """A `faults:` list in scenario-file form to a FaultSchedule (capacity plans spell faults the same way)."""
    return _faults(raw)


def _faults(raw: Any) -> FaultSchedule:
    if not isinstance(raw, list):
        raise ScenarioError(f"faults: expected a list of faults, got {type(raw).__name__}")
    built: list[Any] = []
    for index, item in enumerate(raw):
        where = f"faults[{index}]"
        section = _mapping(item, where)
        kind = section.get("kind")
        if kind not in _FAULT_KINDS:
            raise ScenarioError(f"{where}.kind: {kind!r} is not a fault kind; use one of {', '.join(_FAULT_KINDS)}")
        _known(section, _FAULT_KEYS[kind], where)
        start_s = _number(_required(section, "start_s", where), f"{where}.start_s", 0, DURATION_S_MAX)
        duration_s = _number(_required(section, "duration_s", where), f"{where}.duration_s", 0.001, DURATION_S_MAX)
        starts = _repeats(section.get("repeat"), start_s, duration_s, f"{where}.repeat")
        for start in starts:
            built.append(_one_fault(kind, section, start, duration_s, where))
    return FaultSchedule(tuple(built))


def _repeats(raw: Any, start_s: float, duration_s: float, where: str) -> list[float]:
    """`repeat: {count: N, every_s: S}` turns one fault into N, S seconds apart (a kill loop)."""
    if raw is None:
        return [start_s]
    section = _mapping(raw, where)
    _known(section, ("count", "every_s"), where)
    count = int(_number(_required(section, "count", where), f"{where}.count", 1, REPEAT_COUNT_MAX, whole=True))
    every_s = _number(_required(section, "every_s", where), f"{where}.every_s", 0.001, DURATION_S_MAX)
    if count > 1 and every_s < duration_s:
        raise ScenarioError(
            f"{where}.every_s: {every_s:g} is shorter than duration_s ({duration_s:g}); the repeats would overlap"
        )
    return [start_s + i * every_s for i in range(count)]


def _one_fault(kind: str, section: Mapping[str, Any], start_s: float, duration_s: float, where: str):
    if kind == "toxic":
        link = _enum(Link, _required(section, "link", where), f"{where}.link")
        toxic = _enum(ToxicType, _required(section, "toxic", where), f"{where}.toxic")
        direction = _enum(Direction, section.get("direction", "downstream"), f"{where}.direction")
        attributes = _mapping(section.get("attributes") or {}, f"{where}.attributes")
        toxicity = _number(section.get("toxicity", 1.0), f"{where}.toxicity", 0, 1)
        return _built(
            f"{where}.attributes" if attributes else where,
            lambda: ToxicFault(link, toxic, start_s, duration_s, direction, toxicity, dict(attributes)),
        )
    if kind == "down":
        link = _enum(Link, _required(section, "link", where), f"{where}.link")
        return _built(where, lambda: LinkDown(link, start_s, duration_s))
    action = _enum(ProcessAction, _required(section, "action", where), f"{where}.action")
    target = _enum(ProcessTarget, _required(section, "target", where), f"{where}.target")
    return _built(where, lambda: ProcessFault(action, target, start_s, duration_s))


def _phases(raw: Any) -> PhaseSpec:
    section = _mapping(raw, "phases")
    spec = _dataclass_from(PhaseSpec, section, "phases")
    _number(spec.warmup_s, "phases.warmup_s", 0, DURATION_S_MAX)
    _number(spec.drain_s_max, "phases.drain_s_max", 1, DURATION_S_MAX)
    _number(spec.sample_interval_s, "phases.sample_interval_s", 0.05, 60)
    return spec


def _invariants(raw: Any, fault_count: int = 0) -> CheckConfig:
    from harness.checkers.config import CheckConfig

    section = dict(_mapping(raw, "invariants"))
    if fault_count and "fault_windows_min" not in section:
        # A history that lost its nemesis ops must not pass graceful_degradation by having no windows.
        section["fault_windows_min"] = fault_count
    try:
        return CheckConfig.from_mapping(section, where="invariants")
    except (ValueError, TypeError) as exc:
        raise ScenarioError(str(exc)) from None


def _explore(raw: Any) -> ExploreSpec | None:
    if raw is None:
        return None
    section = _mapping(raw, "explore")
    return _dataclass_from(ExploreSpec, section, "explore")


def _cross_checks(scenario: Scenario) -> None:
    load_s = scenario.load.profile.duration_s
    for index, fault in enumerate(scenario.faults):
        if fault.end_s > load_s:
            raise ScenarioError(
                f"faults[{index}]: ends at {fault.end_s:g} s, after the load ends ({load_s:g} s); "
                f"shorten it or lengthen load.profile so recovery can be observed"
            )
    if scenario.phases.warmup_s >= load_s:
        raise ScenarioError(
            f"phases.warmup_s: {scenario.phases.warmup_s:g} is not shorter than the load ({load_s:g} s)"
        )
    budget = load_s + scenario.phases.drain_s_max
    if budget > scenario.duration_s_max:
        raise ScenarioError(
            f"duration_s_max: {scenario.duration_s_max:g} s cannot hold the load ({load_s:g} s) and the drain "
            f"({scenario.phases.drain_s_max:g} s); raise it to at least {budget + 30:g}"
        )
    if any(f.start_s < scenario.phases.warmup_s for f in scenario.faults):
        raise ScenarioError(
            f"faults: a fault starts inside the warm-up (phases.warmup_s = {scenario.phases.warmup_s:g} s); "
            "start faults after it so a baseline is measured"
        )
