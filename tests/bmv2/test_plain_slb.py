"""The plain SLB (p4src/build/plain: Beaver's program compiled with
PLAIN_SLB, no epoch state, no mark), Fig. 14's baseline, on real
simple_switch_grpc processes: the controller programs it from a service
configuration that names it, asking nothing of IDs, and it balances VIP
packets, encapsulated with snapshot ID 0 whatever the controller asks."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from beaver.control.config import load
from beaver.control.engine.record import Mode
from beaver.control.engine.settings import SettingsError
from beaver.control.slbs.fleet import SlbFleet
from beaver.control.store import SnapshotStore
from beaver.p4src import PLAIN_BMV2_JSON, PLAIN_P4INFO
from beaver.p4src.wire import BEAVER_UDP_PORT, Kind, Op

from tests.support.bmv2_service import (BACKEND_PORT, CLIENT_PORT, SLB_MAC, VIP,
                                        counted_requests, run_engine, switches, write_config)
from tests.support.packets import Beaver
from tests.support.ports import Ports



@pytest.fixture
def plain(tmp_path, switches):
    """A controller of both switches, configured with the plain pipeline,
    connected; nothing pushed yet."""
    fleet = SlbFleet(load(write_config(tmp_path / "service.toml", switches,
                                       pipeline="plain")))
    try:
        fleet.connect()
        yield fleet
    finally:
        fleet.close()


def vip_packet(switch, sport: int):
    """One UDP packet to the VIP into the switch's client port; returns (what
    was sent, what came out of its backend port)."""
    _, veths = switch
    ports = Ports({CLIENT_PORT: veths.host_ends[CLIENT_PORT],
                   BACKEND_PORT: veths.host_ends[BACKEND_PORT]})
    try:
        ports.drain()
        sent = Ether(bytes(Ether(dst=SLB_MAC) / IP(src="10.0.1.1", dst=VIP) /
                           UDP(sport=sport, dport=80) / b"plain request"))
        ports.send(CLIENT_PORT, sent)
        got = ports.expect(BACKEND_PORT, lambda f: Beaver in f)
    finally:
        ports.close()
    return sent, got


def test_the_controller_programs_the_plain_slb_without_asking_for_ids(plain, switches):
    assert (plain.config.pipeline, plain.config.p4info, plain.config.bmv2_json) == (
        "plain", PLAIN_P4INFO, PLAIN_BMV2_JSON)
    assert plain.plain
    with counted_requests(plain) as sent:
        done = plain.apply(push=True)
    assert sent == [], "a plain SLB has no epoch state to ask"
    assert [line.split(",")[0] for line in done] == ["s1: pipeline pushed",
                                                       "s2: pipeline pushed"]
    # each switch runs the plain P4Info now, and no clock probe was started
    assert all(gw.session.pipeline_installed() for gw in plain.slbs)
    assert all(gw.probe is None for gw in plain.slbs)
    assert [s.error for s in plain.status()] == ["plain pipeline: no epoch state"] * 2

    for number, switch in enumerate(switches, start=1):
        sent, got = vip_packet(switch, 4000 + number)
        mark = got[Beaver]
        assert (mark.kind, mark.origin, mark.snapshot_id) == (Kind.MARK, number, 0)
        assert got[IP].src == f"10.0.0.{number}" and got[IP].dst in ("10.0.2.1", "10.0.2.2")
        assert got[UDP].dport == BEAVER_UDP_PORT
        assert bytes(mark.payload) == bytes(sent[IP]), "the client's packet rides unchanged"


def test_the_plain_slb_marks_zero_whatever_id_it_is_sent(plain, switches):
    """Beaver's program would mark the next packet with 9 after INIT 9
    (tests/bmv2/test_dataplane.py): the plain one has no epoch to move."""
    plain.apply(push=True)
    plain.slbs[0].control.request(Op.INIT, 9, timeout=2)
    _, got = vip_packet(switches[0], 4100)
    assert got[Beaver].snapshot_id == 0


def test_no_snapshot_is_taken_on_the_plain_slb(plain, tmp_path):
    plain.apply(push=True)
    store = SnapshotStore(tmp_path / "snapshots.db")
    try:
        with counted_requests(plain) as sent, \
                pytest.raises(SettingsError, match="the SLBs run the plain pipeline"):
            run_engine(plain, store, mode=Mode.OGM, count=1)
        assert sent == []
        assert store.records(1, 1) == []
    finally:
        store.close()
