"""Mininet nodes: BMv2 switches, kernel bridges, and hosts fit for BMv2."""
from __future__ import annotations

from pathlib import Path

from mininet.node import Host, Switch

from beaver.topologies.bmv2 import Bmv2Switch


def no_forwarding(node, iface: str):
    """The root namespace never routes what arrives on iface.

    An SLB's ports carry the SLB's own MAC, so the root namespace's kernel
    takes every frame BMv2 is sent as its own too; where IPv4 forwarding is
    on (dockerd turns it on, and a container's namespace inherits it), it
    would route each packet for a VIP out of its default route, off the
    emulated network, to an address that is no one's.  With forwarding off
    on the interface it came in on, the kernel drops it (and sends no ICMP).
    (Turning net.ipv4.ip_forward on again while a network runs resets every
    interface's setting: dockerd started then would undo this.)"""
    node.cmd(f"sysctl -qw net.ipv4.conf.{iface}.forwarding=0")


class Bmv2Node(Switch):
    """A Mininet switch that is a simple_switch_grpc process: its own gRPC
    port, device id and CPU port, ready when its gRPC port answers, its log in
    the run's folder.  Runs in the root namespace, on its Mininet veths."""

    def __init__(self, name, grpc_port: int, device_id: int, log_dir: Path,
                 **params):
        params["inNamespace"] = False
        super().__init__(name, **params)
        self.grpc_port = grpc_port
        self.device_id = device_id
        self.log_dir = Path(log_dir)
        self.bmv2: Bmv2Switch | None = None

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, controllers):
        ports = {self.ports[intf]: intf.name for intf in self.intfList()
                 if intf.name != "lo"}
        for name in ports.values():
            self.cmd("ethtool -K", name, "rx off tx off sg off")
            self.cmd(f"sysctl -qw net.ipv6.conf.{name}.disable_ipv6=1")
            no_forwarding(self, name)
        self.bmv2 = Bmv2Switch(self.name, ports, self.grpc_port, self.device_id,
                               self.log_dir)
        self.bmv2.start()

    def stop(self, deleteIntfs=True):
        if self.bmv2 is not None:
            self.bmv2.stop()
        super().stop(deleteIntfs)


class KernelBridge(Switch):
    """A Linux bridge (iproute2, no STP): the fast, plain L2 of the fabric."""

    def __init__(self, name, **params):
        params["inNamespace"] = False
        super().__init__(name, **params)

    def start(self, controllers):
        self.cmd("ip link del", self.name, "2>/dev/null")
        self.cmd("ip link add name", self.name, "type bridge stp_state 0")
        self.cmd(f"sysctl -qw net.ipv6.conf.{self.name}.disable_ipv6=1")
        no_forwarding(self, self.name)
        for intf in self.intfList():
            if intf.name != "lo":
                self.cmd(f"sysctl -qw net.ipv6.conf.{intf.name}.disable_ipv6=1")
                no_forwarding(self, intf.name)
                self.cmd("ip link set", intf.name, "master", self.name)
        self.cmd("ip link set", self.name, "up")

    def stop(self, deleteIntfs=True):
        self.cmd("ip link del", self.name, "2>/dev/null")
        super().stop(deleteIntfs)


class BeaverHost(Host):
    """A host behind BMv2: IPv6 off (no stray frames), checksum offloads off
    (BMv2 does not fill in checksums the kernel left to the NIC)."""

    def config(self, **params):
        result = super().config(**params)
        self.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
        self.cmd("sysctl -qw net.ipv6.conf.default.disable_ipv6=1")
        for intf in self.intfList():
            if intf.name != "lo":
                self.cmd("ethtool -K", intf.name, "rx off tx off sg off")
        return result
