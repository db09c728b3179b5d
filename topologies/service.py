"""The controller's service configuration (control/config.py) for a network.

Written as beaver.toml into the run's folder, so the same `beaver snapshot
...` commands a user types work against a running experiment.
"""
from __future__ import annotations

from pathlib import Path

from beaver.control.config import ServiceConfig, load
from beaver.traffic.oob.protocol import OOB_PORT

from beaver.topologies.network import BeaverNetwork
from beaver.topologies.spec import INGROUP_HOSTS, SLB_PORT_PROBE


def _value(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(map(_value, v)) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _table(name: str, values: dict, array: bool = False) -> str:
    head = f"[[{name}]]" if array else f"[{name}]"
    return "\n".join([head] + [f"{k} = {_value(v)}" for k, v in values.items()]) + "\n"


def write_config(network: BeaverNetwork, path: Path, marking: bool = True,
                 pipeline: str = "beaver") -> ServiceConfig:
    """Writes the configuration and returns it as the controller reads it;
    pipeline names the program every SLB runs (control/config.py PIPELINES)."""
    plan = network.plan
    parts = [_table("controller", {"store": "snapshots.db"}),
             _table("pipeline", {"name": pipeline}),
             _table("service", {"ingroup": [INGROUP_HOSTS]})]
    for g, (name, fabric) in enumerate(plan.slb_fabric.items(), start=1):
        node = network.slb(name)
        parts.append(_table("slbs", {"name": name, "address": node.grpc_address,
                                     "device_id": node.device_id, "slb_id": g,
                                     "slb_addr": fabric.ip, "marking": marking}, array=True))
        iface = network.probe_iface(name)
        if iface is not None:
            parts.append(_table("slbs.probe", {"port": SLB_PORT_PROBE, "iface": iface}))
        for route in network.slb_routes(name):
            parts.append(_table("slbs.routes", {"prefix": route.prefix, "port": route.port,
                                                 "src_mac": route.src_mac,
                                                 "dst_mac": route.dst_mac}, array=True))
    for vip, (service, dips) in plan.vips().items():
        parts.append(_table("vips", {"address": vip, "protocol": service.transport,
                                     "port": service.port, "backends": dips,
                                     "in_snapshots": service.in_snapshots}, array=True))
    for name, (service, _, address, mgmt_ip) in plan.ingroup.items():
        if not service.in_snapshots:
            continue
        peers = [n for n, (s, _, _, _) in plan.ingroup.items() if s == service and n != name]
        parts.append(_table("processes", {"name": name, "address": f"{mgmt_ip}:{OOB_PORT}",
                                          "peers": peers, "dip": address.ip}, array=True))
    path.write_text("\n".join(parts))
    return load(path)
