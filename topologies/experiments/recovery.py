"""Checkpoint and roll back: bank shards crash, and the whole in-group is
restored from the newest accepted snapshot (issue 18), with Beaver's
snapshots, Lai-Yang's and polling's (methods.py).

The bank (three shards) serves transfers from out-group clients, and each
transfer notifies the third-party webhook, which writes its audit record
into the key-value store through the other SLB; relays ask the store, then
the bank, as in fig5.  Per method, on one network: snapshots at a steady
rate (--rate); at a random moment (--round-s) one or more random shards are
killed (SIGKILL: a crash); the controller finishes the snapshots in flight;
the whole in-group is rolled back (rollback.py) to the newest snapshot the
store holds accepted with every process's state; the traffic, which never
stopped, carries on.  --rounds times.

Measured on each restore, from the restored processes' own states once they
replayed what was in flight to them (their answers to the resume):

  total      the bank's money: balances, plus the credits the replays sent
             on (a replayed transfer debits one shard and credits another);
             a restore breaks the total when it is not the opening total, and
             changes it when it is not the total the in-group had before it
             (a broken total lives on in every later snapshot)
  orphans    audit records the restored store holds of transfers the
             restored bank never made (its shard's count is lower): the
             out-group's effect outlived the rollback (the seed's Figure 3)
  recover_s  from the kill until every in-group process serves again; of
             it, rollback_s stops, starts and resumes the processes (the
             rest is the controller finishing its snapshots in flight)

The checker is not run: a rolled-back run has no single history to judge
(the restored processes' first events follow another's past), and the
restored states are the ground truth here.  --hold keeps the last method's
network up after its rounds, for `beaver snapshot restore` by hand.
"""
from __future__ import annotations

import argparse
import random
import signal
import statistics
import threading
import time

from beaver.control.engine.engine import Engine, RunSettings, RunSummary
from beaver.control.engine.record import Outcome
from beaver.traffic.analysis import invariants
from beaver.traffic.runtime import restore
from beaver.traffic.services.bank import snapshot_total

from beaver.topologies.experiment import Run
from beaver.topologies.processes import ProcessError, Workload
from beaver.topologies.rollback import RolledBack, roll_back
from beaver.topologies.running import RunningTopology
from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments.common import methods
from beaver.topologies.experiments.common.results import Results

ACCOUNTS, INITIAL = 100, 1000
OPENING_TOTAL = ACCOUNTS * INITIAL
SHARDS = 3
SPEC = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000), Service("bank", "bank", SHARDS, 7100)),
            outgroup=("relay", "relay", "client-bank", "client-bank", "thirdparty"),
            assignment="per-vip")
FOREVER = 10 ** 6   # snapshots a round asks for: it is stopped long before
FIRST_ACCEPTED_S = 30


def add_arguments(p):
    p.add_argument("--rounds", type=int, default=20, help="crashes and restores per method "
                                                          "(default 20)")
    p.add_argument("--rate", type=float, default=5.0, help="snapshots per second (default 5)")
    p.add_argument("--round-s", type=seconds_range, default=(1.5, 4.0), metavar="MIN,MAX",
                   help="seconds of snapshots before each crash, drawn uniformly (default "
                        "1.5,4)")
    p.add_argument("--kill-most", type=int, default=2, choices=range(1, SHARDS + 1),
                   help=f"shards killed at once, at most (1 to {SHARDS}, default 2)")
    p.add_argument("--client-rate", type=float, default=150.0,
                   help="requests per second of each bank client (open loop; default 150)")
    p.add_argument("--relay-interval", type=float, default=0.01,
                   help="seconds between a relay's chains (default 0.01)")
    p.add_argument("--lag-ms", type=float, default=10.0,
                   help="Lai-Yang: initiation lag of the key-value store (default 10)")
    p.add_argument("--tau-us", type=int, default=None,
                   help="Beaver's tau (default: half of tau_min, measured first)")
    p.add_argument("--methods", type=methods.some_of(methods.METHODS),
                   default=list(methods.METHODS),
                   help=f"which of {','.join(methods.METHODS)} to run (default all)")
    p.add_argument("--seed", type=int, default=1, help="the crashes' moments and victims")
    p.add_argument("--hold", action="store_true",
                   help="after the last method's rounds, keep its network up until Ctrl-C")


def seconds_range(text: str) -> tuple[float, float]:
    low, sep, high = text.partition(",")
    try:
        bounds = (float(low), float(high))
    except ValueError:
        bounds = None
    if not sep or bounds is None or not 0 < bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,MAX seconds, 0 < MIN <= MAX")
    return bounds


def workload(args) -> Workload:
    return Workload(client_loop="open", client_rate=args.client_rate, app_args={
        "bank": ("--accounts", str(ACCOUNTS), "--initial", str(INITIAL)),
        "relay": ("--interval", str(args.relay_interval))})


class Series:
    """Snapshots taken in the background until finish()."""

    def __init__(self, run: Run, settings: RunSettings):
        self.engine = Engine(run.controller, run.store, settings, run.config.processes)
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.summary = self.engine.run()
        except BaseException as e:   # raised again in the experiment's thread
            self.error = e

    def finish(self) -> RunSummary:
        """Starts no more; returns once those in flight are stored."""
        self.engine.stop()
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.summary


def run(args, results: Results) -> list[dict]:
    tau = methods.tau(args, results)
    late = methods.processes_of(SPEC, "kv")
    rng = random.Random(args.seed)
    summary, rows = [], []
    for method in args.methods:
        as_counted = argparse.Namespace(**{**vars(args), "count": FOREVER})
        method_workload, settings = methods.settings(method, as_counted, tau, workload(args),
                                                     late)
        restores = recover(results, method, settings, method_workload, args, rng,
                           hold=args.hold and method == args.methods[-1])
        rows += restores
        summary.append(tally(method, restores))
        results.progress(f"{method}: " + ", ".join(f"{k}={summary[-1][k]}" for k in (
            "restores", "broken_totals", "changed_totals", "orphaned_audits",
            "recover_s_median")))
    results.write_csv(rows)
    plot(results, summary, rows)
    return summary


def recover(results: Results, method: str, settings: RunSettings, workload: Workload,
            args, rng: random.Random, hold: bool) -> list[dict]:
    """One network: --rounds of snapshots, a crash, a rollback."""
    results.progress(f"{method}: {args.rounds} crashes, snapshots at {args.rate:g}/s")
    shards = methods.processes_of(SPEC, "bank")
    rows = []
    money = OPENING_TOTAL   # what the in-group had before each restore
    with Run(SPEC, results.run_dir(method), workload) as run:
        names = [p.name for p in run.config.processes]
        reader = restore.open_existing(run.config.controller.store)   # the engine's is busy
        try:
            run.start_traffic()
            began = time.monotonic()
            for round_ in range(1, args.rounds + 1):
                series = Series(run, settings)
                time.sleep(rng.uniform(*args.round_s))
                waiting = time.monotonic() + FIRST_ACCEPTED_S
                while restore.newest_restorable(reader, names) is None:   # none at all yet
                    if time.monotonic() > waiting:
                        series.finish()
                        raise ProcessError(f"{method}: no snapshot accepted with every state "
                                           f"in {FIRST_ACCEPTED_S} s: nothing to roll back to")
                    time.sleep(0.1)
                victims = sorted(rng.sample(shards, rng.randint(1, args.kill_most)))
                killed_at, killed_wall = time.monotonic(), time.time()
                run.processes.kill(victims)
                taken = series.finish()
                chosen = restore.newest_restorable(reader, names)
                rolled = roll_back(run.config.controller.store, chosen.number,
                                   run.config.processes, run.processes, with_state=True)
                row = {"method": method, "round": round_, "killed": " ".join(victims),
                       "killed_at_s": round(killed_at - began, 3),
                       "snapshots": taken.finished,
                       "accepted": taken.outcomes[Outcome.ACCEPTED],
                       "snapshot": chosen.number,
                       "snapshot_age_s": round(killed_wall - chosen.wall_time, 3),
                       **score(rolled, chosen),
                       "recover_s": round(time.monotonic() - killed_at, 3),
                       "rollback_s": round(rolled.total_s, 3),
                       "start_s": round(rolled.start_s, 3),
                       "resume_s": round(rolled.resume_s, 4)}
                row["total_change"], money = row["total"] - money, row["total"]
                rows.append(row)
                results.progress(f"{method} round {round_}: killed {row['killed']}, back to "
                                 f"{chosen.number} ({row['snapshot_age_s']} s old), total "
                                 f"{row['total']}, {row['orphans']} orphaned audits, "
                                 f"{row['replayed']} replayed, recovered in "
                                 f"{row['recover_s']} s")
            if hold:
                hold_network(run, results)
        finally:
            reader.close()
    return rows


def score(rolled: RolledBack, snapshot) -> dict:
    """What the restored processes hold, once replayed (see the module's doc)."""
    states = {name: r.state for name, r in rolled.processes.items()}
    bank = {n: s for n, s in states.items() if s["service"] == "bank"}
    recorded = {n: snapshot.reports[n].local_state for n in bank}
    total = sum(sum(s["balances"].values()) + s["credited"] - recorded[n]["credited"]
                for n, s in bank.items())
    transfers = {n: s["transfers"] for n, s in bank.items()}
    orphans = {key for s in states.values() if s["service"] == "kv"
               for key in invariants.orphaned(s["registers"], transfers)}
    in_snapshot = snapshot_total(snapshot.reports[n] for n in bank)
    return {"total": total, "total_kept": total == OPENING_TOTAL,
            "snapshot_total": in_snapshot, "as_recorded": total == in_snapshot,
            "orphans": len(orphans), "replayed": rolled.replayed}


def tally(method: str, restores: list[dict]) -> dict:
    recover_s = [r["recover_s"] for r in restores]
    return {"method": method, "restores": len(restores),
            "broken_totals": sum(not r["total_kept"] for r in restores),
            "changed_totals": sum(r["total_change"] != 0 for r in restores),
            "restores_with_orphans": sum(r["orphans"] > 0 for r in restores),
            "orphaned_audits": sum(r["orphans"] for r in restores),
            "not_as_recorded": sum(not r["as_recorded"] for r in restores),
            "replayed": sum(r["replayed"] for r in restores),
            "snapshot_age_s_median": _median([r["snapshot_age_s"] for r in restores]),
            "recover_s_median": _median(recover_s),
            "recover_s_max": max(recover_s, default=None),
            "rollback_s_median": _median([r["rollback_s"] for r in restores]),
            "resume_s_max": max((r["resume_s"] for r in restores), default=None)}


def _median(values):
    return round(statistics.median(values), 3) if values else None


def hold_network(run: Run, results: Results):
    """Leaves the network up for restores by hand (the README says how)."""
    run.controller.close()   # the CLI's controller takes the switches over
    run.controller = None
    config = run.run_dir / "beaver.toml"
    results.progress(f"holding the network until Ctrl-C; by hand:\n"
                     f"  sudo .venv/bin/beaver snapshot run --count 20 --rate 5 -c {config}\n"
                     f"  sudo .venv/bin/beaver snapshot latest --accepted -c {config}\n"
                     f"  sudo .venv/bin/beaver snapshot restore ID -c {config}")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:   # processes a restore by hand started are not the experiment's own
        table = RunningTopology(run.run_dir)
        ours = {n: p.pid for n, p in run.processes.running.items()}
        table.stop([n for n, e in table.entries.items() if ours.get(n) != e.pid])


def plot(results: Results, summary: list[dict], rows: list[dict]):
    fig, (counts, times) = results.figure(columns=2)
    labels = [f"{r['method']}\n{r['restores']} restores" for r in summary]
    bars = (("broken_totals", "tab:red", "total broken (not the opening one)"),
            ("changed_totals", "tab:pink", "total changed by the restore"),
            ("restores_with_orphans", "tab:orange", "orphaned audits"))
    width = 0.8 / len(bars)
    for k, (key, color, name) in enumerate(bars):
        drawn = counts.bar([i + (k - (len(bars) - 1) / 2) * width for i in range(len(summary))],
                           [r[key] for r in summary], width, color=color, label=name)
        counts.bar_label(drawn, fontsize=7)
    counts.set_xticks(range(len(summary)), labels)
    counts.set_ylabel("restores")
    counts.set_title("Restores from the newest accepted snapshot")
    counts.margins(y=0.3)
    counts.legend(fontsize=8, loc="upper left")
    for i, r in enumerate(summary):
        recover = [row["recover_s"] for row in rows if row["method"] == r["method"]]
        rollback = [row["rollback_s"] for row in rows if row["method"] == r["method"]]
        times.scatter([i - 0.1] * len(recover), recover, s=10, color="tab:blue",
                      label="kill to serving" if i == 0 else None)
        times.scatter([i + 0.1] * len(rollback), rollback, s=10, color="tab:green",
                      label="rollback (stop, start, resume)" if i == 0 else None)
    times.set_xticks(range(len(summary)), [r["method"] for r in summary])
    times.set_ylabel("seconds")
    times.set_ylim(bottom=0)
    times.set_title("Time to recover")
    times.legend(fontsize=8)
    results.save_figure(fig)
