"""control/engine/engine.py collecting the in-group reports: real runtimes
(traffic.Runtime on loopback, one in its own OS process) behind two real
SLBs (simple_switch_grpc on veths).  Channel states are made with real
peer messages: answered at a chosen moment, lost, or counted by a process
that has since restarted.
"""
from __future__ import annotations

import dataclasses
import signal
import threading

import pytest

from beaver.control.config import ProcessConfig
from beaver.control.engine.engine import TIMED
from beaver.control.engine.record import Outcome
from beaver.control.store import SnapshotStore
from beaver.traffic.oob.links import channel_gaps
from beaver.traffic.runtime.udp import Runtime

from tests.support.bmv2_service import (config_path, controller, frozen_from_first_init, run_engine,
                           switches)
from tests.support.runtimes import Recorder, dip, eventually, runtime_processes, runtimes


__all__ = ["config_path", "controller", "runtime_processes", "runtimes", "switches"]


@pytest.fixture
def store(tmp_path):
    s = SnapshotStore(tmp_path / "snapshots.db")
    yield s
    s.close()


def configured(*processes: Runtime) -> list[ProcessConfig]:
    """The processes as the controller's configuration lists them."""
    return [ProcessConfig(p.name, *p.oob_address) for p in processes]


def test_reports_are_collected_from_every_process_and_stored(controller, runtimes, store):
    p1, p1_app = runtimes("p1", 1, peers={"p2": dip(2)})
    p2, _ = runtimes("p2", 2, peers={"p1": dip(1)})
    p2.send("p1", {"op": "hello"})
    eventually(lambda: p1_app.peer_messages)
    _, finished = run_engine(controller, store, configured(p1, p2), count=2, inflight=2)
    assert [r.verdict.outcome for r in finished] == [Outcome.ACCEPTED] * 2
    for record in finished:
        stored = store.get(record.number)
        assert set(stored.reports) == {"p1", "p2"}
        report = stored.reports["p1"]
        assert report.taken and report.snapshot_id == record.snapshot_id
        assert report.local_state == {"requests": 0, "peer_messages": 1}
        assert report.channels["p2"].received_before == 1
        assert stored.reports["p2"].channels["p1"].sent_before == 1


def test_processes_are_asked_only_after_every_slb_acknowledged(controller, switches, runtimes,
                                                               store):
    p1, _ = runtimes("p1", 1)
    with frozen_from_first_init(controller.slbs[1], switches[1][0]):
        _, finished = run_engine(controller, store, configured(p1), count=1, retries=0,
                                 ack_timeout_ms=100)
    record = finished[0]
    assert record.verdict.reason == "no acknowledgement from s2 within 100 ms (1 attempts)"
    assert not record.reports and p1.snapshots.current_id == 0, "p1 was never asked"


class AnswersAfterThePeerSnapshotted(Recorder):
    """Answers a peer's message once that peer has taken a snapshot.  The
    handler holds this process's own snapshot off, so the answer leaves
    before it (pre-cut) and arrives after the peer's (in flight)."""

    def __init__(self, runtime: Runtime, peer: Runtime):
        super().__init__(runtime)
        self.peer = peer
        self.holding = threading.Event()

    def on_peer(self, message: dict, sender: str):
        super().on_peer(message, sender)
        self.holding.set()
        eventually(lambda: self.peer.snapshots.current_id, timeout=30)
        self.runtime.send(sender, {"op": "answer"})


def test_channel_state_is_awaited_until_it_adds_up(controller, runtimes, store):
    """p2's first report cannot hold p1's answer (sent after it); the stored
    one does: the engine asked p2 again until the channel added up."""
    p2, _ = runtimes("p2", 2, peers={"p1": dip(1)})
    p1, p1_app = runtimes("p1", 1, lambda rt: AnswersAfterThePeerSnapshotted(rt, p2),
                          peers={"p2": dip(2)})
    p2.send("p1", {"op": "question"})
    eventually(p1_app.holding.is_set)
    _, finished = run_engine(controller, store, configured(p1, p2), count=1)
    record = finished[0]
    assert record.verdict.outcome is Outcome.ACCEPTED, record.verdict.reason
    assert record.reports["p1"].channels["p2"].sent_before == 1
    in_flight = record.reports["p2"].channels["p1"].in_flight
    assert [m["message"]["op"] for m in in_flight] == ["answer"]
    assert in_flight[0]["stamp"] == 0, "sent before p1's snapshot"


def test_a_channel_that_never_adds_up_is_incomplete(controller, runtimes, store):
    p1, _ = runtimes("p1", 1, peers={"p2": dip(2)})
    p1.send("p2", {"op": "lost"})   # p2 is not running yet: the datagram is lost
    p2, _ = runtimes("p2", 2, peers={"p1": dip(1)})
    _, finished = run_engine(controller, store, configured(p1, p2), count=1,
                             report_timeout_ms=300)
    assert finished[0].verdict.outcome is Outcome.INCOMPLETE
    assert finished[0].verdict.reason == \
        "channel p1->p2: 0 of 1 pre-cut messages recorded within 300 ms"


def test_a_channel_that_recorded_more_than_was_sent_before_the_cut_rejects(controller,
                                                                          runtimes, store):
    """p1 restarts after p2 received two of its messages: p1's count starts
    again at zero, so p2 accounts for more than p1 sent before its cut."""
    p1, _ = runtimes("p1", 1, peers={"p2": dip(2)})
    p2, p2_app = runtimes("p2", 2, peers={"p1": dip(1)})
    for _ in range(2):
        p1.send("p2", {"op": "before the restart"})
    eventually(lambda: len(p2_app.peer_messages) == 2)
    p1.stop()
    p1, _ = runtimes("p1", 1, peers={"p2": dip(2)})
    _, finished = run_engine(controller, store, configured(p1, p2), count=1)
    verdict = finished[0].verdict
    assert verdict.outcome is Outcome.REJECTED and verdict.rule == "channels"
    assert verdict.reason == "inconsistent cut: channel p1->p2: 2 of 0 pre-cut messages recorded"


def test_a_process_that_does_not_answer_makes_the_snapshot_incomplete(controller,
                                                                     runtime_processes, store):
    process, (host, port) = runtime_processes("p1", 5)
    process.send_signal(signal.SIGSTOP)
    _, finished = run_engine(controller, store, [ProcessConfig("p1", host, port)], count=1,
                             report_timeout_ms=200)
    verdict = finished[0].verdict
    assert verdict.outcome is Outcome.INCOMPLETE
    assert verdict.reason in ("no report from p1 within 200 ms",
                              f"p1 ({host}:{port}): timed out"), verdict.reason


def test_a_batch_collects_its_reports_by_distinct_state(controller, switches, runtimes, store):
    """Batched, with peer messages between the two processes all along: each
    process answers one run per batch, cut where its state changes; every
    stored number's reports are exactly what its runtime reports for that
    ID, and a state is stored once for the IDs it stands for."""
    p1, _ = runtimes("p1", 1, peers={"p2": dip(2)})
    p2, _ = runtimes("p2", 2, peers={"p1": dip(1)})
    talking = threading.Event()

    def talk():
        while not talking.wait(0.003):
            p1.send("p2", {"op": "tick"})
            p2.send("p1", {"op": "tock"})
    talker = threading.Thread(target=talk)
    talker.start()
    try:
        summary, finished = run_engine(controller, store, configured(p1, p2), count=240,
                                       inflight=240, batch=120, initiation=TIMED, rate=4000,
                                       tau_us=1000)
    finally:
        talking.set()
        talker.join()
    accepted = [r for r in finished if r.verdict.outcome is Outcome.ACCEPTED]
    assert len(accepted) > 200, [r.verdict.reason for r in finished][:3]
    assert summary.reports_asked - summary.reasked == 2 * 2, "one run per batch and process"
    for record in accepted:
        stored = store.get(record.number)
        assert set(stored.reports) == {"p1", "p2"} and not channel_gaps(stored.reports)
        for name, runtime in (("p1", p1), ("p2", p2)):
            with runtime._lock:   # as the runtime's own answers read it
                own = runtime.snapshots.report(record.snapshot_id)
            assert stored.reports[name].to_message() == \
                dataclasses.replace(own, current_id=stored.reports[name].current_id,
                                    finished_id=stored.reports[name].finished_id).to_message()
    rows = store.db.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
    assert rows < len(accepted), "a state stored once for the IDs it stands for"
