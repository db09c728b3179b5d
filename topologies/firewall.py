"""Keeps the host's iptables FORWARD chain off the network's bridges.

Where br_netfilter is loaded with net.bridge.bridge-nf-call-iptables = 1
(dockerd loads it and sets it), every IPv4 frame a Linux bridge forwards
crosses iptables' FORWARD chain as if it were routed, and dockerd sets that
chain's policy to DROP: the management network, the fabric and the internet
bridge would carry nothing.  So while a network runs, each of its bridges
has one rule at the head of FORWARD,

    -i BRIDGE -o BRIDGE -m comment --comment beaver-p4 -j ACCEPT

in every iptables backend (nf_tables, legacy) whose FORWARD chain is not
the kernel's default (policy ACCEPT, no rules).  Frames from one port of a
bridge to another are all such a rule accepts: nothing is routed through the
root namespace.  close() deletes exactly the rules it added, and the policy
is never changed; `beaver experiment cleanup` deletes any rule with that
comment that a killed run left (remove_leftovers).

A firewall that drops those frames elsewhere (an nftables table of its own,
iptables' raw or mangle table) is not overridden: blocked() finds what it
stops, and the network fails with one line that names the cause and the fix.
"""
from __future__ import annotations

import errno
import logging
import select
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

COMMENT = "beaver-p4"
LEGACY_TABLES = Path("/proc/net/ip_tables_names")
BRIDGE_CALLS_IPTABLES = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


class FirewallError(RuntimeError):
    """An iptables command failed; the message is iptables' own."""


def backends() -> list[str]:
    """The iptables commands whose tables the kernel may hold: the nf_tables
    one, and the legacy one only where legacy tables are loaded (listing
    them would load them)."""
    found = []
    nft = shutil.which("iptables-nft") or shutil.which("iptables")
    if nft:
        found.append(nft)
    legacy = shutil.which("iptables-legacy")
    if legacy and legacy != nft and _legacy_filter_loaded():
        found.append(legacy)
    return found


def _legacy_filter_loaded() -> bool:
    try:
        return "filter" in LEGACY_TABLES.read_text().split()
    except OSError:
        return False


def _iptables(backend: str, *args: str) -> str:
    result = subprocess.run([backend, "-w", "5", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise FirewallError(f"{Path(backend).name} {' '.join(args)}: "
                            f"{(result.stderr or result.stdout).strip()}")
    return result.stdout


def forward_rules(backend: str) -> list[str]:
    """FORWARD as `iptables -S` prints it: the policy line, then each rule."""
    return [line for line in _iptables(backend, "-S", "FORWARD").splitlines()
            if line.startswith(("-P", "-A"))]


def policy(backend: str) -> str:
    (line,) = [line for line in forward_rules(backend) if line.startswith("-P")]
    return line.split()[-1]


def _pristine(rules: list[str]) -> bool:
    return rules == ["-P FORWARD ACCEPT"]


def rule_for(bridge: str) -> list[str]:
    return ["-i", bridge, "-o", bridge, "-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"]


@dataclass
class BridgeAllowance:
    """The rules one network added; close() deletes them (once)."""
    added: list[tuple[str, list[str]]] = field(default_factory=list)   # (backend, rule)

    def close(self):
        while self.added:
            backend, rule = self.added.pop()
            try:
                _iptables(backend, "-D", "FORWARD", *rule)
            except FirewallError as e:   # deleted by someone else: nothing left to undo
                log.warning("%s", e)


def allow_bridges(bridges) -> BridgeAllowance:
    """Accepts what each bridge forwards, in every backend whose FORWARD
    chain could stop it.  On an error, the rules added so far are deleted."""
    allowance = BridgeAllowance()
    try:
        for backend in backends():
            if _pristine(forward_rules(backend)):
                continue
            for bridge in bridges:
                rule = rule_for(bridge)
                _iptables(backend, "-I", "FORWARD", "1", *rule)
                allowance.added.append((backend, rule))
    except BaseException:
        allowance.close()
        raise
    if allowance.added:
        log.info("accepting what %s forward (%d iptables rules, comment %s)",
                 ", ".join(bridges), len(allowance.added), COMMENT)
    return allowance


def leftover_rules() -> list[tuple[str, list[str]]]:
    """Rules with COMMENT in FORWARD, in every backend: (backend, rule)."""
    found = []
    for backend in backends():
        try:
            rules = forward_rules(backend)
        except FirewallError:
            continue
        for line in rules:
            words = shlex.split(line)
            if words[:2] == ["-A", "FORWARD"] and COMMENT in words:
                found.append((backend, words[2:]))
    return found


def remove_leftovers() -> int:
    """Deletes every FORWARD rule with COMMENT; returns how many."""
    removed = 0
    for backend, rule in leftover_rules():
        try:
            _iptables(backend, "-D", "FORWARD", *rule)
            removed += 1
        except FirewallError as e:
            log.warning("%s", e)
    return removed


def blocked(addresses, port: int = 9, timeout: float = 3.0) -> list[str]:
    """The addresses a TCP connection from this namespace cannot reach within
    timeout.  Nothing need listen: a refusal (the host's RST) proves the path
    both ways as well as an answer does; silence is what a dropping firewall
    leaves."""
    pending: dict[socket.socket, str] = {}
    for address in addresses:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((address, port))
        pending[s] = address
    stuck = []
    deadline = time.monotonic() + timeout
    try:
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            _, done, _ = select.select([], list(pending), [], left)
            for s in done:
                address = pending.pop(s)
                code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code not in (0, errno.ECONNREFUSED):
                    stuck.append(address)   # unreachable, no route: not an answer
                s.close()
        stuck.extend(pending.values())
    finally:
        for s in pending:
            s.close()
    return sorted(stuck, key=lambda a: tuple(int(x) for x in a.split(".")))


def bridges_filtered() -> bool:
    """Whether bridged IPv4 crosses iptables here (br_netfilter's switch)."""
    try:
        return BRIDGE_CALLS_IPTABLES.read_text().strip() == "1"
    except OSError:
        return False
