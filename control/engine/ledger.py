"""Finished snapshots and batches: committed to the store together (one
fsync for many), then reported, so that nobody hears of a snapshot the
store could still lose."""
from __future__ import annotations

from typing import Callable

from beaver.control.engine.record import BatchRecord, SnapshotRecord
from beaver.control.engine.settings import RunSummary
from beaver.control.slbs.requests import now_us
from beaver.control.store import SnapshotStore

COMMIT_DELAY_US = 5_000    # group commit: a finished snapshot waits at most this long


class Ledger:
    def __init__(self, store: SnapshotStore, summary: RunSummary,
                 on_finished: Callable[[SnapshotRecord], None] | None):
        self.store = store
        self.summary = summary
        self.on_finished = on_finished
        self._records: list[SnapshotRecord] = []
        self._batches: list[BatchRecord] = []
        self.commit_due: int | None = None   # when the oldest unsaved one must be saved

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

    def settle(self, force: bool = False):
        """Commits what finished, if it is time (or forced), then reports it."""
        if self.commit_due is None or not (force or now_us() >= self.commit_due):
            return
        records, self._records = self._records, []
        batches, self._batches = self._batches, []
        self.commit_due = None
        self.store.save(records, batches)
        saved = now_us()
        latencies = self.summary.latencies
        latencies.extend((saved - r.started_us, 1) for r in records)
        for b in batches:
            latencies.extend((saved - r.started_us, 1) for r in b.singles.values())
            latencies.append((saved - b.started_us, b.count - len(b.singles)))
        if self.on_finished is not None:
            for record in records:
                self.on_finished(record)
            for batch in batches:
                for number in batch.numbers:
                    self.on_finished(batch.record(number))
