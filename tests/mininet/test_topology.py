"""The Mininet network of topologies/: real hosts, real BMv2 SLBs."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from beaver.control.slbs.program import Vip, slb_updates
from beaver.control.p4runtime.session import SwitchSession
from beaver.p4src import BMV2_JSON, P4INFO
from beaver.topologies.network import BeaverNetwork
from beaver.topologies.spec import Service, Spec


# Receives one datagram on (addr, port) and prints it as JSON: who sent it, what.
LISTEN = """
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(5)
data, peer = s.recvfrom(4096)
print(json.dumps({"peer": peer, "hex": data.hex()}))
"""
# Sends one datagram from (addr, port) to (dst, dport), then prints the reply like LISTEN.
REQUEST = """
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(10)
s.sendto(sys.argv[5].encode(), (sys.argv[3], int(sys.argv[4])))
data, peer = s.recvfrom(4096)
print(json.dumps({"peer": peer, "hex": data.hex()}))
"""
SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.sendto(sys.argv[5].encode(), (sys.argv[3], int(sys.argv[4])))
"""


def python(host, script: str, *args: str):
    return host.popen([sys.executable, "-c", script, *map(str, args)],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    spec = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000),), outgroup=("client",),
                assignment="per-vip", grpc_base_port=9659)
    with BeaverNetwork(spec, tmp_path_factory.mktemp("run")) as net:
        vips = [Vip(vip, "udp", service.port, tuple(dips))
                for vip, (service, dips) in net.plan.vips().items()]
        for g, name in enumerate(net.plan.slb_fabric, start=1):
            node = net.slb(name)
            session = SwitchSession(name, node.grpc_address, node.device_id)
            session.connect(P4INFO)
            session.set_pipeline(P4INFO, BMV2_JSON)
            session.write(*slb_updates(session.ctx, g, net.plan.slb_fabric[name].ip, vips,
                                       net.slb_routes(name), ["10.0.1.0/24"]))
            session.close()
        yield net


def test_vip_request_reaches_one_backend_encapsulated_and_dsr_reply_reaches_client(network):
    plan = network.plan
    vip = next(iter(plan.vips()))
    client_name, (_, client) = next(iter(plan.outgroup.items()))
    listeners = {name: python(network.host(name), LISTEN, addr.ip, 4790)
                 for name, (_, _, addr, _) in plan.ingroup.items()}
    time.sleep(0.5)  # let the listeners bind
    requester = python(network.host(client_name), REQUEST, client.ip, 9999, vip, 7000, "hello")

    got = {}
    for name, proc in listeners.items():
        out, _ = proc.communicate(timeout=10)
        if out.strip():
            got[name] = json.loads(out)
    assert len(got) == 1, f"exactly one backend gets the request: {got}"
    (backend, message), = got.items()
    data = bytes.fromhex(message["hex"])
    assert data[0] == 0x11 and data.endswith(b"hello"), "MARK header, then the original packet"
    slb_ip = message["peer"][0]
    assert slb_ip in {a.ip for a in plan.slb_fabric.values()}

    # Direct Server Return: from the VIP, straight to the client, past no SLB.
    python(network.host(backend), SEND, vip, 7000, client.ip, 9999, "reply").wait()
    out, err = requester.communicate(timeout=10)
    reply = json.loads(out)
    assert reply["peer"] == [vip, 7000] and bytes.fromhex(reply["hex"]) == b"reply"

