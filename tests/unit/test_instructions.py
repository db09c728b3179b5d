"""Whose instructions per request account for a missed Fig. 14 goal
(topologies/experiments/common/instructions.py, and paired.judge with it):
the benchmarks' counts converted to a phase's own request and snapshot
rates, on hand-made counts whose right answers differ from the wrong ones."""
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.topologies.experiments.common import instructions, paired
from beaver.topologies.experiments.common.instructions import (InstructionsError, attribution,
                                                               instruction_rises)
from beaver.topologies.experiments.common.paired import Goal

def ingroup(every, off, beaver, reports=False, batch=1):
    return {instructions.ingroup_run(every, reports, batch): {
        "snapshot_every": every, "reports": reports, "batch": batch,
        "off": off, "beaver": beaver}}


COUNTS = {
    "slb": {"per_packet": {"without": 400_000, "marking": 410_000,
                           "snapshots-50": 420_000, "snapshots-1000": 430_000},
            "per_step": {"50": 40_000, "1000": 40_000},
            "control_per_second": {"50": 200_000, "1000": 400_000}},
    "controller": {"per_snapshot": {"50": 150_000, "1000": 20_000}},
    "ingroup": {**ingroup(0, 133_000, 138_000),
                **ingroup(14, 136_000, 160_000, reports=True, batch=10),
                **ingroup(50, 134_000, 144_000, reports=True, batch=10),
                **ingroup(14, 136_000, 999_000, reports=True),          # a report an ID
                **ingroup(1, 150_000, 400_000, reports=True, batch=200)}}


def test_marking_alone_costs_each_party_its_per_request_rise_and_the_controller_nothing():
    rises = instruction_rises(COUNTS, None, 2800, slbs=2, ingroup=4)
    assert rises == {"slb": 10_000, "ingroup": 5_000, "controller": 0}
    assert attribution(rises).startswith(
        "largest instruction rise per request on the traffic's cores: slb +10,000")


def test_the_slb_s_rise_is_over_the_plain_slb_where_the_file_counted_it():
    plain = {**COUNTS, "slb": {**COUNTS["slb"], "per_packet": {**COUNTS["slb"]["per_packet"],
                                                                "plain": 180_000}}}
    assert instructions.slb_baseline(plain) == "plain"
    assert instructions.slb_baseline(COUNTS) == "without"
    assert instruction_rises(plain, None, 2800, slbs=2, ingroup=4)["slb"] == 230_000
    assert instruction_rises(plain, None, 2800, slbs=2, ingroup=4,
                             packets_per_request=3)["slb"] == 690_000


def test_a_snapshot_s_cost_is_shared_by_the_requests_served_in_its_time():
    rises = instruction_rises(COUNTS, 50, 2800, slbs=2, ingroup=4, batch=10)
    # Each of two SLBs forwards 1,400 packets a second: each of the 50 IDs
    # a second is stepped to by a packet (40,000), and the control packets
    # cost 200,000 a second, over 2,800 requests a second.
    assert rises["slb"] == pytest.approx(10_000 + 2 * (40_000 * 50 + 200_000) / 2800)
    assert rises["controller"] == pytest.approx(150_000 * 50 / 2800)
    # Each of 4 processes sees 700 requests a second, a snapshot every 14:
    # the run counted so, with a report a batch of 10 (not the one an ID).
    assert rises["ingroup"] == 160_000 - 136_000
    # Served twice as fast, the same snapshots weigh half as much per
    # request, and the in-group run nearest a snapshot every 28 is the 50's.
    faster = instruction_rises(COUNTS, 50, 5600, slbs=2, ingroup=4, batch=10)
    assert faster["controller"] == pytest.approx(rises["controller"] / 2)
    assert faster["slb"] - 10_000 == pytest.approx((rises["slb"] - 10_000) / 2)
    assert faster["ingroup"] == 144_000 - 134_000
    assert attribution(rises) == ("largest instruction rise per request on the traffic's "
                                  "cores: ingroup +24,000 (ingroup +24,000, slb +11,571, "
                                  "controller +2,679)")
    # At 1,000/s a process sees fewer requests than IDs: a new ID with each.
    assert instruction_rises(COUNTS, 1000, 2800, slbs=2, ingroup=4,
                             batch=200)["ingroup"] == 250_000


def test_an_id_costs_a_step_when_a_packet_comes_in_its_time_and_packets_share_one_else():
    # 1,400 packets a second at each SLB and 1,000 IDs: an ID's millisecond
    # holds a packet with probability 1 - exp(-1.4), 753 steps a second.
    # (A benchmark paced at 50 packets a second steps 50 times a second at
    # any rate: its count per snapshot would put this at 2 x 3,000.)
    steps = 1000 * (1 - math.exp(-1.4))
    rises = instruction_rises(COUNTS, 1000, 2800, slbs=2, ingroup=4, batch=200)
    assert rises["slb"] == pytest.approx(10_000 + 2 * (40_000 * steps + 400_000) / 2800)
    assert 30_000 < rises["slb"] < 33_000
    # 50 packets a second at each SLB: a packet steps over 20 IDs at once,
    # so about as many steps as packets, whatever the rate.
    sparse = instruction_rises(COUNTS, 1000, 100, slbs=2, ingroup=4, batch=200)
    assert sparse["slb"] == pytest.approx(
        10_000 + 2 * (40_000 * 1000 * (1 - math.exp(-0.05)) + 400_000) / 100)
    assert 1000 * (1 - math.exp(-0.05)) == pytest.approx(48.8, abs=0.1)


def test_a_request_of_several_packets_pays_marking_on_each_but_a_snapshot_once():
    # Over TCP a request is its segments and ACKs through the SLB: 3 packets
    # triple marking's +10,000, not what a snapshot's batches cost.
    alone = instruction_rises(COUNTS, None, 2800, slbs=2, ingroup=4, packets_per_request=3)
    assert alone == {"slb": 30_000, "ingroup": 5_000, "controller": 0}
    taken = instruction_rises(COUNTS, 50, 2800, slbs=2, ingroup=4, batch=10,
                              packets_per_request=3)
    assert taken["slb"] == pytest.approx(30_000 + 2 * (40_000 * 50 + 200_000) / 2800)
    one = instruction_rises(COUNTS, 50, 2800, slbs=2, ingroup=4, batch=10)
    assert (taken["controller"], taken["ingroup"]) == (one["controller"], one["ingroup"])


def test_no_beaver_process_serving_the_requests_adds_no_in_group_rise():
    # iperf3's server runs no Beaver runtime: its requests (packets) need no
    # in-group run in the file, and the clause says per what it counts.
    no_ingroup = {**COUNTS, "ingroup": {}}
    rises = instruction_rises(no_ingroup, 50, 8000, slbs=2, ingroup=0, batch=10)
    assert rises == {"slb": pytest.approx(10_000 + 2 * (40_000 * 50 + 200_000) / 8000),
                     "ingroup": 0,
                     "controller": pytest.approx(150_000 * 50 / 8000)}
    assert attribution(rises, per="packet") == (
        "largest instruction rise per packet on the traffic's cores: slb +10,550 "
        "(slb +10,550, controller +938, ingroup +0)")
    with pytest.raises(InstructionsError, match="no in-group"):
        instruction_rises(no_ingroup, 50, 8000, slbs=2, ingroup=2, batch=10)


def test_a_party_on_its_own_core_is_listed_but_never_named():
    rises = {"slb": 100.0, "ingroup": 50.0, "controller": 900.0}
    assert attribution(rises) .startswith("largest instruction rise per request on the "
                                          "traffic's cores: controller +900")
    assert attribution(rises, apart=("controller",)) == (
        "largest instruction rise per request on the traffic's cores: slb +100 "
        "(controller +900 (off the traffic's core), slb +100, ingroup +50)")


def test_missing_counts_name_what_to_rerun():
    with pytest.raises(InstructionsError, match="no slb/per_step/20"):
        instruction_rises(COUNTS, 20, 2800, slbs=2, ingroup=4, batch=10)
    with pytest.raises(InstructionsError, match="no in-group a run with --reports --batch 7"):
        instruction_rises(COUNTS, 50, 2800, slbs=2, ingroup=4, batch=7)
    no_baseline = {**COUNTS, "ingroup": ingroup(14, 1, 2, reports=True, batch=10)}
    with pytest.raises(InstructionsError, match="--snapshot-every 0"):
        instruction_rises(no_baseline, None, 2800, slbs=2, ingroup=4)
    with pytest.raises(InstructionsError, match="not a number"):
        instruction_rises({**COUNTS, "controller": {"per_snapshot": {"50": "many"}}}, 50, 2800,
                          slbs=2, ingroup=4, batch=10)
    with pytest.raises(InstructionsError, match="no requests"):
        instruction_rises(COUNTS, 50, 0, slbs=2, ingroup=4, batch=10)


def test_slb_and_controller_counts_hold_only_at_the_batch_they_were_taken_with():
    instructions.check_batch(COUNTS, 10)   # a file without the key was taken at 10
    with pytest.raises(InstructionsError, match="slb counts were taken with --batch 10, this "
                                                "run batches 50: rerun bench/slb_instructions.py "
                                                "--batch 50"):
        instructions.check_batch(COUNTS, 50)
    at_50 = {**COUNTS, "slb": {**COUNTS["slb"], "batch": 50},
             "controller": {**COUNTS["controller"], "batch": 50}}
    instructions.check_batch(at_50, 50)
    with pytest.raises(InstructionsError, match="controller counts were taken with --batch 10"):
        instructions.check_batch({**at_50, "controller": COUNTS["controller"]}, 50)


def test_load_refuses_what_is_not_the_benchmarks_file(tmp_path):
    path = tmp_path / "counts.json"
    path.write_text(json.dumps(COUNTS))
    assert instructions.load(path) == COUNTS
    path.write_text(json.dumps({"slb": {}}))
    with pytest.raises(InstructionsError, match="needs the keys slb, ingroup, controller"):
        instructions.load(path)
    path.write_text("{not json")
    with pytest.raises(InstructionsError, match="not a readable JSON"):
        instructions.load(path)
    with pytest.raises(InstructionsError, match="not a readable JSON"):
        instructions.load(tmp_path / "absent.json")


def row(round_no, kind, throughput, slb=10.0):
    return {"round": round_no, "kind": kind, "throughput": throughput, "p99_us": 100.0,
            "cost_slb": slb}


def test_judge_asks_whose_instructions_only_of_a_missed_goal_at_its_own_throughput():
    rows = []
    for n, (served_marking, served_snapshots) in enumerate(((995, 700), (990, 800), (985, 900)), 1):
        rows += [row(n, "without", 1000), row(n, "marking", served_marking),
                 row(n, "snapshots-50", served_snapshots, slb=12.0)]
    asked = []

    def attribute(kind, served):
        asked.append((kind, served))
        return "largest instruction rise per request on the traffic's cores: slb +7"

    summary = {r["phase"]: r for r in paired.judge(
        rows, "throughput", None, {"marking": Goal(0.98), "snapshots-50": Goal(0.98)},
        "request", instructions=attribute)}
    assert summary["marking"]["verdict"] == "met"
    assert asked == [("snapshots-50", 800)], "the phase's median throughput, not the baseline's"
    assert summary["snapshots-50"]["verdict"].startswith("missed: throughput 0.180 under 0.98")
    assert summary["snapshots-50"]["verdict"].endswith(
        "; largest instruction rise per request on the traffic's cores: slb +7")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["slb", "controller", "ingroup", "per_packet",
                                                       "per_snapshot", "per_step",
                                                       "control_per_second", "without", "plain", "marking", "50",
                                                       "every-0", "snapshot_every", "reports",
                                                       "batch", "off", "beaver"]), inner,
                                      max_size=6),
                    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(counts=JSON, rate=st.sampled_from([None, 50.0]))
def test_any_file_gives_numbers_or_one_clear_error(tmp_path_factory, counts, rate):
    path = tmp_path_factory.mktemp("fuzz") / "counts.json"
    path.write_text(json.dumps(counts))
    try:
        loaded = instructions.load(path)
        instructions.check_batch(loaded, 10)
        rises = instruction_rises(loaded, rate, 2800, slbs=2, ingroup=4, batch=10)
    except InstructionsError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert set(rises) == {"slb", "ingroup", "controller"}
    assert all(isinstance(v, float) for v in rises.values())
