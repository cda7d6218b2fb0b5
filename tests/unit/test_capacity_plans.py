"""Plans: the comparison (CIs, cheapest plan), the plans file (errors name the field path), the command's outputs."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.capacity import (
    Deterministic,
    ModelConfig,
    Plan,
    PlanStudy,
    Slo,
    compare_plans,
    load_plans_file,
    run_plan_file,
)
from harness.capacity.plans import mean_ci, wilson_interval
from harness.capacity.plans_file import study_from_mapping
from harness.errors import ScenarioError
from harness.faults.schedule import FaultSchedule, Link, LinkDown
from harness.load.profile import Steady

REPO = Path(__file__).resolve().parents[2]


def _doc(**over) -> dict:
    doc = {
        "name": "tiny",
        "seed": 3,
        "replications": 3,
        "load": {
            "kind": "spike",
            "base_rate_per_s": 50,
            "peak_rate_per_s": 400,
            "at_s": 5,
            "width_s": 3,
            "duration_s": 20,
        },  # fmt: skip
        "slo": {"latency_ms_p99_max": 1500, "shed_share_max": 0.0, "attainment_min": 1.0},
        "system": {
            "partitions": 4,
            "batch_size_max": 10,
            "workers": "per_consumer",
            "overhead": {"kind": "deterministic", "value_s": 0.02},
            "per_event": {"kind": "exponential", "mean_s": 0.002},
        },  # fmt: skip
        "plans": [{"name": "one", "consumers": 1}, {"name": "two", "consumers": 2}, {"name": "four", "consumers": 4}],
    }
    doc.update(over)
    return doc


def test_wilson_interval_is_honest_at_the_edges():
    low, high = wilson_interval(5, 5)
    assert high == 1.0 and 0.5 < low < 0.6
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0.4 < high < 0.5


def test_mean_ci_uses_student_t():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-3)
    assert math.isnan(mean_ci([5.0])[1])


def test_cheapest_plan_meeting_the_slo_is_chosen():
    comparison = compare_plans(study_from_mapping(_doc()))
    table = comparison.table().set_index("plan")
    # One consumer: 50 ms per batch of 10 → 200/s, below the 400/s spike: latency grows past 1.5 s.
    assert not table.loc["one", "meets_slo"]
    assert table.loc["two", "meets_slo"] and table.loc["four", "meets_slo"]
    assert comparison.cheapest == "two"
    assert table.loc["two", "consumer_seconds_mean"] < table.loc["four", "consumer_seconds_mean"]
    # Every plan saw the same seeds (common random numbers).
    seeds = comparison.replications().groupby("plan")["seed"].apply(list)
    assert seeds["one"] == seeds["two"] == seeds["four"] == [3, 4, 5]


def test_no_plan_meeting_the_slo_gives_none():
    doc = _doc(plans=[{"name": "one", "consumers": 1}])
    assert compare_plans(study_from_mapping(doc)).cheapest is None


def test_run_plan_file_writes_table_csv_json_plots(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(_doc()), encoding="utf-8")
    out = io.StringIO()
    code = run_plan_file(path, tmp_path / "out", out=out)
    assert code == 0
    text = out.getvalue()
    assert "cheapest plan meeting the SLO: two" in text
    for name in ("plans.csv", "replications.csv", "plans.json", "plans_cost.png", "plans_timeline.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    document = json.loads((tmp_path / "out" / "plans.json").read_text())
    assert document["cheapest"] == "two" and len(document["plans"]) == 3
    table = pd.read_csv(tmp_path / "out" / "plans.csv")
    assert {"slo_attainment", "slo_attainment_ci_low", "consumer_seconds_mean", "consumer_seconds_ci_half"} <= set(
        table.columns
    )


def test_run_plan_file_exit_1_when_no_plan_meets_the_slo(tmp_path):
    path = tmp_path / "hopeless.yaml"
    path.write_text(yaml.safe_dump(_doc(plans=[{"name": "one", "consumers": 1}])), encoding="utf-8")
    out = io.StringIO()
    assert run_plan_file(path, tmp_path / "out", out=out) == 1
    assert "no plan meets the SLO" in out.getvalue()


def test_example_plans_file_is_valid():
    study = load_plans_file(REPO / "scenarios" / "plans" / "example.yaml")
    names = [p.name for p in study.plans]
    assert "reactive" in names and "predictive" in names
    assert study.faults and study.profile.duration_s == 900


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(replications=0), r"replications: 0 is outside"),
        (dict(load={"kind": "stedy", "base_rate_per_s": 1, "duration_s": 1}), r"load\.kind: 'stedy'"),
        (dict(slo={"latency_ms_p99_max": -1}), r"slo\.latency_ms_p99_max: \"latency_ms_p99_max\" must be"),
        (dict(slo={"p99": 1}), r"slo\.p99: unknown setting"),
        (dict(plans=[]), r"plans: \[\] is not a non-empty list"),
        (dict(plans=[{"name": "a", "consumers": 0}]), r"plans\[0\]\.consumers: \"consumers\" must be"),
        (
            dict(plans=[{"name": "a", "consumer": 2}]),
            r"plans\[0\]\.consumer: unknown setting; did you mean 'consumers'",
        ),
        (dict(plans=[{"name": "a"}, {"name": "a"}]), r"plans\[1\]\.name: 'a' is used twice"),
        (dict(plans=[{"name": "a", "scaling": {"kind": "magic"}}]), r"plans\[0\]\.scaling\.kind: 'magic'"),
        (
            dict(
                plans=[
                    {
                        "name": "a",
                        "consumers": 1,
                        "scaling": {
                            "kind": "reactive",
                            "backlog_high_events": 10,
                            "backlog_low_events": 1,
                            "consumers_min": 2,
                            "consumers_max": 4,
                        },
                    }
                ]
            ),  # fmt: skip
            r"plans\[0\]\.consumers: \"consumers\" \(1\) is the starting pool",
        ),
        (dict(system={"per_event": {"kind": "lognormal", "mean_s": 0.001, "cv": 0}}), r"system\.per_event\.cv"),
        (dict(system={"partitions": "many"}), r"system\.partitions: 'many' is not a whole number"),
        (dict(faults=[{"kind": "down", "link": "db", "start_s": 1, "duration_s": 1}]), r"faults\[0\]\.link: 'db'"),
    ],
)
def test_bad_plans_file_names_the_field_path(change, expected):
    with pytest.raises(ScenarioError, match=expected):
        study_from_mapping(_doc(**change))


def test_missing_plans_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="no such plans file"):
        load_plans_file(tmp_path / "nope.yaml")


def test_compare_plans_in_code_with_faults():
    study = PlanStudy(
        name="code",
        profile=Steady(100, 10),
        faults=FaultSchedule((LinkDown(Link.API_REDIS, 2.0, 1.0),)),
        slo=Slo(shed_share_max=0.05),
        plans=(Plan("p", ModelConfig(consumers=1, overhead=Deterministic(0.001))),),
        replications=2,
        seed=1,
    )
    comparison = compare_plans(study)
    # One second of ten unavailable: about 10% shed, over the 5% SLO.
    share = comparison.replications()["shed_share"]
    assert ((share > 0.05) & (share < 0.15)).all()
    assert comparison.cheapest is None


def test_ledgerchaos_plan_command_exit_codes(tmp_path, capsys):
    from harness.cli import main

    good = tmp_path / "tiny.yaml"
    good.write_text(yaml.safe_dump(_doc(replications=1)), encoding="utf-8")
    assert main(["plan", str(good), "--out", str(tmp_path / "out")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_doc(plans=[{"name": "a", "consumer": 2}])), encoding="utf-8")
    assert main(["plan", str(bad), "--out", str(tmp_path / "out2")]) == 2
    assert "plans[0].consumer: unknown setting" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()  # nothing started, nothing written
