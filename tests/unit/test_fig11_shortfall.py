"""fig11's verdict per cell: the 99.9 % goal met, or by how much it is missed
and what took the snapshots not accepted (counted from the records)."""
from types import SimpleNamespace

from beaver.control.engine.record import Outcome, Verdict
from beaver.topologies.experiments import fig11


def record(outcome: Outcome | None):
    return SimpleNamespace(verdict=None if outcome is None else Verdict(outcome, "why"))


def test_lost_counts_each_outcome_but_accepted():
    records = ([record(Outcome.ACCEPTED)] * 5 + [record(Outcome.REJECTED)] * 3
               + [record(Outcome.INCOMPLETE)] * 2 + [record(None)])
    assert fig11.lost(records) == {"lost_rejected": 3, "lost_incomplete": 2}


def test_a_cell_at_the_goal_says_met_and_one_below_says_by_how_much_and_why():
    row = {"fine_effective": 0.999, "lost_rejected": 1, "lost_incomplete": 0,
           "late_inits": 1, "lead_us": "3160-12650", "latency_p99_ms": 28.8}
    assert fig11.shortfall(row) == "goal 99.9% met"
    row.update(fine_effective=0.9978, lost_rejected=27, late_inits=54)
    assert fig11.shortfall(row) == ("goal 99.9% missed by 0.12 points: 27 rejected "
                                    "(54 late INITs), 0 incomplete, lead up to 12.65 ms, "
                                    "latency p99 28.8 ms")
