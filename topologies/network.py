"""Builds the Mininet network of a Spec (see spec.py for the picture)."""
from __future__ import annotations

import ipaddress
import logging
import subprocess
from pathlib import Path

from mininet.net import Mininet
from mininet.node import Host

from beaver.control.slbs.program import Route
from beaver.p4src.wire import BEAVER_UDP_PORT

from beaver.topologies import decap, firewall
from beaver.topologies.nodes import BeaverHost, Bmv2Node, KernelBridge, no_forwarding
from beaver.topologies.spec import (BORDER_FABRIC_IP, BORDER_INTERNET_IP, CONTROLLER_MGMT_IP, FABRIC,
                   INTERNET, MANAGEMENT, SLB_PORT_FABRIC, SLB_PORT_INTERNET, SLB_PORT_PROBE,
                   Plan, Spec, mac)

log = logging.getLogger(__name__)

# What an SLB adds (outer IPv4, UDP, Beaver header): in-group hosts advertise
# a TCP MSS that leaves room for it within the fabric's 1500-byte MTU.
ENCAP_BYTES = 20 + 8 + 6
ADVMSS = 1500 - ENCAP_BYTES - 40 - 26   # 40: inner IPv4 + TCP; 26: a margin for options

# The Linux bridges, in the root namespace: out-group side, fabric, management.
INTERNET_BRIDGE, FABRIC_BRIDGE, MGMT_BRIDGE = BRIDGES = ("bvinet", "bvfab", "bvmgmt")


class NetworkError(RuntimeError):
    """The network cannot be built as the Spec says."""


def _prefix_len(network: str) -> int:
    return ipaddress.IPv4Network(network).prefixlen


class BeaverNetwork:
    """A running Mininet network: BMv2 SLBs, bridges, border router and hosts."""

    def __init__(self, spec: Spec, run_dir: Path):
        self.spec = spec
        self.plan = Plan.of(spec)
        self.run_dir = Path(run_dir)
        self.net: Mininet | None = None
        self.decaps: dict[str, decap.Decap] = {}   # in-group host -> its kernel program
        self.allowance: firewall.BridgeAllowance | None = None

    # -- life cycle -----------------------------------------------------------

    def start(self):
        self.net = Mininet(controller=None, host=BeaverHost, build=False,
                           autoSetMacs=False)
        try:
            # (the host's FORWARD chain, e.g. dockerd's policy DROP, would
            # stop what the bridges forward: topologies/firewall.py)
            try:
                self.allowance = firewall.allow_bridges(BRIDGES)
            except firewall.FirewallError as e:
                raise NetworkError(f"cannot let the bridges forward: {e}") from None
            self._add_nodes()
            self.net.build()
            self.net.start()
            self._configure()
            self._check_bridges()
        except BaseException:
            self.stop()
            raise

    def _load_decap(self, host, slbs) -> decap.Decap:
        return decap.attach(host.cmd, host.defaultIntf().name, slbs)

    def stop(self):
        try:
            if self.net is not None:
                for name, loaded in self.decaps.items():
                    decap.detach(self.host(name).cmd, loaded.iface)
                self.decaps = {}
                net, self.net = self.net, None
                net.stop()
        finally:
            if self.allowance is not None:
                allowance, self.allowance = self.allowance, None
                allowance.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- access -----------------------------------------------------------------

    def host(self, name: str) -> Host:
        return self.net.get(name)

    def slb(self, name: str) -> Bmv2Node:
        return self.net.get(name)

    def probe_iface(self, name: str) -> str | None:
        """The controller's end of an SLB's probe port, if it has one."""
        if not self.spec.clock_probes:
            return None
        return self.slb(name).intfs[SLB_PORT_PROBE].link.intf2.name

    def slb_routes(self, name: str) -> list[Route]:
        """An SLB's routes: each DIP on its fabric port."""
        own = self.plan.slb_fabric[name].mac
        return [Route(f"{addr.ip}/32", SLB_PORT_FABRIC, own, addr.mac)
                for _, _, addr, _ in self.plan.ingroup.values()]

    # -- building ---------------------------------------------------------------

    def add_border_and_controller(self, internet, fabric, mgmt) -> Host:
        """The border router between the internet and the fabric, and the
        controller's end of the management network and of the probe ports,
        in the root namespace; the controller's node."""
        net = self.net
        border = net.addHost("bvbr")
        net.addLink(border, fabric, params1={"ip": f"{BORDER_FABRIC_IP}/{_prefix_len(FABRIC)}"},
                    addr1=mac(5, 1))
        net.addLink(border, internet,
                    params1={"ip": f"{BORDER_INTERNET_IP}/{_prefix_len(INTERNET)}"},
                    addr1=mac(5, 2))
        ctl = net.addHost("bvctl", cls=Host, inNamespace=False, ip=None)
        net.addLink(ctl, mgmt, params1={"ip": f"{CONTROLLER_MGMT_IP}/{_prefix_len(MANAGEMENT)}"})
        return ctl

    def _add_nodes(self):
        net, plan = self.net, self.plan
        # (a Mininet switch needs a datapath id; bridges have no digits to derive it)
        internet = net.addSwitch(INTERNET_BRIDGE, cls=KernelBridge, dpid="b1")
        fabric = net.addSwitch(FABRIC_BRIDGE, cls=KernelBridge, dpid="b2")
        mgmt = net.addSwitch(MGMT_BRIDGE, cls=KernelBridge, dpid="b3")

        ctl = self.add_border_and_controller(internet, fabric, mgmt)

        for g, name in enumerate(plan.slb_fabric, start=1):
            slb = net.addSwitch(name, cls=Bmv2Node, grpc_port=self.spec.grpc_base_port + g,
                                device_id=g, log_dir=self.run_dir)
            net.addLink(slb, internet, port1=SLB_PORT_INTERNET,
                        addr1=plan.slb_internet[name].mac)
            net.addLink(slb, fabric, port1=SLB_PORT_FABRIC, addr1=plan.slb_fabric[name].mac)
            if self.spec.clock_probes:
                net.addLink(slb, ctl, port1=SLB_PORT_PROBE)

        for name, (_, _, addr, mgmt_ip) in plan.ingroup.items():
            host = net.addHost(name, ip=None)
            net.addLink(host, fabric, params1={"ip": f"{addr.ip}/{_prefix_len(FABRIC)}"},
                        addr1=addr.mac)
            net.addLink(host, mgmt, params1={"ip": f"{mgmt_ip}/{_prefix_len(MANAGEMENT)}"})

        for name, (_, addr) in plan.outgroup.items():
            host = net.addHost(name, ip=None)
            net.addLink(host, internet, params1={"ip": f"{addr.ip}/{_prefix_len(INTERNET)}"},
                        addr1=addr.mac)

    def _configure(self):
        plan = self.plan
        border = self.host("bvbr")
        border.cmd("sysctl -qw net.ipv4.ip_forward=1")
        self._guard_border(border)
        for host in [border] + [self.host(n) for n in (*plan.ingroup, *plan.outgroup)]:
            host.cmd("sysctl -qw net.ipv4.conf.all.rp_filter=0")
            host.cmd("sysctl -qw net.ipv4.conf.default.rp_filter=0")
            for intf in host.intfList():
                host.cmd(f"sysctl -qw net.ipv4.conf.{intf.name}.rp_filter=0")

        for intf in self.host("bvctl").intfList():   # the controller's ends route nothing
            if intf.name != "lo":
                no_forwarding(self.host("bvctl"), intf.name)
        for name in plan.slb_fabric:   # the probe ports: quiet, and stamped as sent
            iface = self.probe_iface(name)
            if iface is not None:
                self.host("bvctl").cmd(f"sysctl -qw net.ipv6.conf.{iface}.disable_ipv6=1")
                self.host("bvctl").cmd("ethtool -K", iface, "rx off tx off sg off")

        vips = plan.vips()
        for name, (service, _, _, _) in plan.ingroup.items():
            host = self.host(name)
            host.cmd("ip route add default via", BORDER_FABRIC_IP, "advmss", ADVMSS)
            # Direct Server Return: the VIP is local, but never answered for on the wire.
            vip = next(v for v, (s, _) in vips.items() if s == service)
            host.cmd("ip addr add", f"{vip}/32", "dev lo")
            host.cmd("sysctl -qw net.ipv4.conf.all.arp_ignore=1")
            host.cmd("sysctl -qw net.ipv4.conf.all.arp_announce=2")
            # TCP MARKs are stripped by the kernel; UDP ones pass on to the runtime.
            try:
                self.decaps[name] = self._load_decap(host, [a.ip for a in
                                                            plan.slb_fabric.values()])
            except (decap.DecapError, OSError) as e:
                raise NetworkError(f"{name}: {e}") from None

        for client_index, (name, (_, _)) in enumerate(plan.outgroup.items()):
            host = self.host(name)
            if self.spec.outgroup_delay_us:   # an out-group that far away (inter-DC, internet)
                out = host.cmd("tc qdisc replace dev", host.defaultIntf().name, "root netem",
                               f"delay {self.spec.outgroup_delay_us}us && echo netem-set")
                if "netem-set" not in out:   # a tau that is not true of the network is unsound
                    raise NetworkError(f"{name}: cannot delay the out-group by "
                                       f"{self.spec.outgroup_delay_us} us with tc netem: "
                                       f"{out.strip()} (is sch_netem in this kernel?)")
            host.cmd("sysctl -qw net.ipv4.fib_multipath_hash_policy=1")  # ECMP on the 5-tuple
            for slb, addr in plan.slb_internet.items():
                # BMv2 answers no ARP: the SLBs' addresses are static neighbours.
                host.cmd("ip neigh replace", addr.ip, "lladdr", addr.mac, "dev",
                         host.defaultIntf().name, "nud permanent")
            for vip_index, vip in enumerate(vips):
                hops = [plan.slb_internet[s].ip for s in plan.slbs_for(vip_index, client_index)]
                route = " ".join(f"nexthop via {ip}" for ip in hops)
                host.cmd("ip route add", f"{vip}/32", route)

        # The bridges never hear the SLBs' internet ports speak: pin their MACs.
        # And flood no unknown unicast to an SLB: BMv2 routes whatever IPv4
        # reaches it, so a flooded frame would come back as a duplicate.
        for name in plan.slb_internet:
            slb = self.slb(name)
            for port, addr in ((SLB_PORT_INTERNET, plan.slb_internet[name]),
                               (SLB_PORT_FABRIC, plan.slb_fabric[name])):
                peer = slb.intfs[port].link.intf2
                slb.cmd("bridge fdb replace", addr.mac, "dev", peer.name, "master static")
                slb.cmd("bridge link set dev", peer.name, "flood off")

    def _guard_border(self, border: Host):
        """The border router drops UDP to the Beaver port arriving from the
        internet side.  It routes between the internet and the fabric (the
        DIPs' Direct Server Return replies leave through it) for anyone: an
        out-group host that routes a DIP through it could send a forged MARK
        (claiming an SLB's address) or STAMP (a peer's) past the SLBs' edge
        (Edge in p4src/beaver.p4), which in-group processes would trust.
        Nothing legitimate enters there on that port: the out-group reaches
        the in-group only through the SLBs.  The rule lives in the router's
        namespace, and goes with it."""
        iface = next(i.name for i in border.intfList() if i.IP() == BORDER_INTERNET_IP)
        rule = ["-i", iface, "-p", "udp", "--dport", str(BEAVER_UDP_PORT), "-j", "DROP"]
        proc = border.popen(["iptables", "-w", "5", "-A", "FORWARD", *rule],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise NetworkError(f"bvbr: cannot keep Beaver headers from the internet out of the "
                               f"fabric (iptables -A FORWARD {' '.join(rule)}): "
                               f"{(err or out).strip() or f'exit {proc.returncode}'}")

    # -- checking -----------------------------------------------------------------

    def _check_bridges(self):
        """Fails, in one line naming the cause and the fix, where a bridge
        still forwards nothing: the controller's path to every in-group
        host's management address, and the border router's to each host
        over the fabric and the internet bridge."""
        plan = self.plan
        mgmt = {mgmt_ip: name for name, (_, _, _, mgmt_ip) in plan.ingroup.items()}
        ruled = bool(self.allowance and self.allowance.added)
        for ip in firewall.blocked(mgmt):
            raise NetworkError(_blocked(MGMT_BRIDGE, mgmt[ip], ip, "the root namespace", ruled))
        border = self.host("bvbr")
        for bridge, hosts in ((FABRIC_BRIDGE, {a.ip: n for n, (_, _, a, _) in
                                               plan.ingroup.items()}),
                              (INTERNET_BRIDGE, {a.ip: n for n, (_, a) in
                                                 plan.outgroup.items()})):
            for ip in _blocked_from(border, hosts):
                raise NetworkError(_blocked(bridge, hosts[ip], ip, "the border router", ruled))


def _blocked_from(host: Host, addresses, port: int = 9, timeout: int = 3) -> list[str]:
    """firewall.blocked, from a Mininet host's namespace: a refused
    connection (exit 1) answers, a timeout (124) does not.  The probes run
    in a process of their own, not the host's shell: background jobs there
    can keep Mininet from seeing the prompt come back."""
    if not addresses:
        return []
    probes = " ".join(f"(timeout {timeout} bash -c 'exec 3<>/dev/tcp/{ip}/{port}' "
                      f"2>/dev/null; echo probe {ip} $?) &" for ip in addresses)
    proc = host.popen(["bash", "-c", f"{probes} wait"], stdout=subprocess.PIPE,
                      stderr=subprocess.DEVNULL, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    answered = {words[1] for words in (line.split() for line in out.splitlines())
                if len(words) == 3 and words[0] == "probe" and words[2] in ("0", "1")}
    return [ip for ip in addresses if ip not in answered]


def _blocked(bridge: str, host: str, ip: str, origin: str, ruled: bool) -> str:
    """ruled: whether this network put ACCEPT rules in iptables' FORWARD chain."""
    where = f"{host} ({ip}) is unreachable from {origin} across bridge {bridge}"
    if not firewall.bridges_filtered():
        return f"{where}, and bridged traffic crosses no firewall here: see the switch logs"
    if ruled:
        return (f"{where}: this host's firewall drops bridged traffic (net.bridge."
                f"bridge-nf-call-iptables = 1) outside iptables' filter FORWARD chain, where "
                f"this network accepts it; accept what {bridge} forwards there too (nftables: "
                f"iifname \"bv*\" oifname \"bv*\" accept) or run sysctl -w "
                f"net.bridge.bridge-nf-call-iptables=0")
    return (f"{where}: this host's firewall drops bridged traffic (net.bridge.bridge-nf-call-"
            f"iptables = 1); accept what {bridge} forwards (iptables -I FORWARD -i {bridge} -o "
            f"{bridge} -j ACCEPT, or in nftables: iifname \"bv*\" oifname \"bv*\" accept) or "
            f"run sysctl -w net.bridge.bridge-nf-call-iptables=0")
