"""Where an in-group report's cost goes, stage by stage, per report.

    python bench/report_stages.py [--keys 1000] [--reports 300]

A key-value replica holding --keys keys, as the YCSB-like workload leaves it
(an int per key, Zipfian writes spread over all of them), is reported as the
controller asks it at every snapshot; each stage is timed on its own, over
--reports reports, in CPU time of this thread (the process's own, not the
machine's):

  capture    the replica's local_state(), under the runtime's lock in a real
             process: requests wait for it;
  encode     the report to its out-of-band frame (JSON), in the process;
  decode     the frame to a Report, on the controller's link thread;
  store      the snapshot with its two replicas' reports committed to
             SQLite (each report encoded again, as the store keeps it:
             whole, or as changes from the report saved before).

each twice: the whole state, and as the link asks it and the store keeps
it, changes from the state of the snapshot before (--changed keys written in between: at 50
snapshots/s, YCSB-like's 500 writes/s are 10), diffed in the process
and rebuilt by the link (traffic/oob/deltas.py).

The exchange itself (TCP on the management network) and the SLB are not
here: they are measured where they run (fig14tcp's CPU per request).
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from beaver.traffic.oob import protocol as oob
from beaver.control.engine.record import Mode, Outcome, SnapshotRecord, Verdict
from beaver.control.store import SnapshotStore
from beaver.traffic.services.kvstore import KvReplica


class Named:
    """What KvReplica needs of a runtime to hold and report state."""
    name = "kv1"


def replica(keys: int, seed: int = 1) -> KvReplica:
    kv = KvReplica(Named(), ["kv2"])
    rng = random.Random(seed)
    for clock in range(1, 4 * keys + 1):
        kv.on_peer({"op": "put", "key": f"user{rng.randrange(keys)}",
                    "value": rng.randrange(1 << 30), "version": [clock, "kv2"]}, "kv2")
    return kv


def per_report(stage, count: int) -> float:
    """CPU microseconds of this thread per call."""
    started = time.thread_time_ns()
    for i in range(count):
        stage(i)
    return (time.thread_time_ns() - started) / count / 1000


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--reports", type=int, default=300)
    p.add_argument("--changed", type=int, default=10)
    args = p.parse_args()
    kv = replica(args.keys)
    base = kv.local_state()
    rng = random.Random(2)
    for clock in range(args.changed):
        kv.on_peer({"op": "put", "key": f"user{rng.randrange(args.keys)}", "value": clock,
                    "version": [10 ** 6 + clock, "kv2"]}, "kv2")
    state = kv.local_state()
    report = oob.Report("kv1", 7, True, "mark", 1, state,
                        {"kv2": oob.ChannelState(40, 40, [])}, 7, 6)
    frame = oob.encode(report.to_message())
    small = oob.encode(report.to_message((6, base)))
    held = (6, oob.json.loads(oob.json.dumps(base)))   # as the link holds it: decoded JSON
    costs = {"capture": per_report(lambda i: kv.local_state(), args.reports),
             "encode": per_report(lambda i: oob.encode(report.to_message()), args.reports),
             "decode": per_report(lambda i: oob.Report.from_message(
                 oob.check(oob.json.loads(frame[4:]))), args.reports)}
    changes = {"capture": costs["capture"],
               "encode": per_report(lambda i: oob.encode(report.to_message((6, base))),
                                    args.reports),
               "decode": per_report(lambda i: oob.Report.from_message(
                   oob.check(oob.json.loads(small[4:]))).rebuilt(held), args.reports)}
    before = oob.Report("kv1", 6, True, "mark", 1, base, report.channels, 6, 5)
    with tempfile.TemporaryDirectory() as folder:
        store = SnapshotStore(Path(folder) / "snapshots.db")

        def save(i: int, whole: bool):
            """Snapshots alternate between the two states, as consecutive ones do."""
            if whole:
                store._last = {}   # as a store's first save: no report to diff against
            state = report if i % 2 else before
            store.save([SnapshotRecord(i + 1 + whole * 10 ** 6, Mode.OGM, "fine", 100,
                                       ["s1", "s2"], i, 0.0, finished_us=i + 1,
                                       reports={"kv1": state, "kv2": state},
                                       verdict=Verdict(Outcome.ACCEPTED, "", "fine"))])
        # two reports a snapshot
        costs["store"] = per_report(lambda i: save(i, True), args.reports) / 2
        changes["store"] = per_report(lambda i: save(i, False), args.reports) / 2
        store.close()
    print(f"{args.keys} keys, {len(state['registers'])} held; a report is {len(frame):,} bytes "
          f"whole, {len(small):,} as changes ({args.changed} keys written since the base)")
    print(f"{'stage':8s} {'whole':>10s} {'changes':>12s}  (CPU us per report)")
    for stage in costs:
        print(f"{stage:8s} {costs[stage]:10.1f} {changes[stage]:12.1f}")
    for name, stages in (("whole", costs), ("changes", changes)):
        total = sum(stages.values())
        print(f"all, {name:8s} {total:8.1f} us per report: at 50 snapshots/s and 2 replicas, "
              f"{total * 100 / 1e4:.1f} % of a core (process {stages['capture'] + stages['encode']:.0f}"
              f" us, controller {stages['decode'] + stages['store']:.0f} us)")


if __name__ == "__main__":
    main()
