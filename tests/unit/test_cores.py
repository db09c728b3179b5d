"""topologies/cores.py: "pinned" puts the controller's every thread on
its core and every process it started (children's children too) on the
other; "switches" puts the switches it is given (and what they started)
beside the controller; "shared" moves nothing.  Tried on a stand-in
controller, a child process of the test with a thread, a grandchild and
a stand-in switch with a thread and a child of its own, so that the
test's own process keeps its cores."""
import os
import subprocess
import sys
import time

import pytest

from beaver.topologies import cores

# A stand-in switch: two threads (BMv2 runs many) and a child.
SWITCH = """
import subprocess, sys, threading, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print(child.pid, flush=True)
time.sleep(60)
"""
CONTROLLER = f"""
import subprocess, sys, threading, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
switch = subprocess.Popen([sys.executable, "-c", {SWITCH!r}], stdout=subprocess.PIPE, text=True)
switch_child = int(switch.stdout.readline())
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print(grandchild.pid, switch.pid, switch_child, flush=True)
time.sleep(60)
"""

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="pinning needs 2 cores")


def threads(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


@pytest.fixture
def controller():
    """(controller, grandchild, switch, switch's child) pids, every thread started."""
    proc = subprocess.Popen([sys.executable, "-c", CONTROLLER], stdout=subprocess.PIPE, text=True)
    grandchild, switch, switch_child = map(int, proc.stdout.readline().split())
    deadline = time.monotonic() + 10
    while (len(threads(proc.pid)) < 2 or len(threads(switch)) < 2) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(threads(proc.pid)) >= 2 and len(threads(switch)) >= 2
    yield proc.pid, grandchild, switch, switch_child
    for pid in (grandchild, switch_child, switch):
        os.kill(pid, 9)
    proc.kill()
    proc.wait()


def affinities(*pids: int) -> set[frozenset[int]]:
    return {frozenset(os.sched_getaffinity(tid)) for pid in pids for tid in threads(pid)}


def test_pinned_splits_the_controller_from_what_it_started(controller):
    pid, grandchild, switch, switch_child = controller
    assert sorted(cores.descendants(pid)) == sorted([grandchild, switch, switch_child])

    counts = cores.apply("pinned", controller=pid, switches=[switch])

    assert counts == {"apart": len(threads(pid)),
                      "traffic": 2 + len(threads(switch))}, "every thread, not only the main one"
    assert affinities(pid) == {frozenset({cores.APART_CPU})}
    assert affinities(grandchild, switch, switch_child) == {frozenset({cores.TRAFFIC_CPU})}
    assert cores.describe("pinned").startswith("pinned: controller on CPU 1")
    assert cores.apart("pinned") == ("controller",)


def test_switches_puts_the_switches_beside_the_controller_and_the_rest_apart(controller):
    pid, grandchild, switch, switch_child = controller

    counts = cores.apply("switches", controller=pid, switches=[switch])

    assert counts == {"apart": len(threads(pid)) + len(threads(switch)) + 1, "traffic": 1}
    assert affinities(pid, switch, switch_child) == {frozenset({cores.APART_CPU})}, \
        "the controller, every thread of the switch, and what the switch started"
    assert affinities(grandchild) == {frozenset({cores.TRAFFIC_CPU})}
    assert cores.describe("switches").startswith("switches: controller and SLBs on CPU 1")
    assert cores.apart("switches") == ("controller", "slb")


def test_switches_without_a_switch_here_is_refused_in_one_line(controller):
    pid, grandchild, switch, switch_child = controller
    before = affinities(pid, grandchild, switch)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    for given in ([], [ended.pid]):   # none, or one that is not running
        with pytest.raises(cores.PlacementError, match="no SLB process runs on this machine"):
            cores.apply("switches", controller=pid, switches=given)
    assert affinities(pid, grandchild, switch) == before, "nothing moved"


def test_shared_moves_nothing_and_an_unknown_choice_is_refused(controller):
    pid, grandchild, switch, _ = controller
    before = {tid: os.sched_getaffinity(tid) for tid in [*threads(pid), grandchild, switch]}
    assert cores.apply("shared", controller=pid, switches=[switch]) == {}
    assert {tid: os.sched_getaffinity(tid) for tid in before} == before
    assert cores.apart("shared") == ()
    with pytest.raises(cores.PlacementError, match="unknown --cores 'spread'"):
        cores.apply("spread", controller=pid)


def test_a_process_that_ended_is_passed_over():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert cores.pin(proc.pid, {0}) == 0
