"""The parts a run is made of, as small protocols, and the real ones.

Why: the record phase is a sequence (stack up, proxies, system up, sampler,
load with faults, heal, drain, system down, observation, history saved) whose
order, heal-on-error and partial record on interrupt are the engine's own job.
With its parts passed in, that job is tested with in-memory fakes
(tests/unit/test_run_engine.py); the real parts are tested against real
services elsewhere. The nemesis already receives its link and process control
this way (harness/faults/nemesis.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from harness.faults.nemesis import LinkControl
from harness.history.schema import Observation
from harness.load.config import LoadRunConfig
from harness.run.links import LinkPlan
from harness.run.system import SystemConfig
from harness.scenario import Scenario, StackMode
from harness.stack.local import Services

__all__ = ["RunParts", "SystemUnderTest", "Load", "Sampler", "real_parts"]


class SystemUnderTest(Protocol):
    """The processes being judged: started, restarted by name, stopped; and the nemesis's process control."""

    def start(self) -> None: ...

    def stop_all(self) -> Any: ...

    def consumer_names(self) -> list[str]: ...

    def start_named(self, names: Sequence[str]) -> Mapping[str, int]: ...


class Load(Protocol):
    """The load generator: started, polled, stopped early; its result holds every op it recorded."""

    def start(self) -> Any: ...

    def wait(self, timeout_s: float | None = None) -> Any: ...  # a LoadResult once done, else None

    def stop(self) -> Any: ...  # a LoadResult

    def progress(self) -> Any: ...  # a LoadProgress


class Sampler(Protocol):
    """Samples the system's metrics into the run folder while the run goes on."""

    latest: Mapping[str, float]

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def backlog(self) -> Mapping[int, int] | None: ...


@dataclass(frozen=True)
class RunParts:
    """Factories for each part. stack: (scenario, run folder) -> a context manager yielding Services.
    fault_proxy: Services -> the link control (Toxiproxy) or None. links: (control or None, services,
    API port) -> LinkPlan. versions: (services, control) -> {tool: version}. reset: clears an attached
    stack's reference-system state. system / sampler / load / observe: as named."""

    stack: Callable[[Scenario, Path], AbstractContextManager[Services]]
    fault_proxy: Callable[[Services], LinkControl | None]
    links: Callable[[LinkControl | None, Services, int], LinkPlan]
    versions: Callable[[Services, LinkControl | None], dict[str, str | None]]
    reset: Callable[[Services], None]
    api_port: Callable[[], int]
    system: Callable[[SystemConfig, Path], SystemUnderTest]
    sampler: Callable[[Services, int, int, Path, Callable[[], float], float], Sampler]
    load: Callable[[LoadRunConfig], Load]
    observe: Callable[[Services, float], Observation]


def _stack(scenario: Scenario, run_dir: Path) -> AbstractContextManager[Services]:
    from harness.stack import AttachedStack, LocalStack, StackConfig

    spec = scenario.stack
    if spec.mode is StackMode.ATTACH:
        assert spec.redis_url and spec.postgres_url, "the loader refuses attach mode without both URLs"
        return AttachedStack(spec.redis_url, spec.postgres_url, spec.toxiproxy_url)
    return LocalStack(StackConfig(run_dir=run_dir / "stack", keep_dir=spec.keep_dir))


def _fault_proxy(services: Services) -> LinkControl | None:
    if not services.toxiproxy_url:
        return None
    from harness.faults.toxiproxy_adapter import ToxiproxyAdapter

    return ToxiproxyAdapter(services.toxiproxy_url)


def _links(control: LinkControl | None, services: Services, api_port: int) -> LinkPlan:
    from harness.run.links import direct_links, plan_links

    if control is None:
        return direct_links(services.redis_url, services.postgres_url, api_port)
    return plan_links(control, services.redis_url, services.postgres_url, api_port)


def _versions(services: Services, control: LinkControl | None) -> dict[str, str | None]:
    from harness.run.versions import VersionedProxy, versions_at_run_time

    proxy = cast(VersionedProxy, control) if hasattr(control, "version") else None
    return versions_at_run_time(services.redis_url, services.postgres_url, proxy)


def _reset(services: Services) -> None:
    from harness.run.reset import reset_reference_state

    reset_reference_state(services.redis_url, services.postgres_url)


def _api_port() -> int:
    from harness.stack.ports import free_port

    return free_port()


def _system(config: SystemConfig, log_dir: Path) -> SystemUnderTest:
    from harness.run.system import ReferenceSystem

    return ReferenceSystem(config, log_dir)


def _sampler(
    services: Services, partitions: int, api_port: int, path: Path, clock_s: Callable[[], float], interval_s: float
) -> Sampler:
    from harness.run.sampler import MetricsSampler

    return MetricsSampler(services.redis_url, partitions, api_port, path, clock_s, interval_s)


def _load(config: LoadRunConfig) -> Load:
    from harness.load.driver import LoadRun

    return LoadRun(config)


def _observe(services: Services, t0_wall_s: float) -> Observation:
    from harness.run.observe import observe

    return observe(services.postgres_url, services.redis_url, t0_wall_s)


def real_parts() -> RunParts:
    """The parts a real run uses: the stack the scenario names, Toxiproxy, the reference system, Locust."""
    return RunParts(
        stack=_stack,
        fault_proxy=_fault_proxy,
        links=_links,
        versions=_versions,
        reset=_reset,
        api_port=_api_port,
        system=_system,
        sampler=_sampler,
        load=_load,
        observe=_observe,
    )
