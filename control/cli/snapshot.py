"""`beaver snapshot ...`: taking snapshots and reading the store.

    beaver snapshot take [--mode M] [--rule R] [--tau US] [--retake N]
        one snapshot; exit 0 if accepted, 3 if rejected or incomplete
    beaver snapshot run --count N [--rate F] [--inflight K] [--batch B] [--mode M] ...
        N snapshots at F per second (default: as fast as K in flight allow),
        with progress on stderr; --each prints every verdict as it is stored
    beaver snapshot list [--limit N] [--verdict V]
    beaver snapshot show ID
    beaver snapshot latest [--accepted]
        the newest snapshot's ID; --accepted: the newest safe to roll back to
        (accepted, with every in-group process's state)
    beaver snapshot restore ID [--force]
        rolls the in-group of a running topology (its process table beside
        the configuration) back to snapshot ID: stops every process, starts
        each from the snapshot, resumes them, and says what each replayed
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from beaver.traffic.runtime import restore

from beaver.control.cli.common import (CliError, config_of, config_path, connected, open_store, print_json,
                         table)
from beaver.control.config import ServiceConfig
from beaver.control.engine.engine import (IMMEDIATE, TIMED, Engine, RunSettings, RunSummary,
                                          SettingsError)
from beaver.control.engine.record import Mode, Outcome, SnapshotRecord
from beaver.control.engine.rules import COARSE, FINE

NOT_ACCEPTED = 3   # exit status of `take` when the snapshot was not accepted


def register(subcommands, common: argparse.ArgumentParser):
    snapshot = subcommands.add_parser("snapshot", help="take snapshots, read the store")
    commands = snapshot.add_subparsers(dest="command", metavar="COMMAND", required=True)

    taking = argparse.ArgumentParser(add_help=False)
    taking.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.OGM.value,
                        help="ogm: every SLB at once, judged by a rule (default); mgm: one "
                             "SLB; blocking: hold inbound traffic until all SLBs commit; "
                             "baselines without slbs: lai-yang (processes told out of "
                             "band), polling (processes snapshot on their own timers)")
    taking.add_argument("--rule", choices=(FINE, COARSE),
                        help="OGM detection rule (default: from the configuration)")
    taking.add_argument("--tau", type=int, metavar="US",
                        help="external causal chain bound in microseconds (default: from "
                             "the configuration)")
    taking.add_argument("--retake", type=int, default=0, metavar="N",
                        help="retake a rejected snapshot up to N times")
    taking.add_argument("--initiation", choices=(IMMEDIATE, TIMED),
                        help="ogm: each SLB switches when its INIT arrives (immediate, the "
                             "paper's), or all at one time ahead on their own clocks (timed) "
                             "(default: from the configuration)")
    taking.add_argument("--lead-us", type=int, metavar="US",
                        help="timed: how far ahead the SLBs switch (default: from the "
                             "configuration, else twice the slowest recent round trip)")

    take = commands.add_parser("take", parents=[common, taking], help="take one snapshot")
    take.set_defaults(run=run_take)

    run = commands.add_parser("run", parents=[common, taking],
                              help="take snapshots at a frequency, k in flight")
    run.add_argument("--count", type=int, required=True, metavar="N")
    run.add_argument("--rate", type=float, metavar="F",
                     help="snapshots started per second (default: as fast as --inflight allows)")
    run.add_argument("--inflight", type=int, metavar="K",
                     help="most snapshots in flight at once (the paper's parallelism; "
                          "default: --batch, the least a batch needs)")
    run.add_argument("--batch", type=int, default=1, metavar="B",
                     help="IDs per schedule, judged by the schedules at once (default 1, "
                          "unbatched; a batch defaults to --initiation timed and --rule "
                          "fine, which it needs)")
    run.add_argument("--each", action="store_true", help="print every verdict once stored")
    run.set_defaults(run=run_run)

    reading = argparse.ArgumentParser(add_help=False, parents=[common])
    reading.add_argument("--store", metavar="FILE",
                         help="the snapshot store (default: the configuration's)")
    listing = commands.add_parser("list", parents=[reading], help="the newest snapshots")
    listing.add_argument("--limit", type=int, default=20, metavar="N")
    listing.add_argument("--verdict", choices=[o.value for o in Outcome])
    listing.set_defaults(run=run_list)

    show = commands.add_parser("show", parents=[reading], help="one snapshot in full")
    show.add_argument("id", type=int, metavar="ID")
    show.set_defaults(run=run_show)

    latest = commands.add_parser("latest", parents=[reading], help="the newest snapshot's ID")
    latest.add_argument("--accepted", action="store_true",
                        help="the newest safe to roll back to: accepted, with the state of "
                             "every in-group process of the configuration")
    latest.set_defaults(run=run_latest)

    restoring = commands.add_parser("restore", parents=[reading],
                                    help="roll a running topology's in-group back to a "
                                         "snapshot")
    restoring.add_argument("id", type=int, metavar="ID")
    restoring.add_argument("--force", action="store_true",
                           help="restore a snapshot that was not accepted, or misses a "
                                "process's state (never one of another layout)")
    restoring.set_defaults(run=run_restore)


def settings_of(args, config: ServiceConfig, count: int = 1, inflight: int = 1,
                rate: float | None = None, batch: int = 1) -> RunSettings:
    """The run's settings, checked before any switch is contacted."""
    c = config.controller
    batched = batch > 1   # the defaults follow the request: a batch is timed, fine
    initiation = args.initiation or (TIMED if batched else c.initiation)
    if args.lead_us is not None and initiation != TIMED:
        raise SettingsError("--lead-us is for --initiation timed: an immediate initiation "
                            "switches when its INIT arrives")
    settings = RunSettings(mode=Mode(args.mode), rule=args.rule or (FINE if batched else c.rule),
                           tau_us=c.tau_us if args.tau is None else args.tau,
                           count=count, inflight=inflight, rate=rate, batch=batch,
                           ack_timeout_ms=c.ack_timeout_ms, retries=c.retries,
                           report_timeout_ms=c.report_timeout_ms, retake=args.retake,
                           clock_interval_s=c.clock_interval_s, initiation=initiation,
                           lead_us=c.lead_us if args.lead_us is None else args.lead_us)
    settings.check(len(config.slbs))
    return settings


def run_settings(args, config: ServiceConfig) -> RunSettings:
    """`run`'s settings: --inflight defaults to --batch, so that a batch asked
    for is never refused for want of room."""
    inflight = args.batch if args.inflight is None else args.inflight
    return settings_of(args, config, args.count, inflight, args.rate, args.batch)


def _engine(config, controller, store, settings, on_finished=None) -> Engine:
    controller.require_pipeline()
    return Engine(controller, store, settings, config.processes, on_finished)


def run_take(args) -> int:
    config = config_of(args)
    settings = settings_of(args, config)
    store = open_store(args, config)
    finished: list[SnapshotRecord] = []
    try:
        with connected(args, config) as controller:
            _engine(config, controller, store, settings, finished.append).run()
    finally:
        store.close()
    for record in finished:
        print_json(as_dict(record)) if args.json else print(one_line(record))
    final = finished[-1].verdict.outcome if finished else None
    return 0 if final is Outcome.ACCEPTED else NOT_ACCEPTED


def run_run(args) -> int:
    config = config_of(args)
    settings = run_settings(args, config)
    progress = Progress(args.count, sys.stderr)

    def on_finished(record: SnapshotRecord):
        if args.each:
            print(json.dumps(as_dict(record)) if args.json else one_line(record), flush=True)
        progress.update(record)

    store = open_store(args, config)
    try:
        with connected(args, config) as controller:
            engine = _engine(config, controller, store, settings, on_finished)
            previous = signal.signal(signal.SIGINT, lambda *_: engine.stop())
            try:
                summary = engine.run()
            finally:
                signal.signal(signal.SIGINT, previous)
    finally:
        store.close()
    progress.close()
    if args.json and not args.each:
        print_json(summary_dict(summary))
    else:
        print(summary_line(summary), file=sys.stderr if args.each else sys.stdout)
    return 130 if summary.interrupted else 0


def run_list(args) -> int:
    if args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    store = open_store(args, read_only=True)
    try:
        outcome = Outcome(args.verdict) if args.verdict else None
        records = store.latest(args.limit, outcome)
    finally:
        store.close()
    if args.json:
        print_json([as_dict(r) for r in records])
        return 0
    rows = [(r.number, when(r.wall_time), r.mode.value, r.rule, r.verdict.outcome.value,
             duration(r), r.verdict.reason) for r in records]
    print(table(("ID", "STARTED", "MODE", "RULE", "VERDICT", "T1-T0 US", "REASON"), rows))
    return 0


def run_show(args) -> int:
    store = open_store(args, read_only=True)
    try:
        record = store.get(args.id)
    finally:
        store.close()
    if record is None:
        raise CliError(f"no snapshot {args.id} in {store.path}")
    if args.json:
        print_json(as_dict(record))
        return 0
    v = record.verdict
    print(f"snapshot {record.number} (wire ID {record.snapshot_id}): {v.outcome.value}")
    print(f"  reason: {v.reason}")
    print(f"  mode {record.mode.value}, rule {record.rule}, tau {record.tau_us} us"
          + (f", retake of {record.retake_of}" if record.retake_of else ""))
    print(f"  started {when(record.wall_time)}, t1 - t0 = {duration(record) or '-'} us"
          + (f", timed: activation {record.activate_us - record.started_us} us after t0"
             if record.activate_us is not None else ", immediate initiation"))
    if record.batch is not None:
        print(f"  judged with its batch, {record.batch.start}-{record.batch.stop - 1}, by "
              "each SLB's schedule: the switch and last-old times below are the "
              "schedule's bounds (switched at or after, old-ID packets before)")
    rows = []
    for name in record.slbs:
        a = record.acks.get(name)
        if a is None:
            rows.append((name, "no answer") + (None,) * 8)
            continue
        clock = (f"{a.clock.offset_us:.0f} +- {a.clock.error_us:.1f} ({a.clock.source})"
                 if a.clock else None)
        rows.append((name, a.status.name, a.attempts, a.received_us - a.sent_us,
                     f"{a.body.id_before}->{a.body.id_after}", a.body.activate_at or None,
                     a.body.switch_time, a.body.last_old_time, a.body.count, clock))
    print()
    print(table(("SLB", "STATUS", "TRIES", "RTT US", "ID", "ACTIVATE AT", "SWITCH TIME",
                 "LAST OLD", "MARKED", "CLOCK OFFSET US"), rows))
    if record.reports:
        print()
        print(table(("PROCESS", "TAKEN", "TRIGGER", "CURRENT", "FINISHED", "CHANNELS",
                     "IN FLIGHT"),
                    [(name, r.taken, r.trigger, r.current_id, r.finished_id, len(r.channels),
                      sum(len(c.in_flight) for c in r.channels.values()))
                     for name, r in record.reports.items()]))
    return 0


def run_latest(args) -> int:
    config = config_of(args) if args.accepted or args.store is None else None
    store = open_store(args, config, read_only=True)
    try:
        if args.accepted:
            record = restore.newest_restorable(store, [p.name for p in config.processes])
        else:
            record = next(iter(store.latest(1)), None)
    finally:
        store.close()
    if record is None:
        raise CliError(f"no {'accepted ' if args.accepted else ''}snapshot "
                       f"{'with every in-group state ' if args.accepted else ''}in {store.path}")
    print_json(as_dict(record)) if args.json else print(record.number)
    return 0


def run_restore(args) -> int:
    from beaver.topologies import rollback
    from beaver.topologies.running import RunningTopology, TableError
    config = config_of(args)
    store = Path(args.store) if args.store else config.controller.store
    try:
        rollback.check(store, args.id, config.processes, args.force)
        if os.geteuid() != 0:
            raise CliError("restoring a running topology needs root: its processes run in "
                           "Mininet's namespaces")
        topology = RunningTopology(config_path(args).parent)
        rolled = rollback.roll_back(store, args.id, config.processes, topology, args.force)
    except (restore.RestoreRefused, rollback.RollbackError, TableError) as e:
        raise CliError(f"snapshot restore: {e}") from None
    if args.json:
        print_json({"id": rolled.number, "outcome": rolled.outcome, "forced": rolled.forced,
                    "stop_s": rolled.stop_s, "start_s": rolled.start_s,
                    "resume_s": rolled.resume_s,
                    "processes": {n: {"replayed": r.replayed, "replay_ms": r.replay_ms}
                                  for n, r in rolled.processes.items()}})
        return 0
    print(f"rolled back to snapshot {rolled.number} ({rolled.outcome}"
          f"{', forced' if rolled.forced else ''}): {len(rolled.processes)} processes, "
          f"{rolled.replayed} messages in flight replayed, in {rolled.total_s:.2f} s "
          f"(stop {rolled.stop_s:.2f}, start {rolled.start_s:.2f}, "
          f"resume {rolled.resume_s:.3f})")
    print(table(("PROCESS", "REPLAYED", "FROM", "REPLAY MS"),
                [(name, sum(r.replayed.values()),
                  ", ".join(f"{peer} {n}" for peer, n in sorted(r.replayed.items())) or None,
                  f"{r.replay_ms:.1f}") for name, r in rolled.processes.items()]))
    return 0


# -- presentation ----------------------------------------------------------------

def when(wall_time: float) -> str:
    try:
        return datetime.fromtimestamp(wall_time).isoformat(sep=" ", timespec="milliseconds")
    except (OverflowError, OSError, ValueError):   # a damaged store's: shown as it is
        return f"{wall_time!r} (no time)"


def duration(record: SnapshotRecord) -> int | None:
    if record.finished_us is None:
        return None
    return record.finished_us - record.started_us


def one_line(record: SnapshotRecord) -> str:
    return f"{record.number} {record.verdict.outcome.value}: {record.verdict.reason}"


def as_dict(record: SnapshotRecord) -> dict:
    v = record.verdict
    return {
        "id": record.number, "wire_id": record.snapshot_id, "mode": record.mode.value,
        "rule": record.rule, "tau_us": record.tau_us, "slbs": record.slbs,
        "started_us": record.started_us, "finished_us": record.finished_us,
        "activate_us": record.activate_us,
        "wall_time": record.wall_time, "retake_of": record.retake_of,
        "batch": [record.batch.start, record.batch.stop - 1] if record.batch else None,
        "verdict": {"outcome": v.outcome.value, "reason": v.reason, "rule": v.rule,
                    "margin_us": v.margin_us},
        "acks": {name: {"status": a.status.name, "attempts": a.attempts,
                        "sent_us": a.sent_us, "received_us": a.received_us,
                        "record_id": a.body.snapshot_id, "id_before": a.body.id_before,
                        "id_after": a.body.id_after, "now": a.body.now,
                        "switch_time": a.body.switch_time,
                        "last_old_time": a.body.last_old_time, "count": a.body.count,
                        "activate_at": a.body.activate_at, "marking": a.body.marking,
                        "offset_us": a.clock.offset_us if a.clock else None,
                        "offset_error_us": a.clock.error_us if a.clock else None,
                        "clock_source": a.clock.source if a.clock else None}
                 for name, a in record.acks.items()},
        "reports": {name: r.to_message() for name, r in record.reports.items()},
    }


def summary_dict(summary: RunSummary) -> dict:
    return {"started": summary.started, "finished": summary.finished,
            **{o.value: n for o, n in summary.outcomes.items()},
            "elapsed_s": round(summary.elapsed_s, 3), "per_second": round(summary.rate, 1),
            "first_id": summary.first, "last_id": summary.last,
            "interrupted": summary.interrupted, "late_inits": summary.late_inits,
            "lead_us": summary.lead_us or None, "behind_ms": summary.behind_us / 1000,
            "latency_p50_us": summary.latency_us(0.5),
            "latency_p99_us": summary.latency_us(0.99),
            "by_records": summary.by_records, "cpu_s": round(summary.cpu_s, 3)}


def summary_line(summary: RunSummary) -> str:
    o = summary.outcomes
    ids = f"; IDs {summary.first}-{summary.last}" if summary.first is not None else ""
    return (f"{summary.finished} snapshots in {summary.elapsed_s:.2f} s "
            f"({summary.rate:.0f}/s): {o[Outcome.ACCEPTED]} accepted, "
            f"{o[Outcome.REJECTED]} rejected, {o[Outcome.INCOMPLETE]} incomplete{ids}"
            + (f"; latency p50 {summary.latency_us(0.5) / 1000:.1f} ms, p99 "
               f"{summary.latency_us(0.99) / 1000:.1f} ms" if summary.latencies else "")
            + (f"; lead {summary.lead_us[0] / 1000:.1f}-{summary.lead_us[1] / 1000:.1f} ms"
               if summary.lead_us else "")
            + (" (interrupted)" if summary.interrupted else ""))


class Progress:
    """A progress line on a terminal (redrawn), or a line every few seconds."""

    def __init__(self, total: int, out):
        self.total = total
        self.out = out
        self.tty = out.isatty()
        self.counts = dict.fromkeys(Outcome, 0)
        self.begin = self.last = time.monotonic()
        self.shown = False

    def update(self, record: SnapshotRecord):
        self.counts[record.verdict.outcome] += 1
        now = time.monotonic()
        if now - self.last >= (0.25 if self.tty else 5.0):
            self.last = now
            self._show(now)

    def _show(self, now: float):
        done = sum(self.counts.values())
        c = self.counts
        line = (f"{done}/{self.total} finished, {c[Outcome.ACCEPTED]} accepted, "
                f"{c[Outcome.REJECTED]} rejected, {c[Outcome.INCOMPLETE]} incomplete, "
                f"{done / max(now - self.begin, 1e-9):.0f}/s")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
              file=self.out, flush=True)
        self.shown = True

    def close(self):
        if self.tty and self.shown:
            print(file=self.out)
