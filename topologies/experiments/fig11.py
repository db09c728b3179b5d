"""Figure 11: effective snapshot rate (accepted / taken) against snapshot
frequency and |G|, under traffic.

Each |G| is one network: clients and relays reach the VIPs through every
SLB (kernel ECMP), and the controller takes a series of OGM snapshots at
each frequency, judged by the fine rule with tau = tau_min of this network
(measured first, as in fig12).  From the same acknowledgements every
snapshot is judged again by both rules at each tau of --taus (larger ones
stand for out-groups farther away than this emulation's), and by the
checker from the logs: a false accept is an accepted snapshot the checker
did not prove consistent (inconsistent or unjudged; reports are not
collected here, so there is no channel state to err).  Each |G|'s run also
states its external causal chains against each tau.
"""
from __future__ import annotations

from beaver.control import rules
from beaver.control.engine import RunSettings
from beaver.control.record import Mode, Outcome

from ..experiment import Run
from ..processes import Workload
from ..spec import Service, Spec
from . import fig12
from .outcomes import UNCHECKED, proven_consistent, snapshot_rows
from .results import Results

DESCRIPTION = "Fig. 11: effective snapshot rate vs frequency and |G| (fine and coarse rules)"


def add_arguments(p):
    p.add_argument("--slbs", default="2,4,8", help="|G| values (default 2,4,8)")
    p.add_argument("--rates", default="25,50,100,200,400",
                   help="snapshot frequencies per second (default 25,50,100,200,400)")
    p.add_argument("--seconds", type=float, default=4.0, help="per frequency (default 4)")
    p.add_argument("--inflight", type=int, default=16, help="k (default 16)")
    p.add_argument("--taus", default="min,1000,10000",
                   help="tau values in us to judge by; 'min' is tau_min measured on this "
                        "network, and the first one is the run's own (default min,1000,10000)")


def spec(slbs: int) -> Spec:
    return Spec(slbs=slbs, services=(Service("kv", "kv", 2, 7000),
                                     Service("bank", "bank", 2, 7100)),
                outgroup=("client-kv", "client-kv", "client-bank", "client-bank",
                          "relay", "relay"), assignment="ecmp")


def run(args, results: Results) -> list[dict]:
    taus = args.taus.split(",")
    if "min" in taus:
        tau_min = fig12.tau_or_measured(results, None)
        taus = [tau_min if t == "min" else t for t in taus]
    taus = [int(t) for t in taus]
    summary, rows = [], []
    for slbs in [int(g) for g in args.slbs.split(",")]:
        label = f"g{slbs}"
        results.progress(f"{label}: {slbs} SLBs under traffic")
        with Run(spec(slbs), results.run_dir(label), Workload(), reports=False) as run:
            run.start_traffic(warmup=1.0)
            series = {}
            for rate in [float(f) for f in args.rates.split(",")]:
                first = len(run.records)
                run.snapshots(RunSettings(Mode.OGM, rules.FINE, taus[0],
                                          count=int(rate * args.seconds),
                                          inflight=args.inflight, rate=rate))
                series[rate] = run.records[first:]
            run.stop_traffic()
        truth = run.check()
        for rate, records in series.items():
            judged_rows = snapshot_rows(records, truth.verdicts, slbs=slbs, rate=rate)
            rows += judged_rows
            for tau in taus:
                summary.append({"slbs": slbs, "rate": rate, "tau_us": tau,
                                **rejudge(records, judged_rows, tau), **truth.logs(tau)})
            results.progress(f"{label} at {rate:g}/s: " + ", ".join(
                f"tau {r['tau_us']}: fine {r['fine_effective']:.3f} coarse "
                f"{r['coarse_effective']:.3f}" for r in summary[-len(taus):]))
    results.write_csv(rows, "fig11-snapshots")
    results.write_csv(summary)
    plot(results, summary)
    return summary


def rejudge(records, rows, tau: int) -> dict:
    """Effective rates of both rules at tau, their false accepts (accepted, not
    proven consistent), and the checker's counts; rows: snapshot_rows(records)."""
    fine = coarse = fine_false = coarse_false = 0
    for r, row in zip(records, rows):
        if r.finished_us is None:
            continue
        fine_ok = rules.fine(list(r.acks.values()), r.started_us, tau).outcome \
            is Outcome.ACCEPTED
        coarse_ok = rules.coarse(r.started_us, r.finished_us, tau).outcome is Outcome.ACCEPTED
        fine += fine_ok
        coarse += coarse_ok
        fine_false += fine_ok and not proven_consistent(row)
        coarse_false += coarse_ok and not proven_consistent(row)
    taken = len(records)
    return {"taken": taken, "fine_effective": fine / taken, "coarse_effective": coarse / taken,
            "fine_false_accepts": fine_false, "coarse_false_accepts": coarse_false,
            **{word: sum(row["truth"] == word for row in rows)
               for word in ("inconsistent", "unjudged", UNCHECKED)},
            "channel_errors": sum(row["channel_errors"] > 0 for row in rows)}


def plot(results: Results, summary: list[dict]):
    import matplotlib.pyplot as plt
    taus = list(dict.fromkeys(r["tau_us"] for r in summary))
    fig, axes = plt.subplots(1, len(taus), figsize=(4 * len(taus), 4), sharey=True,
                             squeeze=False)
    for ax, tau in zip(axes[0], taus):
        for slbs in dict.fromkeys(r["slbs"] for r in summary):
            points = [r for r in summary if r["slbs"] == slbs and r["tau_us"] == tau]
            rates = [r["rate"] for r in points]
            line, = ax.plot(rates, [100 * r["fine_effective"] for r in points], marker="o",
                            label=f"|G|={slbs} fine")
            ax.plot(rates, [100 * r["coarse_effective"] for r in points], marker="x",
                    linestyle="--", color=line.get_color(), label=f"|G|={slbs} coarse")
        at_tau = [r for r in summary if r["tau_us"] == tau]
        ax.set_xscale("log", base=2)
        ax.set_xlabel("snapshots per second\n" + ", ".join(
            f"{sum(r[key] for r in at_tau)} {name}" for key, name in (
                ("fine_false_accepts", "fine false accepts"), ("unjudged", "unjudged"),
                ("channel_errors", "channel errors"))), fontsize=8)
        ax.set_title(f"tau = {tau} us")
        ax.set_ylim(0, 105)
    axes[0][0].set_ylabel("effective snapshot rate (%)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Figure 11: accepted / taken")
    results.save_figure(fig)
