"""`beaver experiment ...`: the Mininet experiments (topologies/experiments).

    beaver experiment list
    beaver experiment run NAME [--out DIR] [options of NAME]
    beaver experiment cleanup [--servers A,B,...]   what a killed run left behind

A run builds its networks, runs the workload while taking snapshots, stops
everything (also on Ctrl-C or SIGTERM), checks every snapshot against the
ground truth, and writes a results folder: the spec, raw logs, CSV, JSON and
PNG.  It needs root, Mininet and BMv2.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
from contextlib import contextmanager

from beaver.control.cli.common import CliError, Parser, print_json, table
from beaver.topologies import lock, servers
from beaver.topologies.experiments import EXPERIMENTS, load


def register(subcommands, common: argparse.ArgumentParser):
    experiment = subcommands.add_parser("experiment", help="run the Mininet experiments")
    commands = experiment.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("list", help="the experiments").set_defaults(run=run_list)
    cleanup = commands.add_parser("cleanup", help="remove what a killed run left behind")
    cleanup.add_argument("--servers", metavar="A,B,...",
                         help="the run's --servers: clean each of them too, over ssh "
                              "(default: this machine only)")
    cleanup.set_defaults(run=run_cleanup)
    run = commands.add_parser(
        "run", help="run one experiment",
        description="Runs one experiment; `beaver experiment run NAME --help` lists its options.")
    run.add_argument("name", metavar="NAME", choices=list(EXPERIMENTS),
                     help=f"one of: {', '.join(EXPERIMENTS)}")
    run.add_argument("options", nargs=argparse.REMAINDER, help="the options of NAME")
    run.set_defaults(run=run_experiment)


def experiment_parser(name: str):
    """NAME's own options, from its module: imported only now, as it needs Mininet."""
    try:
        module = load(name)
    except ImportError as e:
        raise CliError(f"experiments need Mininet (apt-get install mininet): {e}") from None
    p = Parser(prog=f"beaver experiment run {name}", description=EXPERIMENTS[name])
    p.add_argument("--out", default="results", help="results root (default ./results)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--servers", metavar="A,B,...",
                   help="spread the network over these servers, this machine first "
                        "(default: this machine only; docs/servers.md)")
    p.add_argument("--placement", metavar="NODE=SERVER,...",
                   help="put these SLBs (bvsN) and hosts (bviN, bvoN) on these servers "
                        "(default: SLBs and in-group hosts round-robin)")
    module.add_arguments(p)
    p.set_defaults(module=module)
    return p


def run_list(args) -> int:
    print(table(("experiment", "what"), list(EXPERIMENTS.items())))
    return 0


@contextmanager
def machine(command: list[str]):
    """The machine's run lock (topologies/lock.py), held for command; one line
    if another run holds it."""
    try:
        with lock.holding(shlex.join(["beaver", *command])):
            yield
    except lock.LockError as e:   # only taking the lock raises it
        raise CliError(str(e)) from None


def run_cleanup(args) -> int:
    try:
        others = servers.parse(args.servers, None).names[1:] if args.servers else ()
    except servers.ServersError as e:
        raise CliError(str(e)) from None
    from beaver.topologies.cleanup import CleanupError, cleanup, cleanup_server
    with machine(["experiment", "cleanup"]):
        processes, links = cleanup()
    print(f"removed {processes} process(es) and {links} link(s)")
    failed = []
    for server in others:
        try:
            print(f"{server}: {cleanup_server(server)}")
        except CleanupError as e:
            failed.append(str(e))
    if failed:
        raise CliError("; ".join(failed))
    return 0


def missing_requirement() -> str | None:
    if os.geteuid() != 0:
        return "experiments need root (Mininet makes namespaces and veth pairs)"
    from beaver.topologies.bmv2 import BINARY
    for tool, where in ((BINARY, "BMv2, e.g. from the Docker image; or name one in "
                                 "BEAVER_BMV2"),
                        ("mn", "Mininet: apt-get install mininet")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed ({where})"
    return None


def run_experiment(args) -> int:
    command = ["experiment", "run", args.name, *args.options]
    args = experiment_parser(args.name).parse_args(args.options, argparse.Namespace(**vars(args)))
    try:
        args.spread = servers.parse(args.servers, args.placement)
    except servers.ServersError as e:
        raise CliError(str(e)) from None
    with machine(command):
        return _run(args)


def _run(args) -> int:
    """The run itself, the machine's lock held."""
    if (problem := missing_requirement()) is not None:
        raise CliError(problem)
    from beaver.topologies import cores, decap
    from beaver.topologies.bmv2 import Bmv2Error, bmv2_build
    from beaver.topologies.cleanup import cleanup
    from beaver.topologies.experiments.common.results import Results
    from beaver.topologies.network import NetworkError
    from beaver.topologies.processes import ProcessError

    # SIGTERM unwinds like Ctrl-C, so every network is taken down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Ctrl-C takes the network down even when the run was started in the
    # background, where the shell leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results = Results(args.out, args.name)
    build = bmv2_build()
    results.progress(f"results in {results.dir}; BMv2: {build}")
    (results.dir / "bmv2.txt").write_text(build + "\n")
    try:
        if decap.stale():   # an installed wheel ships the source only
            results.progress(f"built the kernel decapsulation program: {decap.build()}")
        with servers.using(args.spread):
            summary = args.module.run(args, results)
    except (NetworkError, ProcessError, Bmv2Error, decap.DecapError,
            cores.PlacementError) as e:   # one line, as any user error
        raise CliError(f"{args.name}: {e}") from None
    finally:
        cleanup()
    results.write_json(summary, f"{args.name}-summary")
    if args.json:
        print_json(summary)
    elif summary:
        headers = list(dict.fromkeys(k for row in summary for k in row))
        print(table(headers, [[_cell(row.get(h)) for h in headers] for row in summary]))
    # --json: standard output is the summary alone, for jq and json.load
    print(f"results: {results.dir}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _cell(value):
    return f"{value:.4g}" if isinstance(value, float) else value
