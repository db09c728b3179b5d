"""Clock probes through a switch's probe port (p4src/clock_probe.p4).

The controller's end of the probe port is an interface on its own host (a
veth in the Mininet topology and the test services).  A probe is an
Ethernet frame of type ETHERTYPE_PROBE; the switch reflects it with its
ingress and egress stamps, and the kernel stamps its receipt
(SO_TIMESTAMPNS), so each reflection is a clock.Sample whose error is the
time the frame spent between the interface and the switch's stamps, not
the switch's queues.  Both ends are the kernel's software timestamps
(SO_TIMESTAMPING): the send as the frame leaves through the interface, the
receipt as it arrives, so Python's own delays cost nothing either.  One
thread per switch sends a probe every `interval_s` and feeds the answers
into the switch's ClockEstimate: every `fast_s` until `fast_answers` came
back (the estimate's bound shrinks with the number of samples: about +-27 us
after 100 unloaded ones here, +-13 us after 1,400), then every `interval_s`,
which only keeps watch for a restart; a restart starts the fast phase again.
"""
from __future__ import annotations

import logging
import select
import socket
import struct
import threading
from dataclasses import dataclass

from beaver.p4src.wire import ETHERTYPE_PROBE, Probe, WireError

from beaver.control.slbs.clock import ClockEstimate, Sample
from beaver.control.p4runtime.session import SwitchError
from beaver.control.slbs.requests import now_us

log = logging.getLogger(__name__)

SO_TIMESTAMPING = 37         # linux/asm-generic/socket.h (SCM_TIMESTAMPING likewise)
TIMESTAMPING = ((1 << 1) | (1 << 3) | (1 << 4)   # TX_SOFTWARE, RX_SOFTWARE, SOFTWARE
                | (1 << 7) | (1 << 11))          # OPT_ID (sends numbered), OPT_TSONLY
SOL_PACKET, PACKET_TX_TIMESTAMP = 263, 16
EXTENDED_ERR = struct.Struct("=IBBBBII")         # struct sock_extended_err; ee_data last
PACKET_OUTGOING = 4          # our own frames, as a packet socket also sees them
ETHER_HEADER = struct.Struct("!6s6sH")
PROBE_MAC = bytes.fromhex("02bea7e00001")   # locally administered: the controller's end
# Probes not yet answered that are still waited for.  Many: an answer read
# late is as exact as one read at once (the kernel stamped both ends), so a
# reader that fell behind under load must not forget what it sent.
MAX_OUTSTANDING = 4096


class ProbeError(SwitchError):
    """The probe interface cannot be used (missing, or no permission)."""


@dataclass
class ProbeStats:
    sent: int = 0
    answered: int = 0
    malformed: int = 0       # frames of our type that were no answer of ours


class ClockProbe:
    # Steady probes only keep watch (a recovered switch's clock is reset by
    # the fleet, which restarts the fast phase), and each costs the switch a
    # packet's pipeline on the traffic's core: 10 a second, not 50 (Fig. 14).
    def __init__(self, iface: str, clock: ClockEstimate, interval_s: float = 0.1,
                 fast_s: float = 0.001, fast_answers: int = 2000):
        self.iface = iface
        self.clock = clock
        self.interval_s = interval_s
        self.fast_s = fast_s
        self.fast_answers = fast_answers
        self.stats = ProbeStats()
        self._sent: dict[int, int] = {}     # seq -> when it left (the kernel's, once known)
        self._by_send: dict[int, int] = {}  # the socket's send number -> seq
        self._sends = 0
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                       socket.htons(ETHERTYPE_PROBE))
            self._sock.bind((iface, ETHERTYPE_PROBE))
            self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TIMESTAMPING)
            self._sock.setblocking(False)
        except OSError as e:
            raise ProbeError(f"probe interface {iface!r}: {e.strerror or e}") from None

    def start(self) -> "ClockProbe":
        self._thread = threading.Thread(target=self._run, name=f"probe-{self.iface}",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def settled(self) -> bool:
        """Past the fast phase: from now on one probe every interval_s."""
        return self.clock.samples >= self.fast_answers

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sock.close()

    def _run(self):
        next_send = 0.0
        while not self._stop.is_set():
            now = now_us()
            if now >= next_send:
                self.send()
                next_send = now + (self.interval_s if self.settled else self.fast_s) * 1e6
            ready, _, _ = select.select([self._sock], [], [],
                                        max(0.0, (next_send - now_us()) / 1e6))
            if ready:   # reflections, or the kernel's times of sends (error queue)
                self.read()

    def read(self):
        """Everything waiting: the send times first, then every frame (each
        probe brings two, its own outgoing copy and the answer), so that a
        backlog left by a busy moment is gone at the next wakeup."""
        self._sent_times()
        while self._receive():
            pass

    def send(self):
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        frame = (ETHER_HEADER.pack(b"\xff" * 6, PROBE_MAC, ETHERTYPE_PROBE) +
                 Probe(self._seq).pack())
        if len(self._sent) >= MAX_OUTSTANDING:   # lost probes: forget the oldest
            del self._sent[next(iter(self._sent))]
        while len(self._by_send) >= MAX_OUTSTANDING:
            del self._by_send[next(iter(self._by_send))]
        self._sent[self._seq] = now_us()   # an earlier bound, until the kernel's comes
        try:
            self._sock.send(frame)
        except OSError as e:   # the interface went away: the estimate simply ages
            log.warning("%s: probe not sent: %s", self.iface, e)
            return
        self._by_send[self._sends] = self._seq
        self._sends += 1
        self.stats.sent += 1

    def _sent_times(self):
        """The kernel's send timestamps, matched to probes by send number."""
        while True:
            try:
                _, ancillary, _, _ = self._sock.recvmsg(0, 256, socket.MSG_ERRQUEUE)
            except BlockingIOError:
                return
            when = number = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                    when = _software_time(value)
                elif level == SOL_PACKET and kind == PACKET_TX_TIMESTAMP:
                    number = EXTENDED_ERR.unpack_from(value)[-1]
            seq = self._by_send.pop(number, None)
            if when is not None and seq in self._sent:
                self._sent[seq] = when

    def _receive(self) -> bool:
        """Reads one frame; False when none was waiting."""
        try:
            data, ancillary, _, address = self._sock.recvmsg(2048, 256)
        except BlockingIOError:
            return False
        if address[2] == PACKET_OUTGOING:
            return True
        received = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                received = _software_time(value)
        try:
            probe = Probe.unpack(data[ETHER_HEADER.size:])
        except WireError:
            self.stats.malformed += 1
            return True
        sent = self._sent.pop(probe.seq, None)
        if sent is None or received is None or probe.egress_time < probe.ingress_time:
            self.stats.malformed += 1
            return True
        self.stats.answered += 1
        self.clock.add(Sample(sent, probe.ingress_time, probe.egress_time, received))
        return True


def _software_time(value: bytes) -> int:
    """Microseconds, on the system clock, of a SCM_TIMESTAMPING message's
    software stamp (the first of its three timespecs)."""
    seconds, nanoseconds = struct.unpack_from("qq", value)
    return seconds * 1_000_000 + nanoseconds // 1000
