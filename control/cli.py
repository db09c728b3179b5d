"""The `beaver` command.

Subcommand groups live in their own modules, each with a
`register(subcommands, common)` function listed in GROUPS; a new group
(`beaver experiment ...`) is one more module and one more line here.

A user's mistake (bad file, unreachable switch, wrong option) ends with one
line on stderr and a non-zero exit; only a bug shows a traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from .config import ConfigError, ServiceConfig, load
from .controller import Controller
from .engine import SettingsError
from .reports import ProcessFailed
from .session import SwitchError
from .slb import RequestTimeout
from .store import SnapshotStore, StoreError

DEFAULT_CONFIG = "beaver.toml"
USER_ERRORS = (ConfigError, SwitchError, StoreError, SettingsError, RequestTimeout,
               ProcessFailed)


class CliError(Exception):
    """A mistake in how the command was called."""


def common_options() -> argparse.ArgumentParser:
    """Options every command that reaches the service accepts."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", metavar="FILE",
                        help=f"service configuration, TOML (default: $BEAVER_CONFIG "
                             f"or ./{DEFAULT_CONFIG})")
    common.add_argument("--election-id", type=int, metavar="N",
                        help="P4Runtime election ID (default: from the configuration)")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return common


def config_of(args: argparse.Namespace) -> ServiceConfig:
    return load(args.config or os.environ.get("BEAVER_CONFIG") or DEFAULT_CONFIG)


def open_store(args: argparse.Namespace, config: ServiceConfig | None = None,
               existing: bool = False) -> SnapshotStore:
    """The store named by --store, else the configuration's; with existing,
    a missing file is an error rather than a new empty store."""
    path = getattr(args, "store", None)
    if path is None:
        path = (config or config_of(args)).controller.store
    if existing and not Path(path).exists():
        raise CliError(f"no snapshot store at {path}")
    return SnapshotStore(path)


@contextmanager
def connected(args: argparse.Namespace, config: ServiceConfig,
              retries: int | None = None) -> Iterator[Controller]:
    controller = Controller(config, args.election_id)
    try:
        controller.connect(retries)
        yield controller
    finally:
        controller.close()


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r]
                                           for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in cells)


def print_json(value):
    print(json.dumps(value, indent=2, default=str))


def build_parser() -> argparse.ArgumentParser:
    from . import cli_ctl, cli_experiment, cli_snapshot
    groups = [cli_ctl.register, cli_snapshot.register, cli_experiment.register]

    parser = argparse.ArgumentParser(
        prog="beaver", description="Beaver partial snapshots on P4 software load balancers.")
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
        return args.run(args) or 0
    except (CliError, *USER_ERRORS) as e:
        print(f"beaver: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("beaver: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
