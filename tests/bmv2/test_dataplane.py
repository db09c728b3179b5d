"""Packet tests of p4src/beaver.p4 on a real simple_switch_grpc, over veths.

Port 1 faces the clients (out-group), ports 2-4 the backends (in-group),
port 5 is the clock-probe port.  Each test gets a freshly pushed pipeline,
so registers start at zero.
"""
from __future__ import annotations

import time

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from beaver.control.slbs.program import Route, Vip, slb_updates, config_entry
from beaver.control.p4runtime.session import SwitchSession
from beaver.control.slbs.clock import ClockEstimate
from beaver.control.slbs.probe import ClockProbe
from beaver.control.slbs.requests import SlbRequests, now_us
from beaver.p4src import BMV2_JSON, P4INFO
from beaver.p4src.wire import (BEAVER_UDP_PORT, ETHERTYPE_PROBE, FLAG_HOLD, FLAG_MARKING,
                               LEARN_WINDOW, ControlBody, DropReason, Kind, Op, Probe,
                               RefusedReason, Status)
from beaver.p4src import ids

from tests.support.packets import Beaver, stamp
from tests.support.ports import Ports


SLB_ID = 7
SLB_ADDR = "10.0.0.254"
SLB_MAC = "00:00:00:00:00:fe"
CLIENT_PORT = 1
BACKENDS = {2: "10.0.2.1", 3: "10.0.2.2", 4: "10.0.2.3"}
PROBE_PORT = 5
VIP = "10.10.0.1"
CLIENT = "10.0.1.1"


def host_mac(port: int) -> str:
    return f"00:00:00:00:00:{port:02x}"


class SlbHarness:
    """The switch under test: its P4Runtime session, Beaver requests and ports."""

    def __init__(self, session: SwitchSession, control: SlbRequests, ports: Ports):
        self.session = session
        self.control = control
        self.ports = ports
        self.packet_ins: list[tuple[dict, bytes]] = []

    def init(self, snapshot_id: int, flags: int = 0, at: int = 0):
        return self.control.request(Op.INIT, snapshot_id, flags, timeout=2, activate_at=at)

    def read(self, snapshot_id: int):
        return self.control.request(Op.READ, snapshot_id, timeout=2)

    def current_id(self) -> int:
        return self.read(0).body.id_after

    def drops(self, reason: DropReason) -> int:
        return self.session.read_counter("drop_reasons", reason)

    def refused(self, reason: RefusedReason) -> int:
        return self.session.read_counter("learn_refused", reason)

    def now(self) -> int:
        """The switch's clock, as a READ finds it."""
        return self.read(0).body.now

    def mark_of_next_vip(self) -> int:
        """The mark of one VIP packet, read as soon as it comes out (no wait
        for strays: timed tests count in milliseconds)."""
        self.send_vip()
        return self.ports.expect_any(BACKENDS, is_encapsulated)[1][Beaver].snapshot_id

    def send_vip(self, sport: int = 1234, dport: int = 80, proto=UDP, src: str = CLIENT,
                 payload: bytes = b"request"):
        frame = (Ether(src=host_mac(CLIENT_PORT), dst=SLB_MAC) / IP(src=src, dst=VIP) /
                 proto(sport=sport, dport=dport) / payload)
        self.ports.send(CLIENT_PORT, frame)
        return Ether(bytes(frame))  # as sent, lengths and checksums filled in

    def expect_backend(self, timeout: float = 2.0):
        """The encapsulated packet, on exactly one backend port."""
        port, frame = self.ports.expect_any(BACKENDS, is_encapsulated, timeout)
        self.ports.expect_none(set(BACKENDS) - {port} | {CLIENT_PORT}, is_encapsulated)
        return port, frame


def is_encapsulated(frame) -> bool:
    return Beaver in frame and frame[Beaver].kind == Kind.MARK


@pytest.fixture(scope="module")
def switch(bmv2_switches):
    return bmv2_switches(ports=5)


@pytest.fixture
def slb(switch):
    bmv2, veths = switch
    session = SwitchSession("slb", bmv2.grpc_address, bmv2.device_id)
    control = SlbRequests(session)
    ports = Ports(veths.host_ends)
    harness = SlbHarness(session, control, ports)

    def on_packet_in(sess, metadata, payload):
        harness.packet_ins.append((metadata, payload))
        control.on_packet_in(sess, metadata, payload)

    session.connect(P4INFO, on_packet_in=on_packet_in)
    session.set_pipeline(P4INFO, BMV2_JSON)
    routes = [Route("10.0.1.0/24", CLIENT_PORT, SLB_MAC, host_mac(CLIENT_PORT))]
    routes += [Route(f"{dip}/32", port, SLB_MAC, host_mac(port))
               for port, dip in BACKENDS.items()]
    vips = [Vip(VIP, "udp", 80, tuple(BACKENDS.values())),
            Vip(VIP, "tcp", 80, tuple(BACKENDS.values()))]
    session.write(*slb_updates(session.ctx, SLB_ID, SLB_ADDR, vips, routes, ["10.0.2.0/24"],
                               ingroup_ports=BACKENDS, probe_port=PROBE_PORT))
    ports.drain()
    yield harness
    ports.close()
    session.close()
    assert bmv2.alive, f"the switch died: {bmv2.log_tail()}"


# -- load balancing -----------------------------------------------------------

def test_vip_packet_is_encapsulated_to_one_backend_with_the_mark(slb):
    slb.init(5)
    sent = slb.send_vip(sport=4321)
    port, frame = slb.expect_backend()

    outer = frame[IP]
    assert outer.dst == BACKENDS[port] and outer.src == SLB_ADDR
    assert frame[Ether].src == SLB_MAC and frame[Ether].dst == host_mac(port)
    assert frame[UDP].dport == BEAVER_UDP_PORT and frame[UDP].chksum == 0
    mark = frame[Beaver]
    assert (mark.version, mark.kind, mark.origin, mark.snapshot_id) == (1, Kind.MARK, SLB_ID, 5)
    inner = mark.payload
    assert bytes(inner) == bytes(sent[IP]), "the original IPv4 packet rides unchanged"
    assert outer.len == 20 + 8 + 6 + sent[IP].len
    assert IP(bytes(outer)).chksum == outer.chksum  # checksum valid as recomputed


def test_tcp_vip_traffic_is_balanced_too(slb):
    slb.send_vip(sport=5555, proto=TCP)
    _, frame = slb.expect_backend()
    assert TCP in frame[Beaver].payload and frame[Beaver].payload[TCP].sport == 5555


def test_one_flow_always_reaches_the_same_backend(slb):
    seen = set()
    for _ in range(20):
        slb.send_vip(sport=7777)
        seen.add(slb.expect_backend()[0])
    assert len(seen) == 1


def test_many_flows_spread_over_every_backend(slb):
    counts = dict.fromkeys(BACKENDS, 0)
    for sport in range(1000, 1150):
        slb.send_vip(sport=sport)
        counts[slb.expect_backend()[0]] += 1
    assert all(c >= 20 for c in counts.values()), counts


def test_non_vip_traffic_is_routed_and_ttl_decremented(slb):
    frame = (Ether(src=host_mac(2), dst=SLB_MAC) / IP(src=VIP, dst=CLIENT, ttl=9) /
             UDP(sport=80, dport=1234) / b"reply by DSR")
    slb.ports.send(2, frame)
    got = slb.ports.expect(CLIENT_PORT, lambda f: Raw in f and f[Raw].load == b"reply by DSR")
    assert got[IP].ttl == 8 and got[Ether].dst == host_mac(CLIENT_PORT)
    assert IP(bytes(got[IP])).chksum == got[IP].chksum
    assert Beaver not in got


def test_unrouted_and_expiring_packets_are_dropped_and_counted(slb):
    slb.ports.send(CLIENT_PORT, Ether(dst=SLB_MAC) / IP(src=CLIENT, dst="192.0.2.9") / UDP())
    slb.ports.send(CLIENT_PORT, Ether(dst=SLB_MAC) / IP(src=CLIENT, dst="10.0.2.1", ttl=1) / UDP())
    slb.ports.expect_none(slb.ports.sockets)
    assert slb.drops(DropReason.NO_ROUTE) == 1
    assert slb.drops(DropReason.TTL) == 1


# -- epochs -------------------------------------------------------------------

def test_initiation_changes_the_marks_of_the_next_packets(slb):
    slb.send_vip()
    assert slb.expect_backend()[1][Beaver].snapshot_id == 0
    answer = slb.init(1)
    assert answer.status == Status.OK
    body = answer.body
    assert (body.id_before, body.id_after, body.snapshot_id) == (0, 1, 1)
    assert body.slb_id == SLB_ID and body.flags == FLAG_MARKING
    assert body.switch_time == body.now > 0
    assert 0 < body.last_old_time <= body.switch_time, "the ID-0 packet was marked before"
    slb.send_vip()
    assert slb.expect_backend()[1][Beaver].snapshot_id == 1


def test_initiation_is_idempotent_and_stale_ids_change_nothing(slb):
    first = slb.init(3).body
    again = slb.init(3)
    assert again.status == Status.ALREADY
    assert again.body.switch_time == first.switch_time and again.body.id_after == 3
    stale = slb.init(2)
    assert stale.status == Status.STALE
    assert stale.body.id_after == 3 and stale.body.snapshot_id == 3
    assert slb.current_id() == 3


def test_per_id_counts_and_last_old_time(slb):
    slb.init(1)
    for sport in range(3):
        slb.send_vip(sport=sport)
        slb.expect_backend()
    marked_one = slb.read(1).body
    assert marked_one.count == 3
    switched = slb.init(2).body
    assert switched.last_old_time >= marked_one.switch_time
    assert switched.last_old_time <= switched.switch_time
    for sport in range(4):
        slb.send_vip(sport=sport)
        slb.expect_backend()
    later = slb.read(2).body
    assert later.count == 4
    assert later.last_old_time == switched.last_old_time, "new-ID packets must not move it"
    assert slb.read(1).body.count == 3


def test_read_of_an_unrecorded_id_is_stale(slb):
    answer = slb.read(40)
    assert answer.status == Status.STALE and answer.body.snapshot_id == 0


def test_learning_from_a_newer_in_group_id(slb):
    slb.init(4)
    slb.ports.send(2, stamp("10.0.2.1", "10.0.2.2", 9))
    got = slb.ports.expect(3, lambda f: Beaver in f)
    assert got[Beaver].kind == Kind.STAMP and got[Beaver].snapshot_id == 9, "forwarded as is"
    assert slb.current_id() == 9
    record = slb.read(9).body
    assert record.switch_time > 0 and record.count == 0
    slb.send_vip()
    assert slb.expect_backend()[1][Beaver].snapshot_id == 9


def test_no_learning_from_older_ids_or_out_group_sources(slb):
    """(A STAMP on the client port never gets this far: test_edge.py.)"""
    slb.init(6)
    slb.ports.send(2, stamp("10.0.2.1", "10.0.2.2", 5))
    slb.ports.expect(3, lambda f: Beaver in f)
    slb.ports.send(2, stamp(CLIENT, "10.0.2.2", 10))   # an in-group port, a source outside
    got = slb.ports.expect(3, lambda f: Beaver in f)
    assert got[IP].src == CLIENT and got[Beaver].snapshot_id == 10, "forwarded as is"
    assert slb.current_id() == 6
    assert slb.refused(RefusedReason.SOURCE) == 1 and slb.refused(RefusedReason.AHEAD) == 0


def test_learning_goes_at_most_the_window_ahead(slb):
    slb.init(6)
    slb.ports.send(2, stamp("10.0.2.1", "10.0.2.2", 6 + LEARN_WINDOW + 1))
    slb.ports.expect(3, lambda f: Beaver in f)
    assert slb.current_id() == 6 and slb.refused(RefusedReason.AHEAD) == 1
    slb.ports.send(2, stamp("10.0.2.1", "10.0.2.2", 6 + LEARN_WINDOW))
    slb.ports.expect(3, lambda f: Beaver in f)
    assert slb.current_id() == 6 + LEARN_WINDOW
    assert slb.refused(RefusedReason.AHEAD) == 1 and slb.refused(RefusedReason.SOURCE) == 0


def test_ids_wrap_around_as_serial_numbers(slb):
    for step in (0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF):
        assert slb.init(step).status == Status.OK
    wrapped = slb.init(0)
    assert wrapped.status == Status.OK and wrapped.body.id_before == 0xFFFFFFFF
    assert slb.init(1).status == Status.OK
    assert slb.init(0xFFFFFFF0).status == Status.STALE, "behind after the wrap"
    assert slb.init(0xFFFFFFFF).status == Status.ALREADY, "behind, but still in the ring"
    slb.send_vip()
    assert slb.expect_backend()[1][Beaver].snapshot_id == 1
    assert not ids.is_newer(0xFFFFFFFF, 1)


def test_an_id_half_the_space_ahead_is_not_newer(slb):
    slb.init(10)
    assert slb.init(10 + 0x80000000).status == Status.STALE
    assert slb.current_id() == 10


# -- timed initiation -----------------------------------------------------------

LEAD = 100_000   # us: far more than a request takes here, so nothing is late by accident


def wait_past(slb: SlbHarness, switch_time: int):
    """Sleeps until the switch's clock is past switch_time, without sending
    it anything then (a request at or after the time would activate)."""
    time.sleep(max(0, switch_time - slb.now()) / 1e6 + 0.005)


def test_a_timed_init_is_scheduled_and_activates_on_the_first_packet_at_its_time(slb):
    slb.init(1)
    at = slb.now() + LEAD
    answer = slb.init(2, at=at)
    assert answer.status == Status.SCHEDULED
    assert answer.body.id_after == 1 and answer.body.activate_at == at
    assert slb.mark_of_next_vip() == 1, "before its time, the old ID"
    assert slb.read(2).status == Status.SCHEDULED
    wait_past(slb, at)
    assert slb.mark_of_next_vip() == 2, "the first packet at the time carries the new ID"
    assert slb.mark_of_next_vip() == 2
    record = slb.read(2)
    assert record.status == Status.OK and record.body.activate_at == at
    assert record.body.switch_time >= at
    assert 0 < record.body.last_old_time < at, "the ID-1 packet before the time"
    assert record.body.count == 2


def test_a_late_timed_init_activates_on_arrival_and_the_record_shows_it(slb):
    slb.init(1)
    at = slb.now() - 1000
    answer = slb.init(2, at=at)
    assert answer.status == Status.OK and answer.body.id_after == 2
    assert answer.body.activate_at == at and answer.body.switch_time > at
    assert slb.mark_of_next_vip() == 2


def test_scheduled_ids_activate_in_id_order(slb):
    slb.init(1)
    start = slb.now()
    # sent out of order: 3 first, then 2
    assert slb.init(3, at=start + 2 * LEAD).status == Status.SCHEDULED
    assert slb.init(2, at=start + LEAD).status == Status.SCHEDULED
    wait_past(slb, start + LEAD)
    assert slb.mark_of_next_vip() == 2
    assert slb.read(3).status == Status.SCHEDULED
    wait_past(slb, start + 2 * LEAD)
    assert slb.mark_of_next_vip() == 3
    two, three = slb.read(2).body, slb.read(3).body
    assert start + LEAD <= two.switch_time < start + 2 * LEAD <= three.switch_time


def test_a_read_at_the_time_activates_too(slb):
    """Without traffic the READ that fetches the record moves the SLB."""
    slb.init(1)
    at = slb.now() + LEAD
    slb.init(2, at=at)
    wait_past(slb, at)
    record = slb.read(2)
    assert record.status == Status.OK and record.body.switch_time == record.body.now >= at


def test_ids_due_together_activate_on_one_packet_in_order(slb):
    slb.init(1)
    start = slb.now()
    for n in (2, 3, 4):
        slb.init(n, at=start + LEAD + n)
    wait_past(slb, start + LEAD + 10)
    assert [slb.mark_of_next_vip() for _ in range(2)] == [4, 4]
    records = [slb.read(n).body for n in (2, 3, 4)]
    assert len({r.switch_time for r in records}) == 1, "one packet moved all three"
    assert records[0].switch_time >= start + LEAD + 4
    assert [r.count for r in records] == [0, 0, 2]
    assert records[2].last_old_time == records[0].last_old_time < start + LEAD, \
        "the last old-ID packet of all three is the ID-1 one before their times"


def test_at_most_four_due_ids_activate_on_one_packet(slb):
    slb.init(1)
    start = slb.now()
    for n in range(2, 8):
        slb.init(n, at=start + LEAD + n)
    wait_past(slb, start + LEAD + 10)
    assert [slb.mark_of_next_vip() for _ in range(2)] == [5, 7]


def test_scheduled_ids_wrap_around(slb):
    for step in (0x7FFFFFFF, 0xFFFFFFFE):   # half the space at a time
        assert slb.init(step).status == Status.OK
    start = slb.now()
    assert slb.init(0xFFFFFFFF, at=start + LEAD).status == Status.SCHEDULED
    assert slb.init(0, at=start + 2 * LEAD).status == Status.SCHEDULED
    wait_past(slb, start + 2 * LEAD)
    assert slb.mark_of_next_vip() == 0, "both due: through 0xFFFFFFFF to 0 at once"
    last, wrapped = slb.read(0xFFFFFFFF).body, slb.read(0).body
    assert last.switch_time == wrapped.switch_time >= start + 2 * LEAD
    assert wrapped.activate_at == start + 2 * LEAD and wrapped.id_after == 0


def test_a_scheduled_id_left_unarmed_activates_on_a_read_past_its_time(slb):
    """4 is scheduled, then 2 (older) is armed in its place; with 3 never
    scheduled nothing re-arms 4, so the READ that fetches its record moves
    the SLB to it, late, and the record shows it."""
    slb.init(1)
    start = slb.now()
    slb.init(4, at=start + LEAD)
    slb.init(2, at=start + LEAD // 2)
    wait_past(slb, start + LEAD)
    assert slb.mark_of_next_vip() == 2
    record = slb.read(4)
    assert record.status == Status.OK and record.body.id_after == 4
    assert record.body.switch_time == record.body.now > start + LEAD


def test_an_immediate_init_overtakes_what_was_scheduled(slb):
    slb.init(1)
    at = slb.now() + LEAD
    slb.init(2, at=at)
    assert slb.init(3).status == Status.OK, "newer, at once"
    wait_past(slb, at)
    assert slb.mark_of_next_vip() == 3, "the scheduled older ID never comes back"
    passed, three = slb.read(2), slb.read(3)
    assert passed.status == Status.OK and passed.body.switch_time == three.body.switch_time < at, \
        "2 was passed, early, by the move to 3"


# -- clock probes ------------------------------------------------------------------

def probe_frame(seq: int) -> bytes:
    return (bytes(Ether(src="02:00:00:00:00:99", dst="ff:ff:ff:ff:ff:ff",
                        type=ETHERTYPE_PROBE)) + Probe(seq).pack())


def is_probe(frame) -> bool:
    return frame.type == ETHERTYPE_PROBE


def test_a_probe_on_the_probe_port_comes_back_stamped(slb):
    before = slb.now()
    slb.ports.send(PROBE_PORT, probe_frame(77))
    got = slb.ports.expect(PROBE_PORT, lambda f: is_probe(f) and f.dst == "02:00:00:00:00:99")
    after = slb.now()
    probe = Probe.unpack(bytes(got.payload))
    assert probe.seq == 77
    assert before <= probe.ingress_time <= probe.egress_time <= after
    slb.ports.expect_none(set(slb.ports.sockets) - {PROBE_PORT}, is_probe)


def test_a_probe_anywhere_else_is_dropped_counted_and_changes_nothing(slb):
    slb.init(2)
    before = registers(slb)
    for port in (CLIENT_PORT, 2):
        slb.ports.send(port, probe_frame(1))
    slb.ports.expect_none(slb.ports.sockets, is_probe)
    assert slb.drops(DropReason.PROBE) == 2
    assert registers(slb) == before


def test_a_short_probe_is_dropped_as_truncated(slb):
    slb.ports.send(PROBE_PORT, probe_frame(1)[:20])
    slb.ports.expect_none(slb.ports.sockets, is_probe)
    assert slb.drops(DropReason.TRUNCATED) == 1


def test_a_probe_reader_that_fell_behind_still_takes_every_answer(slb, switch):
    """100 probes sent while nothing reads (as when the probe's thread is
    starved): one read afterwards takes all 100 answers as exact samples,
    none forgotten and none left waiting in the socket."""
    _, veths = switch
    estimate = ClockEstimate("slb", "probe")
    probe = ClockProbe(veths.host_ends[PROBE_PORT], estimate)
    try:
        for _ in range(100):
            probe.send()
            time.sleep(0.001)
        time.sleep(0.3)
        probe.read()
        assert probe.stats.answered == 100 and estimate.samples == 100, probe.stats
    finally:
        probe.close()
    before, switch_now, after = now_us(), slb.now(), now_us()
    assert switch_now - after - 1 <= estimate.current.high_us and \
        estimate.current.low_us <= switch_now - before + 1, \
        "the samples bound the offset a READ shows"


# -- hold mode (blocking strawman) ---------------------------------------------

def test_hold_drops_and_counts_only_vip_traffic(slb):
    held = slb.init(1, FLAG_HOLD)
    assert held.status == Status.OK and held.body.holding
    for sport in range(5):
        slb.send_vip(sport=sport)
    slb.ports.expect_none(BACKENDS, is_encapsulated)
    assert slb.drops(DropReason.HOLD) == 5
    assert slb.read(1).body.count == 0, "held packets are not marked"

    slb.ports.send(2, Ether(dst=SLB_MAC) / IP(src=VIP, dst=CLIENT) / UDP(sport=80) / b"dsr")
    slb.ports.expect(CLIENT_PORT, lambda f: Raw in f and f[Raw].load == b"dsr")

    released = slb.control.request(Op.RELEASE, 1, timeout=2)
    assert released.status == Status.OK and not released.body.holding
    slb.send_vip()
    assert slb.expect_backend()[1][Beaver].snapshot_id == 1
    assert slb.drops(DropReason.HOLD) == 5


# -- marking switched off (the "without Beaver" baseline) ----------------------

def test_marking_disabled_encapsulates_with_id_zero_and_keeps_no_state(slb):
    slb.init(3)
    slb.session.modify(config_entry(slb.session.ctx, SLB_ID, SLB_ADDR, marking=False))
    slb.send_vip()
    assert slb.expect_backend()[1][Beaver].snapshot_id == 0
    record = slb.read(3).body
    assert record.count == 0 and not record.marking


# -- malformed input -----------------------------------------------------------

def registers(slb: SlbHarness) -> ControlBody:
    body = slb.read(slb.current_id()).body
    return ControlBody(snapshot_id=body.snapshot_id, id_after=body.id_after,
                       switch_time=body.switch_time, last_old_time=body.last_old_time,
                       count=body.count, flags=body.flags)


def test_ipv4_options_are_carried_and_balanced(slb):
    frame = (Ether(dst=SLB_MAC) / IP(src=CLIENT, dst=VIP, options=[IPOption_Router_Alert()]) /
             UDP(sport=999, dport=80) / b"with options")
    slb.ports.send(CLIENT_PORT, frame)
    _, got = slb.expect_backend()
    assert bytes(got[Beaver].payload) == bytes(frame[IP])
    routed = (Ether(dst=SLB_MAC) / IP(src=VIP, dst=CLIENT, options=[IPOption_Router_Alert()]) /
              UDP(sport=80, dport=999) / b"routed options")
    slb.ports.send(2, routed)
    out = slb.ports.expect(CLIENT_PORT, lambda f: Raw in f and b"routed options" in f[Raw].load)
    assert out[IP].ihl == 6 and IP(bytes(out[IP])).chksum == out[IP].chksum


MALFORMED = {
    "truncated ipv4": (bytes(Ether(dst=SLB_MAC) / IP(src=CLIENT, dst=VIP))[:24], DropReason.TRUNCATED),
    "truncated udp": (bytes(Ether(dst=SLB_MAC) / IP(src=CLIENT, dst=VIP, len=28) / UDP(dport=80))[:38],
                      DropReason.TRUNCATED),
    "truncated beaver": (bytes(stamp("10.0.2.1", "10.0.2.2", 50))[:45], DropReason.TRUNCATED),
    "bad ihl": (Ether(dst=SLB_MAC) / IP(src=CLIENT, dst=VIP, ihl=3) / UDP(dport=80), DropReason.BAD_IPV4),
    "ip version 6 in ipv4 ethertype": (Ether(dst=SLB_MAC, type=0x0800) / IP(version=6, src=CLIENT, dst=VIP),
                                       DropReason.BAD_IPV4),
    "bad checksum": (Ether(dst=SLB_MAC) / IP(src=CLIENT, dst=VIP, chksum=0x1234) / UDP(dport=80),
                     DropReason.BAD_CHECKSUM),
    "beaver bad version": (Ether(dst=SLB_MAC) / IP(src="10.0.2.1", dst="10.0.2.2") /
                           UDP(dport=BEAVER_UDP_PORT) / Beaver(version=2, kind=Kind.STAMP, snapshot_id=99),
                           DropReason.BAD_BEAVER),
    "beaver bad kind": (Ether(dst=SLB_MAC) / IP(src="10.0.2.1", dst="10.0.2.2") /
                        UDP(dport=BEAVER_UDP_PORT) / Beaver(kind=9, snapshot_id=99), DropReason.BAD_BEAVER),
    "arp": (Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=VIP), DropReason.NOT_IPV4),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_frames_are_dropped_counted_and_change_no_register(slb, name):
    slb.init(2)
    slb.send_vip()
    slb.expect_backend()
    before = registers(slb)
    frame, reason = MALFORMED[name]
    slb.ports.send(2 if "beaver" in name else CLIENT_PORT, frame)
    slb.ports.expect_none(slb.ports.sockets, lambda f: True)
    assert slb.drops(reason) == 1
    assert registers(slb) == before


def test_short_packet_out_and_unknown_opcode_are_answered_with_errors(slb):
    slb.init(2)
    before = registers(slb)

    slb.session.packet_out(b"\x00\x01\x02", opcode=int(Op.INIT))
    slb.session.packet_out(ControlBody(seq=4242, snapshot_id=9).pack(), opcode=77)
    slb.read(2)  # answers come back in order: the two above arrived first
    statuses = [m["status"] for m, _ in slb.packet_ins]
    assert Status.TRUNCATED in statuses, statuses
    odd = [ControlBody.unpack(p) for m, p in slb.packet_ins if m["status"] == Status.BAD_OPCODE]
    assert len(odd) == 1 and odd[0].seq == 4242 and odd[0].id_after == 2
    assert registers(slb) == before
