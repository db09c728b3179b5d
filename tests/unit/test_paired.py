"""Paired rounds (topologies/experiments/common/paired.py) on hand-built rows: the
order phases run in, ratios taken within a round, and the verdicts."""
from beaver.topologies.experiments.common import paired
from beaver.topologies.experiments.common.paired import Goal, Spread


def row(round_no, kind, throughput, p99=100.0, slb=10.0, controller=1.0, **costs):
    return {"round": round_no, "kind": kind, "throughput": throughput, "p99_us": p99,
            "cost_slb": slb, "cost_controller": controller,
            **{f"cost_{party}": cost for party, cost in costs.items()}}


def test_every_other_round_runs_the_phases_in_reverse():
    assert paired.rounds(("a", "b", "c"), 3) == [
        (1, "a"), (1, "b"), (1, "c"), (2, "c"), (2, "b"), (2, "a"), (3, "a"), (3, "b"), (3, "c")]


def test_a_ratio_is_taken_within_each_round_not_across_rounds():
    # The machine slows by half in round 2; marking costs 2 % in every round.
    rows = [row(1, "without", 1000), row(1, "marking", 980),
            row(2, "without", 500), row(2, "marking", 490),
            row(3, "without", 1000), row(3, "marking", 980)]
    spread = paired.ratio(rows, "throughput", "marking")
    assert spread == Spread(0.98, 0.98, 0.98, 0.98, 0.98, 3)
    # One round disturbed by someone else's work moves the median and the
    # quartiles little, the range much.
    assert paired.spread([0.97, 0.98, 0.98, 0.99, 1.6]) == Spread(0.98, 0.98, 0.99, 0.97, 1.6, 5)
    # A round without its baseline is left out.
    assert paired.ratio(rows + [row(4, "marking", 10)], "throughput", "marking").rounds == 3


def test_a_verdict_says_by_how_much_and_which_cost_rose_most():
    rises = {"slb": 12.0, "controller": 40.0, "ingroup": 3.0}
    assert paired.verdict(Spread(0.99, 0.985, 0.995, 0.9, 1.0, 5), None, Goal(0.98), rises,
                          500) == "met", "a round far off is no matter"
    assert paired.verdict(Spread(0.99, 0.97, 0.995, 0.9, 1.0, 5), None, Goal(0.98), rises, 500) \
        == "met; its middle half spans the goal"
    missed = paired.verdict(Spread(0.93, 0.9, 0.94, 0.9, 0.95, 5),
                            Spread(1.3, 1.2, 1.4, 1.2, 1.4, 5),
                            Goal(0.95, p99=1.2), rises, 500)
    assert missed.startswith("missed: throughput 0.020 under 0.95, p99 0.10x over 1.2x")
    assert missed.endswith("largest CPU rise on the traffic's cores: controller +40.0 us; all +55.0 us, "
                           "on busy cores a ratio of 0.901")


def test_judge_gives_each_phase_its_ratios_costs_and_verdict():
    rows = []
    for n in (1, 2, 3, 4, 5):
        rows += [row(n, "without", 1000, p99=100, slb=10, controller=1),
                 row(n, "marking", 990, p99=101, slb=11, controller=1),
                 row(n, "snapshots", 900, p99=130, slb=11, controller=20 + n)]
    summary = {r["phase"]: r for r in paired.judge(
        rows, "throughput", "p99_us", {"marking": Goal(0.98), "snapshots": Goal(0.95, 1.2)},
        per="request")}
    assert summary["marking"]["throughput"] == "0.990 (IQR 0.990-0.990, all 0.990-0.990)"
    assert summary["marking"]["verdict"] == "met"
    assert summary["marking"]["slb"] == "11.0 vs 10.0"
    assert summary["marking"]["CPU us per"] == "request"
    snapshots = summary["snapshots"]
    assert snapshots["rounds"] == 5 and snapshots["p99_us"] == "1.300 (IQR 1.300-1.300, all 1.300-1.300)"
    assert snapshots["controller"] == "23.0 vs 1.0"
    assert snapshots["verdict"].endswith("controller +22.0 us; all +23.0 us, on busy cores a "
                                         "ratio of 0.324"), snapshots["verdict"]


def test_a_party_on_a_core_of_its_own_is_shown_but_takes_no_part_in_the_verdict():
    rows = []
    for n in (1, 2, 3):
        rows += [row(n, "without", 1000, p99=100, slb=10, ingroup=10, controller=1),
                 row(n, "snapshots-50", 900, p99=130, slb=12, ingroup=13, controller=30)]
    goals = {"snapshots-50": Goal(0.98, 1.1)}
    pinned = paired.judge(rows, "throughput", "p99_us", goals, "request", apart=("controller",))
    shared = paired.judge(rows, "throughput", "p99_us", goals, "request")
    assert pinned[0]["controller"] == shared[0]["controller"] == "30.0 vs 1.0"
    assert pinned[0]["verdict"].endswith("on the traffic's cores: ingroup +3.0 us; all +5.0 us, "
                                         "on busy cores a ratio of 0.800"), pinned[0]["verdict"]
    assert "controller +29.0 us; all +34.0 us" in shared[0]["verdict"]


def test_a_phase_says_how_much_the_hypervisor_took_in_its_rounds_and_the_baseline_s():
    rows = []
    for n, (base, phase) in enumerate(((0.1, 0.2), (0.3, 6.5), (0.0, 0.4)), 1):
        rows += [{**row(n, "without", 1000), paired.STEAL: base},
                 {**row(n, "marking", 990), paired.STEAL: phase},
                 {**row(n, "snapshots", 900), paired.STEAL: 0.0}]
    summary = {r["phase"]: r for r in paired.judge(
        rows, "throughput", None, {"marking": Goal(0.98), "snapshots": Goal(0.95)},
        per="request")}
    assert summary["marking"]["steal %"] == "median 0.25, max 6.50"
    assert summary["snapshots"]["steal %"] == "median 0.00, max 0.30"
    # rows from before the column was kept: no claim either way
    assert "steal %" not in paired.judge([row(1, "without", 1000), row(1, "marking", 990)],
                                         "throughput", None, {"marking": Goal(0.98)},
                                         per="request")[0]
