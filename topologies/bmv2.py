"""A `simple_switch_grpc` process: started with its own gRPC port, device id
and CPU port, ready once its gRPC port answers, stopped cleanly.

Used as-is by the packet tests (switch on veth pairs) and wrapped by the
Mininet switch node.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Mapping

from beaver.p4src.wire import CPU_PORT

# Which BMv2 to start: BMv2's default build logs (for debugging); a build made
# for speed (docs/performance.md of BMv2) is the one for figures.
BINARY = os.environ.get("BEAVER_BMV2", "simple_switch_grpc")


class Bmv2Error(RuntimeError):
    pass


def bmv2_available() -> bool:
    return shutil.which(BINARY) is not None


def bmv2_build() -> str:
    """Which BMv2 runs, for every figure to say: its path, and whether it was
    built to log (the default) or for speed, with BMv2's logging macros
    compiled out (only such a build carries the warning it prints about it)."""
    path = shutil.which(BINARY)
    if path is None:
        return f"{BINARY} (not found)"
    with open(path, "rb") as binary:
        fast = b"You disabled logging macros" in binary.read()
    return f"{os.path.realpath(path)} ({'performance build' if fast else 'default build, logging'})"


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def port_taken(host: str, port: int) -> bool:
    """Whether a socket holds host:port: a listener, or a connection that
    was given it as its ephemeral port, which no connect() would reveal."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as gRPC binds
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


class Bmv2Switch:
    """One BMv2 switch process.

    ports maps data-plane port numbers to interface names.  The pipeline is
    pushed later over P4Runtime (the switch starts with --no-p4).
    """

    def __init__(self, name: str, ports: Mapping[int, str], grpc_port: int,
                 device_id: int, log_dir: Path, thrift_port: int | None = None,
                 cpu_port: int = CPU_PORT, debug_log: bool = False):
        self.name = name
        self.ports = dict(ports)
        self.grpc_port = grpc_port
        self.device_id = device_id
        self.thrift_port = thrift_port if thrift_port is not None else grpc_port + 10000
        self.cpu_port = cpu_port
        self.debug_log = debug_log
        self.log_path = Path(log_dir) / f"{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def command(self) -> list[str]:
        cmd = [BINARY, "--device-id", str(self.device_id),
               "--thrift-port", str(self.thrift_port), "--no-p4"]
        for number, iface in sorted(self.ports.items()):
            cmd += ["-i", f"{number}@{iface}"]
        if self.debug_log:
            cmd += ["--log-console", "--log-level", "debug"]
        cmd += ["--", "--grpc-server-addr", self.grpc_address,
                "--cpu-port", str(self.cpu_port)]
        return cmd

    def start(self, timeout: float = 10.0):
        for kind, host, port in (("gRPC", "127.0.0.1", self.grpc_port),
                                 ("Thrift", "0.0.0.0", self.thrift_port)):
            if port_taken(host, port):
                raise Bmv2Error(f"{self.name}: {kind} port {port} is already in use "
                                f"(see `ss -tanp 'sport = :{port}'`)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.grpc_port):
            if self.process.poll() is not None:
                raise Bmv2Error(f"{self.name} exited with code {self.process.returncode}: "
                                f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise Bmv2Error(f"{self.name}: gRPC port {self.grpc_port} not open "
                                f"after {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0):
        """Terminates the switch (SIGTERM, then SIGKILL)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def kill(self):
        """Kills the switch at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"
