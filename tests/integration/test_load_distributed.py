"""Distributed mode: Locust's own master and two workers split one seeded schedule; the driver merges their ops."""

import time

import pytest

from harness.load.config import OP_ID_STRIDE
from harness.load.driver import LoadRunConfig, run_load
from harness.load.generator import GeneratorConfig
from harness.load.profile import MicroBurst
from harness.load.schedule import open_schedule
from harness.load.stub_api import StubBehaviour, start_stub

SEED = 99
PROFILE = MicroBurst(base_rate_per_s=60, duration_s=3.0)
GENERATOR = GeneratorConfig(duplicate_share=0.05)
START_OFFSET_S = 3.0  # a master and two workers start more slowly than one local runner


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    with start_stub(StubBehaviour(), duration_s_max=120) as stub:
        config = LoadRunConfig(
            api_url=stub.url,
            profile=PROFILE,
            generator=GENERATOR,
            seed=SEED,
            t0_monotonic=time.monotonic(),
            start_offset_s=START_OFFSET_S,
            ops_dir=tmp_path_factory.mktemp("distributed"),
            workers=2,
            users=30,
        )
        return run_load(config)


def test_the_run_completes_on_both_workers(result):
    assert result.complete, result.notes
    assert result.stop_reasons == {0: "completed", 1: "completed"}
    assert result.exit_codes == {"master": 0, "worker-0": 0, "worker-1": 0}


def test_op_ids_are_unique_and_name_their_worker(result):
    ops = result.ops
    invokes = ops[ops["type"] == "invoke"]
    assert invokes["op_id"].is_unique
    workers = invokes["op_id"] // OP_ID_STRIDE
    assert set(workers) == {0, 1}
    assert (invokes["process"].str.split("-").str[1].astype(int) == workers).all()
    assert list(ops["index"]) == list(range(len(ops))) and ops["time_s"].is_monotonic_increasing


def test_the_merged_history_holds_the_whole_schedule_each_arrival_once(result):
    ops = result.ops
    sent = ops[(ops["type"] == "invoke") & (ops["f"] == "submit") & (ops["attempt"] == 1)]
    schedule = list(open_schedule(PROFILE, GENERATOR, SEED, START_OFFSET_S))
    expected = sorted((a.intended_time_s, a.posting.event_id) for a in schedule)
    measured = sorted(zip(sent["intended_time_s"], sent["event_id"]))
    assert measured == expected
    # and arrival k went to worker k mod 2
    worker_of = {a.intended_time_s: a.k % 2 for a in schedule}
    assert all(worker_of[t] == op_id // OP_ID_STRIDE for t, op_id in zip(sent["intended_time_s"], sent["op_id"]))
