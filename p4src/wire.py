"""The data plane's wire formats, mirrored from headers.p4 byte for byte.

Two layouts cross the wire:

* the Beaver header (6 bytes) after a UDP header to BEAVER_UDP_PORT: an SLB's
  MARK on the encapsulation towards a backend, or an in-group process's STAMP
  on a message to another in-group process;
* the control body (ctl_t, 46 bytes) of a packet-out request, answered by a
  packet-in carrying the same body filled in; a batched request adds a batch
  header (batch_t, 17 bytes: a schedule, and READ_BATCH's answer about it),
  and READ_RECORDS room for one record (record_t, 21 bytes) per ID;
* the clock probe (probe_t, 16 bytes after an Ethernet header of type
  ETHERTYPE_PROBE), reflected by a probe port with both data-plane stamps.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

CPU_PORT = 255
BEAVER_UDP_PORT = 4790
BEAVER_VERSION = 1
RING_SIZE = 8192        # epoch records kept per SLB, indexed by ID mod RING_SIZE
LEARN_WINDOW = RING_SIZE - 1   # the furthest ahead an SLB learns an ID from a STAMP
ETHERTYPE_PROBE = 0x88B5
SCHEDULE_MAX = RING_SIZE - 1   # the most IDs one INIT_BATCH schedules
RECORDS_MAX = 16        # the most records one READ_RECORDS reads


class Kind(enum.IntEnum):
    MARK = 1    # SLB -> backend; the original IPv4 packet follows
    STAMP = 2   # in-group -> in-group; the application payload follows


class Op(enum.IntEnum):
    INIT = 1     # move to the ID if newer, at activate_at if later (FLAG_HOLD: also hold)
    READ = 2     # report the epoch record of the ID
    RELEASE = 3  # stop holding VIP traffic
    INIT_BATCH = 4   # schedule batch.count IDs, the i-th at activate_at + i * spacing
    READ_BATCH = 5   # the schedule starting at the ID, and its lateness
    READ_RECORDS = 6  # the records of batch.count IDs, one record_t each


BATCHED = (Op.INIT_BATCH, Op.READ_BATCH, Op.READ_RECORDS)   # carry a batch header


class Status(enum.IntEnum):
    OK = 0
    ALREADY = 1     # the SLB already held the ID; nothing changed
    STALE = 2       # the ID is neither current nor recorded; record is the current ID's
    BAD_OPCODE = 3
    TRUNCATED = 4   # request body shorter than ctl_t
    SCHEDULED = 5   # the ID activates at activate_at; record is the current ID's
    BAD_BATCH = 6   # batch count 0 or too many, or a wrong spacing; nothing changed
    TOO_FAR = 7     # the batch reaches RING_SIZE or more past the current ID; nothing changed


class Track(enum.IntEnum):
    """How far a schedule's lateness (Batch.late_last) can be trusted."""
    NONE = 0    # scheduled, never armed
    KEPT = 1    # armed before its first ID was reached: its lateness is kept
    FINAL = 2   # ... and its last ID reached while armed: its lateness is final
    LOST = 3    # some ID was reached while it was not armed: read the records


FLAG_HOLD = 1      # request: hold VIP traffic; answer: VIP traffic is held
FLAG_MARKING = 2   # answer: marking is enabled


class DropReason(enum.IntEnum):
    """Indexes of the drop_reasons counter."""
    TRUNCATED = 1
    BAD_IPV4 = 2
    BAD_CHECKSUM = 3
    BAD_BEAVER = 4
    NOT_IPV4 = 5
    NO_ROUTE = 6
    TTL = 7
    HOLD = 8
    NO_BACKEND = 9
    PROBE = 10      # a clock probe on a port that is not a probe port
    OUTGROUP_BEAVER = 11   # a Beaver header on a port that is not in-group facing


class RefusedReason(enum.IntEnum):
    """Indexes of the learn_refused counter: why a STAMP moved no ID."""
    SOURCE = 1      # not an in-group source
    AHEAD = 2       # further ahead than LEARN_WINDOW


class WireError(ValueError):
    """Bytes that do not hold the layout they were read as."""


@dataclass(frozen=True)
class BeaverHeader:
    kind: Kind
    snapshot_id: int
    origin: int = 0          # MARK: the SLB's id
    version: int = BEAVER_VERSION

    FORMAT = struct.Struct("!BBI")
    SIZE = FORMAT.size

    def pack(self) -> bytes:
        return self.FORMAT.pack((self.version << 4) | int(self.kind), self.origin,
                                self.snapshot_id)

    @classmethod
    def unpack(cls, data: bytes) -> "BeaverHeader":
        """Reads the header at the start of data; raises WireError if invalid."""
        if len(data) < cls.SIZE:
            raise WireError(f"Beaver header needs {cls.SIZE} bytes, got {len(data)}")
        version_kind, origin, snapshot_id = cls.FORMAT.unpack_from(data)
        version, kind = version_kind >> 4, version_kind & 0xF
        if version != BEAVER_VERSION:
            raise WireError(f"Beaver header version {version}, expected {BEAVER_VERSION}")
        try:
            kind = Kind(kind)
        except ValueError:
            raise WireError(f"Beaver header kind {kind} unknown") from None
        return cls(kind, snapshot_id, origin, version)


@dataclass(frozen=True)
class ControlBody:
    """ctl_t: a request's arguments, or the switch's answer."""
    seq: int = 0
    snapshot_id: int = 0
    id_before: int = 0
    id_after: int = 0
    now: int = 0             # data-plane time, microseconds since switch start
    switch_time: int = 0     # when the SLB moved to snapshot_id
    last_old_time: int = 0   # last packet marked with an ID older than snapshot_id
    count: int = 0           # packets marked with snapshot_id
    slb_id: int = 0
    flags: int = 0
    activate_at: int = 0     # INIT: when to move (0: at once); answer: the ID's schedule

    FORMAT = struct.Struct("!IIII6s6s6sIBB6s")
    SIZE = FORMAT.size

    def pack(self) -> bytes:
        return self.FORMAT.pack(self.seq, self.snapshot_id, self.id_before, self.id_after,
                                self.now.to_bytes(6, "big"),
                                self.switch_time.to_bytes(6, "big"),
                                self.last_old_time.to_bytes(6, "big"),
                                self.count, self.slb_id, self.flags,
                                self.activate_at.to_bytes(6, "big"))

    @classmethod
    def unpack(cls, data: bytes) -> "ControlBody":
        if len(data) < cls.SIZE:
            raise WireError(f"control body needs {cls.SIZE} bytes, got {len(data)}")
        (seq, snapshot_id, before, after, now, switched, last_old, count, slb_id,
         flags, activate_at) = cls.FORMAT.unpack_from(data)
        return cls(seq, snapshot_id, before, after, int.from_bytes(now, "big"),
                   int.from_bytes(switched, "big"), int.from_bytes(last_old, "big"),
                   count, slb_id, flags, int.from_bytes(activate_at, "big"))

    @property
    def holding(self) -> bool:
        return bool(self.flags & FLAG_HOLD)

    @property
    def marking(self) -> bool:
        return bool(self.flags & FLAG_MARKING)


def reciprocal(spacing: int) -> int:
    """What INIT_BATCH carries beside a spacing: the switch has no division,
    so it multiplies by floor((2^32 - 1) / spacing) and corrects by one."""
    return (1 << 32) - 1 if spacing == 0 else ((1 << 32) - 1) // spacing


@dataclass(frozen=True)
class Batch:
    """batch_t: a schedule (count IDs, the i-th due at the control body's
    activate_at + i * spacing), and READ_BATCH's answer about it: how far
    its lateness is trusted (track) and the lateness itself (late_last, the
    latest packet forwarded with an ID older than one whose time had come,
    on the switch's clock; 0: none)."""
    count: int
    spacing: int = 0
    recip: int = 0
    track: int = Track.NONE
    late_last: int = 0

    FORMAT = struct.Struct("!HIIB6s")
    SIZE = FORMAT.size

    @classmethod
    def schedule(cls, count: int, spacing: int) -> "Batch":
        return cls(count, spacing, reciprocal(spacing) if count > 1 else 0)

    def pack(self) -> bytes:
        return self.FORMAT.pack(self.count, self.spacing, self.recip, self.track,
                                self.late_last.to_bytes(6, "big"))

    @classmethod
    def unpack(cls, data: bytes) -> "Batch":
        if len(data) < cls.SIZE:
            raise WireError(f"batch header needs {cls.SIZE} bytes, got {len(data)}")
        count, spacing, recip, track, late = cls.FORMAT.unpack_from(data)
        return cls(count, spacing, recip, track, int.from_bytes(late, "big"))


@dataclass(frozen=True)
class Record:
    """record_t: one ID's answer to READ_RECORDS, what a single READ answers
    of it: status OK, the ID's record; SCHEDULED (newer than the current
    ID) or STALE (passed unrecorded), the current ID's."""
    status: int
    snapshot_id: int
    switch_time: int
    last_old_time: int
    count: int

    FORMAT = struct.Struct("!BI6s6sI")
    SIZE = FORMAT.size

    def pack(self) -> bytes:
        return self.FORMAT.pack(self.status, self.snapshot_id,
                                self.switch_time.to_bytes(6, "big"),
                                self.last_old_time.to_bytes(6, "big"), self.count)

    @classmethod
    def unpack_all(cls, data: bytes) -> list["Record"]:
        """Every whole record in data, in order."""
        whole = len(data) - len(data) % cls.SIZE
        return [cls(status, sid, int.from_bytes(sw, "big"), int.from_bytes(old, "big"), count)
                for status, sid, sw, old, count in cls.FORMAT.iter_unpack(data[:whole])]


@dataclass(frozen=True)
class Probe:
    """probe_t: a clock probe, and its reflection with both stamps."""
    seq: int
    ingress_time: int = 0    # ingress_global_timestamp, us since switch start
    egress_time: int = 0     # egress_global_timestamp

    FORMAT = struct.Struct("!I6s6s")
    SIZE = FORMAT.size

    def pack(self) -> bytes:
        return self.FORMAT.pack(self.seq, self.ingress_time.to_bytes(6, "big"),
                                self.egress_time.to_bytes(6, "big"))

    @classmethod
    def unpack(cls, data: bytes) -> "Probe":
        if len(data) < cls.SIZE:
            raise WireError(f"probe needs {cls.SIZE} bytes, got {len(data)}")
        seq, ingress, egress = cls.FORMAT.unpack_from(data)
        return cls(seq, int.from_bytes(ingress, "big"), int.from_bytes(egress, "big"))
