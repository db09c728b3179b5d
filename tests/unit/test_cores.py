"""topologies/cores.py: "pinned" puts the controller's every thread on
its core and every process it started (children's children too) on the
other; "shared" moves nothing.  Tried on a stand-in controller, a child
process of the test with a thread and a grandchild, so the test's own
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
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print(grandchild.pid, flush=True)
time.sleep(60)
"""

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="pinning needs 2 cores")


@pytest.fixture
def controller():
    proc = subprocess.Popen([sys.executable, "-c", CONTROLLER], stdout=subprocess.PIPE, text=True)
    grandchild = int(proc.stdout.readline())
    deadline = time.monotonic() + 10
    while len(os.listdir(f"/proc/{proc.pid}/task")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    yield proc.pid, grandchild
    os.kill(grandchild, 9)
    proc.kill()
    proc.wait()


def threads(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def test_pinned_splits_the_controller_from_what_it_started(controller):
    pid, grandchild = controller
    assert cores.descendants(pid) == [grandchild]

    counts = cores.apply("pinned", controller=pid)

    assert counts == {"controller": len(threads(pid)), "traffic": 1}
    assert counts["controller"] >= 2, "every thread, not only the main one"
    for tid in threads(pid):
        assert os.sched_getaffinity(tid) == {cores.CONTROLLER_CPU}
    assert os.sched_getaffinity(grandchild) == {cores.TRAFFIC_CPU}
    assert cores.describe("pinned").startswith("pinned: controller on CPU 1")


def test_shared_moves_nothing_and_an_unknown_choice_is_refused(controller):
    pid, grandchild = controller
    before = {tid: os.sched_getaffinity(tid) for tid in [*threads(pid), grandchild]}
    assert cores.apply("shared", controller=pid) == {}
    assert {tid: os.sched_getaffinity(tid) for tid in before} == before
    with pytest.raises(ValueError, match="unknown --cores 'spread'"):
        cores.apply("spread", controller=pid)


def test_a_process_that_ended_is_passed_over():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert cores.pin(proc.pid, {0}) == 0
