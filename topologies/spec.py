"""What a Beaver network holds, and its addressing plan.

    out-group hosts ──┐                           ┌── in-group hosts (DIPs)
      (clients,       ├─ internet bridge ─ SLB g ─┤      fabric bridge
       relays, bots,  │   (port 1)      (BMv2)  (port 2)       │
       third party) ──┴──────────── border router ─────────────┘
                                   (port 3) clock probes, to the controller

Out-group hosts reach a VIP only through an SLB (per VIP, per client, or by
kernel ECMP over all SLBs); the SLB encapsulates to a DIP on the fabric.
Replies go back by Direct Server Return through the border router, never
through an SLB.  Beaver's own headers (UDP to port 4790) from the out-group
cross neither: the SLBs take them only on their fabric ports, the border
router drops them from the internet side.  In-group hosts talk to each other
on the fabric, and to the controller on a management network that no data
traffic crosses.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ASSIGNMENTS = ("per-vip", "per-client", "ecmp")

FABRIC = "10.0.0.0/16"
INGROUP_HOSTS = "10.0.1.0/24"      # in-group hosts, inside the fabric
INTERNET = "10.128.0.0/16"
MANAGEMENT = "192.168.100.0/24"
CONTROLLER_MGMT_IP = "192.168.100.1"
BORDER_FABRIC_IP = "10.0.0.1"
BORDER_INTERNET_IP = "10.128.0.1"
SLB_PORT_INTERNET = 1
SLB_PORT_FABRIC = 2
SLB_PORT_PROBE = 3
NODE_PREFIX = "bv"


APPS = ("kv", "bank", "locks", "gc", "iperf")
TRANSPORTS = ("udp", "tcp")


@dataclass(frozen=True)
class Service:
    """An in-group service: `replicas` hosts behind one VIP.  Over TCP, its
    hosts' kernels decapsulate the SLBs' MARKs (topologies/decap.py).
    "iperf" is a plain iperf3 server, no Beaver runtime: bulk traffic through
    the SLBs, in no snapshot."""
    name: str
    app: str              # kv, bank, locks, gc (beaver.traffic modules) or iperf
    replicas: int
    port: int             # VIP port
    transport: str = "udp"

    def __post_init__(self):
        if self.app not in APPS:
            raise ValueError(f"app: {self.app!r} is not one of {APPS}")
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport: {self.transport!r} is not one of {TRANSPORTS}")
        if self.app == "iperf" and self.transport != "tcp":
            raise ValueError("iperf is a TCP service")
        if self.app == "bank" and self.transport != "udp":
            raise ValueError("the bank runs over UDP only (its third-party calls are UDP)")

    @property
    def in_snapshots(self) -> bool:
        """Whether its processes run the Beaver runtime."""
        return self.app != "iperf"

    def vip(self, index: int) -> str:
        return f"10.200.0.{index + 1}"


@dataclass(frozen=True)
class Spec:
    slbs: int = 2
    services: tuple[Service, ...] = (Service("kv", "kv", 2, 7000),
                                     Service("bank", "bank", 2, 7100))
    outgroup: tuple[str, ...] = ("client", "client", "relay")   # one role per host
    assignment: str = "per-vip"
    grpc_base_port: int = 9559     # SLB g: P4Runtime on base + g, BMv2's Thrift on +10000;
                                   # both below Linux's ephemeral ports (32768-60999),
                                   # which an outgoing connection may be holding
    clock_probes: bool = True      # a probe port per SLB; else packet-out clock alignment
    outgroup_delay_us: int = 0     # netem delay on what out-group hosts send: distance
    host_nice: int = 0             # the hosts' processes' nice value: >0 puts the switches
                                   # and the controller first on a shared CPU

    def __post_init__(self):
        if not 1 <= self.slbs <= 16:
            raise ValueError(f"slbs: {self.slbs} is not between 1 and 16")
        if self.assignment not in ASSIGNMENTS:
            raise ValueError(f"assignment: {self.assignment!r} is not one of {ASSIGNMENTS}")
        if not self.services:
            raise ValueError("services: at least one in-group service is needed")
        if not 1024 <= self.grpc_base_port <= 32767 - 10000 - self.slbs:
            raise ValueError(f"grpc_base_port: {self.grpc_base_port} is not between 1024 and "
                             f"{32767 - 10000 - self.slbs}, below the ephemeral ports")
        if not 0 <= self.host_nice <= 19:
            raise ValueError(f"host_nice: {self.host_nice} is not between 0 and 19")
        if sum(s.replicas for s in self.services) > 200 or len(self.outgroup) > 200:
            raise ValueError("at most 200 in-group and 200 out-group hosts")


@dataclass(frozen=True)
class Address:
    """One host or SLB interface: its IPv4 address and MAC."""
    ip: str
    mac: str


def mac(kind: int, index: int) -> str:
    return f"02:00:00:{kind:02x}:{index >> 8:02x}:{index & 0xff:02x}"


@dataclass(frozen=True)
class Plan:
    """Names and addresses of every node of a Spec.  Every node's name starts
    with NODE_PREFIX, so `beaver experiment cleanup` can find leftovers."""
    spec: Spec
    ingroup: dict[str, tuple[Service, int, Address, str]] = field(default_factory=dict)
    outgroup: dict[str, tuple[str, Address]] = field(default_factory=dict)
    slb_fabric: dict[str, Address] = field(default_factory=dict)
    slb_internet: dict[str, Address] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: Spec) -> "Plan":
        plan = cls(spec)
        n = 0
        for service in spec.services:
            for replica in range(service.replicas):
                n += 1
                plan.ingroup[f"bvi{n}"] = (service, replica,
                                         Address(f"10.0.1.{n}", mac(1, n)),
                                         f"192.168.100.{n + 10}")
        for m, role in enumerate(spec.outgroup, start=1):
            plan.outgroup[f"bvo{m}"] = (role, Address(f"10.128.1.{m}", mac(2, m)))
        for g in range(1, spec.slbs + 1):
            plan.slb_fabric[f"bvs{g}"] = Address(f"10.0.0.{g + 10}", mac(3, g))
            plan.slb_internet[f"bvs{g}"] = Address(f"10.128.0.{g + 10}", mac(4, g))
        return plan

    def vips(self) -> dict[str, tuple[Service, list[str]]]:
        """VIP -> (service, DIPs of its replicas)."""
        out = {}
        for index, service in enumerate(self.spec.services):
            dips = [addr.ip for s, _, addr, _ in self.ingroup.values() if s == service]
            out[service.vip(index)] = (service, dips)
        return out

    def slbs_for(self, vip_index: int, client_index: int) -> list[str]:
        """The SLBs an out-group host sends a VIP's traffic through."""
        names = list(self.slb_fabric)
        if self.spec.assignment == "ecmp":
            return names
        key = vip_index if self.spec.assignment == "per-vip" else client_index
        return [names[key % len(names)]]
