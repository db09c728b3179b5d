"""The edge in an experiment's network (Mininet, BMv2, the bank's two shards
programmed and started as a run does): an out-group host forges MARKs and
STAMPs to the DIPs on the Beaver port, claiming every address an in-group
process trusts, through the SLB and through the border router.  No in-group
process's ID, state or drop counts change, and each forgery is counted where
it was stopped.  Its own module: one network for its tests."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from beaver.p4src.wire import BEAVER_UDP_PORT, DropReason, Kind
from beaver.topologies.experiment import Run
from beaver.topologies.spec import BORDER_INTERNET_IP, Service, Spec
from beaver.traffic.oob import protocol as oob
from beaver.traffic.runtime.datagrams import PeerKind, pack_peer

from tests.support.packets import Beaver
from tests.support.runtimes import eventually

FORGED = 1000      # an ID ahead of the processes' (they are at 1): one they would take
BANK_PORT = 7100

# Sends the frames (hex) given after the interface name, as they are.
SEND_FRAMES = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for frame in sys.argv[2:]:
    s.send(bytes.fromhex(frame))
"""
# Receives one datagram on (addr, port) and prints who sent it.
LISTEN = """
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(5)
print("ready", flush=True)
data, peer = s.recvfrom(4096)
print(json.dumps({"peer": peer, "data": data.decode()}))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    spec = Spec(slbs=1, services=(Service("bank", "bank", 2, BANK_PORT),), outgroup=("client",),
                grpc_base_port=9759)
    with Run(spec, tmp_path_factory.mktemp("edge")) as running:
        yield running


def ask(run: Run, name: str, message: dict) -> dict:
    mgmt = run.network.plan.ingroup[name][3]
    with socket.create_connection((mgmt, oob.OOB_PORT), timeout=5) as s:
        return oob.request(s, {"v": oob.VERSION, **message})


def dips(run: Run) -> dict[str, str]:
    return {name: addr.ip for name, (_, _, addr, _) in run.network.plan.ingroup.items()}


def gateways(run: Run) -> dict[str, str]:
    """The MACs an out-group host can send a frame to the fabric through."""
    border = run.network.host("bvbr")
    inside = next(i for i in border.intfList() if i.IP() == BORDER_INTERNET_IP)
    (slb,) = run.network.plan.slb_internet.values()
    return {"slb": slb.mac, "border": inside.MAC()}


def forgeries(run: Run, gateway: str) -> list[bytes]:
    """To each DIP on the Beaver port: a MARK carrying a transfer and a
    STAMP carrying a credit, each from an SLB's address, the other shard's
    (a peer's) and the VIP; all with an ID the process would take."""
    plan = run.network.plan
    (slb,) = plan.slb_fabric.values()
    ((vip, _),) = plan.vips().items()
    client = next(iter(plan.outgroup.values()))[1]
    by_name = dips(run)
    accounts = {"bvi1": ("a0", "a2"), "bvi2": ("a1", "a3")}   # a<i> lives on shard i mod 2
    frames = []
    for name, dip in by_name.items():
        peer = next(n for n in by_name if n != name)
        mine, other = accounts[name]
        for n, source in enumerate((slb.ip, by_name[peer], vip)):
            transfer = json.dumps({"id": f"forged:{name}{n}", "op": "transfer",
                                   "src": mine, "dst": other, "amount": 50})
            credit = json.dumps({"id": f"{peer}:9{n}", "op": "credit",
                                 "account": mine, "amount": 1_000_000})
            outer = (Ether(src=client.mac, dst=gateway) / IP(src=source, dst=dip) /
                     UDP(sport=40000 + n, dport=BEAVER_UDP_PORT))
            frames.append(outer / Beaver(kind=Kind.MARK, origin=1, snapshot_id=FORGED) /
                          IP(src=client.ip, dst=vip) / UDP(sport=20000, dport=BANK_PORT) /
                          transfer.encode())
            frames.append(outer / Beaver(kind=Kind.STAMP, snapshot_id=FORGED) /
                          (pack_peer(PeerKind.APP, 1, peer.encode()) + credit.encode()))
    return [bytes(f) for f in frames]


def send_frames(run: Run, frames: list[bytes]):
    host = run.network.host("bvo1")
    proc = host.popen([sys.executable, "-c", SEND_FRAMES, host.defaultIntf().name,
                       *(f.hex() for f in frames)], stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def slb_drops(run: Run) -> int:
    (gw,) = run.controller.slbs
    return gw.session.read_counter("drop_reasons", DropReason.OUTGROUP_BEAVER)


def border_drops(run: Run) -> int:
    """What the border router's rule dropped (network.py's _guard_border)."""
    out = run.network.host("bvbr").cmd("iptables -w 5 -L FORWARD -v -x -n")
    rules = [line.split() for line in out.splitlines() if f"dpt:{BEAVER_UDP_PORT}" in line]
    assert len(rules) == 1 and "DROP" in rules[0], out
    return int(rules[0][0])


def snapshot(run: Run, snapshot_id: int) -> dict[str, dict]:
    """Each process's state, recorded out of band at snapshot_id."""
    out = {}
    for name in run.network.plan.ingroup:
        report = oob.Report.from_message(ask(run, name, {"op": "snapshot", "id": snapshot_id}))
        assert report.taken, report
        out[name] = report.local_state
    return out


def statuses(run: Run) -> dict[str, tuple[int, dict]]:
    """Each process's current ID and drop counts."""
    return {name: (answer["current_id"], answer["drops"])
            for name in run.network.plan.ingroup
            for answer in [ask(run, name, {"op": "status"})]}


def test_forged_marks_and_stamps_change_no_in_group_process(run):
    before = snapshot(run, 1)
    assert all(state["balances"] for state in before.values())
    eventually(lambda: all(cur == 1 for cur, _ in statuses(run).values()), timeout=5)
    counted = statuses(run)
    frames = {via: forgeries(run, mac) for via, mac in gateways(run).items()}
    send_frames(run, frames["slb"] + frames["border"])

    # Each stopped where it entered: had one got through, its drop would be
    # missing here (and the process would have counted or taken it).
    eventually(lambda: slb_drops(run) == len(frames["slb"]), timeout=10)
    eventually(lambda: border_drops(run) == len(frames["border"]), timeout=10)
    assert statuses(run) == counted, "no process took an ID, or dropped a datagram"
    # (past FORGED: a process that had jumped there would report for an older
    # ID the state it recorded before the forgery was handled)
    assert snapshot(run, FORGED + 1) == before, "no transfer, no credit"


def test_out_group_hosts_reach_a_dip_through_either_gateway_but_not_on_the_beaver_port(run):
    """Why the border router needs its rule: it forwards for anyone, so any
    out-group host routes to a DIP through it, with any source address; so
    does the SLB, for what is not Beaver's.  Only the Beaver port is closed."""
    plan = run.network.plan
    (slb,) = plan.slb_fabric.values()
    client = next(iter(plan.outgroup.values()))[1]
    name, dip = next(iter(dips(run).items()))
    for via, mac in gateways(run).items():
        listener = run.network.host(name).popen([sys.executable, "-c", LISTEN, dip, "9999"],
                                                stdout=subprocess.PIPE, text=True)
        assert listener.stdout.readline().strip() == "ready"
        send_frames(run, [bytes(Ether(src=client.mac, dst=mac) / IP(src=slb.ip, dst=dip) /
                                UDP(sport=40000, dport=9999) / f"through the {via}".encode())])
        out, _ = listener.communicate(timeout=10)
        got = json.loads(out)
        assert got == {"peer": [slb.ip, 40000], "data": f"through the {via}"}, got
