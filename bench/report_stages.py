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
             SQLite (each report encoded again, as the store keeps it).

The exchange itself (TCP on the management network) and the SLB are not
here: they are measured where they run (fig14tcp's CPU per request).
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from beaver.control import oob
from beaver.control.record import Mode, Outcome, SnapshotRecord, Verdict
from beaver.control.store import SnapshotStore
from beaver.traffic.kvstore import KvReplica


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
    args = p.parse_args()
    kv = replica(args.keys)
    state = kv.local_state()
    report = oob.Report("kv1", 7, True, "mark", 1, state,
                        {"kv2": oob.ChannelState(40, 40, [])}, 7, 6)
    frame = oob.encode(report.to_message())
    costs = {"capture": per_report(lambda i: kv.local_state(), args.reports),
             "encode": per_report(lambda i: oob.encode(report.to_message()), args.reports),
             "decode": per_report(lambda i: oob.Report.from_message(
                 oob.check(oob.json.loads(frame[4:]))), args.reports)}
    with tempfile.TemporaryDirectory() as folder:
        store = SnapshotStore(Path(folder) / "snapshots.db")

        def save(i: int):
            record = SnapshotRecord(i + 1, Mode.OGM, "fine", 100, ["s1", "s2"], i, 0.0,
                                    finished_us=i + 1,
                                    reports={"kv1": report, "kv2": report},
                                    verdict=Verdict(Outcome.ACCEPTED, "", "fine"))
            store.save([record])
        costs["store"] = per_report(save, args.reports) / 2   # two reports a snapshot
        store.close()
    print(f"{args.keys} keys, {len(state['registers'])} held; a report is {len(frame):,} bytes")
    total = sum(costs.values())
    for stage, us in costs.items():
        print(f"{stage:8s} {us:8.1f} us per report ({us / total:5.1%})")
    print(f"{'all':8s} {total:8.1f} us per report; at 50 snapshots/s and 2 replicas, "
          f"{total * 100 / 1e4:.1f} % of a core")


if __name__ == "__main__":
    main()
