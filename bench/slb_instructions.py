"""Instructions per VIP packet of a real SLB (simple_switch_grpc running
p4src/ on veths) and per snapshot of the controller, counted by valgrind's
callgrind: the same count whatever else the machine does, so work tells
apart from contention on shared cores.

    sudo .venv/bin/python bench/slb_instructions.py [--packets 300] [--pace 100]
        [--rates 50,1000] [--out instructions.json] [--keep DIR]

The switch runs under callgrind, counting only once its pipeline is in
(callgrind_control -i on), every thread.  The same packets (512 flows to
one VIP) are offered at --pace packets per second in each mode:

  plain         the SLB without Beaver: p4src/ compiled with PLAIN_SLB (no
                epoch state, no mark), a pipeline of its own (Fig. 14's
                baseline);
  without       Beaver's program, marking off, no snapshot;
  marking       marking on, no snapshot;
  snapshots-R   marking on, and a controller taking snapshots at R per
                second as Fig. 14 does (timed initiation, IDs batched every
                1 s: common/impact.py's settings), in its own process,
                itself under callgrind, with a fixed lead of LEAD_S (its
                first batches under callgrind outlast any lead its round
                trips give, and a late batch is rejected and read again).
  control-R     the same controller, no VIP packet: what its batches'
                control packets cost the switch a second.

Each mode runs twice, with --packets and with 5 times as many (so the
snapshots run 5 times as long), and the difference, divided by the extra
packets the switch delivered (or the extra snapshots the controller
finished), is the count: start-up, the pipeline, the controller's clock
alignment and its first and last batches drop out.  The switch's counts
come from callgrind dumps (callgrind_control -d) taken just before and just
after the packets; the controller's from a dump after its run, before it
closes.  No in-group process runs: the controller collects no reports here.

A snapshot's cost at the switch has two parts: the control packets, per
batch at any packet rate, and a step, paid by each VIP packet that finds
an ID due (it runs Epoch, which files the old ID's record and opens the
new one's), however many IDs it moves.  At --pace 50 and 1,000 IDs a
second a packet moves 20 IDs at once; in Fig. 14, with over 1,000 packets
a second at each SLB, nearly every ID is stepped to by a packet of its
own.  So the JSON (--out; its "slb" and "controller" keys replaced, others
kept) gives, beyond marking's per packet, the control packets'
instructions a second and a step's, which common/instructions.py
converts to a run's own packet and snapshot rates (and, for comparison
with older runs, the whole rise per snapshot at --pace).  BEAVER_BMV2
names the BMv2 binary to run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from beaver.topologies.bmv2 import Bmv2Switch, bmv2_available, bmv2_build
from beaver.topologies.experiments.common import impact
from beaver.topologies.veth import VethPairs

from dataplane import BACKENDS, SLB_MAC, VIP, raw_socket, take_encapsulated

GRPC_PORT, THRIFT_PORT = 29871, 29971
LONGER = 5                  # the second run of each mode is this many times the first
READY_S = 600               # a process under callgrind starts 50-100 times slower
IDLE = "idle"               # no packets, no snapshots: what the switch does on its own
CONTROL = "control-"        # no packets, snapshots: what their control packets cost
WARM_UP = 200               # packets sent once before any count
QUIET_S = 2.0               # no delivery for this long: the switch has let out all it will
LEAD_S = 2.0                # the controller's lead: under callgrind its first batches take
                            # far longer than the round trips it has measured when it sends them


def callgrind(out: Path) -> list[str]:
    """valgrind counting nothing until callgrind_control -i on: start-up
    runs faster and stays out of every count."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=no",
            f"--callgrind-out-file={out}"]


class CallgrindSwitch(Bmv2Switch):
    def __init__(self, out: Path, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.out = out

    def command(self) -> list[str]:
        return callgrind(self.out) + super().command()


def control(pid: int, *flags: str):
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True, capture_output=True,
                   timeout=READY_S)


def dumps(out: Path) -> dict[Path, int]:
    """out's numbered dumps, each with the time it was last written."""
    found = {}
    for path in out.parent.glob(f"{out.name}.*"):
        if path.name.rsplit(".", 1)[1].isdigit():
            try:
                found[path] = path.stat().st_mtime_ns
            except FileNotFoundError:   # rewritten just now: the next look sees it
                pass
    return found


def dump(pid: int, out: Path) -> int:
    """Dumps pid's counts since its last dump (callgrind zeroes them on
    each) and returns the instructions in that dump."""
    before = dumps(out)
    control(pid, "-d")
    deadline = time.monotonic() + READY_S
    # A process numbers its dumps from 1: one measured again under the same
    # name writes over the dumps of the one before, so a dump is new by its
    # time as well as by its name.
    while not (new := [path for path, written in dumps(out).items()
                       if before.get(path) != written]):
        if time.monotonic() > deadline:
            raise SystemExit(f"callgrind wrote no dump for process {pid}")
        time.sleep(0.1)
    path = max(new, key=lambda p: int(p.name.rsplit(".", 1)[1]))
    for _ in range(100):   # written by the process itself: wait for its totals line
        if found := re.search(r"^(?:totals|summary): (\d+)", path.read_text(), re.M):
            return int(found.group(1))
        time.sleep(0.1)
    raise SystemExit(f"{path} holds no totals")


def service_file(folder: Path, switch: Bmv2Switch, marking: bool,
                 pipeline: str = "beaver") -> Path:
    """The configuration of one SLB forwarding VIP:80 to three backends,
    running pipeline (control/config.py PIPELINES)."""
    name = "plain" if pipeline == "plain" else "marking" if marking else "without"
    path = folder / f"service-{name}.toml"
    routes = ", ".join(f'{{prefix = "{dip}/32", port = {port}, src_mac = "{SLB_MAC}", '
                       f'dst_mac = "00:00:00:00:00:0{port}"}}' for port, dip in BACKENDS.items())
    backends = ", ".join(f'"{dip}"' for dip in BACKENDS.values())
    path.write_text(
        f'[pipeline]\nname = "{pipeline}"\n\n[controller]\nstore = "snapshots.db"\n\n'
        f'[service]\ningroup = ["10.0.2.0/24"]\n\n'
        f'[[slbs]]\nname = "s1"\naddress = "{switch.grpc_address}"\ndevice_id = 1\n'
        f'slb_id = 1\nslb_addr = "10.0.0.254"\nmarking = {str(marking).lower()}\n'
        f'routes = [{routes}]\n\n'
        f'[[vips]]\naddress = "{VIP}"\nprotocol = "udp"\nport = 80\nbackends = [{backends}]\n')
    return path


def program(config_path: Path, push: bool = False):
    """Writes the configuration's tables (and the pipeline, push) and lets go."""
    from beaver.control.config import load
    from beaver.control.slbs.fleet import SlbFleet
    fleet = SlbFleet(load(config_path))
    try:
        fleet.connect()
        fleet.apply(push=push)
    finally:
        fleet.close()


def paced(sender, receivers, frames: list[bytes], packets: int, pace: float) -> int:
    """Sends `packets` frames at `pace` per second, then waits until the
    switch lets out no more; returns how many it delivered encapsulated."""
    for s in receivers:
        s.setblocking(False)
    delivered, sent, begin = 0, 0, time.monotonic()
    last = begin
    while True:
        now = time.monotonic()
        while sent < packets and sent <= (now - begin) * pace:
            sender.send(frames[sent % len(frames)])
            sent += 1
        if sent == packets and now - last > QUIET_S:
            return delivered
        ready, _, _ = select.select(receivers, [], [], 0.005)
        if taken := take_encapsulated(ready):
            delivered += taken
            last = time.monotonic()


def drive_controller(config_path: Path, rate: float, seconds: float, batch: int):
    """Runs in its own process, under callgrind: says "ready" once
    connected, takes the snapshots when told "go", prints their outcome,
    and exits when its input closes (after the bench dumped its counts)."""
    from argparse import Namespace
    from beaver.control.config import load
    from beaver.control.engine.engine import Engine
    from beaver.control.engine.record import Outcome
    from beaver.control.slbs.fleet import SlbFleet
    from beaver.control.store import SnapshotStore
    config = load(config_path)
    fleet = SlbFleet(config)
    store = SnapshotStore(config.controller.store)
    fleet.connect()
    settings = replace(impact.snapshot_settings(rate, Namespace(batch=batch, seconds=seconds)),
                       lead_us=int(LEAD_S * 1e6))
    print("ready", flush=True)
    sys.stdin.readline()
    summary = Engine(fleet, store, settings).run()
    print(json.dumps({"finished": summary.finished,
                      "accepted": summary.outcomes[Outcome.ACCEPTED],
                      "rate": round(summary.rate, 1)}), flush=True)
    sys.stdin.readline()
    store.close()
    fleet.close()


class Controller:
    """The controller's process under callgrind, for one measurement."""

    def __init__(self, out: Path, config_path: Path, rate: float, seconds: float, batch: int):
        self.out = out
        self.log = out.with_suffix(".log")
        self.process = subprocess.Popen(
            callgrind(out) + [sys.executable, __file__, "--drive-controller", str(config_path),
                              "--rate", str(rate), "--seconds", str(seconds),
                              "--batch", str(batch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"})
        self.expect("ready")
        control(self.process.pid, "-i", "on")

    def expect(self, what: str) -> str:
        ready, _, _ = select.select([self.process.stdout], [], [], READY_S)
        line = self.process.stdout.readline() if ready else ""
        if what not in line:
            self.process.kill()
            errors = self.log.read_text(errors="replace").strip().splitlines()[-3:]
            raise SystemExit(f"the controller under callgrind did not say {what!r}: {line!r}; "
                             + " | ".join(errors))
        return line

    def go(self):
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self) -> tuple[dict, int]:
        """(the run's outcome, the controller's instructions from go to here)."""
        outcome = json.loads(self.expect("finished"))
        instructions = dump(self.process.pid, self.out)
        self.process.stdin.close()
        self.process.wait(READY_S)
        return outcome, instructions


def sends_packets(kind: str) -> bool:
    return kind != IDLE and not kind.startswith(CONTROL)


def measure(kind: str, rate: float | None, packets: int, args, switch: CallgrindSwitch,
            ports, frames, folder: Path) -> dict:
    """One mode at one length: what the switch delivered and counted over
    how many seconds, and with snapshots, what the controller finished and
    counted.  Modes "idle" and control-R send nothing for as long."""
    seconds = packets / args.pace
    controller = None
    if rate is not None:
        controller = Controller(folder / f"controller-{kind}-{packets}",
                                folder / "service-marking.toml", rate, seconds, args.batch)
    dump(switch.process.pid, switch.out)           # the counts start here
    begin = time.monotonic()
    if controller:
        controller.go()
    if not sends_packets(kind):
        time.sleep(seconds + QUIET_S)
        delivered = 0
    else:
        delivered = paced(*ports, frames, packets, args.pace)
    result = {"delivered": delivered}
    if controller:
        result["outcome"], result["controller"] = controller.finish()
    result["slb"] = dump(switch.process.pid, switch.out)
    result["seconds"] = time.monotonic() - begin
    return result


def measured(kind: str, rate: float | None, packets: int, *context) -> dict:
    """measure(), and once more if the switch did not deliver what was sent:
    under callgrind it now and then falls behind (a pipeline push, a batch
    read again record by record) and its count would hold that work."""
    for _ in range(2):
        result = measure(kind, rate, packets, *context)
        if not sends_packets(kind) or result["delivered"] == packets:
            return result
        print(f"{kind:>15}, {packets} packets: {result['delivered']} delivered, in "
              f"{result['seconds']:.1f} s: measured again", flush=True)
    raise SystemExit(f"{kind}: the switch delivered {result['delivered']} of {packets} "
                     "packets twice: no count")


def per_unit(short: dict, long: dict, count: str, units: str) -> float:
    return (long[count] - short[count]) / (long[units] - short[units])


def per_packet(short: dict, long: dict, idle_per_second: float) -> float:
    """The switch's instructions per packet delivered, the longer run less
    the shorter, without what the switch does idle for as long."""
    return switch_extra(short, long, idle_per_second) / (long["delivered"] - short["delivered"])


def switch_extra(short: dict, long: dict, idle_per_second: float) -> float:
    """What the switch counted in the longer run beyond the shorter, less
    its idle work over the extra seconds."""
    return long["slb"] - short["slb"] - idle_per_second * (long["seconds"] - short["seconds"])


def per_snapshot(short: dict, long: dict, idle_per_second: float, marking: float) -> float:
    """The switch's instructions per snapshot the controller finished:
    beyond its idle work and marking's per packet."""
    packets = long["delivered"] - short["delivered"]
    return ((switch_extra(short, long, idle_per_second) - marking * packets)
            / (long["outcome"]["finished"] - short["outcome"]["finished"]))


def per_second(short: dict, long: dict, idle_per_second: float) -> float:
    """The switch's instructions a second beyond its idle work (a mode
    without packets)."""
    return switch_extra(short, long, idle_per_second) / (long["seconds"] - short["seconds"])


def per_step(short: dict, long: dict, idle_per_second: float, marking: float,
             control_per_second: float, rate: float, pace: float) -> float:
    """The switch's instructions for each VIP packet that found an ID due:
    what snapshots add beyond marking's per packet and their control
    packets' per second, over the packets that stepped (every packet when
    IDs come faster than packets, else one in pace / rate)."""
    packets = long["delivered"] - short["delivered"]
    steps = packets * min(1.0, rate / pace)
    return ((switch_extra(short, long, idle_per_second) - marking * packets
             - control_per_second * (long["seconds"] - short["seconds"])) / steps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=300,
                        help=f"VIP packets of the shorter run of each mode ({LONGER}x in the "
                             "longer)")
    parser.add_argument("--pace", type=float, default=100.0,
                        help="packets per second offered (BMv2 under callgrind keeps up with "
                             "a few hundred)")
    parser.add_argument("--rates", type=impact.numbers(float, 0.1),
                        default=impact.numbers(float, 0.1)("50,1000"),
                        help="snapshots per second, one mode each (default 50,1000)")
    parser.add_argument("--batch", type=int, default=impact.DEFAULT_BATCH,
                        help=f"IDs per control message at 50/s, as fig14's --batch (default "
                             f"{impact.DEFAULT_BATCH})")
    parser.add_argument("--out", type=Path, help="write the counts into this JSON file")
    parser.add_argument("--keep", type=Path,
                        help="keep callgrind's dumps in this folder (for callgrind_annotate)")
    parser.add_argument("--drive-controller", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive_controller:
        return drive_controller(args.drive_controller, args.rate, args.seconds, args.batch)
    if os.geteuid() != 0:
        print("needs root (veth pairs)", file=sys.stderr)
        return 1
    if not bmv2_available():
        print(f"no BMv2: {bmv2_build()}", file=sys.stderr)
        return 1
    rates = args.rates
    modes = {IDLE: None, "plain": None, "without": None, "marking": None,
             **{f"snapshots-{r:g}": r for r in rates}, **{f"{CONTROL}{r:g}": r for r in rates}}

    frames = [bytes(Ether(dst=SLB_MAC) / IP(src=f"10.0.1.{1 + i % 200}", dst=VIP) /
                    UDP(sport=1024 + i, dport=80) / (b"x" * 18)) for i in range(512)]
    build = bmv2_build()
    print(f"BMv2: {build}, under callgrind; {args.packets} and {LONGER * args.packets} packets "
          f"at {args.pace:g}/s a mode", flush=True)
    counts: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            folder = args.keep
        veths = stack.enter_context(VethPairs("bslbi", 4))
        switch = CallgrindSwitch(folder / "switch", "slbi", veths.switch_ends, GRPC_PORT, 1,
                                 folder, thrift_port=THRIFT_PORT)
        switch.start(timeout=READY_S)
        stack.callback(switch.stop)
        configs = {m: service_file(folder, switch, m) for m in (False, True)}
        plain = service_file(folder, switch, False, "plain")
        program(configs[False], push=True)
        control(switch.process.pid, "-i", "on")
        ports = (raw_socket(veths.host_ends[1]),
                 [raw_socket(veths.host_ends[p]) for p in BACKENDS])
        paced(*ports, frames, WARM_UP, args.pace)
        for kind, rate in modes.items():
            # each program switch pushes its pipeline: plain runs its own
            if kind in ("plain", "without"):
                program(plain if kind == "plain" else configs[False], push=True)
                paced(*ports, frames, WARM_UP, args.pace)
            else:
                program(configs[kind != IDLE])
            counts[kind] = [measured(kind, rate, n, args, switch, ports, frames, folder)
                            for n in (args.packets, LONGER * args.packets)]
            for n, c in zip((args.packets, LONGER * args.packets), counts[kind]):
                snapshots = (f"; controller {c['controller']} instructions, snapshots "
                             f"{c['outcome']}" if "outcome" in c else "")
                print(f"{kind:>15}, {n} packets: {c['delivered']} delivered in "
                      f"{c['seconds']:.1f} s, switch {c['slb']} instructions{snapshots}",
                      flush=True)
            if not switch.alive:
                print("the switch died", file=sys.stderr)
                return 1

    idle = per_unit(*counts.pop(IDLE), "slb", "seconds")
    control_counts = {kind: counts.pop(kind) for kind in list(counts) if kind.startswith(CONTROL)}
    slb = {k: per_packet(*c, idle) for k, c in counts.items()}
    controller, at_switch, control_cost, step = {}, {}, {}, {}
    for rate in rates:
        key = f"{rate:g}"
        control_cost[key] = per_second(*control_counts[f"{CONTROL}{key}"], idle)
        short, long = ({**c, "finished": c["outcome"]["finished"]}
                       for c in counts[f"snapshots-{key}"])
        controller[key] = round(per_unit(short, long, "controller", "finished"))
        at_switch[key] = round(per_snapshot(short, long, idle, slb["marking"]))
        step[key] = round(per_step(short, long, idle, slb["marking"], control_cost[key], rate,
                                   args.pace))
    print(f"\nswitch idle: {idle:.0f} instructions per second, taken off below")
    print(f"switch instructions per VIP packet delivered, at {args.pace:g} packets/s:")
    for kind, value in slb.items():
        print(f"{kind:>15}: {value:9.0f}  / without {value / slb['without']:.3f}  "
              f"/ marking {value / slb['marking']:.3f}")
    for rate in rates:
        key = f"{rate:g}"
        achieved = [c["outcome"]["rate"] for c in counts[f"snapshots-{key}"]]
        print(f"snapshots at {key}/s (held {achieved[0]:g} and {achieved[1]:g}/s): per "
              f"snapshot, switch {at_switch[key]} and controller {controller[key]} "
              f"instructions; at the switch, control packets {control_cost[key]:.0f} a second, "
              f"a step {step[key]}")
    result = {
        "build": build, "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "pace": args.pace, "packets": [args.packets, LONGER * args.packets],
        "idle_per_second": round(idle), "batch": args.batch,
        "per_packet": {k: round(v) for k, v in slb.items()},
        # beyond marking's per packet: what a snapshot adds at the switch, at --pace
        "per_snapshot": at_switch,
        # the same in two parts, for any packet rate
        "control_per_second": {k: round(v) for k, v in control_cost.items()},
        "per_step": step}
    print(json.dumps({"slb": result, "controller": {"per_snapshot": controller}}, indent=1))
    if args.out:
        written = json.loads(args.out.read_text()) if args.out.exists() else {}
        written["slb"] = result
        written["controller"] = {"build": build, "date": result["date"],
                                 "per_snapshot": controller, "reports": False,
                                 "batch": args.batch}
        args.out.write_text(json.dumps(written, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
