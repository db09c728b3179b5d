"""Deadlock detection on its own: the lock manager, wait-for graphs, cycles,
and the ground truth of injected deadlocks."""
from __future__ import annotations

from beaver.traffic.analysis.deadlock import NEVER, Episode, Wait, cycles, episodes, judge, waits
from beaver.traffic.services.locks import LockManager
from beaver.traffic.runtime.udp import Client


class Runtime:
    def __init__(self):
        self.replies: list[tuple[str, dict]] = []

    def reply(self, client: Client, message: dict):
        self.replies.append((client.request_id, message))


def client(request: str) -> Client:
    return Client(("10.128.1.1", 4000), ("10.200.0.1", 7200), request)


def ask(manager: LockManager, op: str, lock: str, workflow: str, request: str):
    manager.on_request({"op": op, "lock": lock, "client": workflow, "id": request},
                       client(request))


def test_a_lock_passes_in_order_and_a_queued_acquire_is_answered_when_granted():
    manager = LockManager(Runtime())
    ask(manager, "acquire", "L0", "w1", "r1")
    ask(manager, "acquire", "L0", "w2", "r2")
    ask(manager, "acquire", "L0", "w3", "r3")
    assert manager.local_state() == {"service": "locks", "holders": {"L0": ["w1", "r1"]},
                                     "waiters": {"L0": [["w2", "r2"], ["w3", "r3"]]}}
    assert manager.runtime.replies == [("r1", {"ok": True, "granted": "L0"})]
    ask(manager, "release", "L0", "w1", "r4")
    assert manager.runtime.replies[1:] == [("r2", {"ok": True, "granted": "L0"}),
                                           ("r4", {"ok": True})]
    ask(manager, "cancel", "L0", "w3", "r5")    # withdraws w3's wait
    ask(manager, "cancel", "L0", "w2", "r6")    # w2 holds: releases
    assert manager.local_state()["holders"] == {} and manager.local_state()["waiters"] == {}


def test_a_forwarded_request_is_held_for_the_workflow_it_names():
    manager = LockManager(Runtime())
    manager.on_request({"op": "acquire", "lock": "L1", "workflow": "w1", "client": "f1",
                        "id": "f1:1"}, client("f1:1"))
    assert manager.local_state()["holders"] == {"L1": ["w1", "f1:1"]}


def lock_state(holders: dict, waiters: dict) -> dict:
    return {"service": "locks", "holders": holders, "waiters": waiters}


# The injected deadlock: wa holds D0 at la and waits for D1 at lb, wb the reverse.
DEADLOCK = [lock_state({"D0": ["wa", "a1"]}, {"D0": [["wb", "b2"]]}),
            lock_state({"D1": ["wb", "b1"]}, {"D1": [["wa", "a2"]]})]


def test_the_two_halves_of_a_deadlock_make_one_cycle():
    assert set(waits(DEADLOCK)) == {Wait("wb", "wa", "D0", "b2"), Wait("wa", "wb", "D1", "a2")}
    assert cycles(waits(DEADLOCK)) == [frozenset({"a2", "b2"})]
    assert cycles(waits(DEADLOCK[:1])) == []


def test_waiting_in_a_chain_is_no_cycle_and_two_cycles_count_twice():
    chain = [lock_state({"L0": ["w1", "r1"], "L1": ["w2", "r2"]},
                        {"L0": [["w2", "r3"]], "L1": [["w3", "r4"]]})]
    assert cycles(waits(chain)) == []
    both = DEADLOCK + [lock_state({"X": ["u1", "x1"], "Y": ["u2", "y1"]},
                                  {"X": [["u2", "x2"]], "Y": [["u1", "y2"]]})]
    assert cycles(waits(both)) == [frozenset({"a2", "b2"}), frozenset({"x2", "y2"})]


SIDES = [[{"period": 7, "wait": "a2", "ends": ["a3", "a4"], "granted": False}],
         [{"period": 7, "wait": "b2", "ends": ["b3", "b4"], "granted": False},
          {"period": 8, "wait": "b6", "ends": ["b7", "b8"], "granted": True}]]
RECEIVED = {"a2": 100, "b2": 120, "a3": 600, "a4": 610, "b3": 590, "b4": 640}


def test_an_episode_lasts_from_both_waits_to_the_first_end_and_needs_both_sides():
    assert episodes(SIDES, RECEIVED) == [Episode(frozenset({"a2", "b2"}), 120, 590)]
    assert episodes(SIDES, {"a2": 100})[0].end_us == NEVER


def test_a_cycle_of_one_existing_episode_is_real_any_other_a_phantom():
    known = episodes(SIDES, RECEIVED)
    cuts = [(200, 210), (300, 305)]
    assert judge([frozenset({"a2", "b2"})], known, cuts).__dict__ == \
        {"real": 1, "phantom": 0, "missed": 0}
    # halves of two different rounds never existed at once
    assert judge([frozenset({"a2", "x9"})], known, cuts).__dict__ == \
        {"real": 0, "phantom": 1, "missed": 1}
    never = [Episode(frozenset({"a2", "b2"}), 500, 400)]   # one side gave up first
    assert judge([frozenset({"a2", "b2"})], never, cuts).phantom == 1


def test_a_deadlock_is_missed_only_if_it_spanned_every_cut():
    known = episodes(SIDES, RECEIVED)
    assert judge([], known, [(200, 210), (300, 305)]).missed == 1
    assert judge([], known, [(100, 130), (300, 305)]).missed == 0   # began after a cut
    assert judge([], known, [(200, 210), (580, 595)]).missed == 0   # ended before a cut
