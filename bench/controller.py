"""Sustained snapshot rate of the controller against real BMv2 switches,
beside the raw packet-out/packet-in rate of the same switches.

    .venv/bin/python bench/controller.py [--switches 1,2,4] [--count N]
                                          [--inflight K] [--rounds R]

Starts max(--switches) simple_switch_grpc processes (no data ports; the
pipeline is pushed over P4Runtime) and, for each |G|, measures in every
round, interleaved so all see the same machine:

  raw k       READ round trips per second per switch, all |G| switches at
              once with k requests outstanding on each: the most snapshots
              per second the switches and this client stack could carry
              (a snapshot is one round trip per SLB);
  OGM k=1     snapshots per second one at a time;
  OGM k=K     with K in flight (the paper's parallelism);
  blocking    the strawman: hold, commit everywhere, release (k = 1).

Prints each round, then the medians as a table with ratios.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from beaver.control.config import load
from beaver.control.controller import Controller, Gateway
from beaver.control.engine import Engine, RunSettings
from beaver.control.record import Mode, Outcome
from beaver.control.store import SnapshotStore
from beaver.p4src import BMV2_JSON, P4INFO
from beaver.p4src.wire import Op
from beaver.topologies.bmv2 import Bmv2Switch, bmv2_available

GRPC_BASE, THRIFT_BASE = 59651, 59751


def raw_rate(gateways: list[Gateway], window: int, per_switch: int,
             quiet_s: float = 0.1) -> tuple[float, int]:
    """(round trips per second per switch, answers lost) with `window`
    READs outstanding on every switch at once."""
    lock = threading.Lock()
    done = threading.Event()
    sent = {gw.name: 0 for gw in gateways}
    outstanding = {gw.name: 0 for gw in gateways}
    answered, lost = [0], [0]
    target = per_switch * len(gateways)

    def send(gw: Gateway):   # with the lock held
        if sent[gw.name] < per_switch:
            sent[gw.name] += 1
            outstanding[gw.name] += 1
            gw.control.send(Op.READ, 0, 0, lambda answer, gw=gw: on_answer(gw))

    def on_answer(gw: Gateway):
        with lock:
            outstanding[gw.name] -= 1
            answered[0] += 1
            if answered[0] + lost[0] >= target:
                done.set()
            send(gw)

    begin = time.perf_counter()
    with lock:
        for gw in gateways:
            for _ in range(window):
                send(gw)
    progress = -1
    while not done.wait(quiet_s):
        with lock:
            if answered[0] == progress:   # nothing came back for a while: the rest is lost
                for gw in gateways:
                    gw.control.fail_all()
                    missing, outstanding[gw.name] = outstanding[gw.name], 0
                    lost[0] += missing
                    for _ in range(missing):
                        send(gw)
                if answered[0] + lost[0] >= target:
                    break
            progress = answered[0]
    elapsed = time.perf_counter() - begin
    return answered[0] / len(gateways) / elapsed, lost[0]


def snapshot_rate(controller: Controller, store: SnapshotStore, mode: Mode, inflight: int,
                  count: int) -> tuple[float, int]:
    """(snapshots finished per second, how many were not accepted)."""
    settings = RunSettings(mode=mode, count=count, inflight=inflight, tau_us=10**9,
                           ack_timeout_ms=200, retries=2)
    summary = Engine(controller, store, settings).run()
    return summary.rate, summary.finished - summary.outcomes[Outcome.ACCEPTED]


def service_file(directory: Path, switches: list[Bmv2Switch]) -> Path:
    path = directory / f"service-{len(switches)}.toml"
    lines = [f'[controller]\nstore = "snapshots-{len(switches)}.db"\n',
             f'[pipeline]\np4info = "{P4INFO}"\nbmv2_json = "{BMV2_JSON}"\n']
    for i, sw in enumerate(switches, start=1):
        lines.append(f'[[slbs]]\nname = "s{i}"\naddress = "{sw.grpc_address}"\n'
                     f'device_id = {sw.device_id}\nslb_id = {i}\nslb_addr = "10.0.0.{i}"\n')
    lines.append('[[vips]]\naddress = "10.10.0.1"\nprotocol = "udp"\nport = 80\n'
                 'backends = ["10.0.2.1", "10.0.2.2"]\n')
    path.write_text("\n".join(lines))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", default="1,2,4",
                        help="comma-separated |G| values (default 1,2,4)")
    parser.add_argument("--count", type=int, default=2000, help="snapshots per measurement")
    parser.add_argument("--inflight", type=int, default=64,
                        help="K, the parallelism (default 64; the controller allows at most "
                             "63, as far as the SLBs learn ahead)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(n) for n in args.switches.split(",")]
    if not bmv2_available() or not (BMV2_JSON.exists() and P4INFO.exists()):
        print("needs simple_switch_grpc and the compiled program in p4src/build",
              file=sys.stderr)
        return 1

    K = args.inflight
    columns = ["raw k=1", "OGM k=1", f"raw k={K}", f"OGM k={K}", "blocking"]
    medians: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        switches = [Bmv2Switch(f"bench{i}", {}, GRPC_BASE + i, i, tmp,
                               thrift_port=THRIFT_BASE + i) for i in range(1, max(sizes) + 1)]
        try:
            for sw in switches:
                sw.start()
            for size in sizes:
                config = load(service_file(tmp, switches[:size]))
                controller = Controller(config)
                store = SnapshotStore(config.controller.store)
                try:
                    controller.connect()
                    controller.apply(push=True)
                    runs = {c: [] for c in columns}
                    for round_no in range(1, args.rounds + 1):
                        measured = {
                            "raw k=1": raw_rate(controller.gateways, 1, args.count),
                            "OGM k=1": snapshot_rate(controller, store, Mode.OGM, 1, args.count),
                            f"raw k={K}": raw_rate(controller.gateways, K, args.count),
                            f"OGM k={K}": snapshot_rate(controller, store, Mode.OGM, K,
                                                        args.count),
                            "blocking": snapshot_rate(controller, store, Mode.BLOCKING, 1,
                                                      args.count),
                        }
                        for c, (rate, bad) in measured.items():
                            runs[c].append(rate)
                        print(f"|G|={size} round {round_no}: " + ", ".join(
                            f"{c} {rate:.0f}/s" + (f" ({bad} lost/not accepted)" if bad else "")
                            for c, (rate, bad) in measured.items()), flush=True)
                    medians[size] = {c: statistics.median(v) for c, v in runs.items()}
                finally:
                    store.close()
                    controller.close()
        finally:
            for sw in switches:
                sw.stop()

    print(f"\nmedians of {args.rounds} rounds, {args.count} snapshots (or round trips per "
          f"switch) each; rates per second")
    header = ("|G|", "raw k=1", "OGM k=1", "/raw", f"raw k={K}", f"OGM k={K}", "/raw",
              "blocking", "/raw k=1", f"OGM k={K} / k=1")
    rows = []
    for size, m in medians.items():
        rows.append((size, f"{m['raw k=1']:.0f}", f"{m['OGM k=1']:.0f}",
                     f"{m['OGM k=1'] / m['raw k=1']:.2f}",
                     f"{m[f'raw k={K}']:.0f}", f"{m[f'OGM k={K}']:.0f}",
                     f"{m[f'OGM k={K}'] / m[f'raw k={K}']:.2f}",
                     f"{m['blocking']:.0f}", f"{m['blocking'] / m['raw k=1']:.2f}",
                     f"{m[f'OGM k={K}'] / m['OGM k=1']:.1f}x"))
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
