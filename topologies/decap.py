"""Loads the kernel decapsulation program (traffic/runtime/bpf/decap.c) on a host's
data interface, and removes it.

    decap = attach(host.cmd, "bvi1-eth0", slbs=["10.0.0.11", "10.0.0.12"])
    decap.maps["flow_ids"]      # the map id the host's runtime reads
    detach(host.cmd, "bvi1-eth0")

On another server (topologies/cluster.py) the maps are that server's
kernel's, which this machine cannot open: `attach_there(host.cmd, ...)`
runs this module there, in the host's namespace (`python -m
beaver.topologies.decap attach IFACE SLB...`), which loads the object of
that server's checkout and fills the maps, and answers one JSON line.

`run` runs a shell command in the host's network namespace and returns its
output (a Mininet host's cmd).  The object is built beside its source with
clang and libbpf's headers (`make`, or `python -m beaver.topologies.decap`,
or an experiment run that finds it missing); it is never committed.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from beaver.traffic.runtime import flowmap

OBJECT = Path(flowmap.__file__).parent / "bpf" / "build" / "decap.o"
SOURCE = OBJECT.parent.parent / "decap.c"
SECTION = "tc"
# -mcpu=v3: the compare-and-swap that never lowers a flow's ID.
CLANG = ("clang", "-O2", "-g", "-target", "bpf", "-mcpu=v3")

Run = Callable[..., str]


class DecapError(RuntimeError):
    """The program cannot be loaded here; the message says why."""


@dataclass(frozen=True)
class Decap:
    iface: str
    prog_id: int
    maps: dict[str, int]      # name -> map id
    there: Run | None = field(default=None, compare=False)   # its server's shell; None: here

    def counters(self) -> dict[str, int]:
        if self.there is None:
            return flowmap.counters(self.maps["decap_counts"])
        answer = _answer(self.there(f"{_HERE} counters {self.maps['decap_counts']} 2>&1"),
                         f"the counters of {self.iface}")
        if not isinstance(answer, dict) or set(answer) != set(flowmap.COUNTERS) or \
                not all(type(v) is int for v in answer.values()):
            raise DecapError(f"the counters of {self.iface}: not {list(flowmap.COUNTERS)}: "
                             f"{str(answer)[:200]}")
        return answer


def stale() -> bool:
    """The object is missing, or older than its source."""
    return not OBJECT.exists() or OBJECT.stat().st_mtime < SOURCE.stat().st_mtime


def build() -> Path:
    """Compiles the source into OBJECT."""
    include = f"-I/usr/include/{os.uname().machine}-linux-gnu"   # asm/types.h
    OBJECT.parent.mkdir(exist_ok=True)
    try:
        result = subprocess.run([*CLANG, include, "-c", str(SOURCE), "-o", str(OBJECT)],
                                capture_output=True, text=True)
    except FileNotFoundError:
        raise DecapError("clang is not installed (apt-get install clang libbpf-dev)") from None
    if result.returncode != 0:
        raise DecapError(f"clang could not build {SOURCE}: "
                         f"{' | '.join(result.stderr.strip().splitlines()[-3:])}")
    return OBJECT


def missing() -> str | None:
    """Why the program cannot be loaded on this machine, or None."""
    if not OBJECT.exists():
        return f"{OBJECT} is not built (make, or python -m beaver.topologies.decap; " \
               "apt-get install clang libbpf-dev)"
    if stale():
        return f"{OBJECT} is older than {SOURCE.name}: run make"
    try:
        flowmap.lib()
    except flowmap.BpfError as e:
        return str(e)
    return None


def attach(run: Run, iface: str, slbs) -> Decap:
    """Loads the program on iface's ingress and tells it the SLB addresses."""
    if (reason := missing()) is not None:
        raise DecapError(reason)
    dev = shlex.quote(iface)
    out = run(f"tc qdisc replace dev {dev} clsact 2>&1 && tc filter replace dev {dev} ingress "
              f"pref 1 bpf direct-action obj {shlex.quote(str(OBJECT))} sec {SECTION} 2>&1 "
              "&& echo loaded")
    if not out.rstrip().endswith("loaded"):
        raise DecapError(f"tc cannot load the decapsulation program on {iface}: "
                         f"{' | '.join(out.strip().splitlines()[-6:])} (this needs root, "
                         "a kernel with BPF syscalls, cls_bpf and the clsact qdisc)")
    prog_id = _prog_id(run(f"tc -j filter show dev {dev} ingress"), iface)
    maps = flowmap.program_maps(prog_id)
    if set(maps) != set(flowmap.MAP_NAMES):
        raise DecapError(f"program {prog_id} on {iface} has maps {sorted(maps)}, "
                         f"expected {sorted(flowmap.MAP_NAMES)}")
    flowmap.add_slbs(maps["slb_addrs"], slbs)
    return Decap(iface, prog_id, maps)


# this module, by the python running here: another server has the checkout
# and its venv at the same paths (docs/servers.md)
_HERE = f"{shlex.quote(sys.executable)} -m beaver.topologies.decap"


def attach_there(run: Run, iface: str, slbs) -> Decap:
    """attach, on the server whose shell in the host's namespace is `run`."""
    words = " ".join(shlex.quote(w) for w in (iface, *slbs))
    answer = _answer(run(f"{_HERE} attach {words} 2>&1"), f"loading it on {iface}")
    if not isinstance(answer, dict) or type(answer.get("prog_id")) is not int or \
            not isinstance(answer.get("maps"), dict):
        raise DecapError(f"loading it on {iface}: no program id and maps in "
                         f"{str(answer)[:200]}")
    prog_id, maps = answer["prog_id"], answer["maps"]
    if set(maps) != set(flowmap.MAP_NAMES) or not all(type(v) is int for v in maps.values()):
        raise DecapError(f"program {prog_id} on {iface} has maps {maps}, "
                         f"expected {sorted(flowmap.MAP_NAMES)}")
    return Decap(iface, prog_id, maps, there=run)


def _answer(out: str, what: str):
    """The JSON line this module printed on the other server, or its one error line."""
    last = out.strip().splitlines()[-1:] or [""]
    try:
        return json.loads(last[0])
    except json.JSONDecodeError:
        raise DecapError(f"{what} on its server: {last[0][:300] or 'no answer'}") from None


def _prog_id(tc_json: str, iface: str) -> int:
    try:
        for entry in json.loads(tc_json):
            prog = entry.get("options", {}).get("prog", {})
            if prog.get("name") == "beaver_decap":
                return int(prog["id"])
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        pass
    raise DecapError(f"no beaver_decap program on {iface}'s ingress after loading it: "
                     f"{tc_json.strip()[:300]}")


def detach(run: Run, iface: str):
    """Removes the program (and its maps, once nothing holds them)."""
    run(f"tc qdisc del dev {shlex.quote(iface)} clsact 2>/dev/null")


def _shell(command: str) -> str:
    """command in this namespace (the host's, when run through its shell)."""
    done = subprocess.run(command, shell=True, capture_output=True, text=True)
    return done.stdout + done.stderr


def main(argv: list[str]) -> None:
    """(no arguments): build the object; `attach IFACE SLB...`; `counters MAP_ID`.
    The last two print one JSON line (attach_there and Decap.counters read it)."""
    if not argv:
        print(build())
    elif argv[0] == "attach" and len(argv) >= 3:
        if stale():   # as an experiment run builds it on the first server
            build()
        loaded = attach(_shell, argv[1], argv[2:])
        print(json.dumps({"prog_id": loaded.prog_id, "maps": loaded.maps}))
    elif argv[0] == "counters" and len(argv) == 2 and argv[1].isdigit():
        print(json.dumps(flowmap.counters(int(argv[1]))))
    else:
        raise DecapError("usage: python -m beaver.topologies.decap "
                         "[attach IFACE SLB... | counters MAP_ID]")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (DecapError, OSError) as e:
        sys.exit(f"decap: {os.uname().nodename}: {e}")
