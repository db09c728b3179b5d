"""Batched control (RunSettings.batch) against two real SLBs: many snapshots
per schedule, judged by the schedules and stored as ranges; a late SLB's
first IDs judged on their own records; a lost batch answer resent with the
same times; an SLB lost between its schedules fails every batch not yet
judged."""
from __future__ import annotations

import pytest

from beaver.control.engine.engine import TIMED
from beaver.control.engine.record import Outcome
from beaver.control.store import SnapshotStore
from beaver.p4src.wire import Op, Status

from tests.support.bmv2_service import (before_each_request, config_path, controller, counted_requests,
                           run_engine, schedule_times, stopped_until_the_resend, switches,
                           vip_traffic)


__all__ = ["config_path", "controller", "switches"]   # the fixtures

BATCH = 50


@pytest.fixture
def store(tmp_path):
    s = SnapshotStore(tmp_path / "snapshots.db")
    yield s
    s.close()


def test_a_batched_run_judges_by_the_schedules_and_stores_ranges(controller, switches, store):
    with counted_requests(controller) as sent, vip_traffic(switches):
        summary, finished = run_engine(controller, store, count=150, inflight=200,
                                       batch=BATCH, initiation=TIMED, rate=2000, tau_us=1000)
    assert summary.outcomes[Outcome.ACCEPTED] == 150, [r.verdict for r in finished][:3]
    assert summary.by_records == 0, "on time: no ID needed its own records"
    first = finished[0].snapshot_id
    for name in ("s1", "s2"):
        def ids(op):
            return [i for n, o, i in sent if n == name and o is op]
        firsts = list(range(first, first + 150, BATCH))
        assert sorted(set(ids(Op.INIT_BATCH))) == firsts, "one schedule per batch"
        assert sorted(set(ids(Op.READ_BATCH))) == firsts
        assert not ids(Op.READ_RECORDS) and not ids(Op.INIT) and len(ids(Op.READ)) < 30, \
            "READs for the clocks and the start only, none per snapshot"
    times = [r.activate_us for r in sorted(finished, key=lambda r: r.number)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) == 500 and all(g == 500 for i, g in enumerate(gaps) if (i + 1) % BATCH), \
        "2000/s: 500 us apart within a batch, and never closer between batches"
    assert store.counts()[Outcome.ACCEPTED] == 150
    rows = store.db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
    assert rows == 3 and not store.db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    for record in finished:
        stored = store.get(record.number)
        assert stored.verdict.outcome is Outcome.ACCEPTED and "by schedule" in \
            stored.verdict.reason
        assert sorted(stored.acks) == ["s1", "s2"]
        for ack in stored.acks.values():
            assert ack.body.snapshot_id == record.snapshot_id
            assert ack.body.switch_time == ack.body.activate_at > 0


def test_a_late_slb_leaves_its_first_ids_to_their_records(controller, switches, store):
    """s2 gets each schedule 30 ms late, under traffic: the IDs due in those
    30 ms (and tau before) are judged on their own records and rejected, the
    rest of each batch is accepted by the schedules."""
    with vip_traffic(switches):
        summary, finished = run_engine(controller, store, count=100, inflight=100,
                                       batch=BATCH, initiation=TIMED, rate=1000,
                                       lead_us=5_000, tau_us=1000,
                                       delays_us={"s2": 30_000})
    by_number = sorted(finished, key=lambda r: r.number)
    rejected = [r for r in by_number if r.verdict.outcome is Outcome.REJECTED]
    accepted = [r for r in by_number if r.verdict.outcome is Outcome.ACCEPTED]
    assert rejected and accepted and summary.late_inits > 0
    assert summary.by_records >= len(rejected)
    assert all("s2" in r.verdict.reason and "INIT arrived after it" in r.verdict.reason
               for r in rejected), rejected[0].verdict.reason
    for batch_first in (by_number[0].number, by_number[BATCH].number):
        batch = [r for r in by_number if batch_first <= r.number < batch_first + BATCH]
        outcomes = [r.verdict.outcome for r in batch]
        cut = outcomes.index(Outcome.ACCEPTED)
        assert cut > 0 and set(outcomes[cut:]) == {Outcome.ACCEPTED}, \
            ("a batch's first IDs are rejected, none after the first accepted one; its first "
             f"three: {[(r.verdict.outcome.value, r.verdict.reason) for r in batch[:3]]}")
        assert any("by schedule" in r.verdict.reason for r in batch[cut:])


def test_a_lost_batch_answer_is_resent_and_every_snapshot_still_judged(controller, switches,
                                                                       store):
    s2 = controller.slbs[1]
    with schedule_times(s2) as times, stopped_until_the_resend(s2, switches[1][0]) as inits:
        summary, finished = run_engine(controller, store, count=BATCH, inflight=BATCH,
                                       batch=BATCH, initiation=TIMED, ack_timeout_ms=200,
                                       retries=2)
    assert inits == [Op.INIT_BATCH] * 2, "the first answer came too late: one resend"
    assert len(times) == 2 and times[0] == times[1] > 0, \
        "resent with the same first time: the SLB keeps the schedule it follows"
    assert summary.outcomes[Outcome.ACCEPTED] == BATCH
    assert all(r.acks["s2"].status is Status.OK for r in finished)


def test_an_slb_lost_between_its_schedules_fails_every_batch_not_yet_judged(controller,
                                                                           store):
    """s2's stream is lost as the second batch's INIT_BATCH leaves, after it
    confirmed the first.  Its recovery moves it at once to the newest ID
    started, ahead of the first batch's times, so neither batch may be
    judged by its schedules: every snapshot of both is incomplete."""
    s2 = controller.slbs[1]
    firsts = []

    def lose_the_stream_at_the_second_schedule(op, first):
        if op is Op.INIT_BATCH and first not in firsts:
            firsts.append(first)
            if len(firsts) == 2:
                s2.session.close()
    with before_each_request(s2, lose_the_stream_at_the_second_schedule):
        summary, finished = run_engine(controller, store, count=2 * BATCH,
                                       inflight=2 * BATCH, batch=BATCH, initiation=TIMED,
                                       rate=1000, lead_us=300_000)
    assert len(firsts) == 2 and summary.finished == 2 * BATCH
    assert [r.verdict.outcome for r in finished] == [Outcome.INCOMPLETE] * 2 * BATCH
    assert all("s2 went down" in r.verdict.reason for r in finished), finished[0].verdict
