"""The processes of a run, on its Mininet hosts.

In-group hosts run their service (beaver.traffic.services.kvstore or .bank) under the
in-group runtime, or (app "iperf") a plain iperf3 server; out-group hosts run
one role each:

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
    ycsb                     a YCSB-like client of the TCP key-value store
    relay-tcp                puts into the first TCP key-value store, then at once
                             gets from the second
    iperf                    an iperf3 client of the iperf VIP: 1 s (slow start)
                             omitted, then iperf_seconds measured

Every process writes its ground-truth event log to logs/NAME.jsonl and its
output to out/NAME.{json,err} (a restarted one to NAME.K.*, its K-th
restart).  Every stop is a SIGTERM, on which a process closes its log; one
still running 10 s later is killed, and its log is short (the checker counts
such logs).  A process on another server (--servers) writes its log at the
same path there; once it ended, the log is copied back over ssh, and one
that cannot be is missing here (the checker counts it short too).  In-group
processes accept MARKs only from the SLBs' fabric addresses, where the SLBs
encapsulate from.  The in-group's process table
(running.py) lets `beaver snapshot restore` find them; restart and kill are
what rollback.py and the recovery experiment need.
"""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from beaver.traffic.oob.protocol import OOB_PORT

from beaver.topologies import running
from beaver.topologies.bmv2 import port_open
from beaver.topologies.cluster import remote
from beaver.topologies.network import BeaverNetwork
from beaver.topologies.spec import Service

logger = logging.getLogger(__name__)

ROLES = ("client-kv", "client-bank", "relay", "human", "bot", "thirdparty", "workflow",
         "deadlock-a", "deadlock-b", "forwarder", "gc-client", "ycsb", "relay-tcp", "iperf")
THIRDPARTY_PORT = 8000
FORWARDER_PORT = 8001
SERVER_PORTS = {"thirdparty": THIRDPARTY_PORT, "forwarder": FORWARDER_PORT}
# The closed-loop clients send from a port of their own, the same in every
# run: the SLB hashes the 5-tuple to pick a backend, and ephemeral ports put
# both YCSB-like clients on one replica in 2 of 5 phases, halving what the
# phase could serve, at random (Fig. 14's pairs must see one topology).
CLIENT_PORT = 20000   # + the client's place among the out-group
CLIENT_ROLES = ("client-kv", "client-bank", "ycsb")


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
    iperf_seconds: float = 10.0        # how long an iperf role sends
    iperf_mbps: float | None = None    # an iperf role's offered load (None: as fast as it can)


class Processes:
    def __init__(self, network: BeaverNetwork, run_dir: Path, workload: Workload):
        self.network = network
        self.plan = network.plan
        self.workload = workload
        self.logs = run_dir / "logs"
        self.out = run_dir / "out"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        self.running: dict[str, subprocess.Popen] = {}
        self.summaries: dict[str, dict] = {}
        self.incarnations: dict[str, int] = {}   # restarts so far, by process
        self.table: dict[str, running.Entry] = {}
        self.remote_logs: dict[str, Path] = {}   # a running process's log on another server
        self.folders_on: set[str] = set()        # servers where self.logs was made

    # -- what runs where --------------------------------------------------------

    def _vip_of(self, app: str, nth: int = 0) -> str:
        """VIP:port of the nth service that runs app."""
        vips = [f"{vip}:{service.port}" for vip, (service, _) in self.plan.vips().items()
                if service.app == app]
        if len(vips) <= nth:
            raise ProcessError(f"this topology has no {app} service number {nth + 1}")
        return vips[nth]

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
        """python's arguments for a Beaver process, or a whole command (iperf)."""
        service, _, addr, mgmt_ip = self.plan.ingroup[name]
        if service.app == "iperf":
            return ["iperf3", "--server", "--port", str(service.port)]
        members = [n for n, (s, _, _, _) in self.plan.ingroup.items() if s == service]
        vip = next(v for v, (s, _) in self.plan.vips().items() if s == service)
        w = self.workload
        cmd = ["-m", f"beaver.traffic.services.{_module(service)}", "--name", name, "--dip", addr.ip,
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
        if service.transport == "tcp":
            cmd += ["--transport", "tcp",
                    "--flow-map", str(self.network.decaps[name].maps["flow_ids"]),
                    "--newest-map", str(self.network.decaps[name].maps["newest_id"])]
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
            cmd = ["-m", "beaver.traffic.outgroup.clients", "--target", self._vip_of(app),
                   "--service", app, "--loop", w.client_loop, "--rate", str(w.client_rate),
                   "--write-ratio", str(w.write_ratio), "--seed", seed]
        elif role == "relay":
            cmd = ["-m", "beaver.traffic.outgroup.relay", "--first", self._vip_of("kv"),
                   "--first-service", "kv", "--then", self._vip_of("bank"),
                   "--then-service", "bank", "--seed", seed, *w.app_args.get(role, ())]
        elif role in ("human", "bot"):
            cmd = ["-m", "beaver.traffic.outgroup.bots", "--kv", self._vip_of("kv"),
                   "--bank", self._vip_of("bank"), "--seed", seed]
            cmd += ["--bot"] if role == "bot" else []
        elif role == "thirdparty":
            cmd = ["-m", "beaver.traffic.outgroup.thirdparty"]
        elif role == "forwarder":
            cmd = ["-m", "beaver.traffic.outgroup.forwarder"]
        elif role in ("workflow", "deadlock-a", "deadlock-b"):
            cmd = ["-m", "beaver.traffic.outgroup.workflows", "--a", self._vip_of_service("la"),
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
            cmd = ["-m", "beaver.traffic.outgroup.gcclient", "--a", self._vip_of_service("fa"),
                   "--b", self._vip_of_service("fb"), "--queue", queue]
        elif role == "ycsb":
            cmd = ["-m", "beaver.traffic.outgroup.ycsb", "--target", self._vip_of("kv"),
                   "--read-ratio", str(1 - w.write_ratio), "--seed", seed,
                   *w.app_args.get(role, ())]
        elif role == "relay-tcp":
            cmd = ["-m", "beaver.traffic.outgroup.tcp_relay", "--first", self._vip_of("kv"),
                   "--then", self._vip_of("kv", 1), "--seed", seed]
        elif role == "iperf":
            vip, port = self._vip_of("iperf").split(":")
            return ["iperf3", "--client", vip, "--port", port, "--bind", addr.ip,
                    "--time", str(w.iperf_seconds), "--omit", "1", "--json",
                    *(["--bitrate", f"{w.iperf_mbps:.3f}M"] if w.iperf_mbps else [])]
        else:
            raise ProcessError(f"unknown out-group role {role!r}: one of {', '.join(ROLES)}")
        bind = (f"{addr.ip}:{SERVER_PORTS[role]}" if role in SERVER_PORTS else
                f"{addr.ip}:{CLIENT_PORT + list(self.plan.outgroup).index(name)}"
                if role in CLIENT_ROLES else addr.ip)
        return cmd + ["--name", name, "--bind", bind]

    # -- life cycle -------------------------------------------------------------

    def _paths(self, name: str) -> tuple[Path, Path, Path]:
        """Its current incarnation's event log, summary and errors."""
        return running.paths(self.logs, self.out, name, self.incarnations.get(name, 0))

    def _command(self, args: list[str]) -> list[str]:
        """args: python's (a Beaver process) or a whole command."""
        cmd = args if args[0] != "-m" else [sys.executable, *args]
        if self.network.spec.host_nice:
            cmd = ["nice", "-n", str(self.network.spec.host_nice), *cmd]
        return cmd

    def _start(self, name: str, args: list[str]):
        """A Beaver process keeps a log; an in-group one goes into the table."""
        log, out_path, err_path = self._paths(name)
        cmd = self._command(args) + (["--log", str(log)] if args[0] == "-m" else [])
        host = self.network.host(name)
        if remote(host) and args[0] == "-m":
            if host.server not in self.folders_on:
                host.make_folder(self.logs)
                self.folders_on.add(host.server)
            self.remote_logs[name] = log
        with open(out_path, "w") as out, open(err_path, "w") as err:
            self.running[name] = host.popen(cmd, stdout=out, stderr=err)
        if name in self.plan.ingroup and args[0] == "-m":
            self.table[name] = running.Entry(host.pid, self.running[name].pid,
                                             self._command(self.ingroup_command(name)),
                                             self.incarnations.get(name, 0))
            running.write_table(self.run_dir, self.table)

    def restart(self, name: str, extra: list[str] = ()):
        """Starts in-group process name again (it must have stopped), its
        usual arguments then extra, writing its log and output anew."""
        if name in self.running:
            raise ProcessError(f"{name} is still running: stop it first")
        self.incarnations[name] = self.incarnations.get(name, 0) + 1
        self._start(name, self.ingroup_command(name) + list(extra))

    def kill(self, names):
        """SIGKILL, as a crash: no summary, a short log."""
        for name in names:
            proc = self.running.pop(name)
            proc.kill()
            proc.wait()
            self._bring_back(name)
            self.summaries[name] = {"process": name, "error": "killed"}

    def failure(self, name: str) -> str | None:
        """Why name exited (its last lines of errors), or None while it runs."""
        proc = self.running.get(name)
        if proc is None:
            return "not started"
        return None if proc.poll() is None else self._tail(name)

    def start_ingroup(self, timeout: float = 15.0):
        """Starts every in-group process and waits until each OOB server answers."""
        for name in self.plan.ingroup:
            self._start(name, self.ingroup_command(name))
        deadline = time.monotonic() + timeout
        for name, (service, _, _, mgmt_ip) in self.plan.ingroup.items():
            while not self._serving(name, service, mgmt_ip):
                if self.running[name].poll() is not None:
                    raise ProcessError(f"{name} exited: {self._tail(name)}")
                if time.monotonic() > deadline:
                    raise ProcessError(f"{name} not serving after {timeout:.0f} s: "
                                       f"{self._tail(name)}")
                time.sleep(0.05)

    def _serving(self, name: str, service: Service, mgmt_ip: str) -> bool:
        if service.app == "iperf":
            return f":{service.port} " in self.network.host(name).cmd("ss -ltnH")
        return port_open(mgmt_ip, OOB_PORT)

    def start_outgroup(self, roles: tuple[str, ...] = ROLES):
        """Starts the out-group processes whose role is in roles; the servers
        (third party, forwarder) first, since others call them."""
        names = [n for n, (role, _) in self.plan.outgroup.items() if role in roles]
        names.sort(key=lambda n: self.plan.outgroup[n][0] not in SERVER_PORTS)
        for name in names:
            self._start(name, self.outgroup_command(name))

    def stop(self, names=None, timeout: float = 10.0):
        """SIGTERM, wait, then SIGKILL what is left; keeps each JSON summary.
        Names not running (killed, or never started) are passed over."""
        names = [n for n in (self.running if names is None else names) if n in self.running]
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
            self._bring_back(name)
            self.summaries[name] = self._summary(name)

    def _bring_back(self, name: str):
        """Copies an ended process's log from its server, if another one."""
        path = self.remote_logs.pop(name, None)
        if path is not None and (problem := self.network.host(name).fetch(path)) is not None:
            logger.warning("%s: its log is missing here: %s", name, problem)

    def stop_outgroup(self):
        self.stop([n for n in self.running if n in self.plan.outgroup])

    def log_paths(self) -> list[Path]:
        return sorted(self.logs.glob("*.jsonl"))

    def _summary(self, name: str) -> dict:
        text = self._paths(name)[1].read_text().strip()
        try:
            if self.plan.outgroup.get(name, ("",))[0] == "iperf":
                return iperf_summary(name, json.loads(text))
            return json.loads(text.splitlines()[-1])
        except (IndexError, KeyError, json.JSONDecodeError):
            return {"process": name, "error": self._tail(name)}

    def _tail(self, name: str) -> str:
        lines = self._paths(name)[2].read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or "(no output)"


def iperf_summary(name: str, report: dict) -> dict:
    """An iperf3 client's --json report, as the clients' summaries: the
    receiver's goodput, and the sender's smoothed RTTs (the kernel's)."""
    if "error" in report:
        return {"process": name, "error": report["error"]}
    end = report["end"]
    sender = end["streams"][0]["sender"]
    return {"process": name, "throughput_mbps": round(end["sum_received"]["bits_per_second"]
                                                      / 1e6, 2),
            "seconds": round(end["sum_received"]["seconds"], 3),
            "retransmits": end["sum_sent"].get("retransmits", 0),
            "rtt_mean_us": sender.get("mean_rtt"), "rtt_max_us": sender.get("max_rtt")}


def _module(service: Service) -> str:
    return {"kv": "kvstore", "bank": "bank", "locks": "locks", "gc": "objects"}[service.app]
