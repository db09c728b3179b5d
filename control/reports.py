"""The controller's side of the out-of-band protocol (oob.py): one link per
in-group process, and the check that a snapshot's channel state is whole.

Each link owns a TCP connection and a thread that serves its requests in
order, so a slow or dead process delays only its own answers.  Every answer,
or the reason there is none, goes to the callback given at construction.
"""
from __future__ import annotations

import logging
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable

from . import oob
from .config import ProcessConfig
from .oob import Report

log = logging.getLogger(__name__)


class ProcessFailed(Exception):
    """No usable answer from a process: unreachable, closed, timed out or refused."""


@dataclass(frozen=True)
class Answered:
    process: str
    token: Any                           # what the asker passed along
    report: Report | None                # None when the request failed
    error: ProcessFailed | None = None


class ProcessLink:
    def __init__(self, process: ProcessConfig, timeout: float,
                 on_answer: Callable[[Answered], None]):
        self.process = process
        self.timeout = timeout
        self._on_answer = on_answer
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, name=f"oob-{process.name}",
                                        daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.process.name

    def ask(self, op: str, snapshot_id: int, token: Any):
        """Queues {"op": op, "id": snapshot_id}; op is "snapshot" or "report"."""
        self._requests.put((op, snapshot_id, token))

    def close(self):
        self._requests.put(None)
        self._thread.join(self.timeout + 1)

    def _serve(self):
        while (request := self._requests.get()) is not None:
            op, snapshot_id, token = request
            try:
                report = self._exchange(op, snapshot_id)
            except ProcessFailed as e:
                self._on_answer(Answered(self.name, token, None, e))
            else:
                self._on_answer(Answered(self.name, token, report))
        self._disconnect()

    def _exchange(self, op: str, snapshot_id: int) -> Report:
        try:
            if self._sock is None:
                self._sock = socket.create_connection((self.process.host, self.process.port),
                                                      timeout=self.timeout)
            answer = oob.request(self._sock, {"v": oob.VERSION, "op": op, "id": snapshot_id})
            report = Report.from_message(answer)
        except (OSError, oob.ProtocolError) as e:
            self._disconnect()   # the stream may be out of step; start afresh
            what = "timed out" if isinstance(e, socket.timeout) else str(e) or type(e).__name__
            raise ProcessFailed(f"{self.name} ({self.process.host}:{self.process.port}): "
                                f"{what}") from None
        if report.snapshot_id != snapshot_id:
            raise ProcessFailed(f"{self.name}: asked for {snapshot_id}, "
                                f"reported {report.snapshot_id}")
        return report

    def _disconnect(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass(frozen=True)
class ChannelGap:
    """sender -> receiver: `recorded` of the `expected` pre-cut messages are accounted."""
    sender: str
    receiver: str
    recorded: int
    expected: int

    @property
    def impossible(self) -> bool:
        """More messages recorded than the sender sent before its cut: the
        receiver handled a post-cut message before its own snapshot."""
        return self.recorded > self.expected

    def __str__(self):
        return (f"channel {self.sender}->{self.receiver}: {self.recorded} of "
                f"{self.expected} pre-cut messages recorded")


def strangers(reports: dict[str, Report]) -> list[str]:
    """Senders on some report's channels that did not report: processes the
    configuration does not list, whose state the snapshot would lack."""
    return sorted({sender for report in reports.values() for sender in report.channels
                   if sender not in reports})


def channel_gaps(reports: dict[str, Report]) -> list[ChannelGap]:
    """Channels between reporting processes whose state is not exactly whole:
    the receiver's received_before + in_flight must equal the sender's
    sent_before, on every channel either end lists (an end that lists
    nothing counts as 0).  Senders that did not report are `strangers`,
    judged by the caller."""
    gaps = []
    pairs = {(sender, receiver) for receiver, report in reports.items()
             for sender in report.channels if sender in reports}
    pairs |= {(sender, receiver) for sender, report in reports.items()
              for receiver in report.channels if receiver in reports}
    for sender, receiver in sorted(pairs):
        sent = reports[sender].channels.get(receiver)
        got = reports[receiver].channels.get(sender)
        expected = sent.sent_before if sent is not None else 0
        recorded = got.received_before + len(got.in_flight) if got is not None else 0
        if recorded != expected:
            gaps.append(ChannelGap(sender, receiver, recorded, expected))
    return gaps
