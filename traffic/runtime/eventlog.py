"""The ground-truth event log every process keeps: one JSON object per line.

The first line names the process:

    {"log":"beaver-events","version":1,"process":"kv1","in_group":true,"mode":"beaver"}

then one line per event, in the process's own order:

    {"seq":7,"t_us":..,"kind":"send","msg":"kv1:4","peer":"kv2"}
    {"seq":8,"t_us":..,"kind":"recv","msg":"c1:9","peer":"10.0.1.1:40000"}
    {"seq":9,"t_us":..,"kind":"send","msg":"kv1:5","peer":"kv2","ctl":true}
    {"seq":10,"t_us":..,"kind":"snapshot","first":3,"last":5,"trigger":"mark"}
    {"seq":11,"t_us":..,"kind":"end"}

A send and its receive share "msg"; "peer" is informational (a process name
or an address).  "ctl" marks the runtime's own COUNT messages: they order
events like any message but are not channel state.  A snapshot line is where
the process recorded its local state, for every ID from "first" to "last".
"t_us" is the wall clock in microseconds (one clock on a single machine).
The "end" line closes the log: a log without it was cut short (its process
was killed or died before closing it), and its last line may be torn.

Every record is in the kernel's hands when the call that records it
returns, so a process killed even by SIGKILL loses none of them.  Records
are copied into a shared mapping of the file, which costs less than a
write() each (bench/eventlog.py).  The file grows GROW bytes at a time, its
space reserved first (a full disk is then an OSError, not a SIGBUS), and
until close() cuts it to its records it ends in zero bytes: a reader stops
at the first one (JSON text holds none).
"""
from __future__ import annotations

import json
import mmap
import os
import threading
import time
from json.encoder import encode_basestring_ascii as json_string
from pathlib import Path
from typing import Any, Iterator

from beaver.p4src.ids import ID_SPACE
from beaver.traffic.boundedjson import JsonError, loads

FORMAT = "beaver-events"
VERSION = 1
EVENT_KINDS = ("send", "recv", "snapshot", "end")
MAX_LINE = 1 << 16   # bytes; a record is far shorter: message ids are bounded (messages.py)
MAX_DEPTH = 4        # records are flat objects
GROW = 1 << 20       # bytes the file grows by: a remapping per some 10,000 records
CTL = ',"ctl":true'  # a runtime's own message, as the record's last member


class LogError(ValueError):
    """A log file that is not an event log of this format."""


class EventLog:
    """Appends events to a file; safe to share between threads.  Use it as a
    context manager (or call close) so that it ends with its closing record."""

    def __init__(self, path: str | Path, process: str, in_group: bool, mode: str | None = None):
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self._map: mmap.mmap | None = None
        self._size = self._used = 0    # bytes mapped, and written
        self._lock = threading.Lock()
        self._closed = False
        self._seq = 0
        # First of all: even a killed process's log names it, and the checker counts it short.
        self._write((json.dumps({"log": FORMAT, "version": VERSION, "process": process,
                                 "in_group": in_group, "mode": mode},
                                separators=(",", ":")) + "\n").encode())

    def _write(self, data: bytes):
        end = self._used + len(data)
        if end > self._size:
            self._grow(end + GROW)
        self._map[self._used:end] = data
        self._used = end

    def _grow(self, size: int):
        os.posix_fallocate(self._fd, self._size, size - self._size)
        if self._map is not None:
            self._map.close()
        self._map = mmap.mmap(self._fd, size)
        self._size = size

    # Each record is formatted directly, byte for byte what json.dumps with
    # these separators writes for it: one or two go out with every message.

    def _event(self, fields: str):
        """fields: the record's JSON members after "seq" and "t_us"."""
        with self._lock:
            if self._closed:   # a straggling thread: the log has said it ended
                return
            self._seq += 1
            self._write(f'{{"seq":{self._seq},"t_us":{time.time_ns() // 1000},{fields}}}\n'
                        .encode())

    def send(self, msg: str, peer: str, ctl: bool = False):
        self._event(f'"kind":"send","msg":{json_string(msg)},"peer":{json_string(peer)}'
                    f'{CTL if ctl else ""}')

    def recv(self, msg: str, peer: str, ctl: bool = False):
        self._event(f'"kind":"recv","msg":{json_string(msg)},"peer":{json_string(peer)}'
                    f'{CTL if ctl else ""}')

    def snapshot(self, first: int, last: int, trigger: str):
        self._event(f'"kind":"snapshot","first":{first:d},"last":{last:d},'
                    f'"trigger":{json_string(trigger)}')

    def close(self):
        """Writes the closing record and cuts the file to its records;
        closing again does nothing."""
        self._event('"kind":"end"')
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._map.close()
            os.ftruncate(self._fd, self._used)
            os.close(self._fd)

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc):
        self.close()


def read_log(path: str | Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The log's header line and an iterator over its events (checked as read),
    the closing "end" record included if the log has it.  A torn last line
    (no newline: the process died mid-write) ends the events."""
    lines = open(path, "rb")
    first = lines.readline(MAX_LINE)
    if first.rstrip(b"\0") == b"":
        lines.close()
        raise LogError(f"{path}: empty: its process ended before it wrote a line")
    try:
        header = loads(first, MAX_DEPTH)
    except JsonError as e:
        lines.close()
        raise LogError(f"{path}: first line: {e}") from None
    if not (isinstance(header, dict) and header.get("log") == FORMAT
            and header.get("version") == VERSION and isinstance(header.get("process"), str)):
        lines.close()
        raise LogError(f"{path}: not a {FORMAT} log of version {VERSION}")
    return header, _events(path, lines)


def _events(path, lines) -> Iterator[dict[str, Any]]:
    with lines:
        number = 1
        while line := lines.readline(MAX_LINE + 1):
            number += 1
            if b"\0" in line:   # where a killed process had written no more
                return
            if not line.endswith(b"\n"):
                if len(line) > MAX_LINE:
                    raise LogError(f"{path}:{number}: a line longer than {MAX_LINE} bytes")
                return
            try:
                event = loads(line, MAX_DEPTH)
            except JsonError as e:
                raise LogError(f"{path}:{number}: {e}") from None
            kind = event.get("kind") if isinstance(event, dict) else None
            if kind not in EVENT_KINDS:
                raise LogError(f"{path}:{number}: unknown event kind {kind!r}")
            if type(event.get("t_us")) is not int:
                raise LogError(f"{path}:{number}: {kind} without an integer t_us")
            if kind == "snapshot":
                if not all(type(event.get(k)) is int and 0 <= event[k] < ID_SPACE
                           for k in ("first", "last")):
                    raise LogError(f"{path}:{number}: snapshot without IDs first/last")
            elif kind != "end" and not (isinstance(event.get("msg"), str)
                                        and isinstance(event.get("peer", ""), str)):
                raise LogError(f"{path}:{number}: {kind} without a message id and peer")
            yield event


class NoLog:
    """Stands in for an EventLog when nothing is to be logged (benchmarks)."""

    def send(self, msg: str, peer: str, ctl: bool = False):
        pass

    def recv(self, msg: str, peer: str, ctl: bool = False):
        pass

    def snapshot(self, first: int, last: int, trigger: str):
        pass

    def close(self):
        pass

    def __enter__(self) -> "NoLog":
        return self

    def __exit__(self, *exc):
        pass
