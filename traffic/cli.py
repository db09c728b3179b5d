"""How every process is started from the command line: address flags, the
event log, and a clean stop on SIGTERM or SIGINT (logs flushed).

In-group applications share the runtime's flags (`in_group_parser`, then
`run_in_group`); out-group processes share name, bind address and log.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Callable

from beaver.control.oob import OOB_PORT

from .eventlog import EventLog
from .outgroup import Endpoint
from .runtime import App, Runtime
from .snapshots import Mode


def address(text: str) -> tuple[str, int]:
    """ip:port"""
    ip, sep, port = text.rpartition(":")
    if not sep or not ip or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not ip:port")
    return ip, int(port)


def peer(text: str) -> tuple[str, str]:
    """name=ip"""
    name, sep, ip = text.partition("=")
    if not sep or not name or not ip:
        raise argparse.ArgumentTypeError(f"{text!r} is not name=ip")
    return name, ip


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
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--name", required=True, help="this process's name, unique in the run")
    p.add_argument("--dip", required=True, help="data address: binds UDP DIP:4790")
    p.add_argument("--vip", type=address, action="append", default=[],
                   help="ip:port of a VIP this process serves (replies leave from it)")
    p.add_argument("--peer", type=peer, action="append", default=[],
                   help="name=ip of an in-group peer (repeat)")
    p.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.BEAVER.value)
    p.add_argument("--mgmt", default=None, help="management address for the OOB server "
                   "(default: the DIP)")
    p.add_argument("--oob-port", type=int, default=OOB_PORT)
    p.add_argument("--poll-interval", type=float, default=None,
                   help="seconds between snapshots in polling mode")
    p.add_argument("--log", default=None, help="ground-truth event log (JSON lines)")
    return p


def run_in_group(args: argparse.Namespace, make_app: Callable[[Runtime], App]):
    """Serves until SIGTERM/SIGINT, then stops and flushes the log."""
    setup_logging()
    stop = stop_on_signals()
    log = EventLog(args.log, args.name, in_group=True, mode=args.mode) if args.log else None
    runtime = Runtime(args.name, args.dip, vips=args.vip, peers=dict(args.peer),
                      mode=Mode(args.mode), mgmt=(args.mgmt or args.dip, args.oob_port),
                      poll_interval=args.poll_interval, log=log)
    runtime.serve(make_app(runtime))
    logging.info("%s serving on %s (mode %s)", args.name, args.dip, args.mode)
    while not stop.wait(0.5):   # wake now and then: the signal may land on another thread
        pass
    runtime.stop()
    if log:
        log.close()
    print(json.dumps({"process": args.name, "drops": dict(runtime.drops)}), flush=True)


def out_group_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--name", required=True, help="this process's name, unique in the run")
    p.add_argument("--bind", default="0.0.0.0", help="ip or ip:port to send from")
    p.add_argument("--log", default=None, help="ground-truth event log (JSON lines)")
    return p


def out_group_endpoint(args: argparse.Namespace) -> tuple[Endpoint, EventLog | None]:
    setup_logging()
    bind = address(args.bind) if ":" in args.bind else (args.bind, 0)
    log = EventLog(args.log, args.name, in_group=False) if args.log else None
    return Endpoint(args.name, bind, log), log


def out_group_done(name: str, endpoint: Endpoint, log: EventLog | None, summary: dict):
    """Closes the socket and the log, then prints the JSON summary."""
    endpoint.close()
    if log:
        log.close()
    print(json.dumps({"process": name, **summary}), flush=True)
