"""The in-group services and out-group processes, live on loopback behind a
stand-in SLB, and their command-line entry points."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading

import pytest

from beaver.traffic.services.bank import BankShard, snapshot_total
from beaver.traffic.analysis.checker import Trace, check
from beaver.traffic.outgroup.clients import bank_workload, closed_loop, kv_workload, open_loop
from beaver.traffic.runtime.eventlog import read_log
from beaver.traffic.services.kvstore import KvReplica
from beaver.traffic.outgroup.relay import relay
from beaver.traffic.runtime.snapshots import Mode
from beaver.traffic.outgroup.thirdparty import serve

from tests.support.runtimes import Deployment, dip, eventually, outside, vip
from tests.support.slb import LoopbackSlb, slb_ip

NEVER = threading.Event()


@pytest.fixture
def beaver(tmp_path):
    deployment = Deployment(tmp_path, Mode.BEAVER)
    yield deployment
    deployment.finish()


def kv_pair(deployment: Deployment):
    deployment.service("kv1", 1, lambda rt: KvReplica(rt, ["kv2"]), peers={"kv2": 2})
    deployment.service("kv2", 2, lambda rt: KvReplica(rt, ["kv1"]), peers={"kv1": 1})


def bank_pair(deployment: Deployment, **kwargs):
    """Shards b1 on dip(3) and b2 on dip(4), both behind vip(3)."""
    for name, n, peer, k in (("b1", 3, "b2", 4), ("b2", 4, "b1", 3)):
        deployment.service(name, n, lambda rt: BankShard(rt, ["b1", "b2"], accounts=10,
                                                         initial=1000, **kwargs),
                           peers={peer: k}, vip_of=3)


def test_kv_writes_replicate_and_counters_converge(beaver):
    kv_pair(beaver)
    slb = beaver.slb()
    to_kv1, to_kv2 = beaver.front(slb, 1), beaver.front(slb, 2)
    client = beaver.endpoint("c", 1)
    assert client.call(to_kv1, {"op": "put", "key": "k", "value": "v1"}, 2) == {
        "ok": True, "id": "kv1:2", "re": "c:1"}   # kv1:1 was the replication to kv2
    eventually(lambda: client.call(to_kv2, {"op": "get", "key": "k"}, 2)["value"] == "v1")
    client.call(to_kv1, {"op": "incr", "key": "n", "by": 2}, 2)
    client.call(to_kv2, {"op": "incr", "key": "n"}, 2)
    for to in (to_kv1, to_kv2):
        eventually(lambda: client.call(to, {"op": "get", "key": "n"}, 2)["value"] == 3)
    assert client.call(to_kv1, {"op": "incr", "key": "n", "by": 0}, 2)["ok"] is False


def test_bank_snapshot_under_load_is_consistent_and_its_total_holds(beaver):
    bank_pair(beaver)
    slb = beaver.slb()
    fronts = [beaver.front(slb, 3), beaver.front(slb, 3, backend=4)]
    stop = threading.Event()
    clients = [threading.Thread(target=closed_loop, args=(
        beaver.endpoint(f"c{i}", i), fronts[i], bank_workload(random.Random(i), 10, 0.9), stop))
        for i in range(2)]
    for thread in clients:
        thread.start()
    b1 = beaver.apps["b1"]
    eventually(lambda: b1.transfers > 20)
    slb.snapshot_id = 1
    for name in ("b1", "b2"):
        beaver.snapshot(name, 1)
    after = b1.transfers
    eventually(lambda: b1.transfers > after + 20)
    stop.set()
    for thread in clients:
        thread.join()
    for name in ("b1", "b2"):   # both channels complete
        eventually(lambda: beaver.report(name, 1).finished_id == 1)
    reports = [beaver.report(name, 1) for name in ("b1", "b2")]
    assert snapshot_total(reports) == 10 * 1000
    (verdict,) = check(beaver.finish(), [1], reports)
    assert (verdict.status, verdict.channel_errors) == ("consistent", [])


def test_a_transfer_notifies_the_third_party_whose_callback_writes_an_audit(beaver):
    kv_pair(beaver)
    slb = beaver.slb()
    notifier = beaver.endpoint("tp", 9)
    bank_pair(beaver, notify=notifier.address, audit=beaver.front(slb, 1))
    stop = threading.Event()
    third_party = threading.Thread(target=serve, args=(notifier, stop))
    third_party.start()
    client = beaver.endpoint("c", 1)
    assert client.call(beaver.front(slb, 3),
                       {"op": "transfer", "src": "a0", "dst": "a2", "amount": 5}, 2)["ok"]
    to_kv2 = beaver.front(slb, 2)
    eventually(lambda: client.call(to_kv2, {"op": "get", "key": "audit:b1:1"}, 2)["value"] == 5)
    stop.set()
    third_party.join()
    trace = beaver.finish()
    _, events = read_log(beaver.tmp_path / "tp.jsonl")
    # notify, callback, reply, and the log's closing record
    assert [e["kind"] for e in events] == ["recv", "send", "recv", "end"]
    # The webhook's chain, from the transfer reaching the bank to the audit
    # reaching kv, is one the checker measures (as Fig. 12 does for tau_min).
    (webhook,) = [c for c in trace.chains if c.via == "tp"]
    transfer_at, audit_at = (
        next(e["t_us"] for e in read_log(beaver.tmp_path / f"{name}.jsonl")[1]
             if e["kind"] == "recv" and e["msg"] == msg)
        for name, msg in (("b1", "c:1"), ("kv1", "tp:1")))
    assert webhook.latency_us == audit_at - transfer_at > 0


def test_a_relay_asks_the_second_vip_on_each_reply(beaver):
    kv_pair(beaver)
    bank_pair(beaver)
    slb = beaver.slb()
    stats = relay(beaver.endpoint("r", 1), beaver.front(slb, 1), kv_workload(random.Random(1)),
                  beaver.front(slb, 3), bank_workload(random.Random(2), 10), NEVER, count=5)
    assert (stats.sent, stats.replies, stats.timeouts) == (10, 10, 0)
    beaver.finish()
    _, events = read_log(beaver.tmp_path / "r.jsonl")
    peers = [e["peer"] for e in events if e["kind"] == "send"]
    assert peers == ["127.0.4.201:7000", "127.0.4.203:7000"] * 5


def test_an_open_loop_client_sends_at_its_rate_regardless_of_replies(beaver):
    kv_pair(beaver)
    slb = beaver.slb()
    stats = open_loop(beaver.endpoint("o", 1), beaver.front(slb, 1),
                      kv_workload(random.Random(0)), NEVER, rate=500, count=50)
    assert (stats.sent, stats.replies) == (50, 50)


def run_module(module: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", f"beaver.traffic.{module}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_entry_points_serve_a_client_and_stop_cleanly_on_sigterm(tmp_path):
    service = run_module("services.kvstore", "--name", "kv1", "--dip", dip(1), "--vip",
                         f"{vip(1)[0]}:{vip(1)[1]}", "--slb", slb_ip(1), "--oob-port", "0",
                         "--log", str(tmp_path / "kv1.jsonl"))
    slb = LoopbackSlb()
    try:
        assert "serving" in service.stderr.readline()   # bound and ready
        front = slb.front(("127.0.4.201", 7000), vip(1), dip(1))
        client = run_module("outgroup.clients", "--name", "c1", "--bind", outside(1), "--target",
                            f"{front[0]}:{front[1]}", "--service", "kv", "--count", "20",
                            "--log", str(tmp_path / "c1.jsonl"))
        out, err = client.communicate(timeout=30)
        assert json.loads(out)["replies"] == 20, err
    finally:
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=10)
        slb.close()
    assert service.returncode == 0, err
    summary = json.loads(out)
    assert (summary["process"], summary["drops"]) == ("kv1", {})
    assert summary["final_state"]["registers"]   # the state it ended in: the clients' puts
    events = list(read_log(tmp_path / "kv1.jsonl")[1])
    assert sum(e["kind"] == "recv" for e in events) == 20   # flushed on SIGTERM
    assert events[-1]["kind"] == "end"


def log_ends(path) -> bool:
    """Whether the log at path ends with its closing record (the checker's view)."""
    return not Trace.load([path]).short_logs


def wait_for(path, process: subprocess.Popen):
    """Until the process has named itself in its log (its signal handlers come first)."""
    eventually(lambda: (path.exists() and b"}\n" in path.read_bytes()[:4096])
               or process.poll() is not None, timeout=20)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("module, args", [
    ("services.kvstore", ["--dip", dip(1), "--vip", f"{vip(1)[0]}:{vip(1)[1]}", "--slb", slb_ip(1),
                 "--oob-port", "0"]),
    ("outgroup.thirdparty", ["--bind", f"{outside(1)}:8000"]),
], ids=["in-group", "out-group"])
def test_a_signalled_process_closes_its_log(tmp_path, module, args, signum):
    path = tmp_path / "p.jsonl"
    process = run_module(module, "--name", "p", *args, "--log", str(path))
    wait_for(path, process)
    if module == "services.kvstore":
        assert "serving" in process.stderr.readline()
    process.send_signal(signum)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert json.loads(out)["process"] == "p"
    assert log_ends(path)


def test_a_process_that_finishes_its_work_closes_its_log(tmp_path):
    path = tmp_path / "c.jsonl"
    client = run_module("outgroup.clients", "--name", "c", "--bind", outside(1), "--target",
                        f"{outside(2)}:7000", "--service", "kv", "--count", "2",
                        "--timeout", "0.05", "--log", str(path))
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0 and json.loads(out)["timeouts"] == 2, err
    assert log_ends(path)


def test_a_process_that_fails_closes_its_log(tmp_path):
    path = tmp_path / "tp.jsonl"
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: binding fails
    process = run_module("outgroup.thirdparty", "--name", "tp", "--bind", "192.0.2.1:8000",
                         "--log", str(path))
    _, err = process.communicate(timeout=30)
    assert process.returncode != 0 and "Cannot assign requested address" in err
    assert log_ends(path)


def test_a_killed_process_leaves_a_log_the_checker_counts_short(tmp_path):
    path = tmp_path / "tp.jsonl"
    process = run_module("outgroup.thirdparty", "--name", "tp", "--bind", f"{outside(1)}:8000",
                         "--log", str(path))
    wait_for(path, process)
    process.kill()
    process.communicate(timeout=10)
    assert Trace.load([path]).short_logs == ["tp"]


@pytest.mark.parametrize("module", ["services.kvstore", "services.bank", "outgroup.clients",
                                    "outgroup.relay", "outgroup.thirdparty", "outgroup.bots",
                                    "analysis.checker"])
def test_every_entry_point_explains_itself(module):
    process = run_module(module, "--help")
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "usage" in out
