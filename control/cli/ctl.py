"""`beaver ctl ...`: the switches themselves.

    beaver ctl status [-c CONFIG] [--json]     each SLB: reachable, primary,
                                              pipeline, current ID, clock offset
    beaver ctl apply CONFIG [--push]           push the pipeline where missing
                                              (always with --push) and write
                                              the tables the file describes
"""
from __future__ import annotations

import argparse
from dataclasses import asdict

from beaver.control.cli.common import config_of, connected, print_json, table
from beaver.control.config import load
from beaver.control.slbs.fleet import SlbFleet


def register(subcommands, common: argparse.ArgumentParser):
    ctl = subcommands.add_parser("ctl", help="the SLB switches: status, programming")
    commands = ctl.add_subparsers(dest="command", metavar="COMMAND", required=True)

    status = commands.add_parser("status", parents=[common],
                                 help="each SLB: reachable, pipeline, current ID, clock")
    status.set_defaults(run=run_status)

    apply = commands.add_parser("apply", parents=[common],
                                help="program every SLB from a configuration file")
    apply.add_argument("config_file", metavar="CONFIG")
    apply.add_argument("--push", action="store_true",
                       help="push the pipeline even where it is installed (resets registers)")
    apply.set_defaults(run=run_apply)


def run_status(args) -> int:
    controller = SlbFleet(config_of(args), args.election_id)
    try:
        states = controller.status()   # connects each SLB itself: one down is reported
    finally:
        controller.close()
    if args.json:
        print_json([asdict(s) for s in states])
    else:
        rows = []
        for s in states:
            offset = (f"{s.offset_us:.0f} +- {s.offset_error_us:.1f}"
                      if s.offset_us is not None else None)
            source = (f"{s.clock_source}, {s.clock_samples} samples"
                      + ("" if s.clock_source == "probe" else " (no probe port)")
                      if s.clock_source else None)
            rows.append((s.name, s.address, "yes" if s.reachable else "no",
                         "yes" if s.primary else "no", "beaver" if s.pipeline else "missing",
                         s.current_id, {True: "yes", False: "no"}.get(s.holding),
                         offset, source, s.error or ""))
        print(table(("SLB", "ADDRESS", "UP", "PRIMARY", "PIPELINE", "ID", "HOLDING",
                     "CLOCK OFFSET US", "CLOCK", "NOTE"), rows))
    return 0 if all(s.reachable and not s.error for s in states) else 1


def run_apply(args) -> int:
    config = load(args.config_file)
    with connected(args, config) as controller:
        done = controller.apply(push=args.push)
    if args.json:
        print_json(done)
    else:
        print("\n".join(done))
    return 0
