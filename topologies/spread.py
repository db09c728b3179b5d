"""A BeaverNetwork spread over several servers (--servers): the nodes
network.py's _add_nodes adds on one host, each on the server Servers.place
gives it.  A subclass, so that one server (the default) runs network.py's
own code, unchanged.

Every server has its own three bridges (the first's are network.py's
BRIDGES; server k's are named with k), joined to the first's by one
tunnel each (the trunks): a node links only to bridges of its own server.
A remote SLB's probe port is a tunnel to the controller's end on the first.
"""
from __future__ import annotations

import os

from pathlib import Path

from beaver.topologies import decap, servers
from beaver.topologies.cluster import (RemoteBeaverHost, RemoteBmv2Node, RemoteKernelBridge,
                                       ServerShell, TunnelLink, remote)
from beaver.topologies.network import BRIDGES, BeaverNetwork, _prefix_len
from beaver.topologies.nodes import Bmv2Node, KernelBridge
from beaver.topologies.spec import (FABRIC, INTERNET, MANAGEMENT, SLB_PORT_FABRIC,
                                    SLB_PORT_INTERNET, SLB_PORT_PROBE)



class SpreadNetwork(BeaverNetwork):
    def __init__(self, spec, run_dir: Path, spread: servers.Servers):
        super().__init__(spec, run_dir)
        self.spread = spread

    def _add_nodes(self):
        self.net.link = TunnelLink   # a link between servers is a tunnel
        add_nodes(self)

    def _load_decap(self, host, slbs) -> decap.Decap:
        if remote(host):   # its maps are in that server's kernel
            return decap.attach_there(host.cmd, host.defaultIntf().name, slbs)
        return super()._load_decap(host, slbs)


def add_nodes(network: SpreadNetwork):
    net, plan, spread = network.net, network.plan, network.spread
    where = spread.place(plan)
    config = os.environ.get(servers.SSH_CONFIG_ENV)

    def on(server: str) -> dict:
        if server == spread.first:
            return {}
        return dict(server=server, serverIP=ServerShell.findServerIP(server) or server,
                    ssh_config=config)

    bridges = {}   # (server, kind) -> node; kind: 0 internet, 1 fabric, 2 management
    for k, server in enumerate(spread.names):
        if k and server not in where.values():
            continue
        for kind, name in enumerate(BRIDGES):
            dpid = f"b{kind + 1}" if k == 0 else f"b{k}{kind + 1}"
            if k == 0:
                bridges[server, kind] = net.addSwitch(name, cls=KernelBridge, dpid=dpid)
            else:
                bridges[server, kind] = net.addSwitch(f"{name}{k}", cls=RemoteKernelBridge,
                                                      dpid=dpid, **on(server))
                net.addLink(bridges[spread.first, kind], bridges[server, kind])   # a trunk
    internet, fabric, mgmt = (bridges[spread.first, kind] for kind in range(3))

    ctl = network.add_border_and_controller(internet, fabric, mgmt)

    for g, name in enumerate(plan.slb_fabric, start=1):
        server = where[name]
        cls = Bmv2Node if server == spread.first else RemoteBmv2Node
        slb = net.addSwitch(name, cls=cls, grpc_port=network.spec.grpc_base_port + g,
                            device_id=g, log_dir=network.run_dir, **on(server))
        net.addLink(slb, bridges[server, 0], port1=SLB_PORT_INTERNET,
                    addr1=plan.slb_internet[name].mac)
        net.addLink(slb, bridges[server, 1], port1=SLB_PORT_FABRIC,
                    addr1=plan.slb_fabric[name].mac)
        if network.spec.clock_probes:
            net.addLink(slb, ctl, port1=SLB_PORT_PROBE)

    for name, (_, _, addr, mgmt_ip) in plan.ingroup.items():
        server = where[name]
        host = _host(net, name, server, spread.first, on)
        net.addLink(host, bridges[server, 1],
                    params1={"ip": f"{addr.ip}/{_prefix_len(FABRIC)}"}, addr1=addr.mac)
        net.addLink(host, bridges[server, 2],
                    params1={"ip": f"{mgmt_ip}/{_prefix_len(MANAGEMENT)}"})

    for name, (_, addr) in plan.outgroup.items():
        server = where[name]
        host = _host(net, name, server, spread.first, on)
        net.addLink(host, bridges[server, 0],
                    params1={"ip": f"{addr.ip}/{_prefix_len(INTERNET)}"}, addr1=addr.mac)


def _host(net, name, server, first, on):
    if server == first:
        return net.addHost(name, ip=None)
    return net.addHost(name, cls=RemoteBeaverHost, ip=None, **on(server))
