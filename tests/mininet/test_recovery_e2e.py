"""The recovery experiment end to end in Mininet with BMv2 (root): a few
crashes of Beaver's bank, each rolled back to the newest accepted snapshot;
every restore must conserve the total and leave no orphaned audit (the
baselines' counts are what the full run shows)."""
from __future__ import annotations

import csv


from beaver.control.cli.main import main
from beaver.topologies.cleanup import leftover_links, leftover_processes

from tests.mininet.test_experiments import summary


ROUNDS = 3


def test_beaver_restores_conserve_the_total_and_orphan_no_audit(tmp_path, capsys):
    assert main(["experiment", "run", "recovery", "--out", str(tmp_path), "--methods", "beaver",
                 "--rounds", str(ROUNDS), "--round-s", "1,2", "--client-rate", "100"]) == 0
    folder = next(tmp_path.glob("recovery-*"))
    assert (folder / "recovery.png").stat().st_size > 0
    assert not leftover_links() and not leftover_processes()
    (beaver,) = summary(tmp_path, "recovery")
    assert beaver["restores"] == ROUNDS, beaver
    assert beaver["broken_totals"] == beaver["changed_totals"] == 0, beaver
    assert beaver["orphaned_audits"] == 0, beaver
    assert beaver["not_as_recorded"] == 0, beaver
    with open(folder / "recovery.csv") as f:
        restores = list(csv.DictReader(f))
    assert [int(r["round"]) for r in restores] == list(range(1, ROUNDS + 1))
    for restore in restores:
        assert restore["total"] == restore["snapshot_total"] == "100000", restore
        assert restore["killed"], "each round crashed at least one shard"
        assert float(restore["recover_s"]) > 0, restore
    numbers = [int(r["snapshot"]) for r in restores]   # never behind an earlier rollback
    assert numbers == sorted(numbers), numbers
