"""control/engine/engine.py against two real SLBs (simple_switch_grpc on veths):
initiation, judging, storing, resends, STALE answers, blocking, settings,
the in-flight window, clocks and numbering.  The conditions are made on the
real switches: in-group packets stamped with newer IDs, VIP packets
forwarded at a chosen moment, switch processes stopped and resumed.

More engine runs against the same switches are in test_controller_bmv2.py
(modes, the fine rule under VIP traffic, hung and restarted switches, a
backup controller, a crashed controller); the in-group reports are in
test_engine_reports.py.
"""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from beaver.control.engine.engine import TIMED, Engine, RunSettings, SettingsError
from beaver.control.slbs.program import config_entry
from beaver.control.engine.record import Mode, Outcome
from beaver.control.store import SnapshotStore
from beaver.p4src.wire import LEARN_WINDOW, SCHEDULE_MAX, Kind, Op, Status

from tests.support.bmv2_service import (BACKEND_PORT, PROBE_ERROR_US, SLB_MAC, VIP, before_each_request,
                           config_path, controller, frozen_from_first_init, run_engine,
                           send_stamp, switches, vip_traffic)
from tests.support.packets import Beaver
from tests.support.ports import Ports
from tests.support.runtimes import eventually


__all__ = ["config_path", "controller", "switches"]   # the fixtures

CLIENT_PORT = 1


@pytest.fixture
def store(tmp_path):
    s = SnapshotStore(tmp_path / "snapshots.db")
    yield s
    s.close()


def test_ogm_snapshots_are_initiated_everywhere_judged_and_stored(controller, store):
    summary, finished = run_engine(controller, store, count=5, inflight=2)
    numbers = list(range(summary.first, summary.first + 5))
    assert sorted(r.number for r in finished) == numbers
    assert summary.started == 5 and summary.outcomes[Outcome.ACCEPTED] == 5
    for gw in controller.slbs:
        answers = [gw.request(Op.READ, n) for n in numbers]
        assert all(a.status is Status.OK and a.body.switch_time > 0 for a in answers), \
            "every SLB holds a record of every ID: it was initiated"
        assert gw.current_id() == numbers[-1]
    stored = store.get(numbers[2])
    assert stored.verdict.rule == "fine" and set(stored.acks) == {"s1", "s2"}
    assert all(a.status is Status.OK and a.attempts == 1 and a.clock is not None
               for a in stored.acks.values())


def test_every_verdict_is_committed_before_it_is_reported(controller, store):
    stored_when_reported = []
    Engine(controller, store, RunSettings(count=3, tau_us=10**6),
           on_finished=lambda r: stored_when_reported.append(store.get(r.number) is not None)
           ).run()
    assert stored_when_reported == [True, True, True]


def learning_the_next_id_first(controller, switches, learned: list):
    """Before s2's first INIT leaves, an in-group STAMP with the next ID
    reaches s2 (the ID is noted in learned)."""
    s2 = controller.slbs[1]

    def learn(op, snapshot_id):
        if op == Op.INIT and not learned:
            learned.append(snapshot_id + 1)
            send_stamp(switches[1], snapshot_id + 1)
            eventually(lambda: s2.current_id() == snapshot_id + 1)
    return before_each_request(s2, learn)


def test_an_slb_that_already_passed_the_id_answers_with_the_record_of_the_move(
        controller, switches, store):
    """Two snapshots in flight, s2's INITs leaving 5 ms late: in-group
    traffic stamped with the second ID (started by then) reaches s2 just
    before the INIT of the first, so s2 learns the second first, passing
    the first.  It answers ALREADY to the first, with the record of that
    move (it reached and left the first at once), and to the second."""
    learned = []
    with learning_the_next_id_first(controller, switches, learned):
        _, finished = run_engine(controller, store, count=2, inflight=2,
                                 delays_us={"s2": 5000})
    one, two = sorted(finished, key=lambda r: r.number)
    assert learned == [two.snapshot_id]
    passed = one.acks["s2"]
    assert passed.status is Status.ALREADY and passed.body.snapshot_id == one.snapshot_id
    assert passed.body.switch_time == two.acks["s2"].body.switch_time, "one move passed both"
    assert passed.body.count == 0
    assert one.verdict.outcome is Outcome.ACCEPTED, one.verdict.reason
    assert one.acks["s1"].status is Status.OK
    assert two.acks["s2"].status is Status.ALREADY and two.verdict.outcome is Outcome.ACCEPTED


def test_an_id_learned_before_the_controller_started_it_rejects(controller, switches, store):
    """A STAMP carries the next ID before the controller sent it anywhere
    (forged, or from another controller): the SLB's switch time lies before
    the snapshot existed, and nothing may be judged on it."""
    learned = []
    with learning_the_next_id_first(controller, switches, learned):
        _, finished = run_engine(controller, store, count=2)
    two = max(finished, key=lambda r: r.number)
    assert two.snapshot_id == learned[0]
    assert two.verdict.outcome is Outcome.REJECTED
    assert "s2's switch time" in two.verdict.reason and "before the snapshot existed" in \
        two.verdict.reason


def test_the_fine_rule_rejects_an_old_id_packet_forwarded_too_late_and_retakes(
        controller, switches, store):
    """Before each INIT leaves for s2, s1 has switched and s2 forwards one
    more VIP packet marked with the old ID: later than s1's switch + tau."""
    s1, s2 = controller.slbs
    ports = Ports(switches[1][1].host_ends)
    frame = Ether(dst=SLB_MAC) / IP(src="10.0.1.1", dst=VIP) / UDP(sport=1000, dport=80) / b"x"
    old_marks = []

    def late_old_id_packet(op, snapshot_id):
        if op != Op.INIT:
            return
        eventually(lambda: s1.current_id() == snapshot_id)
        ports.drain()
        ports.send(CLIENT_PORT, frame)
        forwarded = ports.expect(BACKEND_PORT, lambda f: Beaver in f and f[Beaver].kind == Kind.MARK)
        old_marks.append(forwarded[Beaver].snapshot_id)
    try:
        with before_each_request(s2, late_old_id_packet):
            summary, finished = run_engine(controller, store, count=1, retake=1, tau_us=1)
    finally:
        ports.close()
    first, retake = finished
    assert first.verdict.outcome is Outcome.REJECTED and first.verdict.rule == "fine"
    assert first.verdict.margin_us > 0 and "s2 forwarded an old-ID packet" in first.verdict.reason
    assert old_marks[0] < first.snapshot_id and old_marks[1] == first.snapshot_id, \
        "each late packet carried an ID older than the snapshot's"
    assert retake.retake_of == first.number and retake.number == first.number + 1
    assert retake.verdict.outcome is Outcome.REJECTED, "the packet is late again"
    assert summary.started == 2 and summary.outcomes[Outcome.REJECTED] == 2
    assert store.get(retake.number).retake_of == first.number


def test_blocking_releases_every_slb_even_when_one_never_acknowledges(controller, switches,
                                                                     store):
    """s2 stops as its INIT (with hold) leaves: s1 holds, is released at once;
    s2, once resumed, finds the RELEASE queued behind the hold."""
    s1, s2 = controller.slbs
    with frozen_from_first_init(s2, switches[1][0]):
        _, finished = run_engine(controller, store, count=1, mode=Mode.BLOCKING, retries=0,
                                 ack_timeout_ms=100)
        s1_after = s1.request(Op.READ).body
    record = finished[0]
    assert record.verdict.outcome is Outcome.INCOMPLETE
    assert record.verdict.reason == "s2 did not confirm the release within 100 ms (1 attempts)"
    assert record.acks["s1"].body.holding and not s1_after.holding
    s2_after = s2.request(Op.READ).body
    assert s2_after.id_after == record.snapshot_id and not s2_after.holding


def test_settings_that_do_not_fit_the_service_are_refused_before_any_slb_is_touched(
        controller, store):
    before = controller.newest_id()
    with pytest.raises(SettingsError, match="mgm is for one SLB"):
        run_engine(controller, store, mode=Mode.MGM)
    with pytest.raises(SettingsError, match="one snapshot at a time"):
        run_engine(controller, store, mode=Mode.BLOCKING, inflight=2)
    assert controller.newest_id() == before and store.reserved_through == 0


def test_never_more_in_flight_than_the_ring_holds(controller, store):
    engine = Engine(controller, store, RunSettings(count=3, inflight=LEARN_WINDOW, tau_us=10**6))
    summary = engine.run()
    assert engine.window.span == LEARN_WINDOW and summary.outcomes[Outcome.ACCEPTED] == 3
    before = controller.newest_id()
    for settings, refusal in ((RunSettings(inflight=LEARN_WINDOW + 1), "overwrite SLB records"),
                              (RunSettings(inflight=8, batch=16, initiation="timed"),
                               "no more than --inflight"),
                              (RunSettings(inflight=LEARN_WINDOW, batch=SCHEDULE_MAX + 1,
                                           initiation="timed"),
                               f"--batch must be 1 to {SCHEDULE_MAX}"),
                              (RunSettings(inflight=8, batch=4), "--initiation timed")):
        with pytest.raises(SettingsError, match=refusal):
            Engine(controller, store, settings).run()
    assert controller.newest_id() == before


def test_clocks_are_measured_before_the_run_and_again_on_schedule(controller, store):
    sent = []
    with before_each_request(controller.slbs[0], lambda op, _id: sent.append(op)):
        run_engine(controller, store, count=3, clock_interval_s=1e9)
        once = sent.count(Op.READ)
        sent.clear()
        run_engine(controller, store, count=3, clock_interval_s=0)   # due before each
        often = sent.count(Op.READ)
    assert once >= 16, "one measurement (16 probes) before the run"
    assert often >= once + 3 * 16


def test_numbers_skip_past_an_id_an_slb_already_holds(controller, switches, store):
    s1 = controller.slbs[0]
    held = controller.newest_id() + 40
    send_stamp(switches[0], held)   # in-group traffic brought s1 ahead
    eventually(lambda: s1.current_id() == held)
    summary, _ = run_engine(controller, store, count=1)
    assert summary.first == held + 1


# -- timed initiation ----------------------------------------------------------------

def mapped(ack, dp_us):
    return ack.clock.to_controller(dp_us)


def test_timed_snapshots_schedule_every_slb_for_one_moment(controller, switches, store):
    """Each SLB is told the same controller moment on its own clock, and
    switches on its first VIP packet at or after it.  (A lead longer than any
    round trip on an idle machine; on a loaded one an INIT can still stall past
    it, and that snapshot must then be rejected for it, never accepted.  The
    default lead is the experiments' to measure.)"""
    with vip_traffic(switches):
        summary, finished = run_engine(controller, store, count=20, inflight=4,
                                       initiation=TIMED, tau_us=3000, lead_us=50_000)
    accepted = [r for r in finished if r.verdict.outcome is Outcome.ACCEPTED]
    refused = [r.verdict.reason for r in finished if r.verdict.outcome is not Outcome.ACCEPTED]
    assert all("INIT arrived after it" in reason for reason in refused), refused
    assert len(refused) <= summary.late_inits, "only a late INIT costs a snapshot"
    assert len(accepted) >= 15 and len(finished) == 20, refused
    assert summary.lead_us == [50_000, 50_000]
    for r in accepted:
        s1, s2 = r.acks["s1"], r.acks["s2"]
        for a in (s1, s2):
            assert a.status is Status.OK and a.clock.source == "probe"
            assert a.clock.error_us <= PROBE_ERROR_US
            assert a.body.switch_time >= a.body.activate_at > 0
            assert a.body.switch_time - a.body.activate_at < 20_000, "on a packet soon after"
            assert mapped(a, a.body.activate_at)[0] <= r.activate_us + 1 <= \
                mapped(a, a.body.activate_at)[1] + 1
        low1, high1 = mapped(s1, s1.body.activate_at)
        low2, high2 = mapped(s2, s2.body.activate_at)
        assert low1 <= high2 and low2 <= high1, "one moment, within the two clock errors"
    stored = store.get(accepted[0].number)
    assert stored.activate_us == accepted[0].activate_us
    assert stored.acks["s1"].body.activate_at == accepted[0].acks["s1"].body.activate_at
    assert stored.acks["s1"].clock.source == "probe"


def test_a_late_timed_init_switches_on_arrival_and_is_judged_as_it_is(controller, switches,
                                                                      store):
    """s2's INITs leave long after their activation time: it switches late,
    forwarding old-ID packets meanwhile, and the fine rule rejects."""
    with vip_traffic(switches):
        summary, finished = run_engine(controller, store, count=3, initiation=TIMED,
                                       lead_us=2000, tau_us=1000, delays_us={"s2": 30_000})
    assert summary.late_inits >= 3, "every INIT of s2 at least (s1 may miss a 2 ms lead too)"
    for r in finished:
        late = r.acks["s2"]
        assert late.body.switch_time > late.body.activate_at + 20_000
        assert r.verdict.outcome is Outcome.REJECTED
        assert "s2 forwarded an old-ID packet" in r.verdict.reason


def test_timed_initiation_is_for_ogm_only(controller, store):
    with pytest.raises(SettingsError, match="timed is for mode ogm"):
        run_engine(controller, store, mode=Mode.BLOCKING, initiation=TIMED)


# -- what must never be accepted ------------------------------------------------------

def test_a_run_does_not_start_while_an_slb_has_marking_off(controller, store):
    s2 = controller.slbs[1]
    s2.session.modify(config_entry(s2.session.ctx, 2, "10.0.0.2", marking=False))
    try:
        with pytest.raises(SettingsError, match="marking is off at s2"):
            run_engine(controller, store)
    finally:
        s2.session.modify(config_entry(s2.session.ctx, 2, "10.0.0.2", marking=True))
    assert store.reserved_through == 0


def test_marking_switched_off_during_a_run_rejects(controller, store):
    s2 = controller.slbs[1]

    def switch_off(op, _snapshot_id):
        if op == Op.INIT:
            s2.session.modify(config_entry(s2.session.ctx, 2, "10.0.0.2", marking=False))
    try:
        with before_each_request(s2, switch_off):
            _, finished = run_engine(controller, store, count=1, tau_us=10**6)
    finally:
        s2.session.modify(config_entry(s2.session.ctx, 2, "10.0.0.2", marking=True))
    verdict = finished[0].verdict
    assert verdict.outcome is Outcome.REJECTED and "marking is off at s2" in verdict.reason


def test_an_slb_ahead_of_every_started_id_rejects(controller, switches, store):
    """An in-group STAMP (or another controller) moved s2 past every ID this
    controller started: the snapshot cannot be judged against its ID."""
    s2 = controller.slbs[1]
    pushed = []

    def push_ahead(op, snapshot_id):
        if op == Op.INIT and not pushed:
            pushed.append(snapshot_id + 10)
            send_stamp(switches[1], snapshot_id + 10)
            eventually(lambda: s2.current_id() == snapshot_id + 10)
    with before_each_request(s2, push_ahead):
        _, finished = run_engine(controller, store, count=1, tau_us=10**6)
    verdict = finished[0].verdict
    assert verdict.outcome is Outcome.REJECTED
    assert f"s2 is at ID {pushed[0]}, ahead of every ID this controller started" in verdict.reason
