"""Batched control (RunSettings.batch) against two real SLBs: many
snapshots per INIT_BATCH and READ_BATCH, each judged and stored on its own
records; a lost batch answer resent."""
from __future__ import annotations

import pytest

from beaver.control.engine import TIMED
from beaver.control.record import Outcome
from beaver.control.store import SnapshotStore
from beaver.p4src.wire import BATCH_MAX, Op, Status

from .bmv2_service import (config_path, controller, counted_requests, run_engine,
                           stopped_until_the_resend, switches, vip_traffic)

pytestmark = pytest.mark.bmv2

__all__ = ["config_path", "controller", "switches"]   # the fixtures


@pytest.fixture
def store(tmp_path):
    s = SnapshotStore(tmp_path / "snapshots.db")
    yield s
    s.close()


def test_a_batched_run_judges_and_stores_every_snapshot_on_its_own_records(
        controller, switches, store):
    with counted_requests(controller) as sent, vip_traffic(switches):
        summary, finished = run_engine(controller, store, count=150, inflight=200,
                                       batch=BATCH_MAX, initiation=TIMED, rate=2000)
    assert summary.outcomes[Outcome.ACCEPTED] == 150, [r.verdict for r in finished][:3]
    first = finished[0].snapshot_id
    for name in ("s1", "s2"):
        def ids(op):
            return [i for n, o, i in sent if n == name and o is op]
        firsts = list(range(first, first + 150, BATCH_MAX))
        assert sorted(set(ids(Op.INIT_BATCH))) == firsts, \
            "a whole batch per message, the last one short (a slow answer may be resent)"
        assert set(firsts) <= set(ids(Op.READ_BATCH))
        assert not ids(Op.INIT) and len(ids(Op.READ)) < 30, \
            "READs for the clocks and the start only, none per snapshot"
    times = [r.activate_us for r in sorted(finished, key=lambda r: r.number)]   # by ID
    assert times == sorted(times) and len(set(times)) == 150
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g == 500 for i, g in enumerate(gaps) if (i + 1) % BATCH_MAX), \
        "2000/s: 500 us apart within a batch"
    assert min(gaps) == 500, "and never closer between batches"
    for record in finished:
        stored = store.get(record.number)
        assert stored.verdict.outcome is Outcome.ACCEPTED
        assert sorted(stored.acks) == ["s1", "s2"]
        for ack in stored.acks.values():
            assert ack.status is Status.OK and ack.body.snapshot_id == record.snapshot_id
            assert ack.body.switch_time >= ack.body.activate_at > 0, "at or after its time"
    counts = sum(a.body.count for r in finished for a in r.acks.values())
    assert counts > 0, "the traffic was marked with the batched IDs"


def test_a_lost_batch_answer_is_resent_and_every_snapshot_still_judged(controller, switches,
                                                                       store):
    s2 = controller.gateways[1]
    with stopped_until_the_resend(s2, switches[1][0]) as inits:
        summary, finished = run_engine(controller, store, count=BATCH_MAX, inflight=BATCH_MAX,
                                       batch=BATCH_MAX, initiation=TIMED, ack_timeout_ms=200,
                                       retries=2)
    assert inits == [Op.INIT_BATCH] * 2, "the first answer came too late: one resend"
    assert summary.outcomes[Outcome.ACCEPTED] == BATCH_MAX
    assert all(r.acks["s2"].status is Status.OK for r in finished)
