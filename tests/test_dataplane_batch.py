"""Batched control requests (INIT_BATCH, READ_BATCH) on a real
simple_switch_grpc, over veths: the same switch and harness as
test_dataplane.py."""
from __future__ import annotations

import time

import pytest

from beaver.p4src.wire import (BATCH_MAX, RING_SIZE, Batch, ControlBody, Op, Record,
                               Status)

from .test_dataplane import LEAD, slb, switch, wait_past

pytestmark = pytest.mark.bmv2

__all__ = ["slb", "switch"]   # the fixtures

SPACING = 20_000   # us between a batch's activations: more than wait_past's slack


def schedule(slb, first: int, count: int, at: int, spacing: int = SPACING):
    return slb.control.request_batch(Op.INIT_BATCH, first, count, timeout=2,
                                     activate_at=at, spacing_us=spacing)


def read_batch(slb, first: int, count: int):
    return slb.control.request_batch(Op.READ_BATCH, first, count, timeout=2)


def as_record(answer) -> Record:
    """A single READ's answer as the record READ_BATCH gives for its ID."""
    b = answer.body
    return Record(answer.status, b.snapshot_id, b.switch_time, b.last_old_time, b.count,
                  b.activate_at)


def test_a_batch_schedules_every_id_and_they_activate_in_order(slb):
    slb.init(1)
    at = slb.now() + LEAD
    answer = schedule(slb, 2, 8, at)
    assert answer.status == Status.SCHEDULED and answer.body.id_after == 1
    assert answer.body.activate_at == at, "the first ID's time"
    assert slb.mark_of_next_vip() == 1, "before the first time, the old ID"
    assert {r.status for r in read_batch(slb, 2, 8).records} == {Status.SCHEDULED}
    wait_past(slb, at + 2 * SPACING)
    assert slb.mark_of_next_vip() == 4, "2, 3 and 4 are due: one packet moves through them"
    wait_past(slb, at + 7 * SPACING)
    answer = read_batch(slb, 2, 8)
    assert answer.status == Status.OK and answer.body.id_after == 9
    records = answer.records
    assert [r.snapshot_id for r in records] == list(range(2, 10))
    assert [r.status for r in records] == [Status.OK] * 8
    assert [r.activate_at for r in records] == [at + i * SPACING for i in range(8)]
    assert all(r.switch_time >= r.activate_at for r in records), "none before its time"
    times = [r.switch_time for r in records]
    assert times == sorted(times)
    assert [r.count for r in records] == [0, 0, 1, 0, 0, 0, 0, 0]
    assert records[0].last_old_time < at <= records[3].last_old_time, \
        "the ID-1 packet before the first time, the ID-4 one after"


def test_a_batch_read_answers_what_single_reads_answer(slb):
    """Recorded IDs (old and current), one scheduled ahead and one neither:
    each record is the single READ's answer, status and fields."""
    for n in (1, 2, 3):
        slb.init(n)
        slb.mark_of_next_vip()
    slb.mark_of_next_vip()
    at = slb.now() + LEAD
    assert slb.init(4, at=at).status == Status.SCHEDULED
    singles = [as_record(slb.read(n)) for n in range(1, 6)]
    assert [r.status for r in singles] == [Status.OK] * 3 + [Status.SCHEDULED, Status.STALE]
    answer = read_batch(slb, 1, 5)
    assert answer.status == Status.OK and answer.body.id_after == 3
    assert list(answer.records) == singles
    assert [r.count for r in answer.records[:3]] == [1, 1, 2]


def test_a_batch_reaching_the_ring_reuse_is_refused_whole(slb):
    slb.init(1)
    at = slb.now() + LEAD
    far = 2 + RING_SIZE - BATCH_MAX   # its last ID is RING_SIZE ahead of ID 1
    assert schedule(slb, far, BATCH_MAX, at).status == Status.TOO_FAR
    assert slb.read(far).status == Status.STALE, "nothing was scheduled"
    assert schedule(slb, far - 1, BATCH_MAX, at).status == Status.SCHEDULED, \
        "RING_SIZE - 1 ahead still fits"
    for count in (0, BATCH_MAX + 1):
        assert schedule(slb, 2, count, at).status == Status.BAD_BATCH
        assert read_batch(slb, 2, count).status == Status.BAD_BATCH
    assert slb.current_id() == 1


def test_a_batch_request_cut_short_is_truncated(slb):
    """No batch header, or a READ_BATCH without room for its records."""
    slb.init(2)
    for op, rest in ((Op.INIT_BATCH, b""), (Op.READ_BATCH, b""),
                     (Op.READ_BATCH, Batch(3).pack() + bytes(2 * Record.SIZE))):
        slb.session.packet_out(ControlBody(seq=9000 + op, snapshot_id=3).pack() + rest,
                               opcode=int(op))
    slb.read(2)   # answered after the three above
    assert [m["status"] for m, _ in slb.packet_ins[-4:-1]] == [Status.TRUNCATED] * 3
    assert slb.current_id() == 2


def test_a_resent_batch_changes_nothing_and_reads_the_same(slb):
    """A lost answer's request comes again: the schedule stands, IDs that
    activated meanwhile stay as they are, and a READ_BATCH answers the
    same records twice."""
    slb.init(1)
    at = slb.now() + LEAD
    assert schedule(slb, 2, 4, at).status == Status.SCHEDULED
    wait_past(slb, at + SPACING)
    assert slb.mark_of_next_vip() == 3
    assert schedule(slb, 2, 4, at).status == Status.SCHEDULED, "the resend"
    assert slb.current_id() == 3, "nothing moved back, nothing moved on early"
    wait_past(slb, at + 3 * SPACING)
    first, again = read_batch(slb, 2, 4), read_batch(slb, 2, 4)
    assert first.records == again.records
    assert [r.activate_at for r in first.records] == [at + i * SPACING for i in range(4)]
    assert [r.status for r in first.records] == [Status.OK] * 4


def test_the_batch_wire_layouts(slb):
    """A READ_BATCH answer is ctl_t, batch_t, then one record_t per ID."""
    slb.init(1)
    slb.packet_ins.clear()
    read_batch(slb, 1, 3)
    _, payload = slb.packet_ins[-1]
    assert len(payload) == ControlBody.SIZE + Batch.SIZE + 3 * Record.SIZE
    assert Batch.unpack(payload[ControlBody.SIZE:]).count == 3


def test_a_batch_of_ids_activates_without_traffic_on_its_read(slb):
    """No VIP packet: the READ_BATCH after the times moves the SLB through
    every ID, in order, each at or after its own time."""
    slb.init(1)
    at = slb.now() + LEAD
    schedule(slb, 2, BATCH_MAX, at, spacing=10)
    time.sleep((LEAD + BATCH_MAX * 10) / 1e6 + 0.01)
    answer = read_batch(slb, 2, BATCH_MAX)
    assert answer.body.id_after == 1 + BATCH_MAX
    assert [r.status for r in answer.records] == [Status.OK] * BATCH_MAX
    assert all(r.switch_time >= r.activate_at == at + i * 10
               for i, r in enumerate(answer.records))
