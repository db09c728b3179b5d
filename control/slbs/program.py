"""What an SLB's tables must hold, as P4Runtime updates.

One SLB is programmed from plain values: its id and address, the VIPs it
balances with their backend pools, its routes, the in-group prefixes it may
learn snapshot IDs from, the ports that face the in-group (the only ones a
Beaver header may arrive on), and its clock-probe port.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Sequence

from p4.v1 import p4runtime_pb2
from p4runtime_sh.context import Context

from beaver.control.p4runtime import entries

PROTOCOLS = {"tcp": 6, "udp": 17}


@dataclass(frozen=True)
class Vip:
    address: str
    protocol: str          # "tcp" or "udp"
    port: int
    backends: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    prefix: str            # "10.0.2.0/24"
    port: int
    src_mac: str
    dst_mac: str


def slb_updates(ctx: Context, slb_id: int, address: str, vips: Sequence[Vip],
                routes: Iterable[Route], ingroup: Iterable[str],
                marking: bool = True, ingroup_ports: Iterable[int] = (),
                probe_port: int | None = None) -> list[p4runtime_pb2.Update]:
    """Every update that programs a freshly pushed pipeline."""
    INSERT, MODIFY = p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY
    out = [entries.update(config_entry(ctx, slb_id, address, marking), MODIFY)]
    for pool, vip in enumerate(vips, start=1):
        out.append(entries.update(entries.table_entry(
            ctx, "vips",
            match={"hdr.ipv4.dst_addr": vip.address,
                   "hdr.ipv4.protocol": PROTOCOLS[vip.protocol],
                   "meta.l4_dst_port": vip.port},
            action="to_pool", params={"pool": pool, "pool_size": len(vip.backends)}), INSERT))
        for member, dip in enumerate(vip.backends):
            out.append(entries.update(entries.table_entry(
                ctx, "pool_members", match={"meta.pool": pool, "meta.member": member},
                action="set_dip", params={"dip": dip}), INSERT))
    for route in routes:
        net = ipaddress.IPv4Network(route.prefix)
        out.append(entries.update(entries.table_entry(
            ctx, "routes", match={"dst": (str(net.network_address), net.prefixlen)},
            action="forward",
            params={"port": route.port, "src_mac": route.src_mac, "dst_mac": route.dst_mac}),
            INSERT))
    for port in ingroup_ports:
        out.append(entries.update(entries.table_entry(
            ctx, "ingroup_ports", match={"ingress_port": port}, action="inside"), INSERT))
    for prefix in ingroup:
        net = ipaddress.IPv4Network(prefix)
        out.append(entries.update(entries.table_entry(
            ctx, "ingroup_sources",
            match={"hdr.ipv4.src_addr": (str(net.network_address), net.prefixlen)},
            action="learn"), INSERT))
    if probe_port is not None:
        out.append(entries.update(entries.table_entry(
            ctx, "probe_ports", match={"std.ingress_port": probe_port}, action="reflect"),
            INSERT))
    return out


def config_entry(ctx: Context, slb_id: int, address: str,
                 marking: bool) -> p4runtime_pb2.TableEntry:
    """The slb_config default entry (written with MODIFY)."""
    return entries.table_entry(ctx, "slb_config", action="configure", default=True,
                               params={"slb_id": slb_id, "slb_addr": address,
                                       "marking": int(marking)})
