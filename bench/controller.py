"""Sustained snapshot rate of the controller against real BMv2 switches,
beside the raw packet-out/packet-in rate of the same switches.

    .venv/bin/python bench/controller.py [--switches 1,2,4] [--count N]
                                          [--inflight K] [--batch B] [--rounds R]
                                          [--only-batched]

Starts max(--switches) simple_switch_grpc processes (no data ports; the
pipeline is pushed over P4Runtime; BEAVER_BMV2 picks the build) and, for
each |G|, measures in every round, interleaved so all see the same machine:

  raw k       READ round trips per second per switch, all |G| switches at
              once with k requests outstanding on each: the most unbatched
              snapshots per second the switches and this client stack could
              carry (such a snapshot is one round trip per SLB);
  OGM k=1     snapshots per second one at a time (immediate initiation);
  OGM k=K     with K in flight (the paper's parallelism), unbatched;
  batched     timed initiation, B IDs per schedule (one INIT_BATCH and one
              READ_BATCH per SLB), judged by the schedules, as many in flight as
              the SLBs' ring allows (--batch-inflight);
  blocking    the strawman: hold, commit everywhere, release (k = 1).

Every snapshot is judged by the fine rule (at a tau that accepts all: this
measures the machinery, not the rule's verdicts) and stored.  Beside each
rate: the controller's CPU per snapshot (this process, every thread) and
the switches' (their processes' user + system time), in microseconds.

Prints each round, then the medians as a table with ratios, and every
round's batched rate with the slowest: a rate is held only if no round
collapses.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from beaver.control.config import load
from beaver.control.slbs.fleet import SlbFleet, Slb
from beaver.control.engine.engine import TIMED, Engine, RunSettings
from beaver.control.engine.record import Mode, Outcome
from beaver.control.store import SnapshotStore
from beaver.control.engine.window import MAX_SPAN
from beaver.p4src import BMV2_JSON, P4INFO
from beaver.p4src.wire import SCHEDULE_MAX, Op
from beaver.topologies.bmv2 import Bmv2Switch, bmv2_available, bmv2_build

GRPC_BASE, THRIFT_BASE = 29651, 29751
BATCH = 255   # IDs per schedule: 32 schedules fit the window (the ring's 8,191)


def raw_rate(slbs: list[Slb], window: int, per_switch: int,
             quiet_s: float = 0.1) -> tuple[float, int, str]:
    """(round trips per second per switch, answers lost, "") with `window`
    READs outstanding on every switch at once."""
    lock = threading.Lock()
    done = threading.Event()
    sent = {gw.name: 0 for gw in slbs}
    outstanding = {gw.name: 0 for gw in slbs}
    answered, lost = [0], [0]
    target = per_switch * len(slbs)

    def send(gw: Slb):   # with the lock held
        if sent[gw.name] < per_switch:
            sent[gw.name] += 1
            outstanding[gw.name] += 1
            gw.control.send(Op.READ, 0, 0, lambda answer, gw=gw: on_answer(gw))

    def on_answer(gw: Slb):
        with lock:
            outstanding[gw.name] -= 1
            answered[0] += 1
            if answered[0] + lost[0] >= target:
                done.set()
            send(gw)

    begin = time.perf_counter()
    with lock:
        for gw in slbs:
            for _ in range(window):
                send(gw)
    progress = -1
    while not done.wait(quiet_s):
        with lock:
            if answered[0] == progress:   # nothing came back for a while: the rest is lost
                for gw in slbs:
                    gw.control.fail_all()
                    missing, outstanding[gw.name] = outstanding[gw.name], 0
                    lost[0] += missing
                    for _ in range(missing):
                        send(gw)
                if answered[0] + lost[0] >= target:
                    break
            progress = answered[0]
    elapsed = time.perf_counter() - begin
    return answered[0] / len(slbs) / elapsed, lost[0], ""


def snapshot_rate(controller: SlbFleet, store: SnapshotStore, count: int,
                  **settings) -> tuple[float, int, str]:
    """(snapshots finished per second, how many were not accepted, the
    lead and latency of a timed run)."""
    settings = RunSettings(count=count, tau_us=10**9, ack_timeout_ms=200, retries=2,
                           **settings)
    # Each series leads from its own round trips, as a fresh controller's:
    # the queues of k=64 would otherwise lengthen the batched series' lead.
    controller.round_trips.clear()
    summary = Engine(controller, store, settings).run()
    timing = (f"lead {summary.lead_us[0] / 1000:.1f}-{summary.lead_us[1] / 1000:.1f} ms, "
              f"latency p50 {summary.latency_us(0.5) / 1000:.1f} ms p99 "
              f"{summary.latency_us(0.99) / 1000:.1f} ms" if summary.lead_us else "")
    return summary.rate, summary.finished - summary.outcomes[Outcome.ACCEPTED], timing


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU per unit of work, of this process and of the switches."""

    def __init__(self, switches: list[Bmv2Switch]):
        self.pids = [sw.process.pid for sw in switches]

    def __enter__(self):
        self.own = time.process_time()
        self.switches = sum(map(cpu_seconds, self.pids))
        return self

    def __exit__(self, *exc):
        self.own = time.process_time() - self.own
        self.switches = sum(map(cpu_seconds, self.pids)) - self.switches

    def per(self, units: int) -> tuple[float, float]:
        """(controller, switches) microseconds per unit."""
        return self.own / units * 1e6, self.switches / units * 1e6


def service_file(directory: Path, switches: list[Bmv2Switch]) -> Path:
    path = directory / f"service-{len(switches)}.toml"
    lines = [f'[controller]\nstore = "snapshots-{len(switches)}.db"\n',
             f'[pipeline]\np4info = "{P4INFO}"\nbmv2_json = "{BMV2_JSON}"\n',
             '[service]\ningroup = ["10.0.2.0/24"]\n']
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
                        help=f"K, the unbatched parallelism (default 64, at most {MAX_SPAN}: "
                             "the SLBs' ring keeps that many IDs' records)")
    parser.add_argument("--batch", type=int, default=BATCH,
                        help=f"B, IDs per schedule (default {BATCH}, at most {SCHEDULE_MAX}; "
                             "with the ring in flight, a few schedules overlap)")
    parser.add_argument("--batch-inflight", type=int, default=MAX_SPAN,
                        help=f"snapshots in flight when batched (default {MAX_SPAN})")
    parser.add_argument("--batch-count", type=int, default=None,
                        help="snapshots per batched measurement (default 20 x --count)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only-batched", action="store_true",
                        help="measure only the batched series (its CPU per snapshot)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.switches.split(",")]
    if not bmv2_available() or not (BMV2_JSON.exists() and P4INFO.exists()):
        print("needs simple_switch_grpc and the compiled program in p4src/build",
              file=sys.stderr)
        return 1
    print(f"BMv2: {bmv2_build()}", flush=True)

    K, B = args.inflight, args.batch
    batch_count = args.batch_count or 20 * args.count
    batched = f"batched b={B}"
    columns = ([batched] if args.only_batched else
               ["raw k=1", "OGM k=1", f"raw k={K}", f"OGM k={K}", batched, "blocking"])
    medians: dict[int, dict[str, tuple[float, float, float]]] = {}
    batched_rounds: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        switches = [Bmv2Switch(f"bench{i}", {}, GRPC_BASE + i, i, tmp,
                               thrift_port=THRIFT_BASE + i) for i in range(1, max(sizes) + 1)]
        try:
            for sw in switches:
                sw.start()
            for size in sizes:
                config = load(service_file(tmp, switches[:size]))
                controller = SlbFleet(config)
                store = SnapshotStore(config.controller.store)
                meter = CpuMeter(switches[:size])
                slbs = controller.slbs
                runs = {
                    "raw k=1": lambda: raw_rate(slbs, 1, args.count),
                    "OGM k=1": lambda: snapshot_rate(controller, store, args.count),
                    f"raw k={K}": lambda: raw_rate(slbs, K, args.count),
                    f"OGM k={K}": lambda: snapshot_rate(controller, store, args.count,
                                                        inflight=K),
                    batched: lambda: snapshot_rate(controller, store, batch_count,
                                                   inflight=args.batch_inflight, batch=B,
                                                   initiation=TIMED),
                    "blocking": lambda: snapshot_rate(controller, store, args.count,
                                                      mode=Mode.BLOCKING),
                }
                try:
                    controller.connect()
                    controller.apply(push=True)
                    measured = {c: [] for c in columns}
                    for round_no in range(1, args.rounds + 1):
                        line = []
                        for c in columns:
                            with meter:
                                rate, bad, timing = runs[c]()
                            # raw: round trips on every switch; else snapshots
                            units = args.count * size if c.startswith("raw") else \
                                (batch_count if c == batched else args.count)
                            own, sw_cpu = meter.per(units)
                            measured[c].append((rate, own, sw_cpu))
                            line.append(f"{c} {rate:.0f}/s ({own:.1f}+{sw_cpu:.1f} us)" +
                                        (f" ({bad} lost/not accepted)" if bad else "") +
                                        (f" ({timing})" if timing else ""))
                        print(f"|G|={size} round {round_no}: " + ", ".join(line), flush=True)
                    batched_rounds[size] = [m[0] for m in measured[batched]]
                    medians[size] = {c: tuple(statistics.median(m[i] for m in v)
                                              for i in range(3))
                                     for c, v in measured.items()}
                finally:
                    store.close()
                    controller.close()
        finally:
            for sw in switches:
                sw.stop()

    print(f"\nmedians of {args.rounds} rounds; {args.count} snapshots (or round trips per "
          f"switch) each, {batch_count} batched; rates per second; cpu: microseconds per "
          "snapshot (raw: per round trip), controller + switches")
    ratios = not args.only_batched
    header = ("|G|", *(h for c in columns for h in (c, "cpu")), "slowest round",
              *(("/raw", f"k={K} / k=1", "batched / k=1", f"batched / k={K}") if ratios else ()))
    rows = []
    for size, m in medians.items():
        rate = {c: v[0] for c, v in m.items()}
        rows.append((size, *(x for c in columns
                              for x in (f"{m[c][0]:.0f}", f"{m[c][1]:.1f}+{m[c][2]:.1f}")),
                     f"{min(batched_rounds[size]):.0f}",
                     *((f"{rate[f'OGM k={K}'] / rate[f'raw k={K}']:.2f}",
                        f"{rate[f'OGM k={K}'] / rate['OGM k=1']:.1f}x",
                        f"{rate[batched] / rate['OGM k=1']:.1f}x",
                        f"{rate[batched] / rate[f'OGM k={K}']:.1f}x") if ratios else ())))
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
