"""In-flight tracking on hand-built traces (the recorded channel state
against the logs, and the messages that crossed a cut backwards), then live
through the out-group."""
from __future__ import annotations

from beaver.traffic.oob.protocol import ChannelState, Report
from beaver.traffic.services.bank import BankShard
from beaver.traffic.analysis.inflight import at_cut
from beaver.traffic.services.kvstore import KvReplica
from beaver.traffic.runtime.snapshots import Mode

from tests.support.runtimes import Deployment, deployment
from tests.unit.test_checker import FIGURE_2, FIGURE_3, FIGURE_4, load

__all__ = ["deployment"]   # the fixture


def pair(pairs, sender: str, receiver: str):
    (found,) = [p for p in pairs if (p.sender, p.receiver) == (sender, receiver)]
    return found


def reports(**in_flight: dict[str, list[str]]) -> dict[str, Report]:
    """receiver -> {sender: ids recorded in flight}"""
    return {p: Report(p, 1, True, channels={q: ChannelState(0, 0, [{"id": i} for i in ids])
                                            for q, ids in channels.items()})
            for p, channels in in_flight.items()}


def test_the_recorded_message_in_flight_matches_the_logs(tmp_path):
    pairs = at_cut(load(tmp_path, FIGURE_2), 1, reports(p0={"p1": ["c"]}, p1={"p0": []}))
    c = pair(pairs, "p1", "p0")
    assert c.direct and c.truth == {"c"} and c.matches
    assert pair(pairs, "p0", "p1").matches


def test_a_message_left_out_or_made_up_is_a_mismatch(tmp_path):
    trace = load(tmp_path, FIGURE_2)
    left_out = pair(at_cut(trace, 1, reports(p0={"p1": []})), "p1", "p0")
    assert left_out.missed == {"c"} and not left_out.matches
    made_up = pair(at_cut(trace, 1, reports(p0={"p1": ["c"]}, p1={"p0": ["a"]})), "p0", "p1")
    assert made_up.extra == {"a"} and not made_up.matches


def test_no_channel_state_at_all_misses_what_was_in_flight(tmp_path):
    pairs = at_cut(load(tmp_path, FIGURE_2), 1, {})   # polling records no channels
    assert pair(pairs, "p1", "p0").missed == {"c"}


def test_a_message_sent_after_the_cut_and_received_before_it_crossed_backwards(tmp_path):
    trace = load(tmp_path, {
        "p0": (True, [("snap", 1), ("send", "b", "p1")]),
        "p1": (True, [("recv", "b"), ("snap", 1)]),
    })
    b = pair(at_cut(trace, 1, {}), "p0", "p1")
    assert b.backwards == 1 and b.truth == set() and not b.matches


def test_the_out_group_carries_a_message_across_the_cut_backwards(tmp_path):
    """Figure 3: p1's reply after its cut makes the client ask p2 before p2's."""
    crossed = pair(at_cut(load(tmp_path, FIGURE_3), 1, {}), "p1", "p2")
    assert not crossed.direct and crossed.via_outgroup == 1 and not crossed.matches


def test_the_gateways_mark_keeps_the_out_group_path_forwards(tmp_path):
    """Figure 4: marked, the request is received after p2's cut: nothing to list."""
    assert at_cut(load(tmp_path, FIGURE_4), 1, {}) == []


def test_a_cut_some_process_never_took_has_no_channels(tmp_path):
    trace = load(tmp_path, {"p0": (True, [("snap", 1), ("send", "a", "p1")]),
                            "p1": (True, [("recv", "a")])})
    assert at_cut(trace, 1, {}) == []


def test_a_reply_after_one_cut_carried_into_anothers_is_seen_only_on_the_baselines_cuts(
        deployment: Deployment):
    """kv1 is snapshotted, then answers a client, who then asks b1; then b1 is
    snapshotted."""
    deployment.service("kv1", 1, lambda rt: KvReplica(rt, []))
    deployment.service("b1", 2, lambda rt: BankShard(rt, ["b1"], accounts=2, initial=10))
    slb = deployment.slb()
    client = deployment.endpoint("c1", 3)
    slb.snapshot_id = 1
    deployment.take("kv1", 1)
    assert client.call(deployment.front(slb, 1), {"op": "get", "key": "k"}, 2)["ok"]
    assert client.call(deployment.front(slb, 2), {"op": "balance", "account": "a0"}, 2)["ok"]
    deployment.take("b1", 1)
    reports = {n: deployment.report(n, 1) for n in ("kv1", "b1")}
    pairs = at_cut(deployment.finish(), 1, reports)
    if deployment.mode is Mode.BEAVER:   # the marked request made b1 snapshot first
        assert pairs == []
    else:
        (crossed,) = pairs
        assert (crossed.sender, crossed.receiver, crossed.direct) == ("kv1", "b1", False)
        assert crossed.via_outgroup == 1
