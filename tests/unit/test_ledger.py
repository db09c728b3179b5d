"""control/engine/ledger.py: commits on the writer's thread; nobody hears of
a snapshot before it is committed, and a failed commit reaches the engine."""
import queue

import pytest

from beaver.control.engine.ledger import SAVED, Ledger
from beaver.control.engine.record import Outcome
from beaver.control.engine.settings import RunSummary
from beaver.control.store import SnapshotStore, StoreError
from tests.unit.test_store import batch, record


def ledger_of(store):
    heard, events = [], queue.SimpleQueue()
    summary = RunSummary()

    def on_finished(r):   # by then the store must hold it
        assert SnapshotStore(store.path, read_only=True).get(r.number) is not None
        heard.append(r.number)
    return Ledger(store, summary, on_finished, events.put), heard, events, summary


def test_snapshots_are_heard_of_only_once_committed_and_in_order(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    ledger, heard, events, summary = ledger_of(store)
    ledger.add(record(1))
    ledger.add_batch(batch(2, 5, singles=[4]))
    ledger.settle(force=False)                  # not yet due: nothing handed over
    assert heard == [] and events.empty()
    ledger.settle(force=True)
    assert heard == [1, 2, 3, 4, 5, 6]
    assert summary.outcomes[Outcome.ACCEPTED] == 5 and summary.outcomes[Outcome.REJECTED] == 1
    assert sum(n for _, n in summary.latencies) == 6
    ledger.add(record(7))
    ledger.settle(force=True)
    assert events.get(timeout=5) == (SAVED,)    # the writer woke the loop each time
    ledger.on_saved()                            # nothing left to report: no second report
    assert heard == [1, 2, 3, 4, 5, 6, 7]
    ledger.close()
    assert [r.number for r in store.records(1, 7)] == [1, 2, 3, 4, 5, 6, 7]


def test_reservations_wait_for_no_commit_and_survive(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    ledger, heard, _, _ = ledger_of(store)
    for n in range(1, 50):
        ledger.add(record(n))
        ledger.settle(force=n % 7 == 0)
        ledger.reserve(100 * n)
    ledger.close()
    assert heard == list(range(1, 50))
    assert SnapshotStore(tmp_path / "s.db").reserved_through == 4900


def test_a_commit_that_fails_is_raised_on_the_engines_thread(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    ledger, heard, _, _ = ledger_of(store)
    ledger.add(record(1))
    ledger.settle(force=True)
    ledger.add(record(1))   # the same number again: the store refuses the commit
    with pytest.raises(StoreError):
        ledger.close()
    assert heard == [1]
