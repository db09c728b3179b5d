"""The in-group runtime's per-message cost, Beaver layer on and off, as
instructions counted by valgrind's callgrind: the same count for the same
run whatever else the machine does, so a 5 % cost is plain to see.

A driver (this script with --drive, run under callgrind) builds replica
kv1 of the key-value store and feeds its receive path directly, in the
main thread, with what a run of bench/runtime.py brings it: requests
marked by the SLB (half puts, which kv1 replicates to kv2), kv2's
replication of every other put (stamped, one ID behind right after each
snapshot, so channel state is recorded; the first after kv2's snapshots
counts them, APP_COUNTED, as kv2's runtime sends it), a snapshot ID every
--snapshot-every requests.  No socket receive and
no other thread is counted (callgrind counts each thread apart; the
figure is the main thread's).  Each mode runs twice, with --requests and
with 5 times as many, and the difference, divided by the extra requests,
is the count per request: start-up and imports drop out.  A third mode,
"none", builds the same datagrams and hands them to no one: its count,
the driver's own, is taken off the other two.

--reports: the driver also asks for each snapshot's report once the next
one starts, as the controller does (one "report" for the finished ID, its
changes from the one before), and encodes the answer, in the main thread,
so the count holds what the replica's OOB thread does for it.

--batch K (with --reports): one report a batch of K IDs instead, the run
of them answered by distinct state ({"op": "report", "first", "count"}), as
the controller asks when it batches (Fig. 14's timed snapshots): from the
second batch on with the "base" the controller holds, the last ID of the
batch before.  --requests is then a multiple of --snapshot-every x K: a
report comes every that many requests, and so the extra requests of the
longer run carry their share of them, no more, no fewer.

--log: the runtime keeps an event log (in a temporary folder), as every
process of an experiment does (topologies/processes.py); without it the
runtime logs nothing.

--out FILE: the counts also go into FILE's "ingroup" key, one entry per
--snapshot-every, --reports and --batch (other keys kept), where Fig. 14's
--instructions reads them (topologies/experiments/common/instructions.py).

Run: python bench/runtime_instructions.py [--requests 400] [--snapshot-every 50]
         [--reports [--batch K]] [--log | --out FILE]
(each driver run takes some seconds under valgrind).
"""
from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

from beaver.topologies.experiments.common.instructions import ingroup_run

from callgrind_run import main_thread_instructions

DIP, PEER, SLB, CLIENT = "127.0.5.31", "127.0.5.32", "127.0.5.33", ("127.0.5.34", 40000)
VIP = ("127.0.5.131", 7000)
MODES = ("none", "off", "beaver")


def inner_packet(payload: bytes, client=CLIENT, vip=VIP) -> bytes:
    """The client's IPv4/UDP packet to the VIP, as the SLB encapsulates it
    (checksums 0: the runtime does not check them)."""
    udp = struct.pack("!HHHH", client[1], vip[1], 8 + len(payload), 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(payload), 0, 0, 64, 17, 0,
                     socket.inet_aton(client[0]), socket.inet_aton(vip[0]))
    return ip + udp + payload


def drive(mode: str, requests: int, snapshot_every: int, reports: bool = False,
          batch: int = 1, log: bool = False):
    with tempfile.TemporaryDirectory() as folder:
        _drive(mode, requests, snapshot_every, reports, batch,
               Path(folder) / "kv1.jsonl" if log else None)


def _drive(mode: str, requests: int, snapshot_every: int, reports: bool, batch: int,
           log_path: Path | None):
    from beaver.p4src.wire import BeaverHeader, Kind
    from beaver.traffic.runtime.datagrams import PeerKind, pack_peer, peer_name
    from beaver.traffic.services.kvstore import KvReplica
    from beaver.traffic.runtime.udp import Runtime
    from beaver.traffic.runtime.snapshots import Mode
    from beaver.traffic.runtime.eventlog import EventLog
    from beaver.traffic.oob import protocol as oob

    runtime_mode = Mode("off" if mode == "none" else mode)
    log = EventLog(log_path, "kv1", True, runtime_mode.value) if log_path else None
    runtime = Runtime("kv1", DIP, vips=[VIP], slbs=[SLB], peers={"kv2": PEER},
                      mode=runtime_mode, mgmt=(DIP, 0), log=log)
    runtime.serve(KvReplica(runtime, ["kv2"]))
    # The receive loop's step, without the socket.
    handle = runtime._handle if mode != "none" else lambda datagram, source: None

    def from_kv2(stamp: int, kind: PeerKind, seq: int, message: dict,
                 counted_from: int | None = None):
        datagram = (BeaverHeader(Kind.STAMP, stamp).pack()
                    + pack_peer(kind, seq, peer_name("kv2"), counted_from)
                    + json.dumps(message).encode())
        handle(datagram, (PEER, 4790))

    snapshot_id = sent_by_kv2 = counted_by_kv2 = 0
    for i in range(requests):
        if snapshot_every and i % snapshot_every == 0:
            snapshot_id += 1
            if reports and mode == "beaver" and batch > 1 and snapshot_id % batch == 1 \
                    and snapshot_id > batch:
                # the batch before this ID is over: its run, as the controller asks it,
                # from the newest state it holds (the last ID of the batch before)
                ask = {"v": oob.VERSION, "op": "report", "first": snapshot_id - batch,
                       "count": batch}
                if snapshot_id > 2 * batch:
                    ask["base"] = snapshot_id - batch - 1
                answered = runtime._answer(ask)
                if answered["op"] != "cuts":
                    raise SystemExit(f"the driver's batch report was refused: {answered}")
                oob.encode(answered)
            elif reports and mode == "beaver" and batch == 1 and snapshot_id > 1:
                # As the controller asks (traffic/oob/links.py): a run of one ID.
                ask = {"v": oob.VERSION, "op": "report", "first": snapshot_id - 1, "count": 1}
                if snapshot_id > 2:
                    ask["base"] = snapshot_id - 2
                answered = runtime._answer(ask)
                if answered["op"] != "cuts" or "error" in answered["cuts"][0]:
                    raise SystemExit(f"the driver's report was refused: {answered}")
                oob.encode(answered)
        key = f"k{i % 100}"
        message = ({"id": f"g:{i}", "op": "put", "key": key, "value": i} if i % 2
                   else {"id": f"g:{i}", "op": "get", "key": key})
        handle(BeaverHeader(Kind.MARK, snapshot_id, origin=1).pack()
               + inner_packet(json.dumps(message).encode()), (SLB, 4790))
        if i % 4 == 1:
            sent_by_kv2 += 1
            behind = 1 if snapshot_every and i % snapshot_every < 4 else 0
            stamp = max(0, snapshot_id - behind)
            counted_from = counted_by_kv2 + 1 if stamp > counted_by_kv2 else None
            counted_by_kv2 = stamp
            from_kv2(stamp, PeerKind.APP if counted_from is None else PeerKind.APP_COUNTED,
                     sent_by_kv2, {"id": f"kv2:{i}", "op": "put", "key": key, "value": -i,
                                   "version": [i, "kv2"]}, counted_from)
    runtime.stop()
    if log:
        log.close()
    if runtime.drops or (mode == "beaver" and runtime.snapshots.current_id != snapshot_id):
        raise SystemExit(f"the driver's traffic was not handled: drops {dict(runtime.drops)}")


def instructions(mode: str, requests: int, snapshot_every: int, out: Path,
                 reports: bool = False, batch: int = 1, log: bool = False) -> int:
    """The main thread's instruction count for one driver run under callgrind."""
    driver = [sys.executable, __file__, "--drive", mode, "--requests", str(requests),
              "--snapshot-every", str(snapshot_every), *(["--reports"] if reports else []),
              "--batch", str(batch), *(["--log"] if log else [])]
    return main_thread_instructions(driver, out / f"{mode}-{requests}",
                                    f"the {mode} driver ({requests} requests)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--snapshot-every", type=int, default=50,
                   help="a new snapshot ID every this many requests (0: never)")
    p.add_argument("--reports", action="store_true",
                   help="answer each snapshot's report too, as the OOB thread does")
    p.add_argument("--batch", type=int, default=1,
                   help="with --reports: one report for each batch of this many IDs")
    p.add_argument("--log", action="store_true",
                   help="the runtime keeps an event log, as an experiment's processes do")
    p.add_argument("--out", type=Path, help="also write the counts into this JSON file")
    p.add_argument("--drive", choices=MODES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.log and args.out:
        p.error("--out records the runs without a log (Fig. 14 reads them): not with --log")
    ids_a_report = args.snapshot_every * args.batch
    if args.reports and ids_a_report and args.requests % ids_a_report:
        # else the extra requests carry more or fewer reports than their share
        p.error(f"--requests must be a multiple of --snapshot-every x --batch "
                f"({ids_a_report}) with --reports")
    if args.drive:
        return drive(args.drive, args.requests, args.snapshot_every, args.reports, args.batch,
                     args.log)

    per_request = {}
    with tempfile.TemporaryDirectory() as out:
        for mode in MODES:
            counts = [instructions(mode, n, args.snapshot_every, Path(out), args.reports,
                                   args.batch, args.log)
                      for n in (args.requests, 5 * args.requests)]
            per_request[mode] = (counts[1] - counts[0]) / (4 * args.requests)
            print(f"{mode:>6}: {counts[0]} and {counts[1]} instructions for {args.requests} and "
                  f"{5 * args.requests} requests: {per_request[mode]:.0f} per request",
                  flush=True)
    off, beaver = (per_request[mode] - per_request["none"] for mode in ("off", "beaver"))
    if args.out:
        written = json.loads(args.out.read_text()) if args.out.exists() else {}
        runs = written.setdefault("ingroup", {})
        runs[ingroup_run(args.snapshot_every, args.reports, args.batch)] = {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "requests": [args.requests, 5 * args.requests],
            "snapshot_every": args.snapshot_every, "reports": args.reports, "batch": args.batch,
            "off": round(off), "beaver": round(beaver)}
        args.out.write_text(json.dumps(written, indent=1) + "\n")
    print(json.dumps({
        "requests": [args.requests, 5 * args.requests], "snapshot_every": args.snapshot_every,
        "reports": args.reports, "batch": args.batch, "log": args.log,
        "driver_instructions_per_request": round(per_request["none"]),
        "off_instructions_per_request": round(off),
        "beaver_instructions_per_request": round(beaver),
        "ratio_beaver_over_off": round(beaver / off, 3)}, indent=1))


if __name__ == "__main__":
    main()
