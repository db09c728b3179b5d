"""topologies/cores.py: "pinned" puts the controller's every thread on
its core and every process it started (children's children too) on the
other; "switches" moves BMv2 to the controller's core; "shared" moves
nothing.  Tried on a stand-in controller, a child process of the test with
a thread and two grandchildren, one named as BMv2 is, so the test's own
process keeps its cores."""
import os
import subprocess
import sys
import time

import pytest

from beaver.topologies import cores

CONTROLLER = """
import subprocess, sys, threading, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
switch = subprocess.Popen([sys.executable, "-c", SWITCH])
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print(grandchild.pid, switch.pid, flush=True)
time.sleep(60)
"""
# A stand-in BMv2: a process named as simple_switch_grpc is (comm keeps 15 bytes).
SWITCH = """
import time
with open("/proc/self/comm", "w") as comm:
    comm.write("simple_switch_g")
time.sleep(60)
"""

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="pinning needs 2 cores")


@pytest.fixture
def controller():
    proc = subprocess.Popen([sys.executable, "-c", f"SWITCH = {SWITCH!r}\n{CONTROLLER}"],
                            stdout=subprocess.PIPE, text=True)
    grandchild, switch = map(int, proc.stdout.readline().split())
    deadline = time.monotonic() + 10
    while (len(os.listdir(f"/proc/{proc.pid}/task")) < 2 or not cores.is_switch(switch)) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    yield proc.pid, grandchild, switch
    for pid in (grandchild, switch):
        os.kill(pid, 9)
    proc.kill()
    proc.wait()


def threads(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def test_pinned_splits_the_controller_from_what_it_started(controller):
    pid, grandchild, switch = controller
    assert sorted(cores.descendants(pid)) == sorted([grandchild, switch])

    counts = cores.apply("pinned", controller=pid)

    assert counts == {"controller": len(threads(pid)), "traffic": 2}
    assert counts["controller"] >= 2, "every thread, not only the main one"
    for tid in threads(pid):
        assert os.sched_getaffinity(tid) == {cores.CONTROLLER_CPU}
    assert os.sched_getaffinity(grandchild) == os.sched_getaffinity(switch) == {cores.TRAFFIC_CPU}
    assert cores.describe("pinned").startswith("pinned: controller on CPU 1")
    assert cores.apart("pinned") == ("controller",)


def test_switches_puts_bmv2_beside_the_controller_and_the_rest_apart(controller):
    pid, grandchild, switch = controller
    assert cores.is_switch(switch) and not cores.is_switch(grandchild)

    counts = cores.apply("switches", controller=pid)

    assert counts == {"controller": len(threads(pid)), "traffic": 1, "switches": 1}
    assert os.sched_getaffinity(switch) == {cores.CONTROLLER_CPU}
    assert os.sched_getaffinity(grandchild) == {cores.TRAFFIC_CPU}
    assert all(os.sched_getaffinity(tid) == {cores.CONTROLLER_CPU} for tid in threads(pid))
    assert cores.describe("switches").startswith("switches: controller and SLBs on CPU 1")
    assert cores.apart("switches") == ("controller", "slb")


def test_shared_moves_nothing_and_an_unknown_choice_is_refused(controller):
    pid, grandchild, switch = controller
    before = {tid: os.sched_getaffinity(tid) for tid in [*threads(pid), grandchild, switch]}
    assert cores.apply("shared", controller=pid) == {}
    assert {tid: os.sched_getaffinity(tid) for tid in before} == before
    with pytest.raises(ValueError, match="unknown --cores 'spread'"):
        cores.apply("spread", controller=pid)


def test_a_process_that_ended_is_passed_over():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert cores.pin(proc.pid, {0}) == 0
