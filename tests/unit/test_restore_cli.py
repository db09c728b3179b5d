"""`beaver snapshot latest` and the checks of `beaver snapshot restore` that
come before anything is stopped, on a store with every kind of snapshot."""
import pytest

from beaver.traffic.oob.protocol import Report
from beaver.control.engine.record import Outcome
from beaver.control.store import SnapshotStore

from tests.unit.test_cli import SERVICE, one_error_line, run
from tests.unit.test_store import record

PROCESSES = """
[[processes]]
name = "b1"
address = "127.0.0.1:4791"
peers = ["b2"]

[[processes]]
name = "b2"
address = "127.0.0.1:4792"
peers = ["b1"]
"""


def state(process: str, number: int) -> Report:
    return Report(process, number, True, "mark", 1, {"service": "bank"})


@pytest.fixture
def config(tmp_path, monkeypatch):
    """Snapshots 1 (accepted, both states), 2 (accepted, b1's only), 3
    (rejected, both), 4 (accepted, no state: as a batch judged by its
    schedules), 5 (incomplete)."""
    monkeypatch.delenv("BEAVER_CONFIG", raising=False)
    path = tmp_path / "service.toml"
    path.write_text(SERVICE + PROCESSES)
    both = lambda n: {p: state(p, n) for p in ("b1", "b2")}   # noqa: E731
    store = SnapshotStore(tmp_path / "snapshots.db")
    store.save([record(1, reports=both(1)), record(2, reports={"b1": state("b1", 2)}),
                record(3, Outcome.REJECTED, both(3)), record(4),
                record(5, Outcome.INCOMPLETE, {"b1": state("b1", 5)})])
    store.close()
    return path


def test_latest_names_the_newest_and_the_newest_safe_to_roll_back_to(capsys, config):
    assert run(capsys, "snapshot", "latest", "-c", config) == (0, "5\n", "")
    assert run(capsys, "snapshot", "latest", "--accepted", "-c", config) == (0, "1\n", "")


def test_latest_accepted_without_one_is_one_line(capsys, config, tmp_path):
    store = SnapshotStore(tmp_path / "other.db")
    store.save([record(1, Outcome.REJECTED)])
    store.close()
    code, _, err = run(capsys, "snapshot", "latest", "--accepted", "-c", config,
                       "--store", tmp_path / "other.db")
    assert code == 1
    assert one_error_line(err) == (f"no accepted snapshot with every in-group state in "
                                   f"{tmp_path / 'other.db'}")


@pytest.mark.parametrize("number, refusal", [
    (2, "snapshot 2 has no state of b2; --force restores the others all the same"),
    (3, "snapshot 3 was rejected (because); --force restores it all the same"),
    (4, "snapshot 4 holds no in-group state: judged by its batch's schedules, or taken "
        "without reports"),
    (5, "snapshot 5 was incomplete (because); --force restores it all the same"),
    (9, "no snapshot 9 in {store}: never taken, or not judged yet"),
])
def test_restore_refuses_in_one_line_before_stopping_anything(capsys, config, number, refusal):
    code, out, err = run(capsys, "snapshot", "restore", number, "-c", config)
    assert (code, out) == (1, "")
    store = config.parent / "snapshots.db"
    assert one_error_line(err) == "snapshot restore: " + refusal.format(store=store)


def test_restore_of_a_safe_snapshot_needs_the_running_topology(capsys, config, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    code, _, err = run(capsys, "snapshot", "restore", "1", "-c", config)
    assert code == 1
    assert one_error_line(err) == (f"snapshot restore: no process table at "
                                   f"{config.parent / 'processes.json'}: is a topology running "
                                   "there (beaver experiment run ... --hold)?")
