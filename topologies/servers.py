"""The servers a run spreads over, and where each node of a network goes.

    beaver experiment run NAME --servers localhost,box2 [--placement bvs1=box2,bvi3=box2]

The first server is the one `beaver` runs on: the controller (bvctl, the
root namespace's ends of the management network and the probe links), the
border router, the out-group hosts, the checker and the results stay there.
SLBs and in-group hosts are dealt round-robin over the servers in order
(bvs1 and bvi1 on the first, bvs2 and bvi2 on the second, ...), so every
service with more replicas than servers has some on each.  --placement
moves named SLBs and hosts to named servers.  One server, the default, is
today's single-host network and nothing else (topologies/experiment.py).
See docs/servers.md.
"""
from __future__ import annotations

import contextvars
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field

from beaver.topologies.spec import Plan

LOCAL = "localhost"
SSH_CONFIG_ENV = "BEAVER_SSH_CONFIG"   # an ssh_config for the servers (default: ~/.ssh's)
MOST_SERVERS = 64
# A host name or IPv4 address as ssh takes it (no user@, no options: "-o..." is not a server).
_SERVER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# What --placement may move: SLBs (bvs), in-group (bvi) and out-group (bvo) hosts.
_MOVABLE = re.compile(r"bv[sio][1-9][0-9]{0,2}")
_FIRST_ONLY = {"bvctl": "the controller", "bvbr": "the border router"}


class ServersError(ValueError):
    """--servers or --placement say something that cannot be."""


@dataclass(frozen=True)
class Servers:
    names: tuple[str, ...] = (LOCAL,)
    moves: dict[str, str] = field(default_factory=dict)   # --placement: node -> server

    @property
    def first(self) -> str:
        return self.names[0]

    @property
    def single(self) -> bool:
        return len(self.names) == 1

    def place(self, plan: Plan) -> dict[str, str]:
        """Every node of plan -> its server (see the module's docstring)."""
        unknown = sorted(set(self.moves) - _nodes(plan))
        if unknown:
            raise ServersError(f"--placement names {', '.join(unknown)}, which this network "
                               f"has not (its nodes: {_describe(plan)})")
        where = {"bvctl": self.first, "bvbr": self.first}
        for index, name in enumerate(plan.slb_fabric):
            where[name] = self.names[index % len(self.names)]
        for index, name in enumerate(plan.ingroup):
            where[name] = self.names[index % len(self.names)]
        for name in plan.outgroup:
            where[name] = self.first
        where.update(self.moves)
        return where


ONE = Servers()


def parse_servers(text: str) -> tuple[str, ...]:
    """--servers a,b,...: the first must be this machine."""
    names = [part.strip() for part in text.split(",")]
    if any(not name for name in names):
        raise ServersError(f"--servers {text!r}: an empty name (give a,b,... without gaps)")
    for name in names:
        if not _SERVER.fullmatch(name):
            raise ServersError(f"--servers: {name!r} is not a host name or IPv4 address")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ServersError(f"--servers names {', '.join(repeated)} more than once")
    if len(names) > MOST_SERVERS:
        raise ServersError(f"--servers: {len(names)} servers, at most {MOST_SERVERS}")
    if not is_this_machine(names[0]):
        raise ServersError(f"--servers: the first server, {names[0]}, must be this machine "
                           f"(the controller, checker and results run where beaver runs): "
                           f"put {LOCAL} first")
    return tuple(names)


def parse_placement(text: str, servers: tuple[str, ...]) -> dict[str, str]:
    """--placement node=server,...: SLBs and hosts onto servers of --servers."""
    moves: dict[str, str] = {}
    for part in text.split(","):
        node, equals, server = (piece.strip() for piece in part.partition("="))
        if not equals or not node or not server:
            raise ServersError(f"--placement: {part.strip()!r} is not node=server")
        if node in _FIRST_ONLY:
            raise ServersError(f"--placement: {node} ({_FIRST_ONLY[node]}) runs on the first "
                               f"server, where beaver runs")
        if not _MOVABLE.fullmatch(node):
            raise ServersError(f"--placement: {node!r} is no SLB (bvsN) or host (bviN, bvoN)")
        if server not in servers:
            raise ServersError(f"--placement: {node}={server}, but {server} is not in "
                               f"--servers ({','.join(servers)})")
        if node in moves:
            raise ServersError(f"--placement places {node} twice")
        moves[node] = server
    return moves


def parse(servers: str | None, placement: str | None) -> Servers:
    """The options as given (None: not given)."""
    if servers is None:
        if placement is not None:
            raise ServersError("--placement needs --servers")
        return ONE
    names = parse_servers(servers)
    return Servers(names, parse_placement(placement, names) if placement is not None else {})


def is_this_machine(name: str) -> bool:
    """localhost, a loopback address, or this machine's own name."""
    return (name == LOCAL or name.startswith("127.")
            or name in (socket.gethostname(), socket.getfqdn()))


# -- the servers of the run under way -------------------------------------------

# Set once by `beaver experiment run` for the whole run: every Run (one per
# phase, built inside each experiment's module) spreads over the same servers.
_chosen: contextvars.ContextVar[Servers] = contextvars.ContextVar("servers", default=ONE)


def chosen() -> Servers:
    return _chosen.get()


@contextmanager
def using(servers: Servers):
    token = _chosen.set(servers)
    try:
        yield servers
    finally:
        _chosen.reset(token)


def _nodes(plan: Plan) -> set[str]:
    return {*plan.slb_fabric, *plan.ingroup, *plan.outgroup}


def _describe(plan: Plan) -> str:
    groups = (list(plan.slb_fabric), list(plan.ingroup), list(plan.outgroup))
    return "; ".join(f"{g[0]}..{g[-1]}" if len(g) > 1 else g[0] for g in groups if g)
