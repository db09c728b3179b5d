"""Rolling real in-group processes back (topologies/rollback.py) as `beaver
snapshot restore` does for a running topology: two bank shards in their own
OS processes on loopback, found through their process table and started
again in their namespaces by mnexec (here the test's own), from a snapshot
taken out of band while transfers flowed."""
from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time

import pytest

from beaver.traffic.oob import protocol as oob
from beaver.control.cli.main import main
from beaver.control.config import ProcessConfig
from beaver.control.engine.record import Mode, Outcome, SnapshotRecord, Verdict
from beaver.traffic.oob.links import channel_gaps
from beaver.control.store import SnapshotStore
from beaver.topologies import running
from beaver.topologies.rollback import RollbackError, roll_back
from beaver.traffic.outgroup.endpoint import Endpoint

from tests.support.runtimes import eventually
from tests.support.slb import LoopbackSlb, slb_ip
from tests.unit.test_cli import SERVICE

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mnexec") is None,
    reason="needs root and mnexec (Mininet) to start processes in a namespace")

NAMES = ["b1", "b2"]
ACCOUNTS, INITIAL = 4, 100
VIP = ("127.0.6.130", 7000)


def dip(name: str) -> str:
    return f"127.0.6.{120 + NAMES.index(name)}"


PROCESSES = [ProcessConfig(n, dip(n), oob.OOB_PORT, tuple(p for p in NAMES if p != n))
             for n in NAMES]


def command(name: str) -> list[str]:
    return [sys.executable, "-m", "beaver.traffic.services.bank", "--name", name, "--dip", dip(name),
            "--vip", f"{VIP[0]}:{VIP[1]}", "--slb", slb_ip(1), "--shards", ",".join(NAMES),
            "--accounts", str(ACCOUNTS), "--initial", str(INITIAL), "--mode", "lai-yang",
            *[a for p in NAMES if p != name for a in ("--peer", f"{p}={dip(p)}")]]


def ask(process: ProcessConfig, message: dict) -> dict | None:
    try:
        with socket.create_connection((process.host, process.port), timeout=2) as s:
            return oob.request(s, {"v": oob.VERSION, **message})
    except OSError:
        return None


@pytest.fixture
def topology(tmp_path):
    """The two shards started as an experiment would, with their table."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "out").mkdir()
    # in the test's namespaces; incarnation -1, so that the first start is 0
    entries = {n: running.Entry(os.getpid(), 0, command(n), -1) for n in NAMES}
    running.write_table(tmp_path, entries)
    table = running.RunningTopology(tmp_path)
    for name in NAMES:
        table.restart(name, [])
    for process in PROCESSES:
        eventually(lambda: ask(process, {"op": "status"}), timeout=20)
    yield tmp_path
    running.RunningTopology(tmp_path).stop(NAMES)   # whichever incarnation runs now


@pytest.fixture
def client():
    slb = LoopbackSlb(1)
    front = slb.front(("127.0.6.131", 7000), VIP, dip("b1"))
    endpoint = Endpoint("client", ("127.0.6.132", 0))
    yield lambda message: endpoint.call(front, message, 2)
    endpoint.close()
    slb.close()


def snapshot_under_transfers(store_path, client) -> SnapshotRecord:
    """Snapshot 1 out of band at both shards while transfers flow, stored
    accepted once every channel adds up (the controller's check)."""
    stop = threading.Event()

    def transfer():
        n = 0
        while not stop.is_set():
            n += 1
            client({"op": "transfer", "src": f"a{n % 2}", "dst": f"a{(n + 1) % ACCOUNTS}",
                    "amount": 1})   # a0 on b1, a1 forwarded to b2
    flowing = threading.Thread(target=transfer)
    flowing.start()
    time.sleep(0.3)
    for process in PROCESSES:
        ask(process, {"op": "snapshot", "id": 1})
    time.sleep(0.3)   # transfers after the cut: rolled back
    stop.set()
    flowing.join()

    def whole():
        reports = {p.name: oob.Report.from_message(ask(p, {"op": "report", "id": 1}))
                   for p in PROCESSES}
        return None if channel_gaps(reports) else reports
    reports = eventually(whole)
    record = SnapshotRecord(1, Mode.LAI_YANG, "lai-yang", 0, [], 1, time.time(),
                            reports=reports, verdict=Verdict(Outcome.ACCEPTED, "whole"))
    store = SnapshotStore(store_path)
    store.save([record])
    store.reserve(1)
    store.close()
    return record


def money(states: dict, record: SnapshotRecord) -> int:
    """Balances, and the credits replays sent on (not yet applied anywhere)."""
    return sum(sum(s["balances"].values()) + s["credited"]
               - record.reports[n].local_state["credited"] for n, s in states.items())


def test_a_running_bank_rolled_back_from_its_table_conserves_the_money(topology, client):
    record = snapshot_under_transfers(topology / "snapshots.db", client)
    in_flight = {n: sum(len(c.in_flight) for c in r.channels.values())
                 for n, r in record.reports.items()}
    before = running.RunningTopology(topology).entries

    rolled = roll_back(topology / "snapshots.db", 1, PROCESSES,
                       running.RunningTopology(topology), with_state=True)
    replayed = {n: sum(r.replayed.values()) for n, r in rolled.processes.items()}
    assert replayed == in_flight
    states = {n: r.state for n, r in rolled.processes.items()}
    assert money(states, record) == ACCOUNTS * INITIAL

    after = running.RunningTopology(topology).entries
    for name in NAMES:
        assert after[name].incarnation == before[name].incarnation + 1 == 1
        assert after[name].pid != before[name].pid
        assert (topology / "logs" / f"{name}.1.jsonl").exists()
    balance = client({"op": "balance", "account": "a0"})   # serving, from the restored state
    assert balance["balance"] == states["b1"]["balances"]["a0"]


def test_the_cli_rolls_back_and_says_what_was_replayed(topology, client, capsys):
    record = snapshot_under_transfers(topology / "snapshots.db", client)
    in_flight = sum(len(c.in_flight) for r in record.reports.values()
                    for c in r.channels.values())
    config = topology / "beaver.toml"
    config.write_text(SERVICE + "".join(
        f'\n[[processes]]\nname = "{p.name}"\naddress = "{p.host}:{p.port}"\n'
        f'peers = {list(p.peers)!r}\n'.replace("'", '"') for p in PROCESSES))
    assert main(["snapshot", "latest", "--accepted", "-c", str(config)]) == 0
    assert capsys.readouterr().out == "1\n"
    assert main(["snapshot", "restore", "1", "-c", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"rolled back to snapshot 1 (accepted): 2 processes, {in_flight} "
                             "messages in flight replayed, in ")
    assert [line.split()[0] for line in out[1:]] == ["PROCESS", "b1", "b2"]
    for process in PROCESSES:
        restored = ask(process, {"op": "status"})["restored"]
        assert (restored["snapshot"], restored["held"]) == (1, False)


def test_a_process_that_refuses_fails_the_rollback_with_its_line(topology, client):
    snapshot_under_transfers(topology / "snapshots.db", client)
    store = SnapshotStore(topology / "snapshots.db")
    record = store.get(1)
    store.close()
    record.number = 2   # the same states under a layout of three shards
    for report in record.reports.values():
        report.local_state["layout"]["shards"] = ["b1", "b2", "b3"]
    store = SnapshotStore(topology / "snapshots.db")
    store.save([record])
    store.close()
    with pytest.raises(RollbackError, match=r"^b1 did not restart: b1: refused to restore: b1: "
                                            r"snapshot 2 was taken under another program or "
                                            r"layout: shards b1,b2,b3 there, b1,b2 here$"):
        roll_back(topology / "snapshots.db", 2, PROCESSES, running.RunningTopology(topology))
