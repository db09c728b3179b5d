"""The `beaver` command.

Subcommand groups live in their own modules, each with a
`register(subcommands, common)` function listed in GROUPS; a new group
(`beaver experiment ...`) is one more module and one more line here.

A user's mistake (bad file, unreachable switch, wrong option) ends with one
line on stderr and a non-zero exit; only a bug shows a traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys
from importlib import metadata
from typing import Sequence

from beaver.control.cli import ctl as cli_ctl
from beaver.control.cli import experiment as cli_experiment
from beaver.control.cli import snapshot as cli_snapshot
from beaver.control.cli.common import USER_ERRORS, CliError, Parser, check_common, common_options


def build_parser() -> argparse.ArgumentParser:
    groups = [cli_ctl.register, cli_snapshot.register, cli_experiment.register]

    parser = Parser(
        prog="beaver", description="Beaver partial snapshots on P4 software load balancers.")
    parser.add_argument("--version", action="version",
                        version=f"beaver {metadata.version('beaver-p4')}")
    subcommands = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    common = common_options()
    for register in groups:
        register(subcommands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        check_common(args)
        return args.run(args) or 0
    except (CliError, *USER_ERRORS) as e:
        print(f"beaver: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("beaver: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
