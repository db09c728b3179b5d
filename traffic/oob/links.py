"""The controller's side of the out-of-band protocol (protocol.py): one link per
in-group process, and the check that a snapshot's channel state is whole.

Each link owns a TCP connection and a thread that serves its requests, so a
slow or dead process delays only its own answers.  The requests that queue
while an exchange is outstanding go out together: one exchange per op, its
IDs in the order asked (oob.MAX_IDS at most in all); a run of IDs asked by
distinct state (traffic/oob/cuts.py) is an exchange of its own.  Every ID's
answer (a run's cuts), or the reason there is none, goes to the callback
given at construction, with its whole local state: each request names as its "base" the newest state
the link holds from this connection, the process sends what changed since
(traffic/oob/deltas.py; a run's cuts, each from the one before), and the link
rebuilds the state before anyone sees it.
"""
from __future__ import annotations

import logging
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable

from beaver.p4src.ids import is_newer

from beaver.traffic.oob import cuts as by_cut
from beaver.traffic.oob import protocol as oob
from beaver.control.config import ProcessConfig
from beaver.traffic.oob.cuts import Cut
from beaver.traffic.oob.protocol import Report

log = logging.getLogger(__name__)


class ProcessFailed(Exception):
    """No usable answer from a process: unreachable, closed, timed out or refused."""


@dataclass(frozen=True)
class Answered:
    process: str
    token: Any                           # what the asker passed along
    report: Report | None                # None when the request failed, or for a run
    error: ProcessFailed | None = None
    cuts: list[Cut] | None = None        # a run's answer: its IDs by distinct state


class ProcessLink:
    def __init__(self, process: ProcessConfig, timeout: float,
                 on_answer: Callable[[Answered], None]):
        self.process = process
        self.timeout = timeout
        self._on_answer = on_answer
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._sock: socket.socket | None = None
        self._held: tuple[int, Any] | None = None   # (ID, local state) reported on _sock
        self._closing = False   # the serving thread took close()'s None
        self._thread = threading.Thread(target=self._serve, name=f"oob-{process.name}",
                                        daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.process.name

    def ask(self, op: str, snapshot_id: int, token: Any):
        """Queues {"op": op, "id": snapshot_id}; op is "snapshot" or "report".
        Asked while an exchange is outstanding, it goes out with the others
        of its op that queued meanwhile."""
        self._requests.put((op, snapshot_id, token))

    def ask_run(self, op: str, first: int, count: int, token: Any):
        """Queues the run first .. first + count - 1, answered by distinct
        state in one exchange of its own."""
        self._requests.put(((op, count), first, token))

    def close(self):
        self._requests.put(None)
        self._thread.join(self.timeout + 1)

    def _serve(self):
        while not self._closing:
            for op, asked in self._by_op(self._take_queued()).items():
                if isinstance(op, tuple):
                    for first, token in asked:
                        self._serve_run(*op, first, token)
                else:
                    self._serve_op(op, asked)
        self._disconnect()

    def _serve_run(self, op: str, count: int, first: int, token: Any):
        where = f"{self.name} ({self.process.host}:{self.process.port})"
        try:
            answer = self._ask({"v": oob.VERSION, "op": op, "first": first, "count": count})
            cuts = by_cut.decode(answer, first, count, self._held)
            self._hold([c.answer for c in cuts])
        except (OSError, oob.ProtocolError) as e:
            self._on_answer(Answered(self.name, token, None, self._failed(where, e)))
            return
        self._on_answer(Answered(self.name, token, None, cuts=cuts))

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """One exchange on this link's connection (made if need be), from the
        state held as its base."""
        if self._sock is None:
            self._sock = socket.create_connection((self.process.host, self.process.port),
                                                  timeout=self.timeout)
        if self._held is not None:
            request["base"] = self._held[0]
        return oob.request(self._sock, request)

    def _failed(self, where: str, e: Exception) -> ProcessFailed:
        self._disconnect()   # the stream may be out of step; start afresh
        what = "timed out" if isinstance(e, socket.timeout) else str(e) or type(e).__name__
        return ProcessFailed(f"{where}: {what}")

    def _take_queued(self) -> list[tuple[str, int, Any]]:
        """The next request (waiting for it), then every one already queued."""
        batch = []
        request = self._requests.get()
        while request is not None:
            batch.append(request)
            if len(batch) == oob.MAX_IDS:
                return batch
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return batch
        self._closing = True
        return batch

    @staticmethod
    def _by_op(batch) -> dict[str, list[tuple[int, Any]]]:
        asked = {}
        for op, snapshot_id, token in batch:
            asked.setdefault(op, []).append((snapshot_id, token))
        return asked

    def _serve_op(self, op: str, asked: list[tuple[int, Any]]):
        try:
            answers = self._exchange(op, [snapshot_id for snapshot_id, _ in asked])
        except ProcessFailed as e:
            answers = [e] * len(asked)
        for (_, token), answer in zip(asked, answers):
            if isinstance(answer, ProcessFailed):
                self._on_answer(Answered(self.name, token, None, answer))
            else:
                self._on_answer(Answered(self.name, token, answer))

    def _exchange(self, op: str, ids: list[int]) -> list[Report | ProcessFailed]:
        """One request for ids (the single-ID form for one): each ID's report,
        or why it has none.  ProcessFailed when the exchange itself failed."""
        where = f"{self.name} ({self.process.host}:{self.process.port})"
        request = ({"v": oob.VERSION, "op": op, "id": ids[0]} if len(ids) == 1
                   else {"v": oob.VERSION, "op": op, "ids": ids})
        try:
            answer = self._ask(request)
            if len(ids) == 1:
                answers = [Report.from_message(answer)]
            else:
                answers = [ProcessFailed(f"{where}: process refused {op!r}: {entry.get('error')}")
                           if isinstance(entry, dict) and entry.get("op") == "error"
                           else Report.from_message(entry) for entry in _entries(answer, ids)]
            answers = [a.rebuilt(self._held) if isinstance(a, Report) else a for a in answers]
            self._hold(answers)
        except (OSError, oob.ProtocolError) as e:
            raise self._failed(where, e) from None
        return [ProcessFailed(f"{self.name}: asked for {snapshot_id}, "
                              f"reported {answer.snapshot_id}")
                if isinstance(answer, Report) and answer.snapshot_id != snapshot_id else answer
                for snapshot_id, answer in zip(ids, answers)]

    def _hold(self, answers: list):
        """Keeps the newest state answered, the next request's base."""
        for answer in answers:
            if isinstance(answer, Report) and answer.taken and (
                    self._held is None or is_newer(answer.snapshot_id, self._held[0])):
                self._held = (answer.snapshot_id, answer.local_state)

    def _disconnect(self):
        """Also forgets the state held: only this connection's process had it."""
        self._held = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _entries(answer: dict[str, Any], ids: list[int]) -> list[Any]:
    """The per-ID answers of a "reports" answer to a request for ids."""
    entries = answer.get("reports")
    if answer.get("op") != "reports" or not isinstance(entries, list):
        raise oob.ProtocolError(f"expected op 'reports', got {answer.get('op')!r}")
    if len(entries) != len(ids):
        raise oob.ProtocolError(f"asked for {len(ids)} IDs, answered {len(entries)}")
    return entries


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
