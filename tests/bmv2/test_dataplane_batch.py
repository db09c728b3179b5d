"""Schedules on a real simple_switch_grpc, over veths (the same switch and
harness as test_dataplane.py): INIT_BATCH plans many IDs at once, the SLB
moves to the ID due at each packet however many fell due, READ_BATCH
answers the schedule with its lateness, READ_RECORDS the per-ID records."""
from __future__ import annotations

import time


from beaver.p4src.wire import (RECORDS_MAX, RING_SIZE, SCHEDULE_MAX, Batch, ControlBody, Op,
                               Record, Status, Track, reciprocal)

from tests.support.packets import Beaver, stamp
from tests.bmv2.test_dataplane import LEAD, slb, switch, wait_past


__all__ = ["slb", "switch"]   # the fixtures

SPACING = 20_000   # us between a schedule's activations: more than wait_past's slack


def schedule(slb, first: int, count: int, at: int, spacing: int = SPACING):
    return slb.control.request_batch(Op.INIT_BATCH, first, Batch.schedule(count, spacing),
                                     timeout=2, activate_at=at)


def described(slb, first: int):
    return slb.control.request_batch(Op.READ_BATCH, first, Batch(0), timeout=2)


def records(slb, first: int, count: int):
    return slb.control.request_batch(Op.READ_RECORDS, first, Batch(count), timeout=2)


def as_record(answer) -> Record:
    """A single READ's answer as the record READ_RECORDS gives for its ID."""
    b = answer.body
    return Record(answer.status, b.snapshot_id, b.switch_time, b.last_old_time, b.count)


def test_on_time_every_packet_carries_the_id_due_when_it_left(slb):
    slb.init(1)
    at = slb.now() + LEAD
    answer = schedule(slb, 2, 8, at)
    assert answer.status == Status.SCHEDULED and answer.body.id_after == 1
    assert answer.body.activate_at == at, "the first ID's time"
    assert slb.mark_of_next_vip() == 1, "before the first time, the old ID"
    assert described(slb, 2).status == Status.SCHEDULED, "not all due yet"
    wait_past(slb, at + 2 * SPACING)
    assert slb.mark_of_next_vip() == 4, "2, 3 and 4 are due: one packet moves to the newest"
    wait_past(slb, at + 6 * SPACING)
    assert slb.mark_of_next_vip() == 8, "no step per ID"
    wait_past(slb, at + 7 * SPACING)
    answer = described(slb, 2)
    assert answer.status == Status.OK and answer.body.id_after == 9
    assert answer.body.activate_at == at and answer.batch.count == 8
    assert answer.batch.spacing == SPACING and answer.batch.recip == reciprocal(SPACING)
    assert answer.batch.track == Track.FINAL and answer.batch.late_last == 0, "on time"
    per_id = records(slb, 2, 8).records
    assert [r.status for r in per_id] == [Status.OK] * 8, "every ID passed has its record"
    assert [r.snapshot_id for r in per_id] == list(range(2, 10))
    moved = [r.switch_time for r in per_id]
    assert moved[0] == moved[1] == moved[2] >= at + 2 * SPACING, "one packet passed 2, 3, 4"
    assert moved[3] == moved[4] == moved[5] == moved[6] >= at + 6 * SPACING
    assert [r.count for r in per_id[:3]] == [0, 0, 1], "the moving packet counts under 4"
    assert per_id[0].last_old_time == per_id[2].last_old_time < at, \
        "the ID-1 packet, before 2's time, for all three"
    assert per_id[3].last_old_time == per_id[6].last_old_time == per_id[2].switch_time


def test_an_init_late_by_one_id_keeps_its_lateness(slb):
    """The schedule reaches the SLB after its first time but before the
    second: the packet forwarded with the old ID in between is late for the
    first ID only, and the schedule keeps when it left."""
    slb.init(1)
    start = slb.now()
    slb.mark_of_next_vip()
    old = slb.now()
    answer = schedule(slb, 2, 4, start, spacing=LEAD)
    assert answer.body.id_after == 2, "the first ID was due on arrival: the SLB moved"
    assert answer.body.switch_time >= start + 0 and answer.body.now >= start
    assert slb.mark_of_next_vip() == 2
    wait_past(slb, start + 3 * LEAD)
    answer = described(slb, 2)
    assert answer.status == Status.OK and answer.batch.track == Track.FINAL
    assert start <= answer.batch.late_last <= old, "the old-ID packet after the first time"
    assert answer.batch.late_last < start + LEAD, "not late for the second ID"


def test_an_id_no_packet_activates_moves_on_its_read(slb):
    """No VIP packet: the READ_BATCH after the times moves the SLB to the
    last ID, at or after its time, with nothing late."""
    slb.init(1)
    at = slb.now() + LEAD
    schedule(slb, 2, RECORDS_MAX, at, spacing=10)
    time.sleep((LEAD + RECORDS_MAX * 10) / 1e6 + 0.01)
    answer = described(slb, 2)
    assert answer.status == Status.OK and answer.body.id_after == 1 + RECORDS_MAX
    assert answer.batch.track == Track.FINAL and answer.batch.late_last == 0
    per_id = records(slb, 2, RECORDS_MAX).records
    assert [r.status for r in per_id] == [Status.OK] * RECORDS_MAX
    assert len({r.switch_time for r in per_id}) == 1, "the READ passed them all at once"
    assert per_id[-1].switch_time >= at + (RECORDS_MAX - 1) * 10


def test_schedules_wrap_around(slb):
    for step in (0x7FFFFFFF, 0xFFFFFFF0):   # half the space at a time
        assert slb.init(step).status == Status.OK
    at = slb.now() + LEAD
    assert schedule(slb, 0xFFFFFFFE, 4, at, spacing=LEAD).status == Status.SCHEDULED
    wait_past(slb, at + 2 * LEAD)
    assert slb.mark_of_next_vip() == 0, "through 0xFFFFFFFE and 0xFFFFFFFF to 0"
    wait_past(slb, at + 3 * LEAD)
    answer = described(slb, 0xFFFFFFFE)
    assert answer.status == Status.OK and answer.body.id_after == 1
    assert answer.batch.track == Track.FINAL and answer.batch.late_last == 0


def test_a_schedule_the_size_of_the_ring(slb):
    """SCHEDULE_MAX IDs in one request, 1 us apart: the READ after the last
    time finds the SLB at the last, every ID passed at or after its time,
    and the records of the first and the last ID are there to read, with
    the ID before them (the ring keeps RING_SIZE IDs)."""
    assert SCHEDULE_MAX == RING_SIZE - 1 == 8191
    slb.init(1)
    slb.mark_of_next_vip()   # one packet under ID 1, to tell its record from a blank one
    at = slb.now() + LEAD
    assert schedule(slb, 2, SCHEDULE_MAX + 1, at, spacing=1).status == Status.BAD_BATCH
    assert schedule(slb, 2, SCHEDULE_MAX, at, spacing=1).status == Status.SCHEDULED
    wait_past(slb, at + 500)
    mark = slb.mark_of_next_vip()
    assert 2 + 500 <= mark <= 1 + SCHEDULE_MAX, "a packet mid-way carries the ID due then"
    last = 1 + SCHEDULE_MAX   # 8192: slot 0
    wait_past(slb, at + SCHEDULE_MAX)
    answer = described(slb, 2)
    assert answer.status == Status.OK and answer.body.id_after == last
    assert answer.batch.count == SCHEDULE_MAX and answer.batch.track == Track.FINAL
    assert answer.batch.late_last == 0 and answer.body.activate_at == at
    assert slb.read(mark).body.switch_time >= at + (mark - 2), "not before its time"
    first = slb.read(2)
    assert first.status == Status.OK and first.body.snapshot_id == 2
    assert first.body.activate_at == at, "the schedule starts at 2"
    assert at + 500 <= first.body.switch_time == slb.read(mark).body.switch_time, \
        "passed by the packet mid-way"
    final = slb.read(last)
    assert final.status == Status.OK and final.body.snapshot_id == last
    # the packet mid-way is counted at the last ID only if it came after the
    # schedule's end (a loaded machine); no other packet passed
    assert final.body.switch_time >= at + SCHEDULE_MAX - 1
    assert final.body.count == (1 if mark == last else 0)
    assert final.body.activate_at == 0, "no schedule starts at it"
    before = slb.read(1)
    assert before.status == Status.OK and before.body.count == 1, "8,191 back: still kept"


def test_the_ring_wraps_after_ring_size_ids(slb):
    """ID n's record and schedule stay until ID n + RING_SIZE takes their
    slot: ID 1's record and the schedule from 2 outlive IDs 1,025 (a ring of
    1,024 would have lost them there) and 8,185; past the ring's end (slot
    8,191, then 0) IDs 8,193 and 8,194 take them, and the reused slots hold
    the new IDs' own records and schedule."""
    slb.init(1)
    slb.mark_of_next_vip()
    at = slb.now() + LEAD
    assert schedule(slb, 2, 4, at, spacing=10).status == Status.SCHEDULED
    wait_past(slb, at + 40)
    assert described(slb, 2).body.id_after == 5
    for n in (1 + 1024, RING_SIZE - 7):
        assert slb.init(n).status == Status.OK
        kept = slb.read(1)
        assert kept.status == Status.OK and kept.body.snapshot_id == 1, n
        assert kept.body.count == 1, n
        held = described(slb, 2)
        assert held.status == Status.OK and held.batch.count == 4, n
    wrapping = range(RING_SIZE - 6, RING_SIZE + 2)   # 8,186..8,193: slots 8,186..8,191, 0, 1
    for i, n in enumerate(wrapping):
        assert slb.init(n).status == Status.OK
        for _ in range(i % 3):
            assert slb.mark_of_next_vip() == n
    gone = slb.read(1)
    assert gone.status == Status.STALE, "ID 8,193 took ID 1's slot"
    assert gone.body.snapshot_id == RING_SIZE + 1, "the current ID's record instead"
    at = slb.now() + LEAD
    assert schedule(slb, RING_SIZE + 2, 8, at, spacing=10).status == Status.SCHEDULED
    assert described(slb, 2).status == Status.STALE, "ID 8,194's schedule took its slot"
    wait_past(slb, at + 80)
    answer = described(slb, RING_SIZE + 2)
    assert answer.status == Status.OK and answer.body.id_after == RING_SIZE + 9
    assert answer.batch.count == 8 and answer.batch.track == Track.FINAL
    assert answer.body.activate_at == at
    per_id = records(slb, RING_SIZE - 6, RECORDS_MAX).records   # 8,186..8,201
    assert [r.status for r in per_id] == [Status.OK] * RECORDS_MAX
    assert [r.snapshot_id for r in per_id] == list(range(RING_SIZE - 6, RING_SIZE + 10))
    assert [r.count for r in per_id] == [i % 3 for i in range(8)] + [0] * 8, \
        "each ID's own packets, across the ring's end"


def test_a_schedule_reaching_the_ring_reuse_is_refused(slb):
    slb.init(1)
    at = slb.now() + LEAD
    far = 2 + RING_SIZE - 16   # its last ID is RING_SIZE ahead of ID 1
    assert schedule(slb, far, 16, at).status == Status.TOO_FAR
    assert described(slb, far).status == Status.STALE, "nothing was scheduled"
    assert schedule(slb, far - 1, 16, at).status == Status.SCHEDULED, \
        "RING_SIZE - 1 ahead still fits"


def test_a_ring_sized_schedule_one_too_far_changes_nothing(slb):
    """From ID 1, SCHEDULE_MAX IDs from 3 end RING_SIZE ahead (8,193, ID 1's
    slot): TOO_FAR, nothing planned; from 2 they end RING_SIZE - 1 ahead and
    fit.  A later TOO_FAR whose first ID shares that schedule's slot (8,194)
    leaves the schedule as it was."""
    slb.init(1)
    at = slb.now() + LEAD
    refused = schedule(slb, 3, SCHEDULE_MAX, at, spacing=1)
    assert refused.status == Status.TOO_FAR and refused.body.id_after == 1
    assert described(slb, 3).status == Status.STALE, "nothing was scheduled"
    assert schedule(slb, 2, SCHEDULE_MAX, at, spacing=1).status == Status.SCHEDULED
    assert schedule(slb, RING_SIZE + 2, 1, at + LEAD).status == Status.TOO_FAR
    assert slb.current_id() == 1
    wait_past(slb, at + SCHEDULE_MAX)
    answer = described(slb, 2)
    assert answer.status == Status.OK and answer.body.id_after == RING_SIZE
    assert answer.batch.count == SCHEDULE_MAX and answer.batch.spacing == 1
    assert answer.body.activate_at == at and answer.batch.track == Track.FINAL
    assert described(slb, RING_SIZE + 2).status == Status.STALE


def test_bad_schedules_change_nothing(slb):
    slb.init(1)
    at = slb.now() + LEAD
    bad = [Batch(0, SPACING, reciprocal(SPACING)),              # no IDs
           Batch(4, 0, reciprocal(1)),                          # no spacing
           Batch(4, SPACING, reciprocal(SPACING) + 1),          # a wrong reciprocal
           Batch(4, SPACING, reciprocal(SPACING) - 1)]
    for batch in bad:
        answer = slb.control.request_batch(Op.INIT_BATCH, 2, batch, timeout=2, activate_at=at)
        assert answer.status == Status.BAD_BATCH, batch
    assert schedule(slb, 2, 4, 0).status == Status.BAD_BATCH, "a schedule needs a time"
    assert described(slb, 2).status == Status.STALE
    for count in (0, RECORDS_MAX + 1):
        assert records(slb, 1, count).status == Status.BAD_BATCH
    assert slb.current_id() == 1


def test_a_batch_request_cut_short_is_truncated(slb):
    """No batch header, or a READ_RECORDS without room for its records."""
    slb.init(2)
    for op, rest in ((Op.INIT_BATCH, b""), (Op.READ_BATCH, b""),
                     (Op.READ_RECORDS, Batch(3).pack() + bytes(2 * Record.SIZE))):
        slb.session.packet_out(ControlBody(seq=9000 + op, snapshot_id=3).pack() + rest,
                               opcode=int(op))
    slb.read(2)   # answered after the three above
    assert [m["status"] for m, _ in slb.packet_ins[-4:-1]] == [Status.TRUNCATED] * 3
    assert slb.current_id() == 2


def test_a_resent_schedule_keeps_what_its_tracking_found(slb):
    """A lost answer's request comes again: the schedule stands, the IDs
    reached stay as they are, and so does the lateness it kept."""
    slb.init(1)
    at = slb.now() + LEAD
    assert schedule(slb, 2, 4, at).status == Status.SCHEDULED
    wait_past(slb, at + SPACING)
    assert slb.mark_of_next_vip() == 3
    assert schedule(slb, 2, 4, at).status == Status.SCHEDULED, "the resend"
    assert slb.current_id() == 3, "nothing moved back, nothing moved on early"
    wait_past(slb, at + 3 * SPACING)
    first, again = described(slb, 2), described(slb, 2)
    assert first.batch == again.batch and first.batch.track == Track.FINAL


def test_read_records_answers_what_single_reads_answer(slb):
    """Recorded IDs (old and current), one newer and one neither: each
    record is the single READ's answer."""
    for n in (1, 2, 3):
        slb.init(n)
        slb.mark_of_next_vip()
    slb.mark_of_next_vip()
    singles = [as_record(slb.read(n)) for n in range(1, 6)]
    assert [r.status for r in singles] == [Status.OK] * 3 + [Status.STALE] * 2
    answer = records(slb, 1, 5)
    assert answer.status == Status.OK and answer.body.id_after == 3
    assert [r.status for r in answer.records] == [Status.OK] * 3 + [Status.SCHEDULED] * 2, \
        "newer than the current ID: still to come"
    assert list(answer.records[:3]) == singles[:3]
    assert [r.count for r in answer.records[:3]] == [1, 1, 2]


def test_the_batch_wire_layouts(slb):
    """A READ_RECORDS answer is ctl_t, batch_t, then one record_t per ID."""
    slb.init(1)
    slb.packet_ins.clear()
    records(slb, 1, 3)
    _, payload = slb.packet_ins[-1]
    assert len(payload) == ControlBody.SIZE + Batch.SIZE + 3 * Record.SIZE
    assert Batch.unpack(payload[ControlBody.SIZE:]).count == 3


def test_a_schedule_displaced_before_it_started_is_armed_afresh(slb):
    """Schedule 4-5, then an older one, 2-3, takes its place: 4-5 had not
    started, so once 2-3 is done it is armed again, and still kept whole."""
    slb.init(1)
    at = slb.now() + LEAD
    schedule(slb, 4, 2, at + 2 * SPACING)
    schedule(slb, 2, 2, at)
    wait_past(slb, at + 3 * SPACING)
    assert slb.mark_of_next_vip() == 5
    for first in (2, 4):
        answer = described(slb, first)
        assert answer.status == Status.OK and answer.batch.track == Track.FINAL, first


def test_a_schedule_passed_by_learning_before_it_was_armed_is_lost(slb):
    """An in-group STAMP moves the SLB into a schedule nobody armed (an
    older one is armed, far ahead): its lateness cannot be trusted."""
    slb.init(1)
    at = slb.now() + LEAD
    schedule(slb, 2, 2, at + 10 * SPACING)    # armed
    # newer, waits behind it; wide spacing, so that 6 falls due long after the
    # learned 5 is read, however slowly the machine answers
    schedule(slb, 4, 4, at, spacing=3 * SPACING)
    wait_past(slb, at + SPACING)
    slb.ports.send(2, stamp("10.0.2.1", "10.0.2.2", 5))   # learned: 5, inside 4-7
    slb.ports.expect(3, lambda f: Beaver in f)
    assert slb.current_id() == 5
    wait_past(slb, at + 10 * SPACING + 4 * SPACING)
    slb.mark_of_next_vip()
    answer = described(slb, 4)
    assert answer.status == Status.OK and answer.batch.track != Track.FINAL


def test_a_learned_move_past_a_due_schedule_keeps_its_lateness(slb):
    """Eight single schedules and a batch all fall due at once: a VIP packet
    steps through four (DUE_STEPS) and leaves with an old ID, late for the
    rest; a STAMP then steps through four more and learns the batch's last
    ID.  The batch keeps that packet as its lateness, though no due step of
    its own passed it."""
    slb.init(1)
    at = slb.now() + LEAD
    for n in range(2, 10):
        slb.init(n, at=at)
    schedule(slb, 10, 4, at)
    wait_past(slb, at + 3 * SPACING)
    assert slb.mark_of_next_vip() == 5, "four schedules on one packet"
    # (no request in between: it too would step through four)
    slb.ports.send(2, stamp("10.0.2.1", "10.0.2.2", 13))   # learned: 13, the batch's last
    slb.ports.expect(3, lambda f: Beaver in f)
    answer = described(slb, 10)
    assert answer.body.id_after == 13
    assert answer.status == Status.OK and answer.batch.track == Track.FINAL
    assert at <= answer.batch.late_last < answer.body.now, "the packet that left with 5"


def test_an_immediate_init_ahead_of_a_schedule_loses_its_tracking(slb):
    """The controller moves the SLB at once past a schedule's IDs before
    their times (as a recovery does): the schedule no longer says when they
    were reached.  A learned ID as early keeps it: another SLB was there."""
    slb.init(1)
    at = slb.now() + LEAD
    schedule(slb, 2, 4, at)
    schedule(slb, 6, 4, at + 6 * SPACING)
    slb.ports.send(2, stamp("10.0.2.1", "10.0.2.2", 3))
    slb.ports.expect(3, lambda f: Beaver in f)
    assert slb.current_id() == 3, "learned, before the schedule's times"
    wait_past(slb, at + 3 * SPACING)
    assert slb.mark_of_next_vip() == 5, "2-5 done: 6-9 armed"
    assert slb.init(7).status == Status.OK and slb.current_id() == 7, "before 6's time"
    wait_past(slb, at + 10 * SPACING)
    slb.mark_of_next_vip()
    learned, moved = described(slb, 2), described(slb, 6)
    assert learned.status == Status.OK and learned.batch.track == Track.FINAL
    assert learned.batch.late_last == 0
    assert moved.status == Status.OK and moved.batch.track == Track.LOST
