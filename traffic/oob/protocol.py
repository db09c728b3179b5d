"""The out-of-band protocol between the controller and in-group processes.

Every in-group process listens on TCP port OOB_PORT of its management
address.  Messages are JSON objects, each framed by a 4-byte big-endian
length, and carry the protocol version "v".  The controller sends a request
and reads one answer; a connection may carry many.

    controller -> process                       process -> controller
    {"v":1,"op":"snapshot","id":N}              a Report for N (snapshots N out
                                                of band first if still older)
    {"v":1,"op":"report","id":N}                the Report for N as it stands
                                                (channel state may still grow)
    {"v":1,"op":"snapshot","ids":[N,..]}        {"v":1,"op":"reports","reports":[..]}:
    {"v":1,"op":"report","ids":[N,..]}          the answer for each N, in order, each
                                                the Report or the error above; a
                                                "snapshot" records at most one local
                                                state, for the newest N still ahead
    {"v":1,"op":"snapshot"|"report",            {"v":1,"op":"cuts","first":F,"count":C,
     "first":F,"count":C}                        "cuts":[{"first":..,"count":..,"report":..}]}:
                                                one report per distinct cut of the run F ..
                                                F+C-1, each with the IDs it stands for
                                                (traffic/oob/cuts.py: what every report
                                                shares goes once, in the answer); a
                                                "snapshot" records one local state, for
                                                F+C-1; each cut's state
                                                goes as its changes from the previous cut's
                                                ("delta": {"previous":P,"changes":..}), the
                                                first of a chain as below
    any, with "base":M                          each Report taken carries, in place of
                                                its local_state, "delta": {"base":M,
                                                "changes":..}: what changed since its state
                                                at M (traffic/oob/deltas.py), while it keeps M
                                                (in "cuts", only a chain's first report)
    {"v":1,"op":"status"}                       {"v":1,"op":"status","process":..,
                                                 "current_id":..,"finished_id":..}
                                                (a restored process adds "restored":
                                                {"snapshot":N,"held":..,"replayed":..})
    {"v":1,"op":"resume"[,"state":true]}        a process restored from a snapshot
                                                (traffic/runtime/restore.py) holds until this:
                                                it replays the messages in flight to it,
                                                once, then serves; {"v":1,"op":"resumed",
                                                "snapshot":N,"replayed":{peer:n},..}
                                                (and its local state, if asked)
    anything malformed or of another version    {"v":1,"op":"error","error":".."}
    (also an ID no longer kept, more than MAX_IDS ids, or an answer too long)

The controller sends "snapshot" only after every SLB acknowledged N (the
slbs go first).

What the controller relies on (control/engine/engine.py, traffic/oob/links.py):
- "snapshot" N answers with taken true: the process has recorded its state
  for N, out of band if nothing newer reached it first.  A process that went
  past N without stopping at it (from an older ID straight to a newer one)
  reports the state it recorded then: the same cut.
- "report" N answers taken false while the process has not reached N, and
  an error once N is no longer kept.
- Channels are keyed by the peer's process name, as in the controller's
  configuration.  For reporting processes p and q the channel p -> q is
  whole when q.channels[p].received_before + len(q.channels[p].in_flight)
  == p.channels[q].sent_before; while it is short the controller asks q
  again ("report") until its report timeout (verdict: incomplete), and more
  than that is an inconsistent cut (verdict: rejected).
- An error answer, a closed connection or no answer within the timeout
  makes the snapshot incomplete, naming the process.
- "base" M names a state the controller holds: the process's own report
  of M on this connection (the controller forgets it when the connection
  ends, so a restarted process is never diffed against its predecessor).
  A process that no longer keeps M answers the whole state; the controller
  rebuilds each state from M's (in "cuts", in order, each from the one
  before) before anything else sees it, and refuses the whole answer when
  one does not rebuild.
- Many IDs in one request are a transport: each ID's answer is the one a
  request of its own would get (in a "snapshot", as if the process had
  jumped to the newest), and an error for one ID (no longer kept) leaves
  the others their reports.  The whole request fails only when it is
  malformed, or its answer would exceed MAX_MESSAGE.
"""
from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass, field, fields, replace
from typing import Any

import orjson

from beaver.p4src.ids import ID_SPACE
from beaver.traffic.boundedjson import JsonError, loads
from beaver.traffic.oob import deltas

OOB_PORT = 4791
VERSION = 1
MAX_MESSAGE = 16 * 1024 * 1024
MAX_DEPTH = 256   # a report holds local states and in-flight messages a few levels down
MAX_IDS = 1024    # snapshot IDs in one "snapshot" or "report" request (links split larger batches)
_LENGTH = struct.Struct("!I")


class ProtocolError(ValueError):
    """A message that is not valid in this protocol."""


@dataclass
class ChannelState:
    """This process's two channels with one peer, at snapshot N.

    sent_before: messages this process sent to the peer before its snapshot.
    received_before: messages received from the peer before the snapshot.
    in_flight: messages from the peer that carried an ID older than N but
      arrived after the snapshot (the channel's state), as message records.
    The channel peer -> p is complete when p.received_before + len(in_flight)
    equals peer.sent_before[p].
    """
    sent_before: int = 0
    received_before: int = 0
    in_flight: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    process: str
    snapshot_id: int
    taken: bool                  # False: the process has not reached N yet
    trigger: str = ""            # "mark" (from an SLB), "peer", "oob", or "" if not taken
    taken_at_us: int = 0         # the process's clock when it recorded its state
    local_state: Any = None
    channels: dict[str, ChannelState] = field(default_factory=dict)
    current_id: int = 0
    finished_id: int = 0         # newest ID whose local and channel state are complete
    delta: dict[str, Any] | None = None   # as received: local_state's changes from a base

    def to_message(self, base: tuple[int, Any] | None = None) -> dict[str, Any]:
        """base: (M, the state at M) the asker holds: then the local state
        goes as its changes from it."""
        # Shallow: the local state is the process's own copy, JSON encodes it as is.
        message = {"v": VERSION, "op": "report",
                   **{name: getattr(self, name) for name in _REPORT_FIELDS}}
        # Shallow too: asdict would copy every in-flight record, and each
        # report's in-flight lists are its own (Snapshots builds them).
        message["channels"] = {peer: {"sent_before": c.sent_before,
                                      "received_before": c.received_before,
                                      "in_flight": c.in_flight}
                               for peer, c in self.channels.items()}
        if self.delta is not None:   # never stored or passed on without its state
            raise ValueError(f"{self.process}'s report of {self.snapshot_id} is not rebuilt")
        if base is not None and self.taken:
            del message["local_state"]
            message["delta"] = {"base": base[0], "changes": deltas.diff(base[1], self.local_state)}
        return message

    def rebuilt(self, held: tuple[int, Any] | None) -> "Report":
        """This report with its whole local state, from held (M, the state at
        M) when it came as changes; ProtocolError if from another base."""
        if self.delta is None:
            return self
        base = self.delta.get("base") if isinstance(self.delta, dict) else None
        if held is None or base != held[0]:
            raise ProtocolError(f"{self.process}: changes from the state at {base!r}, "
                                f"but the state held is {held[0] if held else None}'s")
        return self.applied(held[1])

    def applied(self, base_state: Any) -> "Report":
        """This report with its whole local state: its changes applied to
        base_state, whose ID the caller checked; ProtocolError if they do
        not fit it."""
        try:
            state = deltas.apply(base_state, self.delta.get("changes", {}))
        except (ValueError, TypeError, AttributeError) as e:
            raise ProtocolError(f"{self.process}: changes that do not fit their base: {e}") \
                from None
        return replace(self, local_state=state, delta=None)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "Report":
        check(message, "report")
        try:
            fields = {k: message[k] for k in ("process", "snapshot_id", "taken")}
            optional = {k: message[k] for k in ("trigger", "taken_at_us", "local_state",
                                                "current_id", "finished_id", "delta")
                        if k in message}
            channels = {peer: ChannelState(**state)
                        for peer, state in message.get("channels", {}).items()}
        except (KeyError, TypeError, AttributeError) as e:
            raise ProtocolError(f"bad report: {e}") from None
        report = cls(**fields, **optional, channels=channels)
        if problem := report._malformed():
            raise ProtocolError(f"bad report: {problem}")
        return report

    def _malformed(self) -> str | None:
        """What in a report just received has the wrong type, if anything."""
        for name in ("snapshot_id", "current_id", "finished_id"):
            value = getattr(self, name)
            if not (type(value) is int and 0 <= value < ID_SPACE):
                return f"{name} {value!r} is no snapshot ID"
        if not (isinstance(self.process, str) and type(self.taken) is bool
                and isinstance(self.trigger, str) and type(self.taken_at_us) is int
                and isinstance(self.delta, (dict, type(None)))):
            return "process, taken, trigger, taken_at_us or delta of the wrong type"
        for peer, channel in self.channels.items():
            if not (type(channel.sent_before) is int and channel.sent_before >= 0
                    and type(channel.received_before) is int and channel.received_before >= 0
                    and isinstance(channel.in_flight, list)
                    and all(isinstance(item, dict) and isinstance(item.get("id"), str)
                            for item in channel.in_flight)):
                return f"channel {peer!r}: counts must be integers >= 0, in_flight messages"
        return None


# A report's message fields, looked up once: fields() costs on every report.
_REPORT_FIELDS = tuple(f.name for f in fields(Report) if f.name != "delta")


def check(message: Any, op: str | None = None) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    if message.get("v") != VERSION:
        raise ProtocolError(f"protocol version {message.get('v')!r}, expected {VERSION}")
    if op is not None and message.get("op") != op:
        raise ProtocolError(f"expected op {op!r}, got {message.get('op')!r}")
    return message


# Every message is encoded by orjson, in C: a run's answer 5-9 times faster
# than the json module (docs/benchmarks.md).  Its output reads back the same
# with json.loads.  What orjson refuses goes through the json module's
# encoder, which wrote every message before: integers past 64 bits, keys that
# are not strings, values nested past 254 levels (a cycle: which still fails,
# as too deep, and the OOB server answers it as an error), types orjson
# would write and json would not (dataclasses, datetimes: passed through to
# it so that a bug fails as it did).  A float that is not finite would go as
# null: none comes in (boundedjson refuses them) and no service makes one.
_ORJSON = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def encode(message: dict[str, Any]) -> bytes:
    try:
        body = orjson.dumps(message, option=_ORJSON)
    except TypeError:
        body = _ENCODER.encode(message).encode()
    if len(body) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE}")
    return _LENGTH.pack(len(body)) + body


def send(sock: socket.socket, message: dict[str, Any]):
    sock.sendall(encode(message))


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("peer closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> dict[str, Any]:
    """The next message; ProtocolError if it is not valid JSON of this version."""
    (length,) = _LENGTH.unpack(_read_exactly(sock, _LENGTH.size))
    if length > MAX_MESSAGE:
        raise ProtocolError(f"message of {length} bytes exceeds {MAX_MESSAGE}")
    try:
        message = loads(_read_exactly(sock, length), MAX_DEPTH)
    except JsonError as e:
        raise ProtocolError(str(e)) from None
    return check(message)


def request(sock: socket.socket, message: dict[str, Any]) -> dict[str, Any]:
    send(sock, message)
    answer = receive(sock)
    if answer.get("op") == "error":
        raise ProtocolError(f"process refused {message.get('op')!r}: {answer.get('error')}")
    return answer
