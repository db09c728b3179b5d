"""A service of two real SLBs for controller tests: two simple_switch_grpc
processes, each with a client port (1), a backend port (2) and a clock-probe
port (3) on veth pairs, its configuration file, a connected controller, and
ways to act on a switch at a chosen moment of a run.

Import the fixtures into a test module to use them:
    from .bmv2_service import config_path, controller, switches
"""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from contextlib import ExitStack, contextmanager
from typing import Callable

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from beaver.control.config import PIPELINES, load
from beaver.control.slbs.fleet import SlbFleet, Slb
from beaver.control.engine.engine import Engine, RunSettings
from beaver.p4src.wire import Op

from tests.support.packets import stamp
from tests.support.ports import Ports

VIP = "10.10.0.1"
# How tightly probe frames bound a switch's clock: about +-10 us on an idle
# machine, 35 us seen with both cores compiling; far under tau_min (~230 us).
PROBE_ERROR_US = 60
SLB_MAC = "00:00:00:00:00:fe"
CLIENT_PORT = 1
BACKEND_PORT = 2
PROBE_PORT = 3


@pytest.fixture(scope="module")
def switches(bmv2_switches):
    """[(Bmv2Switch, VethPairs)] for s1 and s2."""
    return [bmv2_switches(ports=3, device_id=1), bmv2_switches(ports=3, device_id=2)]


def write_config(path, switches, controller="", processes=(), probes=True,
                 pipeline="beaver"):
    """processes: (name, "host:port") of in-group processes; probes: clock
    probes on port 3, else the clocks are aligned by packet-out round trips;
    pipeline: what the SLBs run (control/config.py PIPELINES)."""
    p4info, bmv2_json = PIPELINES[pipeline]
    text = [f"[controller]\nstore = \"snapshots.db\"\nconnect_timeout_s = 1\n"
            f"connect_retries = 1\n{controller}\n",
            f'[pipeline]\nname = "{pipeline}"\np4info = "{p4info}"\n'
            f'bmv2_json = "{bmv2_json}"\n',
            '[service]\ningroup = ["10.0.2.0/24"]\n']
    for i, (bmv2, veths) in enumerate(switches, start=1):
        probe = (f'probe = {{port = {PROBE_PORT}, iface = "{veths.host_ends[PROBE_PORT]}"}}\n'
                 if probes else "")
        text.append(f'[[slbs]]\nname = "s{i}"\naddress = "{bmv2.grpc_address}"\n'
                    f'device_id = {bmv2.device_id}\nslb_id = {i}\nslb_addr = "10.0.0.{i}"\n'
                    f'{probe}'
                    f'routes = [{{prefix = "10.0.2.0/24", port = {BACKEND_PORT}, '
                    f'src_mac = "{SLB_MAC}", dst_mac = "00:00:00:00:00:02"}}]\n')
    # (the backends are the tests' own packets on veths: no Beaver runtime)
    text.append(f'[[vips]]\naddress = "{VIP}"\nprotocol = "udp"\nport = 80\n'
                f'backends = ["10.0.2.1", "10.0.2.2"]\nin_snapshots = false\n')
    for name, address in processes:
        text.append(f'[[processes]]\nname = "{name}"\naddress = "{address}"\n')
    path.write_text("\n".join(text))
    return path


@pytest.fixture
def config_path(tmp_path, switches):
    return write_config(tmp_path / "service.toml", switches)


@pytest.fixture
def controller(config_path):
    c = SlbFleet(load(config_path))
    try:   # closed even when set-up fails, or the next test's election ID is taken
        c.connect()
        c.apply()
        yield c
    finally:
        c.close()


@contextmanager
def counted_requests(controller):
    """Every request the engine sends, as (SLB name, op, ID), resends included."""
    sent = []
    with ExitStack() as stack:
        for gw in controller.slbs:
            stack.enter_context(before_each_request(
                gw, lambda op, snapshot_id, name=gw.name: sent.append((name, Op(op),
                                                                      snapshot_id))))
        yield sent


def run_engine(controller, store, processes=(), **settings):
    """Runs the engine (tau 1 s and a 1 s ack deadline unless given: a shared
    machine stalls a switch for some hundred ms now and then); returns its
    summary and the records in the order they were reported."""
    finished = []
    settings = {"tau_us": 10**6, "ack_timeout_ms": 1000, **settings}
    summary = Engine(controller, store, RunSettings(**settings),
                     processes, on_finished=finished.append).run()
    return summary, finished


# -- acting on a switch during a run --------------------------------------------

@contextmanager
def before_each_request(gw: Slb, action: Callable[[Op, int], None]):
    """Calls action(op, snapshot_id) just before each request leaves for gw,
    so that a test acts on the real switch at that moment of the run."""
    with sending_through(gw, lambda op, snapshot_id=0, *_, **__: action(op, snapshot_id)):
        yield


@contextmanager
def schedule_times(gw: Slb):
    """The first time of every INIT_BATCH that leaves for gw, resends included."""
    times = []

    def note(op, snapshot_id=0, flags=0, callback=None, activate_at=0, batch=b""):
        if op is Op.INIT_BATCH:
            times.append(activate_at)
    with sending_through(gw, note):
        yield times


@contextmanager
def sending_through(gw: Slb, action: Callable[..., None]):
    """Calls action with each request's arguments (as SlbRequests.send takes
    them) just before it leaves for gw; nests."""
    before = gw.control.__dict__.get("send")
    send = gw.control.send

    def sending(*args, **kwargs):
        action(*args, **kwargs)
        return send(*args, **kwargs)
    gw.control.send = sending
    try:
        yield
    finally:
        if before is None:
            del gw.control.send   # the class's method again
        else:
            gw.control.send = before


def freeze(bmv2):
    """The switch process stops: it reads nothing and answers nothing."""
    os.kill(bmv2.process.pid, signal.SIGSTOP)


def thaw(bmv2):
    """The switch process resumes with whatever queued up meanwhile."""
    os.kill(bmv2.process.pid, signal.SIGCONT)


@contextmanager
def frozen_from_first_init(gw: Slb, bmv2):
    """The switch stops just before gw's first INIT of the run leaves (its
    clock is aligned by then); it resumes when the block ends."""
    def stop_at_init(op, _snapshot_id):
        if op == Op.INIT:
            freeze(bmv2)
    try:
        with before_each_request(gw, stop_at_init):
            yield
    finally:
        thaw(bmv2)


@contextmanager
def stopped_until_the_resend(gw: Slb, bmv2):
    """The switch stops as gw's first INIT (or INIT_BATCH) leaves and resumes
    as the second (the resend of an unanswered one) leaves, so the first
    answer comes late.  Yields the INITs seen leaving."""
    inits = []

    def stop_then_resume(op, _snapshot_id):
        if op in (Op.INIT, Op.INIT_BATCH):
            inits.append(op)
            (freeze if len(inits) == 1 else thaw)(bmv2)
    try:
        with before_each_request(gw, stop_then_resume):
            yield inits
    finally:
        thaw(bmv2)


def send_stamp(switch, snapshot_id: int):
    """An in-group message stamped with snapshot_id enters the SLB on its
    backend port: the SLB learns the ID if it is newer than its own."""
    _, veths = switch
    ports = Ports({BACKEND_PORT: veths.host_ends[BACKEND_PORT]})
    try:
        ports.send(BACKEND_PORT, stamp("10.0.2.1", "10.0.2.2", snapshot_id))
    finally:
        ports.close()


@contextmanager
def vip_traffic(switches, gap_s=0.0002, start: threading.Event | None = None):
    """VIP packets into every SLB's client port, one SLB after the other;
    from the moment `start` is set, if one is given."""
    senders = []
    for _, veths in switches:
        sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sender.bind((veths.host_ends[CLIENT_PORT], 0))
        senders.append(sender)
    frames = [bytes(Ether(dst=SLB_MAC) / IP(src="10.0.1.1", dst=VIP) /
                    UDP(sport=1000 + i, dport=80) / b"x") for i in range(64)]
    flowing = threading.Event()
    flowing.set()

    def send():
        i = 0
        while start is not None and not start.wait(0.01):
            if not flowing.is_set():
                return
        while flowing.is_set():
            senders[i % len(senders)].send(frames[i % len(frames)])
            i += 1
            time.sleep(gap_s)
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        time.sleep(0.1)
        yield
    finally:
        flowing.clear()
        thread.join()
        for sender in senders:
            sender.close()
