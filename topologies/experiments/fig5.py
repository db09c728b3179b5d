"""The seed's Figure 5: an external workflow relays between two services
through two SLBs, and one SLB learns of the snapshot late.

Relays ask the key-value store (VIP behind bvs1) and, on each reply, the
bank (VIP behind bvs2).  Each phase is a fresh network:

  beaver-fine     OGM, fine rule; bvs2 initiated `delay` late: must reject
  beaver-coarse   OGM, coarse rule; same delay: must reject
  lai-yang        no slbs; the bank's processes initiated `delay` late:
                  accepts, and the checker finds the cuts inconsistent
  beaver-on-time  OGM, fine rule, no delay: accepts only consistent cuts

The three beaver phases run with immediate initiation (each SLB switches
when its INIT arrives, as the paper's) and again with timed initiation
(-timed: every SLB told one moment ahead; a lead shorter than the delay, a
tenth of it, so the late INIT reaches bvs2 after that moment and bvs2
switches late all the same; with a lead longer than the delay bvs2 would
not be late at all, so these two phases take their snapshots back to back
rather than at --rate, whose spacing could lengthen the lead).

tau is this network's tau_min (measured first) unless --tau-us is given.

The checker judges every cut from the logs, whatever the verdict.
"""
from __future__ import annotations

from collections import Counter

from beaver.control.engine.engine import IMMEDIATE, TIMED, RunSettings
from beaver.control.engine.record import Mode

from beaver.topologies.processes import Workload
from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments import fig12
from beaver.topologies.experiments.common.outcomes import judged
from beaver.topologies.experiments.common.phase import snapshot_phase
from beaver.topologies.experiments.common.results import Results


def add_arguments(p):
    p.add_argument("--delay-ms", type=float, default=30.0,
                   help="how late the bank's SLB (or, for Lai-Yang, its processes) "
                        "learns of each snapshot (default 30)")
    p.add_argument("--tau-us", type=int, default=None,
                   help="tau (default: half of tau_min of this network, measured first as in fig12)")
    p.add_argument("--count", type=int, default=20, help="snapshots per phase (default 20)")
    p.add_argument("--rate", type=float, default=5.0, help="snapshots per second (default 5)")


SPEC = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000), Service("bank", "bank", 2, 7100)),
            outgroup=("relay", "relay", "client-kv", "client-bank"), assignment="per-vip")
BANK_SLB = "bvs2"                 # per-VIP assignment: the second VIP, the second SLB
BANK_PROCESSES = ("bvi3", "bvi4")


def run(args, results: Results) -> list[dict]:
    tau = fig12.tau_or_measured(results, args.tau_us)
    delay = int(args.delay_ms * 1000)
    common = dict(tau_us=tau, count=args.count, rate=args.rate)
    phases = []
    for initiation in (IMMEDIATE, TIMED):
        suffix = "" if initiation == IMMEDIATE else "-timed"
        ogm = dict(initiation=initiation, **common)
        late = dict(ogm, delays_us={BANK_SLB: delay},
                    lead_us=max(1, delay // 10) if initiation == TIMED else None)
        if initiation == TIMED:
            # Back to back: at a rate, a run that fell behind schedules its
            # next IDs a spacing apart, later than the lead, and bvs2's late
            # INIT would then arrive in time.
            late["rate"] = None
        phases += [
            (f"beaver-fine{suffix}", Workload(), RunSettings(Mode.OGM, "fine", **late)),
            (f"beaver-coarse{suffix}", Workload(), RunSettings(Mode.OGM, "coarse", **late)),
            (f"beaver-on-time{suffix}", Workload(), RunSettings(Mode.OGM, "fine", **ogm)),
        ]
    phases.insert(2, ("lai-yang", Workload(runtime_mode="lai-yang"),
                      RunSettings(Mode.LAI_YANG, delays_us=dict.fromkeys(BANK_PROCESSES, delay),
                                  **common)))
    summary, rows = [], []
    for label, workload, settings in phases:
        phase = snapshot_phase(results, label, SPEC, settings, workload, delay_ms=args.delay_ms)
        summary.append({"phase": label, "tau_us": tau, **phase.tally})
        rows += phase.rows
    results.write_csv(rows)
    plot(results, rows)
    return summary


JUDGED_COLORS = {"consistent": "tab:green", "inconsistent": "tab:red", "unjudged": "tab:purple",
                 "channel errors": "tab:orange", "incomplete": "tab:gray",
                 "unchecked": "tab:brown"}
OUTCOME_HATCHES = {"accepted": "", "rejected": "//", "incomplete": ".."}


def plot(results: Results, rows: list[dict]):
    """Bars per phase: the controller's outcome (hatch) by the checker's word (colour)."""
    counts = Counter((r["phase"], r["outcome"], judged(r)) for r in rows)
    phases = list(dict.fromkeys(r["phase"] for r in rows))
    fig, ax = results.figure()
    bottom = [0] * len(phases)
    for outcome, hatch in OUTCOME_HATCHES.items():
        for word, color in JUDGED_COLORS.items():
            heights = [counts[(p, outcome, word)] for p in phases]
            if any(heights):
                ax.bar(phases, heights, bottom=bottom, color=color, hatch=hatch,
                       edgecolor="black", linewidth=0.3, label=f"{outcome}, {word}")
                bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xticks(range(len(phases)), [
        f"{p}\nunjudged {sum(counts[(p, o, 'unjudged')] for o in OUTCOME_HATCHES)}, "
        f"ch. err. {sum(counts[(p, o, 'channel errors')] for o in OUTCOME_HATCHES)}"
        for p in phases], fontsize=7)
    ax.set_ylabel("snapshots")
    ax.set_title("Figure 5 case: controller verdict, checker's truth")
    ax.legend(fontsize=7)
    results.save_figure(fig)
