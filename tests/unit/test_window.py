"""control/engine/window.py: how many snapshot IDs may be in flight."""
import pytest

from beaver.control.engine.window import MAX_SPAN, IdWindow, wire_id
from beaver.p4src.wire import LEARN_WINDOW, RING_SIZE


def test_k_in_flight_at_most():
    w = IdWindow(1, inflight=3)
    assert [w.start() for _ in range(3)] == [1, 2, 3]
    assert not w.can_start()
    with pytest.raises(RuntimeError):
        w.start()
    w.finish(1)
    assert w.can_start() and w.start() == 4


def test_the_span_from_the_oldest_unfinished_id_limits_not_the_count():
    w = IdWindow(10, inflight=4)
    for _ in range(4):
        w.start()
    for n in (11, 12, 13):
        w.finish(n)   # only 10 is still open, but 14 would be 4 ahead of it
    assert len(w) == 1 and not w.can_start()
    w.finish(10)
    assert w.can_start() and w.start() == 14


def test_never_more_than_the_slb_ring_holds_nor_than_it_learns_ahead():
    assert MAX_SPAN == LEARN_WINDOW == RING_SIZE - 1
    w = IdWindow(1, inflight=MAX_SPAN)
    started = 0
    while w.can_start():
        w.start()
        started += 1
    assert started == LEARN_WINDOW
    with pytest.raises(ValueError, match="overwrite"):
        IdWindow(1, inflight=MAX_SPAN + 1)


def test_a_batch_starts_only_if_it_fits_whole():
    w = IdWindow(1, inflight=8)
    for _ in range(5):
        w.start()
    assert w.can_start(3) and not w.can_start(4)
    w.finish(1)
    assert w.can_start(4) and not w.can_start(5)


def test_numbers_wrap_on_the_wire_only():
    w = IdWindow((1 << 32) - 1, inflight=2)
    a, b = w.start(), w.start()
    assert (a, b) == ((1 << 32) - 1, 1 << 32)
    assert (wire_id(a), wire_id(b)) == (0xFFFFFFFF, 0)


def test_zero_in_flight_is_refused():
    with pytest.raises(ValueError):
        IdWindow(1, inflight=0)


def test_a_batch_is_one_range_in_flight():
    w = IdWindow(1, inflight=10)
    assert w.start(4) == 1 and w.start() == 5 and len(w) == 5
    assert w.can_start(5) and not w.can_start(6)
    w.finish(5)
    assert w.oldest == 1 and len(w) == 4, "the range still holds the oldest"
    w.finish(1)
    assert w.oldest == w.next_number == 6 and not w.open
