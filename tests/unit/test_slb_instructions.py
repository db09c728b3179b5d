"""bench/slb_instructions.py's arithmetic: from two callgrind counts of
different lengths to instructions per packet and per snapshot, with the
start-up, the switch's idle work and (per snapshot) marking's per packet
taken off. Hand-made counts whose every part differs."""
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))   # it imports dataplane.py beside it
    return importlib.import_module("slb_instructions")


START, PER_PACKET, IDLE, PER_SNAPSHOT = 9_000_000, 400_000, 7_000, 300_000


def run(packets, seconds, snapshots=0):
    return {"slb": START + PER_PACKET * packets + IDLE * seconds + PER_SNAPSHOT * snapshots,
            "delivered": packets, "seconds": seconds, "outcome": {"finished": snapshots}}


def test_start_up_and_idle_work_drop_out_of_the_count_per_packet(bench):
    assert bench.per_packet(run(150, 3.0), run(750, 15.0), IDLE) == PER_PACKET
    # Idle work left in would be counted as the packets'.
    assert bench.per_packet(run(150, 3.0), run(750, 15.0), 0) == pytest.approx(
        PER_PACKET + IDLE * 12 / 600)


def test_a_snapshot_s_count_is_what_remains_beyond_marking_s_per_packet(bench):
    short, long = run(150, 3.0, snapshots=150), run(750, 15.0, snapshots=750)
    assert bench.per_snapshot(short, long, IDLE, PER_PACKET) == PER_SNAPSHOT
    assert bench.per_packet(short, long, IDLE) == PER_PACKET + PER_SNAPSHOT   # one each
    assert bench.per_unit(short, long, "slb", "seconds") == pytest.approx(
        (PER_PACKET * 600 + IDLE * 12 + PER_SNAPSHOT * 600) / 12)
