"""A TCP service in-group, end to end: Mininet hosts, BMv2 SLBs, the kernel
decapsulation program on every in-group host, the TCP key-value store and
YCSB-like clients, snapshots judged by the checker."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from beaver.control.engine import rules
from beaver.control.engine.engine import RunSettings
from beaver.control.engine.record import Mode
from beaver.topologies.experiment import Run
from beaver.topologies.experiments.common.outcomes import snapshot_rows, tally
from beaver.topologies.processes import Workload
from beaver.topologies.spec import Service, Spec

pytestmark = pytest.mark.bpf

SPEC = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000, "tcp"),), outgroup=("ycsb", "ycsb"),
            assignment="per-client", grpc_base_port=9759)

# One request over TCP from the client's address, logged for the checker;
# prints the reply and the peer.
REQUEST = """
import json, sys
from beaver.traffic.runtime.eventlog import EventLog
from beaver.traffic.outgroup.tcp_client import TcpEndpoint
with EventLog(sys.argv[4], "probe", False) as log:
    e = TcpEndpoint("probe", (sys.argv[2], int(sys.argv[3])), sys.argv[1], log)
    reply = e.call({"op": "put", "key": "k", "value": 7}, 5)
    peer = e._sock.getpeername() if e._sock else None
print(json.dumps({"reply": reply, "peer": peer}))
"""


def rx_packets(host, iface: str) -> int:
    return int(host.cmd(f"cat /sys/class/net/{iface}/statistics/rx_packets"))


def test_tcp_requests_go_through_an_slb_come_back_by_dsr_and_snapshots_are_consistent(
        tmp_path):
    with Run(SPEC, tmp_path, Workload(write_ratio=0.5)) as run:
        plan, net = run.network.plan, run.network
        vip = next(iter(plan.vips()))
        client = net.host("bvo1")
        border = net.host("bvbr")
        border_fabric = border.intfs[0].name
        before_border = rx_packets(border, border_fabric)
        before = {name: d.counters() for name, d in net.decaps.items()}
        out = client.popen([sys.executable, "-c", REQUEST, plan.outgroup["bvo1"][1].ip, vip,
                            "7000", run.processes.logs / "probe.jsonl"],
                           stdout=subprocess.PIPE, text=True).communicate(20)[0]
        answer = json.loads(out)
        assert answer["reply"]["ok"] is True and answer["reply"]["re"] == "probe:1"
        assert tuple(answer["peer"]) == (vip, 7000)
        decapsulated = {name: d.counters()["decapsulated"] - before[name]["decapsulated"]
                        for name, d in net.decaps.items()}
        assert sum(decapsulated.values()) >= 3, f"SYN, ACK, request at least: {decapsulated}"
        # The reply leaves the DIP by the border router, not back through the SLB.
        assert rx_packets(border, border_fabric) - before_border >= 2

        run.start_traffic(warmup=1.0)
        run.snapshots(RunSettings(Mode.OGM, rules.FINE, 2000, inflight=2, rate=5, count=6))
        run.stop_traffic()
        counters = {name: d.counters() for name, d in net.decaps.items()}
    truth = run.check()
    t = tally(snapshot_rows(run.records, truth.verdicts))
    clients = [run.processes.summaries[n] for n in plan.outgroup]
    assert all(c["replies"] > 50 and c["timeouts"] == 0 for c in clients), clients
    assert all(c["foreign"] == c["malformed"] == c["map_full"] == 0 for c in counters.values())
    assert t["taken"] == 6 and t["false_accepts"] == 0, t
    assert t["accepted"] >= 1 and t["consistent"] >= t["accepted"], t
    assert truth.short_logs == []
