"""bench/slb_instructions.py's arithmetic: from two callgrind counts of
different lengths to instructions per packet and per snapshot, with the
start-up, the switch's idle work and (per snapshot) marking's per packet
taken off. Hand-made counts whose every part differs."""
import importlib
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))   # it imports dataplane.py beside it
    return importlib.import_module("slb_instructions")


START, PER_PACKET, IDLE, PER_SNAPSHOT = 9_000_000, 400_000, 7_000, 300_000
STEP, CONTROL = 250_000, 1_500_000   # a step's, and the control packets' a second


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


def stepped(packets, seconds, steps, snapshots=0):
    """A snapshot mode's count: marking per packet, a step for each packet
    that found an ID due, the control packets' per second."""
    return {"slb": START + PER_PACKET * packets + IDLE * seconds + STEP * steps
            + CONTROL * seconds, "delivered": packets, "seconds": seconds,
            "outcome": {"finished": snapshots}}


def test_the_control_packets_cost_is_counted_a_second_beyond_the_idle_work(bench):
    short, long = stepped(0, 5.0, 0), stepped(0, 17.0, 0)
    assert bench.per_second(short, long, IDLE) == pytest.approx(CONTROL)


def test_a_step_is_what_remains_beyond_marking_and_the_control_packets(bench):
    # IDs as fast as packets (50/s at --pace 50): every packet steps.
    short, long = stepped(150, 5.0, 150, 150), stepped(750, 17.0, 750, 750)
    assert bench.per_step(short, long, IDLE, PER_PACKET, CONTROL, 50, 50) == pytest.approx(STEP)
    # 1,000 IDs a second at --pace 50: a packet steps over 20 at once, still one step.
    short, long = stepped(150, 5.0, 150, 3000), stepped(750, 17.0, 750, 15000)
    assert bench.per_step(short, long, IDLE, PER_PACKET, CONTROL, 1000, 50) == pytest.approx(STEP)
    # 25 IDs a second at --pace 50: every other packet steps.
    short, long = stepped(150, 5.0, 75, 75), stepped(750, 17.0, 375, 375)
    assert bench.per_step(short, long, IDLE, PER_PACKET, CONTROL, 25, 50) == pytest.approx(STEP)


def test_a_run_the_switch_fell_behind_in_is_measured_again_and_never_counted(bench,
                                                                             monkeypatch):
    runs = iter([run(24, 11.1), run(150, 5.2)])
    monkeypatch.setattr(bench, "measure", lambda *args: next(runs))
    assert bench.measured("snapshots-50", 50, 150)["delivered"] == 150
    monkeypatch.setattr(bench, "measure", lambda *args: run(876, 22.4))
    with pytest.raises(SystemExit, match="^snapshots-50: the switch delivered 876 of 750 "
                                         "packets twice: no count$"):
        bench.measured("snapshots-50", 50, 750)
    # modes without packets deliver none, as they should
    monkeypatch.setattr(bench, "measure", lambda *args: run(0, 17.2))
    assert bench.measured("control-50", 50, 750)["delivered"] == 0
    assert bench.measured("idle", None, 750)["delivered"] == 0


def test_a_dump_written_over_an_older_one_of_the_same_name_is_read(bench, monkeypatch,
                                                                     tmp_path):
    # A run measured again starts a process under the same name, which
    # numbers its dumps from 1 again: its first dump replaces the last one's.
    out = tmp_path / "controller-snapshots-50-150"
    (tmp_path / f"{out.name}.log").write_text("valgrind's log, not a dump\n")
    (tmp_path / f"{out.name}.1").write_text("events: Ir\ntotals: 5000\n")
    os.utime(tmp_path / f"{out.name}.1", ns=(10**18, 10**18))   # written long ago

    def callgrind_dumps(pid, *flags):
        assert flags == ("-d",)
        (tmp_path / f"{out.name}.1").write_text("events: Ir\ntotals: 7346\n")

    monkeypatch.setattr(bench, "control", callgrind_dumps)
    monkeypatch.setattr(bench, "READY_S", 2)
    assert bench.dump(4242, out) == 7346
    # no dump at all: one line, not a wait without end
    monkeypatch.setattr(bench, "control", lambda pid, *flags: None)
    with pytest.raises(SystemExit, match="^callgrind wrote no dump for process 4242$"):
        bench.dump(4242, out)
