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
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from beaver.p4src.ids import ID_SPACE
from beaver.traffic.boundedjson import JsonError, loads

FORMAT = "beaver-events"
VERSION = 1
EVENT_KINDS = ("send", "recv", "snapshot", "end")
MAX_LINE = 1 << 16   # bytes; a record is far shorter: message ids are bounded (messages.py)
MAX_DEPTH = 4        # records are flat objects


class LogError(ValueError):
    """A log file that is not an event log of this format."""


class EventLog:
    """Appends events to a file; safe to share between threads.  Use it as a
    context manager (or call close) so that it ends with its closing record."""

    def __init__(self, path: str | Path, process: str, in_group: bool, mode: str | None = None):
        self._file = open(path, "w", buffering=1 << 16)
        self._lock = threading.Lock()
        self._seq = 0
        self._write({"log": FORMAT, "version": VERSION, "process": process,
                     "in_group": in_group, "mode": mode})
        self._file.flush()   # even a killed process's log names it: the checker counts it short

    def _write(self, record: dict[str, Any]):
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def _event(self, record: dict[str, Any]):
        with self._lock:
            if self._file.closed:   # a straggling thread: the log has said it ended
                return
            self._seq += 1
            self._write({"seq": self._seq, "t_us": time.time_ns() // 1000, **record})

    def send(self, msg: str, peer: str, ctl: bool = False):
        self._event({"kind": "send", "msg": msg, "peer": peer, **({"ctl": True} if ctl else {})})

    def recv(self, msg: str, peer: str, ctl: bool = False):
        self._event({"kind": "recv", "msg": msg, "peer": peer, **({"ctl": True} if ctl else {})})

    def snapshot(self, first: int, last: int, trigger: str):
        self._event({"kind": "snapshot", "first": first, "last": last, "trigger": trigger})

    def close(self):
        """Writes the closing record and flushes; closing again does nothing."""
        self._event({"kind": "end"})
        with self._lock:
            self._file.close()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc):
        self.close()


def read_log(path: str | Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The log's header line and an iterator over its events (checked as read),
    the closing "end" record included if the log has it.  A torn last line
    (no newline: the process died mid-write) ends the events."""
    lines = open(path, "rb")
    try:
        header = loads(lines.readline(MAX_LINE), MAX_DEPTH)
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
