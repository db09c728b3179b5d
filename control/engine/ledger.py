"""Finished snapshots and batches: committed to the store together (one
fsync for many), then reported, so that nobody hears of a snapshot the
store could still lose.

The commits run on a thread of their own: an fsync took up to 76 ms on a
busy disk, and on the engine's thread it held up every INIT and READ behind
it.  The engine hears back through its loop (SAVED), and only then reports
the snapshots.  One lock keeps the writer's commits and the engine's number
reservations apart (they share the store's connection).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable

from beaver.control.engine.record import BatchRecord, SnapshotRecord
from beaver.control.engine.settings import RunSummary
from beaver.control.slbs.requests import now_us
from beaver.control.store import SnapshotStore

COMMIT_DELAY_US = 5_000    # group commit: a finished snapshot waits at most this long
SAVED = "saved"            # the loop's event: the writer committed a group

Group = tuple[list[SnapshotRecord], list[BatchRecord]]


class Ledger:
    def __init__(self, store: SnapshotStore, summary: RunSummary,
                 on_finished: Callable[[SnapshotRecord], None] | None,
                 wake: Callable[[tuple], None]):
        self.store = store
        self.summary = summary
        self.on_finished = on_finished
        self._wake = wake                      # puts an event on the engine's loop
        self._records: list[SnapshotRecord] = []
        self._batches: list[BatchRecord] = []
        self.commit_due: int | None = None   # when the oldest unsaved one must be saved
        self._store_lock = threading.Lock()
        self._work: queue.SimpleQueue[Group | None] = queue.SimpleQueue()
        self._saved: queue.SimpleQueue[tuple[Group, int] | BaseException] = queue.SimpleQueue()
        self._unreported = 0                   # groups handed to the writer, not yet reported
        self._writer: threading.Thread | None = None

    def add(self, record: SnapshotRecord):
        self._due()
        self._records.append(record)
        self.summary.outcomes[record.verdict.outcome] += 1

    def add_batch(self, batch: BatchRecord):
        self._due()
        self._batches.append(batch)
        for record in batch.singles.values():
            self.summary.outcomes[record.verdict.outcome] += 1
        self.summary.outcomes[batch.verdict.outcome] += batch.count - len(batch.singles)

    def _due(self):
        if self.commit_due is None:
            self.commit_due = now_us() + COMMIT_DELAY_US

    def reserve(self, through: int):
        """The store's reservation of numbers, never inside a commit."""
        with self._store_lock:
            self.store.reserve(through)

    def settle(self, force: bool = False):
        """Hands what finished to the writer, if it is time (or forced);
        forced, waits until everything is committed and reported."""
        if self.commit_due is not None and (force or now_us() >= self.commit_due):
            group = (self._records, self._batches)
            self._records, self._batches = [], []
            self.commit_due = None
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="ledger",
                                                daemon=True)
                self._writer.start()
            self._unreported += 1
            self._work.put(group)
        if force:
            while self._unreported:
                self._report(self._saved.get())

    def on_saved(self):
        """The loop's SAVED event: reports every group committed so far."""
        while self._unreported:
            try:
                self._report(self._saved.get_nowait())
            except queue.Empty:
                return

    def close(self):
        """Commits what is left, reports it, and ends the writer."""
        try:
            self.settle(force=True)
        finally:
            if self._writer is not None:
                self._work.put(None)
                self._writer.join()
                self._writer = None

    def _report(self, saved: tuple[Group, int] | BaseException):
        self._unreported -= 1
        if isinstance(saved, BaseException):
            raise saved
        (records, batches), saved_us = saved
        self.summary.saved.append((saved_us, len(records) + sum(b.count for b in batches)))
        latencies = self.summary.latencies
        latencies.extend((saved_us - r.started_us, 1) for r in records)
        for b in batches:
            latencies.extend((saved_us - r.started_us, 1) for r in b.singles.values())
            latencies.append((saved_us - b.started_us, b.count - len(b.singles)))
        if self.on_finished is not None:
            for record in records:
                self.on_finished(record)
            for batch in batches:
                for number in batch.numbers:
                    self.on_finished(batch.record(number))

    def _write(self):
        """The writer's thread: commits each group handed to it, or all those
        waiting at once, as one transaction."""
        while (group := self._work.get()) is not None:
            groups = [group]
            stop = False
            while not stop:
                try:
                    more = self._work.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                else:
                    groups.append(more)
            records = [r for g in groups for r in g[0]]
            batches = [b for g in groups for b in g[1]]
            try:
                with self._store_lock:
                    self.store.save(records, batches)
                saved_us = now_us()
                for g in groups:
                    self._saved.put((g, saved_us))
            except BaseException as e:   # the engine raises it on its own thread
                for _ in groups:
                    self._saved.put(e)
            self._wake((SAVED,))
            if stop:
                return
