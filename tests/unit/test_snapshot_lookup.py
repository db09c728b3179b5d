"""The record covering an ID is found by bisect over the records' unwrapped
last IDs (traffic/runtime/snapshots.py): it must be the record the earlier
bisect over the records themselves found, comparing serial numbers, over
any jumps, any window slide and IDs that wrap past 2^32."""
from __future__ import annotations

import bisect

from hypothesis import given, settings, strategies as st

from beaver.p4src.ids import ID_SPACE, ID_WINDOW, ahead, next_id
from beaver.traffic.runtime.snapshots import Mode, Snapshots, offsets_within


def record_by_serial_bisect(s: Snapshots, snapshot_id: int):
    """The lookup as it was (commit 6ae1ac3): a key per record, over the deque."""
    if not 0 <= ahead(s.current_id, snapshot_id) < s.kept:
        return None
    return s.records[bisect.bisect_left(s.records, 0,
                                        key=lambda r: ahead(r.last, snapshot_id))]


def count_by_offsets(s: Snapshots, peer: str, first: int, last: int, sent_before: int):
    """count_from as it was (commit 6ae1ac3): every range clipped by offsets_within."""
    if not s.records:
        return
    oldest = s.records[0].first
    offsets = offsets_within(oldest, s.kept, first, last)
    if not offsets:
        return
    low, high = next_id(oldest, offsets.start), next_id(oldest, offsets.stop - 1)
    newest = bisect.bisect_left(s.records, 0, key=lambda r: ahead(r.last, high))
    for index in range(newest, -1, -1):
        record = s.records[index]
        if ahead(record.last, low) < 0:
            break
        clipped = (low if ahead(low, record.first) > 0 else record.first,
                   high if ahead(record.last, high) > 0 else record.last)
        record.counts.setdefault(peer, []).append((*clipped, sent_before))


jumps = st.one_of(st.integers(1, 3), st.integers(1, 80), st.integers(ID_WINDOW - 40, ID_WINDOW - 1))


@settings(max_examples=150, deadline=None)
@given(start=st.one_of(st.just(0), st.integers(ID_SPACE - 100, ID_SPACE - 1),
                       st.integers(0, ID_SPACE - 1)),
       window=st.integers(1, 40), steps=st.lists(jumps, min_size=1, max_size=120))
def test_the_record_found_is_the_one_serial_bisect_finds(start, window, steps):
    s = Snapshots("p", ["q"], Mode.BEAVER, dict, window)
    s.restart_at(start)
    for jump in steps:
        s.mark(next_id(s.current_id, jump))
        kept = list(s.records)
        assert [last % ID_SPACE for last in s._lasts[s._gone:]] == [r.last for r in kept]
        assert s._gone <= len(kept), "the dropped records' entries are cut off"
        for back in range(-2, s.kept + 3):   # every kept ID, and a few on either side
            snapshot_id = next_id(s.current_id, -back)
            assert s._record(snapshot_id) is record_by_serial_bisect(s, snapshot_id)


def test_a_long_run_at_one_id_a_step_wraps_and_keeps_its_list_short():
    """8,192 records kept, 30,000 IDs taken across 2^32: the lookup agrees
    at the ends and the middle, and the dropped entries do not pile up."""
    s = Snapshots("p", ["q"], Mode.BEAVER, dict, 8192)
    s.restart_at(ID_SPACE - 20_000)
    for _ in range(30_000):
        s.mark(next_id(s.current_id))
    assert s.current_id == 10_000 and len(s.records) == 8192
    assert len(s._lasts) <= 2 * 8192 + 1
    for back in (0, 1, 4095, 8191, 8192, 10_001):
        snapshot_id = next_id(s.current_id, -back)
        assert s._record(snapshot_id) is record_by_serial_bisect(s, snapshot_id)
    assert s._record(next_id(s.current_id, -8191)).last == next_id(s.current_id, -8191)


near = st.integers(-50, 50) | st.integers(-ID_WINDOW, ID_WINDOW)   # from the current ID


@settings(max_examples=150, deadline=None)
@given(start=st.one_of(st.just(0), st.integers(ID_SPACE - 100, ID_SPACE - 1)),
       window=st.integers(1, 40), steps=st.lists(st.tuples(jumps, near, near), max_size=60))
def test_counts_are_kept_as_the_offsets_clipping_kept_them(start, window, steps):
    """Each COUNT's range, wherever it falls (all kept, partly, not at all,
    first after last, across 2^32), lands in the same records, clipped alike."""
    new, old = (Snapshots("p", ["q"], Mode.BEAVER, dict, window) for _ in range(2))
    for s in (new, old):
        s.restart_at(start)
    for sent_before, (jump, to_first, to_last) in enumerate(steps):
        for s in (new, old):
            s.mark(next_id(s.current_id, jump))
        first, last = next_id(new.current_id, to_first), next_id(new.current_id, to_last)
        new.count_from("q", first, last, sent_before)
        count_by_offsets(old, "q", first, last, sent_before)
        assert [r.counts for r in new.records] == [r.counts for r in old.records]


@settings(max_examples=100, deadline=None)
@given(start=st.one_of(st.just(0), st.integers(ID_SPACE - 100, ID_SPACE - 1)),
       window=st.integers(1, 40),
       steps=st.lists(st.tuples(jumps, st.integers(-50, 0) | st.integers(1, 3)), max_size=60))
def test_a_count_up_to_the_newest_id_is_kept_as_the_offsets_clipping_keeps_it(start, window,
                                                                           steps):
    """The usual COUNT ends at our newest ID (a peer that jumped where we
    did): whether it starts in our newest record, before it, or after the
    newest ID, it lands as the general clipping lands it."""
    new, old = (Snapshots("p", ["q"], Mode.BEAVER, dict, window) for _ in range(2))
    for s in (new, old):
        s.restart_at(start)
    for sent_before, (jump, to_first) in enumerate(steps):
        for s in (new, old):
            s.mark(next_id(s.current_id, jump))
        first, last = next_id(new.current_id, to_first), new.current_id
        new.count_from("q", first, last, sent_before)
        count_by_offsets(old, "q", first, last, sent_before)
        assert [r.counts for r in new.records] == [r.counts for r in old.records]
