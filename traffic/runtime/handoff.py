"""Work that another thread asks of the threads serving requests: the OOB
server's answers to the controller (a batch's reports, about 0.5 ms of
Python each at 50 snapshots a second).

Computed on the OOB server's own thread, an answer competes with the
requests for the GIL: a request that arrives meanwhile waits a switch
interval at every point it releases the GIL (each send, each log write),
and was delayed 2-3 ms in Fig. 14, nearly every one of them above the
run's p99.  Run by a serving thread between two requests, the answer
delays the next request by its own length at most.  A process that serves
no request for `wait` seconds leaves the work to the asking thread.

    handoff = Handoff()
    value = handoff.call(work, wait=0.005)   # the asking thread
    handoff.run_pending()                    # a serving thread, between requests
"""
from __future__ import annotations

import collections
import threading
from typing import Any, Callable


class _Job:
    def __init__(self, work: Callable[[], Any]):
        self.work = work
        self.claimed = threading.Lock()   # taken by the one thread that runs it
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self):
        if not self.claimed.acquire(blocking=False):
            return
        try:
            self.value = self.work()
        except BaseException as e:   # raised again in the asking thread
            self.error = e
        finally:
            self.done.set()


class Handoff:
    def __init__(self):
        self._jobs: collections.deque[_Job] = collections.deque()

    def call(self, work: Callable[[], Any], wait: float) -> Any:
        """work's value (or its exception), computed by a serving thread, or
        by this one if none took it within wait seconds."""
        job = _Job(work)
        self._jobs.append(job)
        if not job.done.wait(wait):
            job.run()          # nothing if a serving thread claimed it meanwhile
            job.done.wait()
        if job.error is not None:
            raise job.error
        return job.value

    def run_pending(self):
        """Runs the work asked so far (a serving thread, holding no lock)."""
        while self._jobs:
            try:
                job = self._jobs.popleft()
            except IndexError:   # another serving thread took the last one
                return
            job.run()
