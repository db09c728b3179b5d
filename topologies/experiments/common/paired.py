"""Ratios that noise can't decide (Fig. 14 over UDP and TCP).

On two shared cores one phase alone swings by 15 % from minute to minute, so
a ratio of two medians taken minutes apart says little.  Here the phases run
in paired short rounds, their order reversed every other round, and each
round's phase is divided by its own round's baseline: the figure is the
median of those ratios, with their quartiles and range.  Beside it, what each party cost
per request (CPU microseconds: the SLBs, the in-group processes, the
controller, the kernel decapsulation), which a user on another machine can
compare and which says where a ratio under 1 comes from.

    for round_no, kind in rounds(PHASES, 5): ...      # rows with "round", "kind"
    summary = judge(rows, "throughput", "p99_us", GOALS, per="request")
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

BASELINE = "without"
COST = "cost_"          # a row's f"cost_{party}": CPU us per request of that party
STEAL = "steal_pct"     # a row's share of the CPUs' time the hypervisor took (cpu.py)


@dataclass(frozen=True)
class Spread:
    """The rounds' median, quartiles (the middle half: a round disturbed by
    someone else's work moves these little) and range."""
    median: float
    q1: float
    q3: float
    low: float
    high: float
    rounds: int

    def __str__(self) -> str:
        return (f"{self.median:.3f} (IQR {self.q1:.3f}-{self.q3:.3f}, "
                f"all {self.low:.3f}-{self.high:.3f})")


@dataclass(frozen=True)
class Goal:
    throughput: float               # the ratio at least
    p99: float | None = None        # the p99 ratio at most (None: no goal)


def rounds(phases: Sequence[str], count: int) -> list[tuple[int, str]]:
    """(round, phase) in running order: odd rounds forward, even ones
    reversed, so no phase always runs right after the same one and each
    round's baseline is never far from its other phases."""
    return [(n, kind) for n in range(1, count + 1)
            for kind in (phases if n % 2 else tuple(reversed(phases)))]


def spread(values: Sequence[float]) -> Spread:
    q1, _, q3 = (statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1
                 else [values[0]] * 3)
    return Spread(statistics.median(values), q1, q3, min(values), max(values), len(values))


def paired(rows: Sequence[Mapping], metric: str, kind: str) -> list[tuple[float, float]]:
    """(kind's metric, the baseline's) of every round that has both."""
    by = {(r["round"], r["kind"]): r[metric] for r in rows}
    return [(by[n, kind], by[n, BASELINE]) for n in sorted({r["round"] for r in rows})
            if (n, kind) in by and (n, BASELINE) in by]


def ratio(rows: Sequence[Mapping], metric: str, kind: str) -> Spread:
    return spread([a / b for a, b in paired(rows, metric, kind)])


def verdict(throughput: Spread, p99: Spread | None, goal: Goal,
            rises: Mapping[str, float], baseline_cpu: float) -> str:
    """"met", or by how much the goal is missed, which party's cost per
    request rose most over the baseline (the one that accounts for it), and
    the ratio all the rises give where the cores are what limits throughput
    (rises and baseline_cpu: of the parties on the traffic's cores, every
    party's per request in the baseline)."""
    misses = []
    if throughput.median < goal.throughput:
        misses.append(f"throughput {goal.throughput - throughput.median:.3f} under "
                      f"{goal.throughput}")
    if goal.p99 is not None and p99 is not None and p99.median > goal.p99:
        misses.append(f"p99 {p99.median - goal.p99:.2f}x over {goal.p99}x")
    undecided = throughput.q1 < goal.throughput <= throughput.q3
    note = "; its middle half spans the goal" if undecided else ""
    if not misses:
        return "met" + note
    party = max(rises, key=rises.get)
    rise = sum(rises.values())
    return (f"missed: {', '.join(misses)}{note}; largest CPU rise on the traffic's cores: "
            f"{party} {rises[party]:+.1f} us; all {rise:+.1f} us, on busy cores a ratio of "
            f"{baseline_cpu / (baseline_cpu + rise):.3f}")


def judge(rows: Sequence[Mapping], throughput: str, p99: str | None,
          goals: Mapping[str, Goal], per: str, apart: Sequence[str] = (),
          instructions: Callable[[str, float], str] | None = None) -> list[dict]:
    """One summary row per phase with a goal: its ratios over the baseline
    (median and range of the rounds) of `throughput` and of the latency
    `p99`, each party's CPU per `per` in that phase and in the baseline
    (medians), the hypervisor's steal share in its rounds and the
    baseline's, and the verdict, from the median rises of the parties that
    share the traffic's cores (all but those `apart`: off the traffic's core).
    instructions(phase, its median throughput) says whose instructions per
    `per` account for a miss (common/instructions.py)."""
    parties = sorted({k[len(COST):] for r in rows for k in r if k.startswith(COST)})
    summary = []
    for kind, goal in goals.items():
        if not paired(rows, throughput, kind):
            continue
        tp = ratio(rows, throughput, kind)
        lat = ratio(rows, p99, kind) if p99 is not None else None
        row = {"phase": kind, "rounds": tp.rounds, "throughput": str(tp)}
        if lat is not None:
            row[p99] = str(lat)
        row["CPU us per"] = per
        rises, baseline_cpu = {}, 0.0
        for party in parties:
            pairs = paired(rows, COST + party, kind)
            mine, base = (statistics.median(side) for side in zip(*pairs))
            row[party] = f"{mine:.1f} vs {base:.1f}"
            if party not in apart:
                rises[party] = statistics.median(a - b for a, b in pairs)
                baseline_cpu += base
        stolen = [r[STEAL] for r in rows if STEAL in r and r["kind"] in (kind, BASELINE)]
        if stolen:   # a round the hypervisor disturbed shows here
            row["steal %"] = f"median {statistics.median(stolen):.2f}, max {max(stolen):.2f}"
        row["goal"] = f">= {goal.throughput}" + (f", p99 <= {goal.p99}x"
                                                 if goal.p99 is not None and lat else "")
        text = verdict(tp, lat, goal, rises, baseline_cpu)
        if instructions is not None and text.startswith("missed"):
            # Instructions are work alone, where CPU time holds contention too.
            served = statistics.median(r[throughput] for r in rows if r["kind"] == kind)
            text += f"; {instructions(kind, served)}"
        row["verdict"] = text
        summary.append(row)
    return summary


def draw(ratios_ax, costs_ax, rows: Sequence[Mapping], metrics: Sequence[str],
         goals: Mapping[str, Goal], per: str, title: str):
    """Left: each phase's ratios over the baseline, medians with the rounds'
    quartiles; right: each phase's CPU per `per`, by party (medians)."""
    width = 0.8 / len(goals)
    for i, kind in enumerate(goals):
        spreads = [ratio(rows, metric, kind) for metric in metrics]
        xs = [m + (i - (len(goals) - 1) / 2) * width for m in range(len(metrics))]
        ratios_ax.bar(xs, [s.median for s in spreads], width, label=f"{kind} / {BASELINE}",
                      yerr=[[s.median - s.q1 for s in spreads],
                            [s.q3 - s.median for s in spreads]], capsize=3)
        for x, s in zip(xs, spreads):
            ratios_ax.text(x, s.q3 + 0.02, f"{s.median:.2f}", ha="center", fontsize=7)
    ratios_ax.set_xticks(range(len(metrics)), metrics, fontsize=8)
    ratios_ax.axhline(1.0, color="black", linewidth=0.8)
    ratios_ax.set_ylabel(f"/ {BASELINE}, paired rounds (median, quartiles)")
    ratios_ax.set_title(title, fontsize=9)
    ratios_ax.legend(fontsize=7)

    kinds = (BASELINE, *goals)
    parties = sorted({k[len(COST):] for r in rows for k in r if k.startswith(COST)})
    bottoms = [0.0] * len(kinds)
    for party in parties:
        heights = [statistics.median(r[COST + party] for r in rows if r["kind"] == kind)
                   for kind in kinds]
        costs_ax.bar(kinds, heights, bottom=bottoms, label=party)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    costs_ax.tick_params(axis="x", labelsize=8)   # four phase names side by side
    costs_ax.set_ylabel(f"CPU us per {per} (median of rounds)")
    costs_ax.set_title(f"{title}: who spends the CPU", fontsize=9)
    costs_ax.legend(fontsize=7)
