"""The service configuration: SLBs, VIPs, in-group prefixes and processes,
and the controller's settings, read from TOML and validated before
any switch is touched.

    [controller]                      # every key optional
    election_id = 1
    store = "snapshots.db"            # relative to this file
    tau_us = 5000                     # external causal chain bound
    rule = "fine"                     # OGM detection rule: "fine" or "coarse"
    initiation = "immediate"          # OGM: "immediate" or "timed"
    lead_us = 4000                    # timed: activation lead (default: from round trips)
    ack_timeout_ms = 100              # per acknowledgement attempt (queueing included)
    retries = 2                       # resends of an unanswered request
    report_timeout_ms = 2000          # in-group reports, channel state included
    clock_interval_s = 10             # clock re-estimation period during a run
    connect_timeout_s = 5
    connect_retries = 3

    [pipeline]                        # optional: defaults to p4src/build
    name = "beaver"                   # "beaver", or "plain": the SLB without Beaver
                                      # (p4src/build/plain), which takes no snapshot
    p4info = "build/beaver.p4info.txtpb"    # default: the named program's build
    bmv2_json = "build/beaver.json"

    [service]
    ingroup = ["10.0.2.0/24"]         # sources SLBs may learn IDs from

    [[slbs]]
    name = "s1"
    address = "127.0.0.1:9559"        # P4Runtime gRPC
    device_id = 1
    slb_id = 1                        # 0-255, carried in the marks
    slb_addr = "10.0.0.254"           # outer source of the encapsulation
    marking = true
    routes = [{prefix = "10.0.2.1/32", port = 2, src_mac = "00:00:00:00:00:fe",
               dst_mac = "00:00:00:00:00:02"}]
    ingroup_ports = [2]               # ports facing the in-group, the only ones a Beaver
                                      # header (MARK, STAMP) may arrive on; default: the
                                      # ports of routes inside the in-group prefixes
    probe = {port = 3, iface = "s1-probe"}   # optional clock-probe port, and the
                                      # controller's interface linked to it

    [[vips]]
    address = "10.10.0.1"
    protocol = "udp"
    port = 80
    backends = ["10.0.2.1", "10.0.2.2"]   # in-group hosts (DIPs)
    in_snapshots = true               # false: hosts that run no Beaver runtime (bulk
                                      # traffic), in no snapshot

    [[processes]]                     # in-group processes, out-of-band reports
    name = "p1"
    address = "10.0.2.1:4791"
    peers = ["p2"]                    # in-group processes it sends to: each must be listed
    dip = "10.0.2.1"                  # the backend it serves as (default: the address's
                                      # host), where reports come out of band elsewhere

Across sections: every backend lies in the in-group prefixes, and when
processes are listed, each backend of a VIP in snapshots is one of theirs
(a host that takes no snapshot would be missing from every cut); no VIP is
also a backend; no two processes share an address.

An error names the file, the field and what is wrong.
"""
from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beaver.p4src import BMV2_JSON, P4INFO, PLAIN_BMV2_JSON, PLAIN_P4INFO

from beaver.control.slbs.program import PROTOCOLS, Route, Vip

RULES = ("fine", "coarse")
# The programs an SLB may run, by [pipeline] name: (P4Info, BMv2 JSON).  The
# plain SLB has Beaver's tables but no epoch state: no snapshot, no mark.
PIPELINES = {"beaver": (P4INFO, BMV2_JSON), "plain": (PLAIN_P4INFO, PLAIN_BMV2_JSON)}
INITIATIONS = ("immediate", "timed")
ELECTION_ID_MAX = (1 << 64) - 1   # P4Runtime's election ID, its low 64 bits (0: none)
TAU_MAX_US = 3600 * 10**6         # bounds of the numbers a run takes, also from the
LEAD_MAX_US = 10 * 10**6          # command line
MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid: file, field, problem."""


@dataclass(frozen=True)
class SlbConfig:
    name: str
    address: str
    device_id: int
    slb_id: int
    slb_addr: str
    marking: bool
    routes: tuple[Route, ...]
    ingroup_ports: tuple[int, ...] = ()
    probe_port: int | None = None     # the switch's clock-probe port
    probe_iface: str | None = None    # the controller's interface linked to it


@dataclass(frozen=True)
class ProcessConfig:
    name: str
    host: str
    port: int
    peers: tuple[str, ...] = ()
    dip: str | None = None   # the backend address it serves at, if it is one


@dataclass(frozen=True)
class ControllerSettings:
    store: Path
    election_id: int = 1
    tau_us: int = 5000
    rule: str = "fine"
    initiation: str = "immediate"
    lead_us: int | None = None
    ack_timeout_ms: float = 100.0
    retries: int = 2
    report_timeout_ms: float = 2000.0
    clock_interval_s: float = 10.0
    connect_timeout_s: float = 5.0
    connect_retries: int = 3


@dataclass(frozen=True)
class ServiceConfig:
    path: Path
    controller: ControllerSettings
    p4info: Path
    bmv2_json: Path
    slbs: tuple[SlbConfig, ...]
    vips: tuple[Vip, ...]
    ingroup: tuple[str, ...]
    processes: tuple[ProcessConfig, ...]
    pipeline: str = "beaver"    # of PIPELINES: what the SLBs run

    def slb(self, name: str) -> SlbConfig:
        for slb in self.slbs:
            if slb.name == name:
                return slb
        raise ConfigError(f"{self.path}: no SLB named {name!r}")


class _Table:
    """One mapping of the file, read field by field with its path for errors."""

    def __init__(self, source: Path, where: str, data: Any):
        self.source = source
        self.where = where
        if not isinstance(data, dict):
            self.fail(None, f"expected a table, got {type(data).__name__}")
        self.data = data
        self.used: set[str] = set()

    def fail(self, key: str | None, problem: str):
        key = key if key is None or key.isprintable() else repr(key)   # one line
        field = ".".join(p for p in (self.where, key) if p) or "(top level)"
        raise ConfigError(f"{self.source}: {field}: {problem}")

    def get(self, key: str, kind: type | tuple, default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                self.fail(key, "missing")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a flag must not pass as a number or back
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(key, f"expected {names}, got {value!r}")
        return value

    def number(self, key: str, low: float, high: float, default: Any = ...,
               integer: bool = True) -> Any:
        value = self.get(key, int if integer else (int, float), default)
        if value is None and default is None:   # optional, and absent
            return None
        if not low <= value <= high:
            self.fail(key, f"{value} is outside {low}..{high}")
        return value

    def ipv4(self, key: str) -> str:
        value = self.get(key, str)
        return self.check_ipv4(key, value)

    def check_ipv4(self, key: str, value: Any) -> str:
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            self.fail(key, f"{value!r} is not an IPv4 address")

    def prefix(self, key: str, value: Any) -> str:
        try:
            return str(ipaddress.IPv4Network(value))
        except (ValueError, TypeError):
            self.fail(key, f"{value!r} is not an IPv4 prefix such as 10.0.2.0/24")

    def tables(self, key: str) -> list["_Table"]:
        items = self.get(key, list, [])
        return [_Table(self.source, f"{self.where + '.' if self.where else ''}{key}[{i}]", item)
                for i, item in enumerate(items)]

    def name(self, key: str) -> str:
        """A name (of an SLB, a process): not empty, and printable, as it is
        shown in tables and errors."""
        value = self.get(key, str)
        if not value:
            self.fail(key, "must not be empty")
        if not value.isprintable():
            self.fail(key, f"{value!r} holds a character that cannot be shown")
        return value

    def table(self, key: str) -> "_Table":
        return _Table(self.source, key if not self.where else f"{self.where}.{key}",
                      self.get(key, dict, {}))

    def done(self):
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail(unknown[0], "unknown field")


def host_port(table: _Table, key: str) -> tuple[str, int]:
    value = table.get(key, str)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        table.fail(key, f"expected host:port, got {value!r}")
    return host, int(port)


def parse(path: Path, data: Any) -> ServiceConfig:
    """Validates an already decoded file."""
    base = path.parent
    top = _Table(path, "", data)

    c = top.table("controller")
    settings = ControllerSettings(
        store=base / c.get("store", str, "snapshots.db"),
        election_id=c.number("election_id", 1, ELECTION_ID_MAX, 1),
        tau_us=c.number("tau_us", 0, TAU_MAX_US, 5000),
        rule=c.get("rule", str, "fine"),
        initiation=c.get("initiation", str, "immediate"),
        lead_us=c.number("lead_us", 1, LEAD_MAX_US, None),
        ack_timeout_ms=c.number("ack_timeout_ms", 1, 60_000, 100.0, integer=False),
        retries=c.number("retries", 0, 100, 2),
        report_timeout_ms=c.number("report_timeout_ms", 1, 600_000, 2000.0, integer=False),
        clock_interval_s=c.number("clock_interval_s", 0.1, 86400, 10.0, integer=False),
        connect_timeout_s=c.number("connect_timeout_s", 0.1, 600, 5.0, integer=False),
        connect_retries=c.number("connect_retries", 0, 100, 3))
    if settings.rule not in RULES:
        c.fail("rule", f"expected one of {', '.join(RULES)}, got {settings.rule!r}")
    if settings.initiation not in INITIATIONS:
        c.fail("initiation", f"expected one of {', '.join(INITIATIONS)}, "
               f"got {settings.initiation!r}")
    c.done()

    p = top.table("pipeline")
    pipeline = p.get("name", str, "beaver")
    if pipeline not in PIPELINES:
        p.fail("name", f"expected one of {', '.join(PIPELINES)}, got {pipeline!r}")
    p4info, bmv2_json = PIPELINES[pipeline]
    p4info = base / p.get("p4info", str) if "p4info" in p.data else p4info
    bmv2_json = base / p.get("bmv2_json", str) if "bmv2_json" in p.data else bmv2_json
    p.done()

    s = top.table("service")
    ingroup = tuple(s.prefix(f"ingroup[{i}]", v) for i, v in enumerate(s.get("ingroup", list, [])))
    s.done()

    slbs = tuple(_slb(t, ingroup) for t in top.tables("slbs"))
    if not slbs:
        top.fail("slbs", "at least one SLB is needed")
    for field in ("name", "address", "slb_id"):
        _unique(top, "slbs", [getattr(slb, field) for slb in slbs], field)

    vip_tables = top.tables("vips")
    vips, in_snapshots = zip(*map(_vip, vip_tables)) if vip_tables else ((), ())
    _unique(top, "vips", [(v.address, v.protocol, v.port) for v in vips], "address/protocol/port")

    process_tables = top.tables("processes")
    processes = tuple(map(_process, process_tables))
    _unique(top, "processes", [proc.name for proc in processes], "name")
    _unique(top, "processes", [f"{proc.host}:{proc.port}" for proc in processes], "address")
    # A peer that reports nothing would leave its channels unjudged.
    names = {proc.name for proc in processes}
    for t, proc in zip(process_tables, processes):
        for i, peer in enumerate(proc.peers):
            if peer not in names or peer == proc.name:
                t.fail(f"peers[{i}]", f"{peer!r} is not another configured process "
                       f"(processes: {', '.join(sorted(names))})")
    _check_pools(vip_tables, vips, in_snapshots, ingroup, processes)
    top.done()
    return ServiceConfig(path, settings, p4info, bmv2_json, slbs, vips, ingroup, processes,
                         pipeline)


def _process(t: _Table) -> ProcessConfig:
    name = t.name("name")
    host, port = host_port(t, "address")
    peers = t.get("peers", list, [])
    for i, peer in enumerate(peers):
        if not isinstance(peer, str):
            t.fail(f"peers[{i}]", f"expected a process name, got {peer!r}")
        if peer in peers[:i]:
            t.fail(f"peers[{i}]", f"{peer!r} appears twice")
    dip = t.ipv4("dip") if "dip" in t.data else _ipv4_or_none(host)
    t.done()
    return ProcessConfig(name, host, port, tuple(peers), dip)


def _ipv4_or_none(host: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        return None


def _check_pools(tables: list[_Table], vips: tuple[Vip, ...], in_snapshots: tuple[bool, ...],
                 ingroup: tuple[str, ...], processes: tuple[ProcessConfig, ...]):
    """The VIPs' pools against the in-group: every backend inside its
    prefixes, and one of the processes where there are processes and the
    pool is in snapshots; no VIP is a backend."""
    inside = [ipaddress.IPv4Network(p) for p in ingroup]
    backends = {b for vip in vips for b in vip.backends}
    dips = {proc.dip for proc in processes}
    for t, vip, snapshotted in zip(tables, vips, in_snapshots):
        if vip.address in backends:
            t.fail("address", f"{vip.address} is also a backend: a VIP must be an address "
                   "of its own")
        for i, backend in enumerate(vip.backends):
            if not any(ipaddress.IPv4Address(backend) in n for n in inside):
                t.fail(f"backends[{i}]", f"{backend} is outside the in-group prefixes "
                       f"(service.ingroup: {', '.join(ingroup) or 'none'})")
            if processes and snapshotted and backend not in dips:
                t.fail(f"backends[{i}]", f"{backend} is no listed process's dip, so it "
                       "would be in no cut (in_snapshots = false marks a pool outside "
                       "every snapshot)")


def _slb(t: _Table, ingroup: tuple[str, ...]) -> SlbConfig:
    name = t.name("name")
    host_port(t, "address")
    routes = []
    for r in t.tables("routes"):
        mac = {}
        for key in ("src_mac", "dst_mac"):
            mac[key] = r.get(key, str)
            if not MAC.match(mac[key]):
                r.fail(key, f"{mac[key]!r} is not a MAC address such as 00:00:00:00:00:01")
        routes.append(Route(r.prefix("prefix", r.get("prefix", str)),
                            r.number("port", 0, 511), mac["src_mac"], mac["dst_mac"]))
        r.done()
    inside = [ipaddress.IPv4Network(p) for p in ingroup]
    facing = sorted({r.port for r in routes
                     if any(ipaddress.IPv4Network(r.prefix).subnet_of(n) for n in inside)})
    ports = t.get("ingroup_ports", list, facing)
    for i, port in enumerate(ports):
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 511:
            t.fail(f"ingroup_ports[{i}]", f"expected a port number 0..511, got {port!r}")
    probe_port = probe_iface = None
    if "probe" in t.data:
        probe = t.table("probe")
        probe_port = probe.number("port", 0, 511)
        probe_iface = probe.get("iface", str)
        if not probe_iface:
            probe.fail("iface", "must not be empty")
        if probe_port in ports or probe_port in {r.port for r in routes}:
            probe.fail("port", f"port {probe_port} also carries traffic: a probe port "
                       "must be its own")
        probe.done()
    slb = SlbConfig(name=name, address=t.data["address"],
                    device_id=t.number("device_id", 0, (1 << 64) - 1),
                    slb_id=t.number("slb_id", 0, 255), slb_addr=t.ipv4("slb_addr"),
                    marking=t.get("marking", bool, True), routes=tuple(routes),
                    ingroup_ports=tuple(ports), probe_port=probe_port,
                    probe_iface=probe_iface)
    t.done()
    return slb


def _vip(t: _Table) -> tuple[Vip, bool]:
    protocol = t.get("protocol", str)
    if protocol not in PROTOCOLS:
        t.fail("protocol", f"expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    backends = t.get("backends", list)
    if not backends:
        t.fail("backends", "a VIP needs at least one backend")
    vip = Vip(t.ipv4("address"), protocol, t.number("port", 1, 65535),
              tuple(t.check_ipv4(f"backends[{i}]", b) for i, b in enumerate(backends)))
    in_snapshots = t.get("in_snapshots", bool, True)
    t.done()
    return vip, in_snapshots


def _unique(top: _Table, section: str, values: list, field: str):
    seen = set()
    for i, value in enumerate(values):
        if value in seen:
            top.fail(f"{section}[{i}].{field}", f"{value!r} appears twice")
        seen.add(value)


def load(path: str | Path) -> ServiceConfig:
    """Reads and validates a .toml file; raises ConfigError."""
    path = Path(path)
    if path.suffix != ".toml":
        raise ConfigError(f"{path}: expected a .toml file")
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") \
            from None
    return parse(path, data)
