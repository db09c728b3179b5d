"""The use-case experiments end to end in Mininet with BMv2 (root), each on a
small run of Beaver alone (the baselines' errors are what the full runs
show, not something a short run can promise) asserting its goal."""
from __future__ import annotations

from beaver.control.cli.main import main
from beaver.topologies.cleanup import leftover_links, leftover_processes

from tests.mininet.test_experiments import summary



def run(tmp_path, name: str, *options: str) -> dict[str, list[dict]]:
    assert main(["experiment", "run", name, "--out", str(tmp_path), "--methods", "beaver",
                 *options]) == 0
    assert (next(tmp_path.glob(f"{name}-*")) / f"{name}.png").stat().st_size > 0
    assert not leftover_links() and not leftover_processes()
    rows = {}
    for row in summary(tmp_path, name):
        rows.setdefault(row["method"], []).append(row)
    return rows


def checked(row: dict) -> dict:
    """The checker's counts first, so that a failure says why."""
    keys = ("false_accepts", "inconsistent", "unjudged", "channel_errors", "short_logs",
            "chains_under_tau", "shortest_chain_us")
    return {**{k: row.get(k) for k in keys}, **row}


def test_invariants_beaver_raises_no_false_alarm_and_catches_the_injected_bugs(tmp_path,
                                                                               capsys):
    rows = run(tmp_path, "invariants", "--count", "10", "--lose-every", "5",
               "--drop-every", "5")
    for row in rows["beaver"]:
        assert row["accepted"] >= 1 and row["false_accepts"] == 0, checked(row)
        assert row["false_alarms"] == 0 and row["missed"] == 0, row
    correct, faulty = rows["beaver"]
    assert correct["caught"] == 0 and faulty["caught"] >= 1, faulty


def test_inflight_beaver_channel_state_matches_the_logs_on_every_channel(tmp_path, capsys):
    (beaver,) = run(tmp_path, "inflight", "--count", "10")["beaver"]
    assert beaver["snapshots"] >= 1 and beaver["false_accepts"] == 0, checked(beaver)
    assert beaver["exact_snapshots"] == beaver["snapshots"], beaver
    assert beaver["mismatched"] == 0 and beaver["via_outgroup"] == 0, beaver


def test_deadlock_beaver_reports_no_phantom_and_misses_none(tmp_path, capsys):
    (beaver,) = run(tmp_path, "deadlock", "--count", "15")["beaver"]
    assert beaver["snapshots"] >= 1 and beaver["false_accepts"] == 0, checked(beaver)
    assert beaver["phantom"] == 0 and beaver["missed"] == 0, beaver
    assert beaver["deadlocks_existed"] >= 1, beaver


def test_gc_beaver_deletes_no_live_object_and_reclaims_garbage(tmp_path, capsys):
    (beaver,) = run(tmp_path, "gc", "--count", "10")["beaver"]
    assert beaver["snapshots"] >= 1 and beaver["false_accepts"] == 0, checked(beaver)
    assert beaver["live_deleted"] == 0, beaver
    assert beaver["reclaimed"] == beaver["garbage"] > 0, beaver
