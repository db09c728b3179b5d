"""control/engine.py against SLBs modelled in Python (tests/fake_slb.py) and
small out-of-band process servers: modes, rules, lost answers, retakes,
reports and the store.  tests/test_controller_bmv2.py repeats the essentials
against real BMv2 switches."""
from __future__ import annotations

import pytest

from beaver.control.config import ProcessConfig, load
from beaver.control.controller import Controller
from beaver.control.engine import Engine, RunSettings, SettingsError
from beaver.control.oob import ChannelState
from beaver.control.record import Mode, Outcome
from beaver.control.session import NotPrimary
from beaver.control.store import SnapshotStore
from beaver.p4src.wire import FLAG_HOLD, RING_SIZE, Op, Status

from .fake_slb import fake_gateways
from .oob_server import OobProcess

SERVICE = """
[[slbs]]
name = "s1"
address = "127.0.0.1:1"
device_id = 1
slb_id = 1
slb_addr = "10.0.0.1"

[[slbs]]
name = "s2"
address = "127.0.0.1:2"
device_id = 2
slb_id = 2
slb_addr = "10.0.0.2"
"""


@pytest.fixture
def service(tmp_path):
    path = tmp_path / "service.toml"
    path.write_text(SERVICE)
    controller = Controller(load(path))
    fakes = fake_gateways(controller)
    store = SnapshotStore(tmp_path / "snapshots.db")
    yield controller, fakes, store
    store.close()


def run(service, processes=(), **settings):
    controller, _, store = service
    finished = []
    defaults = dict(ack_timeout_ms=20, retries=2, tau_us=300)
    engine = Engine(controller, store, RunSettings(**{**defaults, **settings}), processes,
                    finished.append)
    summary = engine.run()
    return summary, finished


def test_ogm_snapshots_are_initiated_everywhere_judged_and_stored(service):
    _, fakes, store = service
    summary, finished = run(service, count=5, inflight=2)
    assert [r.number for r in finished] == [1, 2, 3, 4, 5]
    assert summary.outcomes[Outcome.ACCEPTED] == 5 and summary.started == 5
    for fake in fakes.values():
        assert [sid for op, sid, _ in fake.requests if op == Op.INIT] == [1, 2, 3, 4, 5]
        assert fake.current == 5
    stored = store.get(3)
    assert stored.verdict.rule == "fine" and set(stored.acks) == {"s1", "s2"}
    assert all(a.status is Status.OK and a.attempts == 1 for a in stored.acks.values())
    assert stored.acks["s2"].clock.offset_us == pytest.approx(2_000_000, abs=200)


def test_every_verdict_is_committed_before_it_is_reported(service):
    _, _, store = service
    seen = []
    controller = service[0]
    Engine(controller, store, RunSettings(count=3),
           on_finished=lambda r: seen.append(store.get(r.number) is not None)).run()
    assert seen == [True, True, True]


def test_a_lost_acknowledgement_is_resent_and_answered_already(service):
    _, fakes, store = service
    lost = []
    fakes["s2"].lose = lambda op, sid: op == Op.INIT and sid == 1 and not lost and not lost.append(1)
    summary, finished = run(service, count=1)
    assert finished[0].verdict.outcome is Outcome.ACCEPTED
    ack = store.get(1).acks["s2"]
    assert ack.attempts == 2 and ack.status is Status.ALREADY
    assert [r[:2] for r in fakes["s2"].requests if r[0] == Op.INIT] == [(Op.INIT, 1)] * 2


def test_an_slb_that_never_answers_makes_the_snapshot_incomplete(service):
    _, fakes, _ = service
    fakes["s2"].lose = lambda op, sid: op == Op.INIT
    summary, finished = run(service, count=2, retries=1)
    assert [r.verdict.outcome for r in finished] == [Outcome.INCOMPLETE] * 2
    assert finished[0].verdict.reason == "no acknowledgement from s2 within 20 ms (2 attempts)"
    assert "s1" in finished[0].acks and "s2" not in finished[0].acks


def test_the_fine_rule_rejects_an_old_id_packet_forwarded_too_late_and_retakes(service):
    _, fakes, store = service
    # s2 forwarded a packet marked with the old ID 10 ms after s1 switched
    fakes["s2"].last_mark = fakes["s2"].now() + 10_000
    summary, finished = run(service, count=1, retake=1)
    first, retake = finished
    assert first.verdict.outcome is Outcome.REJECTED and first.verdict.rule == "fine"
    assert first.verdict.margin_us > 5_000 and "s2 forwarded an old-ID packet" in first.verdict.reason
    assert retake.retake_of == first.number and retake.number == first.number + 1
    assert summary.outcomes[Outcome.REJECTED] == 2, "the mark is still late: retake rejected too"
    assert store.get(retake.number).retake_of == first.number


def test_the_coarse_rule_compares_t1_minus_t0_with_tau(service):
    _, finished = run(service, count=1, rule="coarse", tau_us=0)
    assert finished[0].verdict.outcome is Outcome.REJECTED and finished[0].rule == "coarse"
    _, finished = run(service, count=1, rule="coarse", tau_us=10**9)
    assert finished[0].verdict.outcome is Outcome.ACCEPTED


def test_an_slb_that_already_passed_the_id_answers_stale_and_is_judged_conservatively(service):
    _, fakes, store = service
    s2 = fakes["s2"]
    original = s2.packet_out

    def learn_first(payload, opcode):   # in-group traffic brought ID 2 before INIT(1)
        if opcode == Op.INIT and s2.current == 0:
            s2.learn(2)
        original(payload, opcode)
    s2.packet_out = learn_first
    _, finished = run(service, count=2, inflight=2)
    one = store.get(1)
    assert one.acks["s2"].status is Status.STALE and one.acks["s2"].body.snapshot_id == 2
    assert one.verdict.outcome is Outcome.ACCEPTED   # no old-ID traffic at all
    assert store.get(2).acks["s2"].status is Status.ALREADY


def test_blocking_holds_everywhere_then_releases(service):
    _, fakes, _ = service
    summary, finished = run(service, count=2, mode=Mode.BLOCKING)
    assert [r.verdict.outcome for r in finished] == [Outcome.ACCEPTED] * 2
    for fake in fakes.values():
        assert [(op, flags & FLAG_HOLD) for op, _, flags in fake.requests[-4:]] == [
            (Op.INIT, FLAG_HOLD), (Op.RELEASE, 0), (Op.INIT, FLAG_HOLD), (Op.RELEASE, 0)]
        assert not fake.holding


def test_blocking_releases_every_slb_even_when_one_never_acknowledges(service):
    _, fakes, _ = service
    fakes["s2"].lose = lambda op, sid: op == Op.INIT
    _, finished = run(service, count=1, mode=Mode.BLOCKING, retries=0)
    assert finished[0].verdict.outcome is Outcome.INCOMPLETE
    assert "no acknowledgement from s2" in finished[0].verdict.reason
    for fake in fakes.values():
        assert fake.requests[-1][0] == Op.RELEASE and not fake.holding


def test_settings_that_do_not_fit_the_service_are_refused(service):
    with pytest.raises(SettingsError, match="mgm is for one SLB"):
        run(service, mode=Mode.MGM)
    with pytest.raises(SettingsError, match="one snapshot at a time"):
        run(service, mode=Mode.BLOCKING, inflight=2)


def test_never_more_in_flight_than_the_ring_holds(service):
    controller, _, store = service
    engine = Engine(controller, store, RunSettings(count=3, inflight=10_000))
    engine.run()
    assert engine.window.span == RING_SIZE


def test_clocks_are_measured_before_the_run_and_again_on_schedule(service):
    _, fakes, _ = service
    run(service, count=3, clock_interval_s=1e9)
    reads_once = sum(op == Op.READ for op, _, _ in fakes["s1"].requests)
    fakes["s1"].requests.clear()
    run(service, count=3, clock_interval_s=0)   # due again before every snapshot
    reads_often = sum(op == Op.READ for op, _, _ in fakes["s1"].requests)
    assert reads_often >= reads_once + 3 * 16


def test_numbers_continue_after_a_restart_of_the_controller(service, tmp_path):
    controller, fakes, store = service
    summary, _ = run(service, count=3)
    store.close()
    again = SnapshotStore(tmp_path / "snapshots.db")   # a new controller process
    engine = Engine(controller, again, RunSettings(count=1))
    second = engine.run()
    assert second.first > summary.last and second.first > again.reserved_through - 1024 - 1
    assert fakes["s1"].current == second.first % (1 << 32)
    again.close()


def test_numbers_skip_past_an_id_an_slb_already_holds(service):
    _, fakes, _ = service
    fakes["s1"].learn(500)
    summary, _ = run(service, count=1)
    assert summary.first == 501


def test_a_backup_controller_initiates_nothing(service):
    _, fakes, _ = service
    fakes["s2"].is_primary = False
    with pytest.raises(NotPrimary, match="s2"):
        run(service, count=1)
    assert all(not fake.requests for fake in fakes.values())


# -- in-group reports ------------------------------------------------------------

@pytest.fixture
def processes():
    started = []

    def start(name, channels=lambda n, asked: {}):
        p = OobProcess(name, channels)
        started.append(p)
        return p, ProcessConfig(name, "127.0.0.1", p.port)
    yield start
    for p in started:
        p.close()


def test_reports_are_collected_after_every_slb_acknowledged(service, processes):
    _, _, store = service
    p1, c1 = processes("p1")
    p2, c2 = processes("p2")
    _, finished = run(service, processes=[c1, c2], count=2, inflight=2)
    assert [r.verdict.outcome for r in finished] == [Outcome.ACCEPTED] * 2
    assert p1.requests[0] == {"v": 1, "op": "snapshot", "id": 1}
    stored = store.get(2)
    assert set(stored.reports) == {"p1", "p2"} and stored.reports["p1"].taken
    assert stored.reports["p1"].local_state == {"counter": 1}


def test_channel_state_is_awaited_until_it_adds_up(service, processes):
    # p1 sent 2 messages to p2 before its snapshot; p2 has accounted for
    # one until it is asked a second time
    p1, c1 = processes("p1", lambda n, asked: {"p2": ChannelState(sent_before=2)})
    p2, c2 = processes("p2", lambda n, asked: {
        "p1": ChannelState(received_before=1, in_flight=[{"m": 1}] * (asked > 1))})
    _, finished = run(service, processes=[c1, c2], count=1)
    record = finished[0]
    assert record.verdict.outcome is Outcome.ACCEPTED
    assert [m["op"] for m in p2.requests] == ["snapshot", "report"]
    assert len(record.reports["p2"].channels["p1"].in_flight) == 1


def test_a_channel_that_never_adds_up_is_incomplete(service, processes):
    _, c1 = processes("p1", lambda n, asked: {"p2": ChannelState(sent_before=2)})
    _, c2 = processes("p2", lambda n, asked: {"p1": ChannelState(received_before=1)})
    _, finished = run(service, processes=[c1, c2], count=1, report_timeout_ms=100)
    assert finished[0].verdict.outcome is Outcome.INCOMPLETE
    assert "channel p1->p2: 1 of 2 pre-cut messages recorded" in finished[0].verdict.reason


def test_a_post_cut_message_received_before_the_cut_rejects(service, processes):
    _, c1 = processes("p1", lambda n, asked: {"p2": ChannelState(sent_before=1)})
    _, c2 = processes("p2", lambda n, asked: {"p1": ChannelState(received_before=2)})
    _, finished = run(service, processes=[c1, c2], count=1)
    assert finished[0].verdict.outcome is Outcome.REJECTED
    assert finished[0].verdict.reason.startswith("inconsistent cut: channel p1->p2")


def test_a_process_that_does_not_answer_makes_the_snapshot_incomplete(service, processes):
    p1, c1 = processes("p1")
    p1.answer = False
    _, finished = run(service, processes=[c1], count=1, report_timeout_ms=100)
    assert finished[0].verdict.outcome is Outcome.INCOMPLETE
    assert finished[0].verdict.reason == "no report from p1 within 100 ms"
