"""An in-group process given a bad argument, or an address it cannot bind,
says so in one line and serves nothing (issue 25, item 7)."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from beaver.traffic.runtime.eventlog import read_log

from tests.support.runtimes import dip, vip


def start(module: str, *args: str, log=None) -> subprocess.CompletedProcess:
    log_args = ["--log", str(log)] if log else []
    return subprocess.run([sys.executable, "-m", f"beaver.traffic.services.{module}",
                           "--name", "p1", *args, *log_args],
                          capture_output=True, text=True, timeout=30)


def one_line(process: subprocess.CompletedProcess) -> str:
    assert process.stdout == "" and process.stderr.count("\n") == 1, process.stderr
    return process.stderr.strip()


ARGUMENT_ERRORS = [
    ("kvstore", ["--dip", dip(1), "--oob-port", "70000"],
     "argument --oob-port: '70000' is not a port (0 to 65535)"),
    ("kvstore", ["--dip", dip(1), "--oob-port", "-1"],
     "argument --oob-port: '-1' is not a port (0 to 65535)"),
    ("kvstore", ["--dip", "999.1.1.1"], "argument --dip: '999.1.1.1' is not an IPv4 address"),
    ("kvstore", ["--dip", "notanip"], "argument --dip: 'notanip' is not an IPv4 address"),
    ("kvstore", ["--dip", dip(1), "--mgmt", "999.1.1.1"],
     "argument --mgmt: '999.1.1.1' is not an IPv4 address"),
    ("kvstore", ["--dip", dip(1), "--mgmt", "notanip"],
     "argument --mgmt: 'notanip' is not an IPv4 address"),
    ("kvstore", ["--dip", dip(1), "--peer", "p2=999.1.1.1"],
     "argument --peer: '999.1.1.1' is not an IPv4 address"),
    ("kvstore", ["--dip", dip(1), "--slb", "notanip"],
     "argument --slb: 'notanip' is not an IPv4 address"),
    ("kvstore", ["--dip", dip(1), "--vip", "notanip:7000"],
     "argument --vip: 'notanip' is not an IPv4 address"),
    ("kvstore", ["--dip", dip(1), "--mode", "polling", "--poll-interval", "-1"],
     "argument --poll-interval: '-1' is not a positive number of seconds"),
    ("kvstore", ["--dip", dip(1), "--mode", "polling", "--poll-interval", "nan"],
     "argument --poll-interval: 'nan' is not a positive number of seconds"),
    ("kvstore", ["--dip", dip(1), "--drop-every", "-1"],
     "argument --drop-every: '-1' is not an integer >= 0"),
    ("kvstore", ["--dip", dip(1), "--transport", "tcp", "--flow-map", "-1"],
     "argument --flow-map: '-1' is not an integer >= 0"),
    ("kvstore", ["--dip", dip(1), "--transport", "tcp", "--newest-map", "x"],
     "argument --newest-map: 'x' is not an integer >= 0"),
    ("bank", ["--dip", dip(1), "--shards", "p1", "--accounts", "-5"],
     "argument --accounts: '-5' is not an integer >= 1"),
    ("bank", ["--dip", dip(1), "--shards", "p1", "--initial", "-1"],
     "argument --initial: '-1' is not an integer >= 0"),
    ("bank", ["--dip", dip(1), "--shards", "p1", "--lose-every", "-2"],
     "argument --lose-every: '-2' is not an integer >= 0"),
]


@pytest.mark.parametrize("module, args, error", ARGUMENT_ERRORS,
                         ids=[" ".join(args[2:]) for _, args, _ in ARGUMENT_ERRORS])
def test_a_bad_argument_is_one_line_and_nothing_starts(tmp_path, module, args, error):
    log = tmp_path / "p1.jsonl"
    process = start(module, *args, log=log)
    assert process.returncode == 2
    assert one_line(process) == f"{module}.py: error: {error}"
    assert not log.exists()   # refused before anything was opened


@pytest.fixture
def taken():
    """Binds what a test says is in use: ("udp" | "tcp", address)."""
    held = []

    def take(kind: str, address: tuple[str, int]):
        sock = socket.socket(socket.AF_INET,
                             socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        sock.bind(address)
        if kind == "tcp":
            sock.listen()
        held.append(sock)

    yield take
    for sock in held:
        sock.close()


@pytest.mark.parametrize("in_use, args, error", [
    (("udp", (dip(1), 4790)), ["--dip", dip(1)],
     f"p1: cannot bind UDP {dip(1)}:4790: Address already in use"),
    (("tcp", (dip(1), 4791)), ["--dip", dip(1)],
     f"p1: cannot listen on TCP {dip(1)}:4791 (out of band): Address already in use"),
    (("tcp", (dip(2), 5000)), ["--dip", dip(1), "--mgmt", dip(2), "--oob-port", "5000"],
     f"p1: cannot listen on TCP {dip(2)}:5000 (out of band): Address already in use"),
    (None, ["--dip", "192.0.2.1"],   # TEST-NET-1: no address of this machine
     "p1: cannot bind UDP 192.0.2.1:4790: Cannot assign requested address"),
    (None, ["--dip", dip(1), "--mode", "polling"], "p1: Mode.POLLING needs a poll_interval"),
    (None, ["--dip", dip(1), "--vip", f"{vip(1)[0]}:{vip(1)[1]}"],
     "p1: p1 serves VIPs but knows no SLB address to accept them from"),
    (None, ["--dip", dip(1), "--transport", "tcp", "--newest-map", "5"],
     "p1: --newest-map needs the --flow-map it goes with"),
], ids=["data port in use", "OOB port in use", "--mgmt port in use", "not this host's DIP",
        "polling without an interval", "VIP without an SLB", "newest map without flow map"])
def test_an_address_that_cannot_be_bound_is_one_line_and_nothing_served(
        tmp_path, taken, in_use, args, error):
    if in_use:
        taken(*in_use)
    log = tmp_path / "p1.jsonl"
    process = start("kvstore", *args, log=log)
    assert process.returncode == 1
    assert one_line(process) == error
    assert [e["kind"] for e in read_log(log)[1]] == ["end"]   # the log says no more
