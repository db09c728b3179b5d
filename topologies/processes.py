"""The processes of a run, on its Mininet hosts.

In-group hosts run their service (beaver.traffic.kvstore or .bank) under the
in-group runtime; out-group hosts run one role each:

    client-kv, client-bank   a client of that service's VIP
    relay                    asks the key-value store, then at once the bank
    human, bot               users of the anomalous-access use case
    thirdparty               the bank's webhook, which audits into the store
    workflow                 takes locks at the lock managers "la", then "lb",
                             some through the forwarder (the deadlock use case)
    deadlock-a, deadlock-b   a pair of workflows that deadlock once a period
    forwarder                an out-group queue between clients and a VIP
    gc-client                creates objects at function "fa", hands references
                             through the forwarder to function "fb"

Every process writes its ground-truth event log to logs/NAME.jsonl and its
output to out/NAME.{json,err}.  Every stop is a SIGTERM, on which a process
closes its log; one still running 10 s later is killed, and its log is
short (the checker counts such logs).  In-group processes accept MARKs only
from the SLBs' fabric addresses, where the SLBs encapsulate from.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from beaver.control.oob import OOB_PORT

from .bmv2 import port_open
from .network import BeaverNetwork
from .spec import Service

ROLES = ("client-kv", "client-bank", "relay", "human", "bot", "thirdparty", "workflow",
         "deadlock-a", "deadlock-b", "forwarder", "gc-client")
THIRDPARTY_PORT = 8000
FORWARDER_PORT = 8001
SERVER_PORTS = {"thirdparty": THIRDPARTY_PORT, "forwarder": FORWARDER_PORT}


class ProcessError(RuntimeError):
    pass


@dataclass(frozen=True)
class Workload:
    runtime_mode: str = "beaver"       # beaver, lai-yang, polling or off
    poll_interval: float | None = None
    client_loop: str = "closed"        # closed or open
    client_rate: float = 200.0         # open loop: requests per second per client
    write_ratio: float = 0.5
    seed: int = 1
    # extra arguments by service app (in-group) or by role (out-group)
    app_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class Processes:
    def __init__(self, network: BeaverNetwork, run_dir: Path, workload: Workload):
        self.network = network
        self.plan = network.plan
        self.workload = workload
        self.logs = run_dir / "logs"
        self.out = run_dir / "out"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen] = {}
        self.summaries: dict[str, dict] = {}

    # -- what runs where --------------------------------------------------------

    def _vip_of(self, app: str) -> str:
        for vip, (service, _) in self.plan.vips().items():
            if service.app == app:
                return f"{vip}:{service.port}"
        raise ProcessError(f"this topology has no {app} service")

    def _vip_of_service(self, name: str) -> str:
        for vip, (service, _) in self.plan.vips().items():
            if service.name == name:
                return f"{vip}:{service.port}"
        raise ProcessError(f"this topology has no service named {name}")

    def _server(self, role: str) -> str | None:
        """Where the out-group host of a serving role listens."""
        for name, (other, addr) in self.plan.outgroup.items():
            if other == role:
                return f"{addr.ip}:{SERVER_PORTS[role]}"
        return None

    def ingroup_command(self, name: str) -> list[str]:
        service, _, addr, mgmt_ip = self.plan.ingroup[name]
        members = [n for n, (s, _, _, _) in self.plan.ingroup.items() if s == service]
        vip = next(v for v, (s, _) in self.plan.vips().items() if s == service)
        w = self.workload
        cmd = ["-m", f"beaver.traffic.{_module(service)}", "--name", name, "--dip", addr.ip,
               "--vip", f"{vip}:{service.port}", "--mode", w.runtime_mode,
               "--mgmt", mgmt_ip, "--oob-port", str(OOB_PORT)]
        for slb in self.plan.slb_fabric.values():
            cmd += ["--slb", slb.ip]
        for peer in members:
            if peer != name:
                cmd += ["--peer", f"{peer}={self.plan.ingroup[peer][2].ip}"]
        if w.poll_interval is not None:
            cmd += ["--poll-interval", str(w.poll_interval)]
        cmd += list(w.app_args.get(service.app, ()))
        if service.app == "bank":
            cmd += ["--shards", ",".join(members)]
            if (hook := self._server("thirdparty")) is not None:
                cmd += ["--notify", hook, "--audit", self._vip_of("kv")]
        return cmd

    def outgroup_command(self, name: str) -> list[str]:
        role, addr = self.plan.outgroup[name]
        seed = str(self.workload.seed * 1000 + list(self.plan.outgroup).index(name))
        w = self.workload
        if role.startswith("client-"):
            app = role.split("-", 1)[1]
            cmd = ["-m", "beaver.traffic.clients", "--target", self._vip_of(app),
                   "--service", app, "--loop", w.client_loop, "--rate", str(w.client_rate),
                   "--write-ratio", str(w.write_ratio), "--seed", seed]
        elif role == "relay":
            cmd = ["-m", "beaver.traffic.relay", "--first", self._vip_of("kv"),
                   "--first-service", "kv", "--then", self._vip_of("bank"),
                   "--then-service", "bank", "--seed", seed]
        elif role in ("human", "bot"):
            cmd = ["-m", "beaver.traffic.anomaly", "--kv", self._vip_of("kv"),
                   "--bank", self._vip_of("bank"), "--seed", seed]
            cmd += ["--bot"] if role == "bot" else []
        elif role == "thirdparty":
            cmd = ["-m", "beaver.traffic.thirdparty"]
        elif role == "forwarder":
            cmd = ["-m", "beaver.traffic.forwarder"]
        elif role in ("workflow", "deadlock-a", "deadlock-b"):
            cmd = ["-m", "beaver.traffic.workflows", "--a", self._vip_of_service("la"),
                   "--b", self._vip_of_service("lb"), "--seed", seed]
            if role != "workflow":
                cmd += ["--pair", role[-1]]
            elif (via := self._server("forwarder")) is not None:
                cmd += ["--via", via]
            cmd += list(w.app_args.get(role, ()))
        elif role == "gc-client":
            queue = self._server("forwarder")
            if queue is None:
                raise ProcessError("a gc-client needs a forwarder in the topology")
            cmd = ["-m", "beaver.traffic.gcclient", "--a", self._vip_of_service("fa"),
                   "--b", self._vip_of_service("fb"), "--queue", queue]
        else:
            raise ProcessError(f"unknown out-group role {role!r}: one of {', '.join(ROLES)}")
        bind = f"{addr.ip}:{SERVER_PORTS[role]}" if role in SERVER_PORTS else addr.ip
        return cmd + ["--name", name, "--bind", bind]

    # -- life cycle -------------------------------------------------------------

    def _start(self, name: str, args: list[str]):
        cmd = [sys.executable, *args, "--log", str(self.logs / f"{name}.jsonl")]
        with open(self.out / f"{name}.json", "w") as out, \
                open(self.out / f"{name}.err", "w") as err:
            self.running[name] = self.network.host(name).popen(cmd, stdout=out, stderr=err)

    def start_ingroup(self, timeout: float = 15.0):
        """Starts every in-group process and waits until each OOB server answers."""
        for name in self.plan.ingroup:
            self._start(name, self.ingroup_command(name))
        deadline = time.monotonic() + timeout
        for name, (_, _, _, mgmt_ip) in self.plan.ingroup.items():
            while not port_open(mgmt_ip, OOB_PORT):
                if self.running[name].poll() is not None:
                    raise ProcessError(f"{name} exited: {self._tail(name)}")
                if time.monotonic() > deadline:
                    raise ProcessError(f"{name} not serving after {timeout:.0f} s: "
                                       f"{self._tail(name)}")
                time.sleep(0.05)

    def start_outgroup(self, roles: tuple[str, ...] = ROLES):
        """Starts the out-group processes whose role is in roles; the servers
        (third party, forwarder) first, since others call them."""
        names = [n for n, (role, _) in self.plan.outgroup.items() if role in roles]
        names.sort(key=lambda n: self.plan.outgroup[n][0] not in SERVER_PORTS)
        for name in names:
            self._start(name, self.outgroup_command(name))

    def stop(self, names=None, timeout: float = 10.0):
        """SIGTERM, wait, then SIGKILL what is left; keeps each JSON summary."""
        names = list(self.running if names is None else names)
        for name in names:
            if self.running[name].poll() is None:
                self.running[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in names:
            proc = self.running.pop(name)
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.summaries[name] = self._summary(name)

    def stop_outgroup(self):
        self.stop([n for n in self.running if n in self.plan.outgroup])

    def log_paths(self) -> list[Path]:
        return sorted(self.logs.glob("*.jsonl"))

    def _summary(self, name: str) -> dict:
        try:
            return json.loads((self.out / f"{name}.json").read_text().strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            return {"process": name, "error": self._tail(name)}

    def _tail(self, name: str) -> str:
        lines = (self.out / f"{name}.err").read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or "(no output)"


def _module(service: Service) -> str:
    return {"kv": "kvstore", "bank": "bank", "locks": "locks", "gc": "objects"}[service.app]
