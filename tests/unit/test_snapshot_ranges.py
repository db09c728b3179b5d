"""One record per jump (traffic/runtime/snapshots.py): a jump of many IDs is recorded
once, yet every ID's report is what one record per ID gave
(tests/support/snapshots_reference.py)."""
from __future__ import annotations

import dataclasses
import random

import pytest

from beaver.p4src.ids import ID_SPACE, ID_WINDOW, ahead, next_id
from beaver.traffic.runtime.snapshots import Mode, Snapshots, offsets_within

from tests.support.snapshots_reference import PerIdSnapshots


class State:
    def __init__(self):
        self.captures = 0

    def capture(self):
        self.captures += 1
        return {"capture": self.captures}


def snapshots(window=1024, peers=("q",)):
    state = State()
    return Snapshots("p", peers, Mode.BEAVER, state.capture, window), state


def message(n: int) -> dict:
    return {"id": f"q:{n}"}


def stored_items(s: Snapshots, peer: str = "q") -> int:
    """How many times in-flight messages are stored, over all records."""
    return sum(len(record.in_flight.get(peer, ())) for record in s.records)


def in_flight_ids(s: Snapshots, snapshot_id: int, peer: str = "q") -> list[str]:
    return [item["id"] for item in s.report(snapshot_id).channels[peer].in_flight]


@pytest.mark.parametrize("jump", [1, 1000])
def test_a_jump_is_one_record_and_a_message_is_stored_once_whatever_its_length(jump):
    s, state = snapshots()
    s.mark(jump)
    s.received_from("q", 0, 1, message(1))   # sent before q's snapshot 1
    assert (len(s.records), state.captures, stored_items(s)) == (1, 1, 1)
    assert in_flight_ids(s, 1) == in_flight_ids(s, jump) == ["q:1"]
    assert s.report(jump // 2 + 1).local_state == {"capture": 1}


def test_each_id_of_a_jump_has_its_own_channel_state_and_count():
    """By hand: p received 2 messages from q, then jumped 0 -> 6.  q went
    0 -> 3 (it had sent 3 before) and 3 -> 6 (5 before).  Stamped 0, 3 and 5,
    q's messages arriving after p's cut were in flight for the IDs above
    their stamps."""
    s, _ = snapshots()
    s.received_from("q", 0, 1, message(1))
    s.received_from("q", 0, 2, message(2))
    s.mark(6)
    s.received_from("q", 0, 3, message(3))
    s.received_from("q", 3, 4, message(4))
    s.count_from("q", 1, 3, sent_before=3)
    s.count_from("q", 4, 6, sent_before=5)
    assert [in_flight_ids(s, i) for i in range(1, 7)] == [["q:3"]] * 3 + [["q:3", "q:4"]] * 3
    assert s.finished_id() == 3                   # 2 + 1 == 3; for 4..6, 2 + 2 < 5
    s.received_from("q", 5, 5, message(5))
    assert in_flight_ids(s, 5) == ["q:3", "q:4"] and in_flight_ids(s, 6) == ["q:3", "q:4", "q:5"]
    assert s.finished_id() == 6                   # 2 + 3 == 5; 4 and 5 stay short
    s.received_from("q", 6, 6, message(6))        # sent after q's snapshot 6: in flight for none
    assert in_flight_ids(s, 6) == ["q:3", "q:4", "q:5"] and stored_items(s) == 3
    channel = s.report(4).channels["q"]
    assert (channel.received_before, len(channel.in_flight)) == (2, 2)
    assert stored_items(s) == 3 and len(s.records) == 1


def test_a_later_count_for_an_id_overrides_an_earlier_one():
    s, _ = snapshots()
    s.mark(4)
    s.count_from("q", 1, 4, sent_before=0)
    assert s.finished_id() == 4
    s.count_from("q", 3, 4, sent_before=1)
    assert s.finished_id() == 2
    s.count_from("q", 5, 4, sent_before=0)   # first after last: no ID
    assert s.finished_id() == 2


def test_the_window_drops_whole_records_and_the_oldest_part_of_one():
    s, state = snapshots(window=4)
    s.mark(3)
    s.count_from("q", 1, 3, sent_before=0)
    assert s.finished_id() == 3
    s.mark(6)
    assert [(r.first, r.last) for r in s.records] == [(3, 3), (4, 6)]
    assert (s.report(3).local_state, s.report(4).local_state) == ({"capture": 1},
                                                                  {"capture": 2})
    with pytest.raises(LookupError, match="not kept"):
        s.report(2)
    assert s.finished_id() == 3
    s.mark(10)
    assert [(r.first, r.last) for r in s.records] == [(7, 10)] and state.captures == 3
    assert s.finished_id() == 0, "3 was the newest complete ID and is no longer kept"
    s.count_from("q", 1, 10, sent_before=0)
    assert s.finished_id() == 10


def test_a_jump_longer_than_the_window_keeps_its_newest_ids():
    s, _ = snapshots(window=4)
    s.mark(2)
    taken = s.mark(100)
    assert (taken.first, taken.last) == (3, 100)
    assert [(r.first, r.last) for r in s.records] == [(97, 100)]
    assert s.report(97).taken
    with pytest.raises(LookupError):
        s.report(96)


def brute_offsets(oldest, length, first, last):
    return [i for i in range(length) if ahead(next_id(oldest, i), first) >= 0
            and ahead(last, next_id(oldest, i)) >= 0]


def test_offsets_within_agrees_with_checking_each_id():
    rng = random.Random(7)
    cases = 0
    for _ in range(3000):
        oldest, length = rng.randrange(ID_SPACE), rng.randrange(1, 40)
        # first and last near the run, or near half the ID space away (where ahead() flips)
        near = rng.choice([oldest, oldest + ID_WINDOW, oldest - ID_WINDOW])
        first, last = (near + rng.randrange(-60, 60) for _ in range(2))
        expected = brute_offsets(oldest, length, first, last)
        assert list(offsets_within(oldest, length, first, last)) == expected
        cases += bool(expected) and len(expected) < length
    assert cases > 300, "partial overlaps were tried"


def without_clock(report):
    return dataclasses.replace(report, taken_at_us=0)


def report_or_missing(s, snapshot_id):
    try:
        return without_clock(s.report(snapshot_id))
    except LookupError:
        return "not kept"


@pytest.mark.parametrize("seed", range(12))
def test_reports_are_those_of_one_record_per_id(seed):
    """Random events, the same to both: jumps short and longer than the
    window, messages stamped anywhere at or behind the receiver, COUNTs of
    ranges near the current ID (some empty), IDs that wrap."""
    rng = random.Random(seed)
    window = rng.choice([4, 16, 64])
    peers = ("q", "r")
    s, _ = snapshots(window, peers)
    ref = PerIdSnapshots("p", peers, State().capture, window)
    s.current_id = ref.current_id = rng.choice([0, ID_SPACE - 40])
    finished_seen = set()
    for step in range(300):
        event = rng.random()
        if event < 0.15:
            snapshot_id = next_id(s.current_id, rng.choice([1, 1, 2, 5, window + 3]))
            s.mark(snapshot_id)
            ref.advance(snapshot_id)
        elif event < 0.25:
            s.sent_to("q")
            ref.sent_to("q")
        elif event < 0.5:
            peer, stamp = rng.choice(peers), next_id(s.current_id, -rng.randrange(window + 4))
            s.received_from(peer, stamp, step, message(step))
            ref.received_from(peer, stamp, step, message(step))
        else:
            peer, last = rng.choice(peers), next_id(s.current_id, -rng.randrange(window))
            first, sent_before = next_id(last, -rng.randrange(-1, 6)), rng.randrange(8)
            if last in ref.records and rng.random() < 0.7:   # a count that completes last
                record = ref.records[last]
                sent_before = record["local"]["received"][peer] + len(record["in_flight"][peer])
            s.count_from(peer, first, last, sent_before)
            ref.count_from(peer, first, last, sent_before)
        assert s.finished_id() == ref.finished_id()
        finished_seen.add(s.finished_id())
        if step % 25 == 0 or step == 299:
            for snapshot_id in (next_id(s.current_id, d) for d in range(-window - 3, 3)):
                assert report_or_missing(s, snapshot_id) == report_or_missing(ref, snapshot_id)
    assert len(finished_seen) > 3, "the runs must reach complete IDs to compare them"
