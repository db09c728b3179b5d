"""How every process is started from the command line: address flags, the
event log, and a clean stop on SIGTERM or SIGINT.

In-group applications share the runtime's flags (`in_group_parser`, then
`run_in_group`); out-group processes share name, bind address and log
(`with out_group_endpoint(args) as endpoint:`, then `print_summary`).
However a process stops (a signal, the end of its work, an error), its log
is closed with its closing record: only a SIGKILL or a crash of the
interpreter leaves a short log, which the checker counts.

A bad argument, or an address that cannot be bound (in use, not this
host's), ends the process with one line on stderr: argparse's own for what
it checks (status 2), "<name>: <why>" for the rest (status 1).
"""
from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

from beaver.traffic.oob.protocol import OOB_PORT

from beaver.traffic.runtime.eventlog import EventLog, NoLog
from beaver.traffic.runtime.peering import COUNT_INTERVAL
from beaver.traffic.outgroup.endpoint import Endpoint
from beaver.traffic.runtime.udp import App, Runtime
from beaver.traffic.runtime.snapshots import Mode
from beaver.traffic.runtime.tcp import TcpRuntime


SWITCH_INTERVAL_S = 0.0005


class Parser(argparse.ArgumentParser):
    """Says what is wrong in one line, without the usage (--help shows it)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address") from None


def port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) < 65536):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def address(text: str) -> tuple[str, int]:
    """ip:port"""
    ip, sep, number = text.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not ip:port")
    return ipv4(ip), port(number)


def peer(text: str) -> tuple[str, str]:
    """name=ip"""
    name, sep, ip = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not name=ip")
    return name, ipv4(ip)


def at_least(minimum: int) -> Callable[[str], int]:
    """An integer argument's type: minimum or more."""
    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {minimum}")
        return value
    return number


def seconds(text: str, zero: bool = False) -> float:
    """A positive (or, if zero, not negative), finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and (value > 0 or zero and value == 0)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'non-negative' if zero else 'positive'} "
                                         "number of seconds")
    return value


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def setup_logging():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def in_group_parser(description: str) -> argparse.ArgumentParser:
    p = Parser(description=description)
    p.add_argument("--name", required=True, help="this process's name, unique in the run")
    p.add_argument("--dip", type=ipv4, required=True, help="data address: binds UDP DIP:4790")
    p.add_argument("--vip", type=address, action="append", default=[],
                   help="ip:port of a VIP this process serves (replies leave from it)")
    p.add_argument("--slb", type=ipv4, action="append", default=[],
                   help="ip an SLB encapsulates from: MARKs are accepted only from these (repeat)")
    p.add_argument("--peer", type=peer, action="append", default=[],
                   help="name=ip of an in-group peer (repeat)")
    p.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.BEAVER.value)
    p.add_argument("--mgmt", type=ipv4, default=None, help="management address for the OOB "
                   "server (default: the DIP)")
    p.add_argument("--oob-port", type=port, default=OOB_PORT)
    p.add_argument("--poll-interval", type=seconds, default=None,
                   help="seconds between snapshots in polling mode")
    p.add_argument("--count-interval", type=lambda text: seconds(text, zero=True),
                   default=COUNT_INTERVAL, help="beaver mode: seconds a peer waits at most for "
                   "the count of the local snapshots since the last, when no message to it "
                   f"carries it (default {COUNT_INTERVAL}; 0: a COUNT a snapshot, as lai-yang "
                   "sends them)")
    p.add_argument("--transport", choices=["udp", "tcp"], default="udp",
                   help="udp: the runtime decapsulates MARKs itself; tcp: the host's kernel "
                        "program does (traffic/runtime/bpf/decap.c)")
    p.add_argument("--flow-map", type=at_least(0), default=None,
                   help="tcp: id of the kernel program's flow_ids map (the snapshot IDs)")
    p.add_argument("--newest-map", type=at_least(0), default=None,
                   help="tcp: id of its newest_id map (the flow map is read only when it "
                        "changed)")
    p.add_argument("--log", default=None, help="ground-truth event log (JSON lines)")
    p.add_argument("--restore", type=snapshot, default=None, metavar="STORE:ID",
                   help="start from snapshot ID of that snapshot store: its state now, the "
                        "messages in flight to this process once the controller resumes it")
    p.add_argument("--force", action="store_true",
                   help="--restore a snapshot that was not accepted or misses a process")
    return p


def snapshot(text: str) -> tuple[Path, int]:
    """STORE:ID"""
    from beaver.traffic.runtime.restore import parse
    try:
        return parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def event_log(args: argparse.Namespace, in_group: bool) -> EventLog | NoLog:
    if not args.log:
        return NoLog()
    return EventLog(args.log, args.name, in_group, getattr(args, "mode", None))


def print_summary(name: str, summary: dict):
    print(json.dumps({"process": name, **summary}), flush=True)


def run_in_group(args: argparse.Namespace,
                 make_app: Callable[[Runtime | TcpRuntime], App]):
    """Serves until SIGTERM/SIGINT, then stops and closes the log.  A restore
    that is refused ends the process with that one line (status 1)."""
    setup_logging()
    # Requests and the snapshot path (a report being encoded, a COUNT)
    # share one interpreter, and a thread waits for the GIL up to the
    # switch interval: 5 ms by default, a request's whole latency many times.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    stop = stop_on_signals()
    from_snapshot = None
    if args.restore is not None:
        from beaver.traffic.runtime import restore   # the controller's store: only a restored process reads it
        try:
            from_snapshot = restore.load(*args.restore, args.name, [n for n, _ in args.peer],
                                         args.force)
        except restore.RestoreRefused as e:
            sys.exit(f"{args.name}: refused to restore: {e}")
    with event_log(args, in_group=True) as log:
        try:
            runtime = make_runtime(args, log)
        except (OSError, ValueError) as e:   # an address in use or not this host's, say
            sys.exit(f"{args.name}: {e}")
        app = make_app(runtime)
        if from_snapshot is not None:
            try:
                from_snapshot.check(app)
            except restore.RestoreRefused as e:
                sys.exit(f"{args.name}: refused to restore: {e}")
        try:
            runtime.serve(app, from_snapshot)
            logging.info("%s %s on %s (mode %s)", args.name,
                         "serving" if from_snapshot is None else
                         f"restored from snapshot {from_snapshot.number}, held until resumed",
                         args.dip, args.mode)
            while not stop.wait(0.5):   # wake now and then: the signal may land elsewhere
                pass
        finally:
            runtime.stop()   # before the log closes: no event comes after its end
    # The state it ended in: the ground truth of what came after the last snapshot.
    print_summary(args.name, {"drops": dict(runtime.drops), "final_state": app.local_state(),
                              **({"restored": from_snapshot.number} if from_snapshot else {})})


def make_runtime(args: argparse.Namespace, log) -> Runtime | TcpRuntime:
    common = dict(vips=args.vip, peers=dict(args.peer), mode=Mode(args.mode),
                  mgmt=(args.mgmt or args.dip, args.oob_port),
                  poll_interval=args.poll_interval, count_interval=args.count_interval, log=log)
    if args.transport == "udp":
        return Runtime(args.name, args.dip, slbs=args.slb, **common)
    from beaver.traffic.runtime.flowmap import FlowIds   # libbpf: only where the kernel program runs
    if args.newest_map is not None and args.flow_map is None:
        raise ValueError("--newest-map needs the --flow-map it goes with")
    flow_ids = None if args.flow_map is None else FlowIds(args.flow_map, args.newest_map)
    return TcpRuntime(args.name, args.dip, flow_ids=flow_ids, **common)


def out_group_parser(description: str) -> argparse.ArgumentParser:
    p = Parser(description=description)
    p.add_argument("--name", required=True, help="this process's name, unique in the run")
    p.add_argument("--bind", default="0.0.0.0", help="ip or ip:port to send from")
    p.add_argument("--log", default=None, help="ground-truth event log (JSON lines)")
    return p


@contextlib.contextmanager
def out_group_endpoint(args: argparse.Namespace) -> Iterator[Endpoint]:
    """The process's endpoint; its socket and its log close however the block ends."""
    setup_logging()
    bind = address(args.bind) if ":" in args.bind else (args.bind, 0)
    with event_log(args, in_group=False) as log:
        endpoint = Endpoint(args.name, bind, log)
        try:
            yield endpoint
        finally:
            endpoint.close()
