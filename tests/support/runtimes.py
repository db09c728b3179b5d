"""Helpers for tests that run in-group runtimes on loopback.

Every test process gets its own 127.0.4.x addresses (DIPs from .1, stand-in
SLBs from .31, out-group processes from .50, VIPs from .101), so each
runtime binds its own :4790.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Callable

import pytest

from beaver.traffic.oob import protocol as oob
from beaver.traffic.analysis.checker import Trace
from beaver.traffic.runtime.eventlog import EventLog
from beaver.traffic.outgroup.endpoint import Endpoint
from beaver.traffic.runtime.udp import Client, Runtime
from beaver.traffic.runtime.snapshots import Mode

from tests.support.slb import SLB_IDS, LoopbackSlb, encapsulate, slb_ip


def dip(n: int) -> str:
    return f"127.0.4.{n}"


def vip(n: int, port: int = 7000) -> tuple[str, int]:
    return f"127.0.4.{100 + n}", port


def outside(n: int) -> str:
    return f"127.0.4.{50 + n}"


class Recorder:
    """A minimal stateful application: counts what it handled, answers every
    request, and (if `forward_to`) passes each request on to a peer."""

    def __init__(self, runtime: Runtime, forward_to: str | None = None):
        self.runtime = runtime
        self.forward_to = forward_to
        self.requests: list[dict] = []
        self.peer_messages: list[tuple[dict, str]] = []

    def on_request(self, message: dict, client: Client):
        if message.get("fail"):
            raise RuntimeError("asked to fail")
        self.requests.append(message)
        if self.forward_to:
            self.runtime.send(self.forward_to, {"op": "forwarded", "of": message["id"]})
        self.runtime.reply(client, {"ok": True, "handled": len(self.requests)})

    def on_peer(self, message: dict, sender: str):
        self.peer_messages.append((message, sender))

    def local_state(self) -> dict[str, Any]:
        return {"requests": len(self.requests), "peer_messages": len(self.peer_messages)}


def client_socket(n: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((outside(n), 0))
    sock.settimeout(2)
    return sock


def from_slb(datagram: bytes, to_dip: str, slb_id: int = 1):
    """Sends datagram to to_dip:4790 from stand-in SLB slb_id's address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((slb_ip(slb_id), 0))
        sock.sendto(datagram, (to_dip, 4790))


def send_request(sock: socket.socket, to_dip: str, to_vip: tuple[str, int], message: dict,
                 mark: int) -> dict:
    """Plays SLB 1 for the client sock: sends message marked, returns the DSR reply."""
    from_slb(encapsulate(sock.getsockname(), to_vip, json.dumps(message).encode(), mark), to_dip)
    data, source = sock.recvfrom(65535)
    assert source == to_vip, "the reply must come from the VIP (Direct Server Return)"
    return json.loads(data)


def oob_request(runtime: Runtime, message: dict) -> dict:
    with socket.create_connection(runtime.oob_address, timeout=2) as s:
        return oob.request(s, {"v": oob.VERSION, **message})


def eventually(probe: Callable[[], Any], timeout: float = 3.0) -> Any:
    """Waits until probe() is truthy (datagrams and threads take their time)."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)
    return value


@pytest.fixture
def runtimes():
    """start(name, n, app=Recorder, **runtime args) -> (runtime, app): a runtime on
    DIP dip(n) serving VIP vip(n) behind stand-in SLB 1, OOB on an ephemeral
    port; all stopped after."""
    started = []

    def start(name: str, n: int, make_app=Recorder, **kwargs):
        kwargs.setdefault("vips", [vip(n)])
        kwargs.setdefault("slbs", [slb_ip(1)])
        kwargs.setdefault("mgmt", (dip(n), 0))
        runtime = Runtime(name, dip(n), **kwargs)
        app = make_app(runtime)
        runtime.serve(app)
        started.append(runtime)
        return runtime, app

    yield start
    for runtime in started:
        runtime.stop()


@pytest.fixture
def peer_socket():
    """Stands in for peer "q" at dip(9):4790, to see what the runtime sends it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((dip(9), 4790))
    sock.settimeout(2)
    yield sock
    sock.close()


@pytest.fixture
def runtime_processes():
    """start(name, n) -> (process, OOB address): a real in-group process in
    its own OS process (a kv store replica) on dip(n), answering out of band
    on dip(n):OOB_PORT once started; each is resumed and stopped after."""
    started = []

    def start(name: str, n: int):
        process = subprocess.Popen(
            [sys.executable, "-m", "beaver.traffic.services.kvstore", "--name", name, "--dip", dip(n)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        address = (dip(n), oob.OOB_PORT)
        started.append((process, address))
        eventually(lambda: answers_status(address), timeout=20)
        return process, address

    yield start
    for process, address in started:
        process.send_signal(signal.SIGCONT)
        # Signalled while its threads are still waking, a process may take
        # SIGTERM on a thread other than the main one, which never sees it.
        eventually(lambda: answers_status(address), timeout=20)
        process.terminate()
        process.wait(timeout=10)


def answers_status(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1) as s:
            return oob.request(s, {"v": oob.VERSION, "op": "status"})["op"] == "status"
    except OSError:
        return False


class Deployment:
    """In-group runtimes and out-group endpoints on loopback behind stand-in
    SLBs, every process with its ground-truth event log."""

    def __init__(self, tmp_path, mode: Mode):
        self.tmp_path = tmp_path
        self.mode = mode
        self.runtimes: dict[str, Runtime] = {}
        self.apps: dict[str, Any] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.slbs: list[LoopbackSlb] = []
        self.logs: list[EventLog] = []
        self.finished = False

    def _log(self, name: str, in_group: bool) -> EventLog:
        log = EventLog(self.tmp_path / f"{name}.jsonl", name, in_group, self.mode.value)
        self.logs.append(log)
        return log

    def service(self, name: str, n: int, make_app, peers: dict[str, int] | None = None,
                vip_of: int | None = None, **kwargs):
        """An in-group process on dip(n) serving vip(vip_of or n); peers: name -> n."""
        if self.mode is Mode.POLLING:
            kwargs.setdefault("poll_interval", 3600)   # ticks come from take()
        runtime = Runtime(name, dip(n), vips=[vip(vip_of or n)], mgmt=(dip(n), 0),
                          slbs=[slb_ip(g) for g in SLB_IDS], mode=self.mode, peers={p: dip(k) for p, k in (peers or {}).items()},
                          log=self._log(name, True), **kwargs)
        self.apps[name] = app = make_app(runtime)
        runtime.serve(app)
        self.runtimes[name] = runtime
        return app

    def slb(self, slb_id: int = 1) -> LoopbackSlb:
        self.slbs.append(slb := LoopbackSlb(slb_id))
        return slb

    @staticmethod
    def front(slb: LoopbackSlb, n: int, backend: int | None = None) -> tuple[str, int]:
        """Where out-group processes send to reach vip(n) through slb, which
        hands it to dip(backend or n)."""
        backend = backend or n
        return slb.front((f"127.0.4.{200 + backend}", 7000), vip(n), dip(backend))

    def endpoint(self, name: str, n: int) -> Endpoint:
        self.endpoints[name] = endpoint = Endpoint(name, (outside(n), 0),
                                                   self._log(name, False))
        return endpoint

    def snapshot(self, name: str, snapshot_id: int) -> oob.Report:
        """The controller's out-of-band initiation of one process."""
        return oob.Report.from_message(
            oob_request(self.runtimes[name], {"op": "snapshot", "id": snapshot_id}))

    def take(self, name: str, snapshot_id: int):
        """Snapshot snapshot_id at one process as its mode does without marks: the
        controller's out-of-band initiation, or (polling) the process's own timer."""
        if self.mode is Mode.POLLING:
            self.runtimes[name].poll()
            assert self.runtimes[name].snapshots.current_id == snapshot_id
        else:
            self.snapshot(name, snapshot_id)

    def report(self, name: str, snapshot_id: int) -> oob.Report:
        return oob.Report.from_message(
            oob_request(self.runtimes[name], {"op": "report", "id": snapshot_id}))

    def finish(self) -> Trace:
        """Stops everything, flushes the logs and loads them for the checker."""
        if not self.finished:
            self.finished = True
            for runtime in self.runtimes.values():
                runtime.stop()
            for endpoint in self.endpoints.values():
                endpoint.close()
            for slb in self.slbs:
                slb.close()
            for log in self.logs:
                log.close()
        return Trace.load(sorted(self.tmp_path.glob("*.jsonl")))


@pytest.fixture(params=[Mode.BEAVER, Mode.LAI_YANG, Mode.POLLING], ids=lambda m: m.value)
def deployment(request, tmp_path):
    """A Deployment in each snapshotting mode (beaver, lai-yang, polling)."""
    deployment = Deployment(tmp_path, request.param)
    yield deployment
    deployment.finish()
