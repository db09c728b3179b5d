"""What every `beaver` subcommand group shares: the common options, the
configuration and store they name, a connected controller, and output as
tables or JSON."""
from __future__ import annotations

import argparse
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from beaver.control.config import ELECTION_ID_MAX, ConfigError, ServiceConfig, load
from beaver.control.slbs.fleet import SlbFleet
from beaver.control.engine.engine import SettingsError
from beaver.traffic.oob.links import ProcessFailed
from beaver.control.p4runtime.session import SwitchError
from beaver.control.slbs.requests import RequestTimeout
from beaver.control.store import SnapshotStore, StoreError

DEFAULT_CONFIG = "beaver.toml"
USER_ERRORS = (ConfigError, SwitchError, StoreError, SettingsError, RequestTimeout,
               ProcessFailed)


class CliError(Exception):
    """A mistake in how the command was called."""


class Parser(argparse.ArgumentParser):
    """Says what is wrong in one line; --help shows the usage.  Subcommands'
    parsers are of the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


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


def check_common(args: argparse.Namespace):
    """The common options' numbers, before anything is opened."""
    election_id = getattr(args, "election_id", None)
    if election_id is not None and not 1 <= election_id <= ELECTION_ID_MAX:
        raise CliError(f"--election-id must be 1 to {ELECTION_ID_MAX} (a P4Runtime election "
                       f"ID, as in the configuration), got {election_id}")


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("BEAVER_CONFIG") or DEFAULT_CONFIG)


def config_of(args: argparse.Namespace) -> ServiceConfig:
    return load(config_path(args))


def open_store(args: argparse.Namespace, config: ServiceConfig | None = None,
               read_only: bool = False) -> SnapshotStore:
    """The store named by --store, else the configuration's; read_only (for
    the commands that only read): a missing file is an error rather than a
    new empty store, and nothing is written."""
    path = getattr(args, "store", None)
    if path is None:
        path = (config or config_of(args)).controller.store
    if read_only and not Path(path).exists():
        raise CliError(f"no snapshot store at {path}")
    return SnapshotStore(path, read_only=read_only)


@contextmanager
def connected(args: argparse.Namespace, config: ServiceConfig,
              retries: int | None = None) -> Iterator[SlbFleet]:
    controller = SlbFleet(config, args.election_id)
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
