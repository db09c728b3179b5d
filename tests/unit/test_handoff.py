"""OOB answers computed by a serving thread between two requests
(traffic/runtime/handoff.py), or by the asking thread if none serves."""
from __future__ import annotations

import threading
import time

import pytest

from beaver.traffic.runtime import peering
from beaver.traffic.runtime.handoff import Handoff

from tests.support.runtimes import client_socket, dip, oob_request, runtimes, send_request, vip

__all__ = ["runtimes"]   # the fixture


def ask(handoff: Handoff, work, wait: float) -> dict:
    """call() on a thread of its own, as the OOB server does: what it returned or raised."""
    out: dict = {}

    def asking():
        try:
            out["value"] = handoff.call(work, wait)
        except Exception as e:
            out["error"] = e
    thread = threading.Thread(target=asking)
    thread.start()
    out["thread"] = thread
    return out


def test_a_serving_thread_runs_the_work_and_the_asker_gets_its_value():
    handoff = Handoff()
    out = ask(handoff, lambda: threading.current_thread().name, wait=30)
    while not handoff._jobs:
        time.sleep(0.001)
    handoff.run_pending()   # this thread serves
    out["thread"].join(5)
    assert out["value"] == threading.current_thread().name


def test_with_no_serving_thread_the_asker_runs_it_after_the_wait():
    handoff = Handoff()
    started = time.monotonic()
    assert handoff.call(lambda: threading.current_thread().name, wait=0.05) == \
        threading.current_thread().name
    assert time.monotonic() - started >= 0.05
    handoff.run_pending()   # the job left queued is not run again


def test_the_work_s_exception_is_raised_in_the_asker():
    handoff = Handoff()
    out = ask(handoff, lambda: 1 / 0, wait=30)
    while not handoff._jobs:
        time.sleep(0.001)
    handoff.run_pending()
    out["thread"].join(5)
    assert isinstance(out["error"], ZeroDivisionError)


def test_each_job_runs_once_whoever_takes_it():
    handoff, runs, lock = Handoff(), [], threading.Lock()

    def work(n):
        with lock:
            runs.append(n)
        return n

    stop = threading.Event()

    def serving():
        while not stop.is_set():
            handoff.run_pending()
    servers = [threading.Thread(target=serving) for _ in range(3)]
    for thread in servers:
        thread.start()
    asked = [ask(handoff, lambda n=n: work(n), wait=0.0005 * (n % 4)) for n in range(200)]
    for out in asked:
        out["thread"].join(5)
    stop.set()
    for thread in servers:
        thread.join(5)
    assert sorted(runs) == list(range(200))
    assert [out["value"] for out in asked] == list(range(200))


def test_the_runtime_answers_a_snapshot_on_its_receive_thread(runtimes, monkeypatch):
    monkeypatch.setattr(peering, "ANSWER_WAIT", 30.0)   # only a serving thread may answer
    captured = []

    class App:
        def __init__(self, runtime):
            self.runtime = runtime

        def on_request(self, message, client):
            self.runtime.reply(client, {"ok": True})

        def on_peer(self, message, sender):
            pass

        def local_state(self):
            captured.append(threading.current_thread().name)
            return {}

    runtime, _ = runtimes("p", 1, App)
    out = {}
    asking = threading.Thread(target=lambda: out.update(
        answer=oob_request(runtime, {"op": "snapshot", "id": 1}, timeout=30)))
    asking.start()
    client = client_socket()
    while asking.is_alive():   # requests until one carries the answer's work
        send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=0)
        asking.join(0.01)
    client.close()
    assert out["answer"]["taken"] and captured == ["p-rx"]
