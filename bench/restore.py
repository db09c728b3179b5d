"""How long a 16-shard bank takes to come back from a stored snapshot,
beyond its processes' own start.

Sixteen shards (`python -m beaver.traffic.services.bank`, each its own process, on
loopback) serve transfers that this process sends them encapsulated, as the
SLB would, some 40 % between accounts of different shards (credits and
forwarded requests between shards).  While they flow, snapshot 1 is taken
out of band at every shard, as the controller initiates Lai-Yang's; once
every channel's state adds up (control/reports.channel_gaps) the reports
are stored accepted in a snapshot store, with messages in flight on its
channels.  Then, in each round, the same 16 processes are

  started plainly, and timed until each answers out of band: the processes'
  own start (the interpreter, imports, sockets);
  rolled back to snapshot 1 by rollback.roll_back, the procedure of `beaver
  snapshot restore`: stopped, started with --restore and timed until each
  holds with the snapshot's state, then resumed one after another, each
  replaying what was in flight to it.

The restore's cost beyond the processes' own start is (start until held -
plain start) + resume, per round; it prints each round's and their median,
against the goal of 1 s.

Run: python bench/restore.py [--rounds 3] [--transfers 3000]
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from beaver.traffic.oob import protocol as oob
from beaver.control.config import ProcessConfig
from beaver.control.engine.record import Mode, Outcome, SnapshotRecord, Verdict
from beaver.traffic.oob.links import channel_gaps
from beaver.control.store import SnapshotStore
from beaver.p4src.wire import BEAVER_UDP_PORT, BeaverHeader, Kind
from beaver.topologies.rollback import roll_back

from runtime_instructions import inner_packet

SHARDS = 16
ACCOUNTS = 100 * SHARDS
SLB, CLIENT_PORT = "127.0.5.60", 40000
VIP = ("127.0.5.160", 7100)
GOAL_S = 1.0


def dip(i: int) -> str:
    return f"127.0.5.{61 + i}"


NAMES = [f"b{i + 1}" for i in range(SHARDS)]
PROCESSES = [ProcessConfig(name, dip(i), oob.OOB_PORT,
                           tuple(n for n in NAMES if n != name)) for i, name in enumerate(NAMES)]


def command(i: int) -> list[str]:
    return [sys.executable, "-m", "beaver.traffic.services.bank", "--name", NAMES[i], "--dip", dip(i),
            "--vip", f"{VIP[0]}:{VIP[1]}", "--slb", SLB, "--shards", ",".join(NAMES),
            "--accounts", str(ACCOUNTS), "--mode", "lai-yang",
            *[arg for k, peer in enumerate(NAMES) if k != i
              for arg in ("--peer", f"{peer}={dip(k)}")]]


class Shards:
    """The 16 processes; rollback.py's launcher.  Their errors go to files
    in folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.running: dict[str, subprocess.Popen] = {}

    def start_all(self):
        for name in NAMES:
            self.restart(name, ())

    def restart(self, name: str, extra):
        with open(self.folder / f"{name}.err", "w") as err:
            self.running[name] = subprocess.Popen(command(NAMES.index(name)) + list(extra),
                                                  stdout=subprocess.DEVNULL, stderr=err)

    def stop(self, names):
        for name in names:
            if name in self.running:
                self.running[name].send_signal(signal.SIGTERM)
        for name in names:
            if name in self.running:
                self.running.pop(name).wait(20)

    def failure(self, name: str) -> str | None:
        process = self.running.get(name)
        if process is None or process.poll() is None:
            return None
        lines = (self.folder / f"{name}.err").read_text().strip().splitlines()
        return lines[-1] if lines else f"exit status {process.returncode}"


def ask(process: ProcessConfig, message: dict) -> dict:
    with socket.create_connection((process.host, process.port), timeout=10) as s:
        return oob.request(s, {"v": oob.VERSION, **message})


def wait_serving(deadline: float = 60.0):
    """Until every shard answers out of band."""
    end = time.monotonic() + deadline
    for process in PROCESSES:
        while True:
            try:
                ask(process, {"op": "status"})
                break
            except OSError:
                if time.monotonic() > end:
                    raise SystemExit(f"{process.name} never answered")
                time.sleep(0.01)


def transfers(count: int, stop: threading.Event | None = None):
    """Sends transfers marked 0 from the SLB's address, a window of 16 at a
    time, to shards in turn (the owner of the source account or not)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((SLB, CLIENT_PORT))
        sock.settimeout(2)
        outstanding = 0
        for n in range(count):
            if stop is not None and stop.is_set():
                break
            request = {"id": f"c:{n}", "op": "transfer", "src": f"a{(n * 7) % ACCOUNTS}",
                       "dst": f"a{(n * 13 + 1) % ACCOUNTS}", "amount": 1}
            sock.sendto(BeaverHeader(Kind.MARK, 0, origin=1).pack()
                        + inner_packet(json.dumps(request).encode(), (SLB, CLIENT_PORT), VIP),
                        (dip(n % SHARDS), BEAVER_UDP_PORT))
            outstanding += 1
            while outstanding >= 16:
                try:
                    sock.recv(2048)
                except socket.timeout:
                    pass   # lost or slow: go on, a window is not a promise
                outstanding -= 1


def take_snapshot(store_path: Path, transfer_count: int) -> SnapshotRecord:
    """Snapshot 1 of every shard while transfers flow, stored accepted once whole."""
    stop = threading.Event()
    flowing = threading.Thread(target=transfers, args=(10 * transfer_count, stop))
    flowing.start()
    transfers_before = transfer_count // 2
    time.sleep(transfers_before / 4000)   # some traffic first
    for process in PROCESSES:
        ask(process, {"op": "snapshot", "id": 1})
    stop.set()
    flowing.join()
    deadline = time.monotonic() + 30
    while True:
        reports = {p.name: oob.Report.from_message(ask(p, {"op": "report", "id": 1}))
                   for p in PROCESSES}
        if not channel_gaps(reports):
            break
        if time.monotonic() > deadline:
            raise SystemExit("snapshot 1's channels never added up")
        time.sleep(0.05)
    record = SnapshotRecord(1, Mode.LAI_YANG, Mode.LAI_YANG.value, 0, [], 1, time.time(),
                            finished_us=2, reports=reports,
                            verdict=Verdict(Outcome.ACCEPTED, "every channel whole"))
    store = SnapshotStore(store_path)
    store.save([record])
    store.reserve(1)
    store.close()
    return record


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--transfers", type=int, default=3000,
                   help="transfers before and around the snapshot (default 3000)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        shards = Shards(Path(folder))
        store = Path(folder) / "snapshots.db"
        try:
            shards.start_all()
            wait_serving()
            transfers(args.transfers)
            record = take_snapshot(store, args.transfers)
            in_flight = sum(len(c.in_flight) for r in record.reports.values()
                            for c in r.channels.values())
            size = sum(len(json.dumps(r.local_state)) for r in record.reports.values())
            print(f"{SHARDS} shards, {ACCOUNTS} accounts; snapshot 1: {in_flight} messages in "
                  f"flight, {size / 1000:.0f} kB of local state")
            shards.stop(NAMES)
            beyond = []
            for round_ in range(1, args.rounds + 1):
                began = time.monotonic()
                shards.start_all()
                wait_serving()
                plain = time.monotonic() - began
                rolled = roll_back(store, 1, PROCESSES, shards)
                extra = rolled.start_s - plain + rolled.resume_s
                beyond.append(extra)
                loads = [ask(p, {"op": "status"})["restored"]["load_ms"] for p in PROCESSES]
                print(f"round {round_}: plain start {plain:.3f} s; restore: stop "
                      f"{rolled.stop_s:.3f} s, start until held {rolled.start_s:.3f} s "
                      f"(each read its snapshot in {statistics.median(loads):.1f} ms median, "
                      f"{max(loads):.1f} max), resume {rolled.resume_s:.3f} s "
                      f"({rolled.replayed} replayed); beyond the processes' start "
                      f"{extra:.3f} s")
                shards.stop(NAMES)
        finally:
            shards.stop(list(shards.running))
    median = statistics.median(beyond)
    print(f"restore of a {SHARDS}-shard bank beyond its processes' own start: median "
          f"{median:.3f} s over {len(beyond)} rounds (min {min(beyond):.3f}, max "
          f"{max(beyond):.3f}); goal < {GOAL_S:g} s: {'met' if median < GOAL_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
