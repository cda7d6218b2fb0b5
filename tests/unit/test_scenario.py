"""Scenario files: every shipped one loads; a wrong one names the field, the value and the fix (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.errors import ScenarioError
from harness.faults import LinkDown, ProcessAction, ProcessFault, ToxicFault
from harness.scenario import load_scenario, scenario_from_mapping

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "scenarios").glob("*.yaml"))

BASE = {
    "name": "t",
    "seed": 3,
    "load": {"profile": {"kind": "steady", "base_rate_per_s": 10, "duration_s": 20}},
    "faults": [
        {
            "kind": "toxic",
            "link": "api_redis",
            "toxic": "latency",
            "attributes": {"latency": 100},
            "start_s": 5,
            "duration_s": 2,
        }
    ],
}


def with_(path: str, value):
    """BASE with one value replaced at a dotted path (list indexes as numbers)."""
    data = yaml.safe_load(yaml.safe_dump(BASE))
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_loads(path):
    scenario = load_scenario(path)
    assert scenario.name and scenario.load.profile.duration_s > 0
    assert scenario.faults.end_s <= scenario.load.profile.duration_s


def test_base_builds_typed_values():
    scenario = scenario_from_mapping(BASE)
    (fault,) = scenario.faults
    assert isinstance(fault, ToxicFault) and fault.attributes == {"latency": 100}
    assert scenario.seed == 3
    assert scenario_from_mapping(BASE, seed=99).seed == 99


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("faults.0.kind", "earthquake", "faults[0].kind: 'earthquake' is not a fault kind"),
        ("faults.0.duration_s", -1, "faults[0].duration_s: -1 is outside"),
        ("faults.0.link", "api_kafka", "faults[0].link: 'api_kafka' is not one of client_api"),
        ("faults.0.toxic", "latencyy", "faults[0].toxic: 'latencyy' is not one of"),
        ("faults.0.attributes", {"latenc": 5}, '"latenc" is not an attribute of a latency toxic'),
        ("faults.0.start_s", 19, "faults[0]: ends at 21 s, after the load ends"),
        ("load.profile.kind", "wave", "load.profile.kind: 'wave' is not a profile kind"),
        ("load.profile.base_rate_per_s", -4, "base_rate_per_s"),
        ("load.profilee", {}, "load.profilee: unknown setting; did you mean 'profile'?"),
        ("system", {"variant": "ack_befor_commit"}, "did you mean 'ack_before_commit'"),
        ("system", {"consumers": 0}, "system.consumers: 0 is outside [1, 64]"),
        ("seed", "abc", "seed: 'abc' is not a whole number"),
        ("name", _DELETE, "name: missing"),
        ("duration_s_max", 5, "duration_s_max: 5 s cannot hold the load"),
    ],
)
def test_errors_name_the_field(path, value, expected):
    with pytest.raises(ScenarioError) as caught:
        scenario_from_mapping(with_(path, value))
    assert expected in str(caught.value)


def test_repeat_expands_a_kill_loop():
    data = with_(
        "faults",
        [
            {
                "kind": "process",
                "action": "kill",
                "target": "one_consumer",
                "start_s": 4,
                "duration_s": 1,
                "repeat": {"count": 3, "every_s": 2},
            }
        ],
    )
    faults = scenario_from_mapping(data).faults.faults
    assert [f.start_s for f in faults] == [4, 6, 8]
    assert all(isinstance(f, ProcessFault) and f.action is ProcessAction.KILL for f in faults)


def test_overlapping_repeats_are_refused():
    data = with_(
        "faults",
        [
            {
                "kind": "down",
                "link": "consumer_redis",
                "start_s": 4,
                "duration_s": 3,
                "repeat": {"count": 2, "every_s": 1},
            }
        ],
    )
    with pytest.raises(ScenarioError, match="repeat.every_s: 1 is shorter than duration_s"):
        scenario_from_mapping(data)


def test_down_fault():
    data = with_("faults", [{"kind": "down", "link": "consumer_postgres", "start_s": 4, "duration_s": 3}])
    (fault,) = scenario_from_mapping(data).faults
    assert isinstance(fault, LinkDown)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "path, value, field",
    [
        ("faults.0.kind", "earthquake", "faults[0].kind"),
        ("faults.0.duration_s", -1, "faults[0].duration_s"),
        ("faults.0.link", "nowhere", "faults[0].link"),
        # A setting that would drive another system than the reference one: refused, never a false green.
        ("system", {"api_url": "http://127.0.0.1:18090"}, "system.api_url: driving your own service"),
        ("system", {"kind": "external"}, "system.kind: 'external' is not supported yet"),
    ],
)
def test_bad_scenario_file_exits_2_and_starts_nothing(tmp_path, path, value, field):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(yaml.safe_dump(with_(path, value)))
    reports = tmp_path / "reports"
    result = _cli("run", str(scenario), "--reports-dir", str(reports))
    assert result.returncode == 2, result.stderr
    assert field in result.stderr and "Traceback" not in result.stderr
    assert not reports.exists()  # nothing was started, nothing written


def test_not_yaml_and_missing_file_exit_2(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    result = _cli("run", str(broken))
    assert result.returncode == 2 and "not valid YAML at line" in result.stderr
    result = _cli("run", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "no such scenario file" in result.stderr


def test_phases_of_a_full_and_of_an_interrupted_run():
    from harness.run.engine import phases_of

    scenario = scenario_from_mapping(BASE)  # load 20 s, one fault at 5 s for 2 s, warm-up 2 s
    full = phases_of(scenario, 2.0, 22.0, 25.0)
    assert [(p.name, p.start_s, p.end_s) for p in full] == [
        ("warmup", 2.0, 4.0),
        ("baseline", 4.0, 7.0),
        ("fault", 7.0, 9.0),
        ("recovery", 9.0, 22.0),
        ("drain", 22.0, 25.0),
    ]
    cut = phases_of(scenario, 2.0, 8.0, None)  # interrupted inside the fault
    assert [(p.name, p.start_s, p.end_s) for p in cut] == [
        ("warmup", 2.0, 4.0),
        ("baseline", 4.0, 7.0),
        ("fault", 7.0, 8.0),
    ]
    assert all(p.start_s <= p.end_s for p in cut)
