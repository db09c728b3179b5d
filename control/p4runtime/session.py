"""One P4Runtime session to one switch.

Built on p4runtime-shell's `P4RuntimeClient` (channel, pipeline, write, read)
and a per-switch `Context` (names from the P4Info), never on its global
`shell.setup`, so a controller holds one session per SLB.  Each session's
stream has one receive thread, which hands packet-ins straight to a callback.
"""
from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Callable, Mapping

import grpc
from google.protobuf import text_format
from google.rpc import code_pb2
from p4.config.v1 import p4info_pb2
from p4.v1 import p4runtime_pb2
from p4runtime_sh.context import Context
from p4runtime_sh.p4runtime import (P4RuntimeClient, P4RuntimeException,
                                    P4RuntimeWriteException)

from beaver.control.p4runtime import entries
from beaver.control.p4runtime import packetio

log = logging.getLogger(__name__)

PacketHandler = Callable[["SwitchSession", Mapping[str, int], bytes], None]


def _serialize(request) -> bytes:
    """Packet-outs arrive already encoded (packetio); the rest is protobuf."""
    return request if isinstance(request, bytes) else request.SerializeToString()


def _deserialize(data: bytes):
    packet = packetio.decode_packet_in(data)
    return packet if packet is not None else p4runtime_pb2.StreamMessageResponse.FromString(data)


class SwitchError(Exception):
    """A switch refused or failed an operation."""


class SwitchUnavailable(SwitchError):
    """The switch cannot be reached, or its stream closed."""


class NotPrimary(SwitchError):
    """Another controller holds a higher election ID: this one must not write."""


class _Client(P4RuntimeClient):
    """A P4RuntimeClient whose stream hands packet-ins to a callback and whose
    handshake raises instead of exiting the process."""

    def __init__(self, device_id, address, election_id, timeout, on_packet, on_close):
        self._timeout = timeout
        self._on_packet = on_packet
        self._on_close = on_close
        self.is_primary = False
        self.stream_error: grpc.RpcError | None = None
        super().__init__(device_id, address, election_id)

    def set_up_stream(self):
        try:
            grpc.channel_ready_future(self.channel).result(timeout=self._timeout)
        except grpc.FutureTimeoutError:
            self.channel.close()
            raise SwitchUnavailable("no gRPC answer within %.1f s" % self._timeout) from None
        self.stream_out_q = queue.SimpleQueue()   # in C: every packet-out passes here
        self.stream_in_q = {"arbitration": queue.Queue()}

        def requests():
            while (msg := self.stream_out_q.get()) is not None:
                yield msg

        stream_channel = self.channel.stream_stream(
            "/p4.v1.P4Runtime/StreamChannel",
            request_serializer=_serialize, response_deserializer=_deserialize)
        self.stream = stream_channel(requests())
        self.stream_recv_thread = threading.Thread(
            target=self._receive, name=f"p4rt-rx-{self.device_id}", daemon=True)
        self.stream_recv_thread.start()
        self.handshake()

    def _receive(self):
        error = None
        try:
            for msg in self.stream:
                if isinstance(msg, packetio.PacketIn):
                    self._on_packet(msg)
                elif msg.HasField("arbitration"):
                    self.is_primary = msg.arbitration.status.code == code_pb2.OK
                    self.stream_in_q["arbitration"].put(msg)
        except grpc.RpcError as e:
            error = self.stream_error = e
        self.stream_in_q["arbitration"].put(None)
        self._on_close(error)

    def handshake(self):
        req = p4runtime_pb2.StreamMessageRequest()
        req.arbitration.device_id = self.device_id
        req.arbitration.election_id.high = self.election_id[0]
        req.arbitration.election_id.low = self.election_id[1]
        self.stream_out_q.put(req)
        try:
            reply = self.stream_in_q["arbitration"].get(timeout=self._timeout)
        except queue.Empty:
            reply = None
        if reply is None:
            self.tear_down()
            if self.stream_error is not None and \
                    self.stream_error.code() != grpc.StatusCode.UNAVAILABLE:
                # refused, not unreachable (e.g. another controller has this election ID)
                raise SwitchError(f"arbitration refused: {self.stream_error.details()}")
            raise SwitchUnavailable("no arbitration answer")

    def tear_down(self):
        self.stream_out_q.put(None)
        self.stream.cancel()
        self.stream_recv_thread.join(timeout=self._timeout)
        self.channel.close()


class SwitchSession:
    """Arbitration, pipeline, table writes, counters and packet I/O for one switch."""

    def __init__(self, name: str, address: str, device_id: int,
                 election_id: tuple[int, int] = (0, 1)):
        self.name = name
        self.address = address
        self.device_id = device_id
        self.election_id = election_id
        self.ctx = Context()
        self._client: _Client | None = None
        self._on_packet_in: PacketHandler | None = None
        self._on_close: Callable[["SwitchSession"], None] | None = None
        self._in_names: dict[int, str] = {}
        self._out_metadata: dict[tuple, bytes] = {}   # packet-out metadata, encoded once
        self._closing = False

    def __repr__(self):
        return f"SwitchSession({self.name} at {self.address}, device {self.device_id})"

    # -- connection ---------------------------------------------------------

    def connect(self, p4info_path: Path, timeout: float = 5.0,
                on_packet_in: PacketHandler | None = None,
                on_close: Callable[["SwitchSession"], None] | None = None):
        """Opens the stream and arbitrates.  Raises SwitchUnavailable."""
        p4info = p4info_pb2.P4Info()
        text_format.Merge(Path(p4info_path).read_text(), p4info)
        self.ctx.set_p4info(p4info)
        self._in_names = entries.metadata_names(self.ctx, "packet_in")
        self._out_metadata = {}
        self._on_packet_in = on_packet_in
        self._on_close = on_close
        self._closing = False
        try:
            self._client = _Client(self.device_id, self.address, self.election_id,
                                   timeout, self._packet, self._closed)
        except SwitchError as e:
            raise type(e)(f"{self.name} ({self.address}): {e}") from None
        log.debug("%s: connected, primary=%s", self.name, self.is_primary)

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def is_primary(self) -> bool:
        return self._client is not None and self._client.is_primary

    def close(self):
        client, self._client = self._client, None
        if client is not None:
            self._closing = True
            client.tear_down()

    def _closed(self, error):
        if self._closing:
            return
        log.warning("%s: stream closed: %s", self.name,
                    error.details() if error is not None else "by the switch")
        self._client = None
        if self._on_close is not None:
            self._on_close(self)

    # -- pipeline -----------------------------------------------------------

    def set_pipeline(self, p4info_path: Path, json_path: Path):
        self._call(lambda c: c.set_fwd_pipe_config(str(p4info_path), str(json_path)),
                   "push the pipeline")

    def pipeline_installed(self) -> bool:
        """True when the switch runs the P4Info this session was built with."""
        try:
            installed = self._call(lambda c: c.get_p4info(), "read the pipeline")
        except SwitchError:
            return False
        return installed == self.ctx.p4info

    # -- writes and reads ---------------------------------------------------

    def write(self, *updates: p4runtime_pb2.Update):
        if not self.is_primary:
            raise NotPrimary(f"{self.name}: another controller is primary; not writing")
        req = p4runtime_pb2.WriteRequest(updates=updates)
        self._call(lambda c: c.write(req), "write")

    def insert(self, entry: p4runtime_pb2.TableEntry):
        self.write(entries.update(entry, p4runtime_pb2.Update.INSERT))

    def modify(self, entry: p4runtime_pb2.TableEntry):
        self.write(entries.update(entry, p4runtime_pb2.Update.MODIFY))

    def delete(self, entry: p4runtime_pb2.TableEntry):
        self.write(entries.update(entry, p4runtime_pb2.Update.DELETE))

    def table_entries(self, table: str) -> list[p4runtime_pb2.TableEntry]:
        entity = p4runtime_pb2.Entity()
        entity.table_entry.table_id = self.ctx.get_table_id(table)
        replies = self._call(lambda c: list(c.read_one(entity)), "read a table")
        return [e.table_entry for r in replies for e in r.entities]

    def read_counter(self, counter: str, index: int) -> int:
        """Packets counted at counter[index]."""
        entity = entries.counter_entry(self.ctx, counter, index)
        replies = self._call(lambda c: list(c.read_one(entity)), "read a counter")
        return sum(e.counter_entry.data.packet_count for r in replies for e in r.entities)

    # -- packet I/O ---------------------------------------------------------

    def packet_out(self, payload: bytes, **metadata: int):
        client = self._client
        if client is None:
            raise SwitchUnavailable(f"{self.name}: not connected")
        key = tuple(metadata.items())
        encoded = self._out_metadata.get(key)
        if encoded is None:
            fields = entries.packet_metadata(self.ctx, "packet_out", metadata)
            encoded = packetio.encode_metadata([(m.metadata_id, m.value) for m in fields])
            self._out_metadata[key] = encoded
        client.stream_out_q.put(packetio.encode_packet_out(payload, encoded))

    def _packet(self, packet: packetio.PacketIn):
        if self._on_packet_in is None:
            return
        metadata = {self._in_names.get(mid, str(mid)): entries.decode(value)
                    for mid, value in packet.metadata}
        try:
            self._on_packet_in(self, metadata, packet.payload)
        except Exception:  # a handler bug must not kill the stream
            log.exception("%s: packet-in handler failed", self.name)

    def _call(self, fn, what: str):
        client = self._client
        if client is None:
            raise SwitchUnavailable(f"{self.name}: not connected")
        try:
            return fn(client)
        except P4RuntimeWriteException as e:
            raise SwitchError(f"{self.name}: cannot {what}: {str(e).strip()}") from None
        except P4RuntimeException as e:
            raise self._error(e.grpc_error, what) from None
        except grpc.RpcError as e:
            raise self._error(e, what) from None

    def _error(self, e: grpc.RpcError, what: str) -> SwitchError:
        if e.code() == grpc.StatusCode.UNAVAILABLE:
            return SwitchUnavailable(f"{self.name}: cannot {what}: switch unreachable")
        if e.code() == grpc.StatusCode.PERMISSION_DENIED:
            return NotPrimary(f"{self.name}: cannot {what}: not the primary controller")
        return SwitchError(f"{self.name}: cannot {what}: {e.code().name}: {e.details()}")
