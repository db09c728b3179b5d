"""Reports by distinct state (traffic/oob/cuts.py): a run's cuts, decoded,
give every ID exactly the report a request of its own gets; and every
answer that does not lie end to end over exactly the run asked is refused
with one line."""
from __future__ import annotations

import dataclasses
import json
import socket

import pytest
from hypothesis import given, settings, strategies as st

from beaver.p4src.ids import ID_SPACE, next_id
from beaver.traffic.oob import cuts as by_cut
from beaver.traffic.oob import protocol as oob
from beaver.traffic.oob.cuts import Cut
from beaver.traffic.oob.protocol import ProtocolError, Report
from beaver.traffic.runtime.snapshots import Mode, Snapshots

from tests.support.runtimes import oob_request, runtimes

__all__ = ["runtimes"]   # the fixture


class Counter:
    def __init__(self):
        self.captures = 0

    def capture(self):
        self.captures += 1
        return {"capture": self.captures}


def per_id(s: Snapshots, snapshot_id: int) -> Report | str:
    try:
        return s.report(snapshot_id)
    except LookupError:
        return "not kept"


def decoded(s: Snapshots, first: int, count: int) -> dict[int, Report | str]:
    """The run as a controller gets it: encoded, JSON on the wire, decoded."""
    message = by_cut.encode(first, count, s.cuts(first, count))
    got = by_cut.per_id(by_cut.decode(json.loads(json.dumps(message)), first, count))
    return {n: "not kept" if isinstance(r, str) else r for n, r in got.items()}


def on_the_wire(report: Report | str) -> Report | str:
    return report if isinstance(report, str) else \
        Report.from_message(json.loads(json.dumps(report.to_message())))


# A history: jumps (by marks, stamps or out of band), sends, receipts stamped
# at or behind the receiver, COUNTs; then a run asked anywhere around it.
events = st.lists(st.tuples(st.sampled_from(["jump", "send", "receive", "count"]),
                            st.integers(0, 40), st.sampled_from(["q", "r"])),
                  min_size=1, max_size=60)


@settings(max_examples=60, deadline=None, database=None)
@given(events, st.sampled_from([0, ID_SPACE - 30]), st.sampled_from([8, 64]),
       st.integers(-80, 10), st.integers(1, 120))
def test_the_cuts_decoded_are_exactly_each_ids_report(history, start, window, offset, count):
    check_run(history, start, window, offset, count, longest_jump=12)


@settings(max_examples=60, deadline=None, database=None)
@given(events, st.sampled_from([0, ID_SPACE - 30]), st.sampled_from([8, 64]),
       st.integers(-80, 10), st.integers(1, 120))
def test_at_an_id_a_jump_the_cuts_decoded_are_exactly_each_ids_report(history, start, window,
                                                                      offset, count):
    # as at 1,000/s, a record an ID: Snapshots.cuts builds those apart
    check_run(history, start, window, offset, count, longest_jump=1)


def check_run(history, start: int, window: int, offset: int, count: int, longest_jump: int):
    s = Snapshots("p", ["q", "r"], Mode.BEAVER, Counter().capture, window)
    s.current_id = start
    for step, (kind, size, peer) in enumerate(history):
        if kind == "jump":
            [s.mark, s.stamp, s.oob][step % 3](next_id(s.current_id, 1 + size % longest_jump))
        elif kind == "send":
            s.sent_to(peer)
        elif kind == "receive":
            s.received_from(peer, next_id(s.current_id, -(size % (window + 3))), step,
                            {"id": f"{peer}:{step}"})
        else:
            last = next_id(s.current_id, -(size % window))
            s.count_from(peer, next_id(last, -(size % 5)), last, size % 7)
    first = next_id(s.current_id, offset)
    got = decoded(s, first, count)
    want = {next_id(first, i): on_the_wire(per_id(s, next_id(first, i))) for i in range(count)}
    assert got == want
    assert len(s.cuts(first, count)) <= count


def test_a_quiet_run_is_one_cut_and_each_message_stamp_cuts_it_once():
    s = Snapshots("p", ["q"], Mode.BEAVER, Counter().capture, 1024)
    s.oob(1000)                                   # one jump: IDs 1..1000, one local state
    assert [(c.first, c.count) for c in s.cuts(1, 1000)] == [(1, 1000)]
    s.received_from("q", 300, 1, {"id": "q:1"})   # in flight for 301..1000
    s.received_from("q", 700, 2, {"id": "q:2"})   # and for 701..1000
    cuts = s.cuts(1, 1000)
    assert [(c.first, c.count) for c in cuts] == [(1, 300), (301, 400), (701, 300)]
    assert [len(c.answer.channels["q"].in_flight) for c in cuts] == [0, 1, 2]
    message = by_cut.encode(1, 1000, cuts)
    assert [item["id"] for item in message["items"]] == ["q:1", "q:2"], "each message once"
    assert ["same_state" in c["report"] for c in message["cuts"]] == [False, True, True]
    assert "local_state" not in message["cuts"][1]["report"]
    assert [c["report"]["channels"]["q"] for c in message["cuts"]] == \
        [[0, 0, []], [0, 0, [0]], [0, 0, [0, 1]]]   # [sent_before, received_before, in_flight]
    assert by_cut.decode(json.loads(json.dumps(message)), 1, 1000) == \
        [Cut(c.first, c.count, on_the_wire(c.answer)) for c in cuts]


def test_what_every_report_of_a_run_shares_goes_once_in_the_answer():
    s = Snapshots("p", ["q"], Mode.BEAVER, Counter().capture, 16)
    for snapshot_id in range(1, 21):
        s.mark(snapshot_id)
    cuts = s.cuts(2, 24)                        # 2..4 not kept, 5..20 taken, 21.. not yet
    message = by_cut.encode(2, 24, cuts)
    assert [message[k] for k in ("process", "current_id", "finished_id", "taken", "trigger")] \
        == ["p", 20, 0, True, "mark"]
    reports = [c["report"] for c in message["cuts"] if "report" in c]
    assert len(reports) == 17 and all(
        not {"v", "op", "process", "snapshot_id", "current_id", "finished_id", "taken",
             "trigger"} & set(r) for r in reports[:-1])
    # The last, not taken, carries what it does not share, and only that.
    assert {"taken": False, "trigger": ""}.items() <= reports[-1].items()
    assert not {"process", "current_id", "finished_id"} & set(reports[-1])
    assert by_cut.decode(json.loads(json.dumps(message)), 2, 24) == \
        [Cut(c.first, c.count, on_the_wire(c.answer)) for c in cuts]
    # A report of other values than the first's carries its own, and keeps them.
    other = dataclasses.replace(cuts[-1].answer, process="p9", current_id=7, finished_id=3)
    mixed = by_cut.encode(2, 24, [*cuts[:-1], Cut(21, 5, other)])
    assert {k: mixed["cuts"][-1]["report"][k] for k in ("process", "current_id", "finished_id")} \
        == {"process": "p9", "current_id": 7, "finished_id": 3}
    assert by_cut.decode(json.loads(json.dumps(mixed)), 2, 24)[-1].answer == on_the_wire(other)
    assert "process" not in by_cut.encode(2, 3, [Cut(2, 3, "not kept")])


def test_ids_not_reached_and_not_kept_are_one_cut_each():
    s = Snapshots("p", ["q"], Mode.BEAVER, Counter().capture, 16)
    s.oob(100)                                    # keeps 85..100
    cuts = s.cuts(80, 30)
    assert [(c.first, c.count) for c in cuts] == [(80, 5), (85, 16), (101, 9)]
    assert isinstance(cuts[0].answer, str) and "not kept" in cuts[0].answer
    assert cuts[1].answer.taken and not cuts[2].answer.taken


def answer_of(cuts: list[dict], first=10, count=10) -> dict:
    return {"v": 1, "op": "cuts", "first": first, "count": count, "cuts": cuts}


def report(snapshot_id: int) -> dict:
    return Report("p1", snapshot_id, True, "oob", 1, {"x": 1}, {}, 20, 20).to_message()


def cut(first, count, **extra) -> dict:
    return {"first": first, "count": count, "report": report(first), **extra}


@pytest.mark.parametrize("answer, problem", [
    (answer_of([cut(10, 4), cut(12, 8)]), "a cut from 12 where 14 was due"),      # overlap
    (answer_of([cut(10, 4), cut(15, 5)]), "a cut from 15 where 14 was due"),      # a hole
    (answer_of([cut(9, 11)]), "a cut from 9 where 10 was due"),                   # before
    (answer_of([cut(10, 5), cut(15, 6)]), "a cut of 6 IDs from 15: 5 were left"),  # after
    (answer_of([cut(10, 2 ** 40)]), "a cut of 1099511627776 IDs from 10"),        # huge
    (answer_of([cut(10, -3), cut(7, 13)]), "a cut of -3 IDs from 10"),
    (answer_of([cut(10, 0), cut(10, 10)]), "a cut of 0 IDs from 10"),
    (answer_of([cut(10, 5)]), "the cuts cover 5 of 10 IDs"),                      # short
    (answer_of([]), "0 cuts for 10 IDs"),
    (answer_of([cut(10, 1)] * 11), "11 cuts for 10 IDs"),
    (answer_of([cut(10, True), cut(11, 9)]), "a cut of True IDs from 10"),
    (answer_of([cut(10, 10)], count=11), "asked for 10 IDs from 10, answered 11 from 10"),
    (answer_of([{"first": 10, "count": 10, "report": report(11)}]),
     "the cut from 10 reports 11"),
    (answer_of([{"first": 10, "count": 10}]), "the cut from 10 holds no report and no error"),
    (answer_of([{"first": 10, "count": 10, "error": 5}]), "a cut's error must be text"),
    (answer_of(["x"]), "a cut must be a JSON object"),
    (answer_of([{"first": 10, "count": 10, "report": {**report(10), "same_state": True}}]),
     "a cut with the previous cut's state, after none"),
    (answer_of([{"first": 10, "count": 10, "report": {
        **report(10), "channels": {"p2": [1, 0, [0]]}}}]),
     "channel 'p2': in_flight must index the answer's 0 items"),
    (answer_of([{"first": 10, "count": 10, "report": {
        **report(10), "channels": {"p2": {"sent_before": 1, "received_before": 0,
                                          "in_flight": []}}}}]),
     "channel 'p2' must be \\[sent_before, received_before, in_flight\\]"),
    (answer_of([{"first": 10, "count": 10, "report": {
        **report(10), "channels": {"p2": [1, 0]}}}]),
     "channel 'p2' must be \\[sent_before, received_before, in_flight\\]"),
    (answer_of([{"first": 10, "count": 10, "report": {
        **report(10), "channels": {"p2": [-1, 0, []]}}}]),
     "channel 'p2': counts must be integers >= 0"),
    ({**answer_of([cut(10, 10)]), "items": {"a": 1}}, "an answer's items must be a list"),
    ({"v": 1, "op": "reports", "reports": []}, "expected op 'cuts', got 'reports'"),
    # What the answer holds for every report is checked as a report's own.
    ({**answer_of([{"first": 10, "count": 10, "report": {"taken": False}}]), "process": 5},
     "bad report: process, taken, trigger, taken_at_us or delta of the wrong type"),
    ({**answer_of([{"first": 10, "count": 10, "report": {"taken": False}}]),
      "process": "p1", "current_id": -1, "finished_id": 0}, "current_id -1 is no snapshot ID"),
    (answer_of([{"first": 10, "count": 10, "report": {"taken": False}}]),
     "bad report: 'process'"),
    (answer_of([{"first": 10, "count": 10, "report": {"taken": False, "v": 2}}]),
     "protocol version 2, expected 1"),
])
def test_a_hostile_answer_is_refused_with_one_line(answer, problem):
    with pytest.raises(ProtocolError, match=problem.replace("(", r"\(")) as e:
        by_cut.decode(answer, 10, 10)
    assert "\n" not in str(e.value)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.fixed_dictionaries({"first": st.integers(0, 30), "count": st.integers(-2, 30)}),
                max_size=8))
def test_any_cuts_decode_only_when_they_cover_the_run_exactly(entries):
    answer = answer_of([{**e, "report": report(e["first"])} for e in entries])
    try:
        cuts = by_cut.decode(answer, 10, 10)
    except ProtocolError:
        return
    assert sorted(by_cut.per_id(cuts)) == list(range(10, 20))   # each ID once, no other
    assert sum(c.count for c in cuts) == 10


def test_a_run_on_the_wire_matches_requests_of_each_id(runtimes):
    runtime, _ = runtimes("p1", 1, window=64)
    answer = oob_request(runtime, {"op": "snapshot", "first": 1, "count": 50})
    cuts = by_cut.decode(answer, 1, 50)
    assert [(c.first, c.count) for c in cuts] == [(1, 50)]   # one state: quiet
    singles = [Report.from_message(oob_request(runtime, {"op": "report", "id": n}))
               for n in range(1, 51)]
    assert [by_cut.per_id(cuts)[n] for n in range(1, 51)] == singles
    later = oob_request(runtime, {"op": "report", "first": 40, "count": 20})
    assert later["taken"] is True   # the first's, which the second does not share
    assert [(c["first"], c["count"], "error" in c, c.get("report", {}).get("taken"))
            for c in later["cuts"]] == [(40, 11, False, None), (51, 9, False, False)]


@pytest.mark.parametrize("request_, problem", [
    ({"op": "report", "first": 1, "count": 0}, "bad count 0"),
    ({"op": "report", "first": 1, "count": by_cut.MAX_COUNT + 1}, "bad count 65537"),
    ({"op": "report", "first": -1, "count": 2}, "bad first -1"),
    ({"op": "report", "first": 1, "count": 2, "id": 3}, '"id", "ids" or "first", only one'),
])
def test_a_bad_run_request_is_one_error(runtimes, request_, problem):
    runtime, _ = runtimes("p1", 1)
    with socket.create_connection(runtime.oob_address, timeout=2) as sock:
        oob.send(sock, {"v": oob.VERSION, **request_})
        answer = oob.receive(sock)
    assert answer["op"] == "error" and problem in answer["error"]
    assert oob_request(runtime, {"op": "status"})["op"] == "status"   # still serving


def test_a_cut_stands_for_its_ids_with_their_own_numbers():
    r = Report("p1", 5, True, "oob", 1, {"x": 1}, {}, 9, 9)
    assert Cut(5, 3, r).report_of(7) == dataclasses.replace(r, snapshot_id=7)
    assert Cut(ID_SPACE - 1, 2, r).ids() == [ID_SPACE - 1, 0]
