"""Removes what a killed experiment left behind: its processes, its Mininet
host shells (and with them their namespaces), its links and bridges, and
the iptables rules that let its bridges forward (topologies/firewall.py).

Everything an experiment makes is named with NODE_PREFIX (its rules carry
firewall.COMMENT), so nothing else on the machine is touched.  A run over
several servers (--servers) leaves its remote nodes on the others:
`cleanup_server` runs this same cleanup there, over ssh (not Mininet's
`mn -c`, which would take every Mininet network of that server down).
"""
from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from beaver.topologies import firewall
from beaver.topologies.servers import SSH_CONFIG_ENV
from beaver.topologies.spec import NODE_PREFIX

log = logging.getLogger(__name__)

# Command lines of what an experiment starts: BMv2 on the SLBs' ports, the
# processes on its hosts, and Mininet's host shells.
LEFTOVER = re.compile(rf"(@{NODE_PREFIX}s\d+-eth|-m beaver\.traffic\.|mininet:{NODE_PREFIX})")


def leftover_processes() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if LEFTOVER.search(cmdline):
            found[int(entry.name)] = cmdline.strip()
    return found


def leftover_links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith(NODE_PREFIX)]


def leftover_rules() -> list[str]:
    """The FORWARD rules a network added and did not delete, as iptables prints them."""
    return [" ".join(rule) for _, rule in firewall.leftover_rules()]


def cleanup(grace: float = 2.0) -> tuple[int, int]:
    """Kills leftover processes (TERM, then KILL), deletes leftover links and
    FORWARD rules.  Returns (processes, links) removed; rules removed are logged
    (a warning: a run that ended deletes its own)."""
    processes = leftover_processes()
    for pid in processes:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in processes):
        time.sleep(0.1)
    for pid in processes:
        _signal(pid, signal.SIGKILL)
    links = leftover_links()
    for name in links:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
    if rules := firewall.remove_leftovers():
        log.warning("removed %d iptables FORWARD rule(s) with comment %s", rules,
                    firewall.COMMENT)
    return len(processes), len(links)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _signal(pid: int, sig: int):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class CleanupError(RuntimeError):
    """A cleanup on another server that did not run or failed."""


def cleanup_server(server: str, timeout: float = 120.0) -> str:
    """This cleanup on another server: `beaver experiment cleanup` there,
    over ssh ($BEAVER_SSH_CONFIG), from this checkout's python (every
    server has it at the same path, as runs across servers need).  What it
    printed; raises CleanupError, in one line, if it did not run or failed."""
    config = os.environ.get(SSH_CONFIG_ENV)
    command = shlex.join([sys.executable, "-m", "beaver.control.cli.main",
                          "experiment", "cleanup"])
    try:
        done = subprocess.run(["ssh", *(["-F", config] if config else []), "-o", "BatchMode=yes",
                               server, command], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CleanupError(f"{server}: cleanup did not finish within {timeout:.0f} s") from None
    said = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode != 0:
        raise CleanupError(f"{server}: cleanup failed (status {done.returncode}): "
                           f"{said[-1] if said else 'no output'}")
    return said[-1] if said else ""
