"""The snapshot rule, records and channel accounting, without sockets."""
from __future__ import annotations

import pytest

from beaver.p4src.ids import ID_SPACE
from beaver.traffic.runtime.snapshots import Mode, Snapshots


class State:
    """A counter standing in for the application's state."""

    def __init__(self):
        self.value = 0
        self.captures = 0

    def capture(self):
        self.captures += 1
        return {"value": self.value}


def snapshots(mode=Mode.BEAVER, peers=("q",), window=64):
    state = State()
    return Snapshots("p", peers, mode, state.capture, window), state


def message(n: int) -> dict:
    return {"id": f"q:{n}"}


def test_a_newer_id_records_the_state_once_for_every_id_it_jumps_over():
    s, state = snapshots()
    state.value = 7
    taken = s.mark(3)
    state.value = 8
    assert (taken.first, taken.last, taken.trigger) == (1, 3, "mark")
    assert [s.report(i).local_state for i in (1, 2, 3)] == [{"value": 7}] * 3
    assert state.captures == 1
    assert s.report(4).taken is False


def test_an_id_not_newer_changes_nothing():
    s, state = snapshots()
    s.oob(5)
    assert s.mark(5) is None and s.stamp(2) is None
    assert (s.current_id, state.captures) == (5, 1)


def test_only_the_newest_window_of_ids_is_kept():
    s, _ = snapshots(window=4)
    s.stamp(10)
    assert [(r.first, r.last) for r in s.records] == [(7, 10)]
    assert [s.report(i).taken for i in (7, 10)] == [True, True]
    with pytest.raises(LookupError, match="not kept"):
        s.report(6)


def test_an_older_stamp_after_the_snapshot_is_in_flight_for_every_newer_id():
    s, _ = snapshots()
    s.oob(1)
    s.oob(2)
    s.received_from("q", 0, 1, message(1))   # sent before q's snapshots 1 and 2
    s.received_from("q", 1, 2, message(2))   # sent before q's snapshot 2 only
    s.received_from("q", 2, 3, message(3))   # sent after both
    assert [i["id"] for i in s.report(1).channels["q"].in_flight] == ["q:1"]
    assert [i["id"] for i in s.report(2).channels["q"].in_flight] == ["q:1", "q:2"]
    assert s.report(2).channels["q"].in_flight[1] == {"id": "q:2", "seq": 2, "stamp": 1,
                                                      "message": message(2)}


def test_a_channel_is_complete_when_the_peer_count_is_met():
    s, _ = snapshots()
    s.received_from("q", 0, 1, message(1))
    s.oob(1)
    assert s.finished_id() == 0                # q's count not yet known
    s.count_from("q", 1, 1, sent_before=2)
    assert s.finished_id() == 0                # one of q's two messages still missing
    s.received_from("q", 0, 2, message(2))
    assert s.finished_id() == 1
    channel = s.report(1).channels["q"]
    assert (channel.received_before, len(channel.in_flight)) == (1, 1)


def test_sent_before_counts_what_went_out_before_the_snapshot():
    s, _ = snapshots()
    s.sent_to("q")
    s.sent_to("q")
    s.oob(1)
    s.sent_to("q")
    assert s.report(1).channels["q"].sent_before == 2


def test_lai_yang_ignores_marks():
    s, state = snapshots(Mode.LAI_YANG)
    assert s.mark(1) is None
    assert s.stamp(1).trigger == "peer"
    assert s.oob(2).trigger == "oob"


def test_polling_follows_only_its_timer_and_records_no_channels():
    s, _ = snapshots(Mode.POLLING)
    assert s.mark(5) is None and s.stamp(5) is None and s.oob(5) is None
    assert [s.poll().last for _ in range(3)] == [1, 2, 3]
    s.received_from("q", 0, 1, message(1))
    assert s.report(3).channels == {}
    assert s.finished_id() == 3


def test_beaver_has_no_timer():
    s, _ = snapshots()
    assert s.poll() is None


def test_ids_wrap():
    s, _ = snapshots()
    s.current_id = ID_SPACE - 2
    taken = s.stamp(1)
    assert (taken.first, taken.last) == (ID_SPACE - 1, 1)
    assert [(r.first, r.last) for r in s.records] == [(ID_SPACE - 1, 1)]
    s.received_from("q", ID_SPACE - 1, 1, message(1))
    assert [len(s.report(i).channels["q"].in_flight) for i in (ID_SPACE - 1, 0, 1)] == [0, 1, 1]
    with pytest.raises(LookupError):
        s.report(ID_SPACE - 2)


def test_off_has_no_snapshot_state():
    with pytest.raises(ValueError):
        snapshots(Mode.OFF)
