"""What both in-group runtimes (udp.py over UDP, tcp.py over
TCP) do once their transport delivered a message: the snapshot rule on a
peer's stamp, the channel counts, delivery to the application, the counts
of its local snapshots it sends its peers, and the controller's out-of-band answers;
and what a process restored from a snapshot does (restore.py): it holds,
then on the controller's resume replays the messages in flight to it.

A runtime mixes this in and provides `_send_stamped(peer, kind, seq, body,
message_id, counted_from=None)` (sends a JSON body stamped with the current
ID, and logs it),
`_start_loops()` (what serve() starts receiving with, and _count_loop
where _counts_by_timer()) and the attributes name, mode, snapshots, drops, _peers,
_window, _count_interval, _oob, _lock, _stopped, _log and _number.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from beaver.p4src.ids import ID_SPACE
from beaver.traffic.oob import protocol as oob

from beaver.traffic.oob import answers as oob_answers
from beaver.traffic.runtime.datagrams import (Address, DatagramError, PeerHeader, PeerKind,
                                              address_text, count_body)
from beaver.traffic.messages import Message, MessageError, decode, encode, message_id
from beaver.traffic.runtime.snapshots import Mode, Snapshots, Taken

if TYPE_CHECKING:   # restore.py reads the controller's store: only a restored process needs it
    from beaver.traffic.runtime.restore import Restore

log = logging.getLogger(__name__)

# Seconds a peer waits at most for the count of the local snapshots this
# process recorded since it last counted to it: the next APP message to the
# peer carries it (APP_COUNTED), or after this long a COUNT.  Nothing is
# judged on counts (the controller adds up every channel from both ends'
# reports); they only let a process know its own finished_id, so a COUNT a
# snapshot would be waste.
COUNT_INTERVAL = 0.1


class PeerHandling:
    _restore: Restore | None = None        # the snapshot this process was restored from
    _replayed: dict[str, int] | None = None   # per peer, once resumed (None: holding)
    _replay_ms = 0.0

    def _peer_message(self, peer: PeerHeader, stamp: int, payload: bytes, source: Address):
        """A peer's APP, APP_COUNTED or COUNT message, stamped with the sender's ID."""
        if self._peers.get(peer.sender) != source[0]:
            raise DatagramError("unknown peer", f"{peer.sender!r} from {source[0]} "
                                                "is not a peer at its address")
        message = decode(payload)
        if peer.kind is PeerKind.COUNT:
            first, sent_before = message.get("first"), message.get("sent_before")
            if not (type(first) is int and 0 <= first < ID_SPACE
                    and type(sent_before) is int and sent_before >= 0):
                raise MessageError(f"COUNT without a snapshot ID first and a count "
                                   f"sent_before: {message}")
        with self._lock:
            if self.snapshots and (taken := self.snapshots.stamp(stamp)):
                self._took(taken)
            if peer.kind is PeerKind.COUNT:
                self._log.recv(message["id"], peer.sender, ctl=True)
                if self.snapshots:
                    self.snapshots.count_from(peer.sender, first, stamp, sent_before)
                return
            self._log.recv(message["id"], peer.sender)
            if self.snapshots:
                if peer.counted_from is not None:   # seq - 1 were sent before counted_from..stamp
                    self.snapshots.count_from(peer.sender, peer.counted_from, stamp, peer.seq - 1)
                self.snapshots.received_from(peer.sender, stamp, peer.seq, message)
            self._deliver(self._app.on_peer, message, peer.sender)

    def _deliver(self, handler: Callable[[Message, Any], None], message: Message, source: Any):
        try:
            handler(message, source)
        except MessageError as e:   # the application's own rules: counted, one line
            self.drops[e.reason] += 1
            sender = address_text(source.address) if hasattr(source, "address") else source
            log.warning("%s: the application refused %s from %s: %s", self.name,
                        message["id"], sender, e)
        except Exception:   # counted and logged: one bad message must not stop the process
            self.drops["app error"] += 1
            log.exception("%s: the application failed on %r", self.name, message)

    def _took(self, taken: Taken | None):
        """Logs a local snapshot just recorded; its channel counts go to each
        peer with the next APP message or COUNT (at once if the interval is
        0)."""
        if taken is None:
            return
        self._log.snapshot(taken.first, taken.last, taken.trigger)
        if self.snapshots.records_channels:
            for peer in self._peers:
                self._uncounted.setdefault(peer, taken.first)
            if not self._counts_wait:
                self._send_counts()

    def _send_counts(self):
        """Sends each peer with IDs recorded since it was last counted to
        one COUNT for all of them: no APP message went to it since (it
        would have counted them), so one sent_before holds for each.  Under
        the lock."""
        while self._uncounted:
            peer, first = self._uncounted.popitem()
            count_id = self._new_id()
            self._send_stamped(peer, PeerKind.COUNT, 0,
                               count_body(first, self.snapshots.sent[peer], count_id), count_id)

    def _send_app(self, peer: str, message: Message):
        """An APP message to peer, which counts the IDs recorded since peer
        was last counted to (APP_COUNTED: it is the first message sent after
        them, so seq - 1 were sent before each).  Sets message["id"].  Under
        the lock."""
        message["id"] = self._new_id()
        if not self.snapshots:
            return self._send_stamped(peer, PeerKind.APP, 0, encode(message), message["id"])
        seq, counted_from = self.snapshots.sent_to(peer), self._uncounted.pop(peer, None)
        self._send_stamped(peer, PeerKind.APP if counted_from is None else PeerKind.APP_COUNTED,
                           seq, encode(message), message["id"], counted_from)

    def _count_loop(self):
        while not self._stopped.wait(self._count_interval):
            with self._lock:
                self._send_counts()

    @property
    def _counts_wait(self) -> bool:
        """Whether counts wait for the next APP message or the interval:
        Beaver's do.  Lai-Yang's COUNTs go at once, as published: they
        carry the snapshot to the peers (the baseline the experiments run)."""
        return self.mode is Mode.BEAVER and self._count_interval > 0

    def _counts_by_timer(self) -> bool:
        """Whether a thread sends the counts that waited, every interval."""
        return bool(self.snapshots and self._peers and self._counts_wait)

    def _new_id(self) -> str:
        self._number += 1
        return message_id(self.name, self._number)

    def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        if op == "resume":
            return self._resume(bool(message.get("state")))
        if op in ("snapshot", "report") and self._holding:
            raise oob.ProtocolError(f"{self.name} is restoring snapshot {self._restore.number} "
                                    "and has not been resumed")
        answer = oob_answers.answer(message, self.name, self.snapshots, self._lock, self.drops,
                                    self._took)
        if op == "status" and self._restore is not None:
            answer["restored"] = self._restored()
        return answer

    def _drop(self, reason: str, error: Exception, source: Address, trace: bool = False):
        """Counts what was refused by reason, under the lock (the OOB server's
        threads count here too); logs the first few of each, with the
        traceback if trace (an error no check foresaw)."""
        with self._lock:
            self.drops[reason] += 1
            count = self.drops[reason]
        if count & (count - 1) == 0:   # the 1st, 2nd, 4th, 8th, ... of each reason
            log.warning("%s: dropped what %s sent (%s: %s; %d so far)", self.name,
                        address_text(source), reason, error, count,
                        exc_info=error if trace else None)

    # Restoring.

    def serve(self, app, restore: Restore | None = None):
        """Starts delivering to app: the receive loops, the OOB server, the
        poll timer.  Restored: app takes the snapshot's state now, and the
        loops start when the controller resumes this process; what arrives
        meanwhile waits in the sockets (or the listeners' backlogs)."""
        self._app = app
        self._uncounted: dict[str, int] = {}   # per peer: the oldest ID not yet counted to it
        if self.mode is not Mode.OFF:
            self.snapshots = Snapshots(self.name, self._peers, self.mode, app.local_state,
                                       self._window)
        if restore is None:
            self._start_loops()
        else:
            self._serve_restored(app, restore)
        self._oob.start()

    @property
    def _holding(self) -> bool:
        return self._restore is not None and self._replayed is None

    def _serve_restored(self, app, restore: Restore):
        """serve() from a snapshot: its state at once (RestoreRefused if app
        cannot take it), the replay and the loops when resumed."""
        restore.check(app)
        app.restore(restore.state)
        if self.snapshots:
            self.snapshots.restart_at(restore.resume_id)
        # Message ids must not repeat an earlier incarnation's: numbered from
        # the clock in microseconds, which no process outsends.
        self._number = time.time_ns() // 1000
        self._restore = restore

    def _resume(self, with_state: bool) -> dict[str, Any]:
        """Delivers the messages in flight to this process at the cut, once
        (a second resume replays nothing), then starts receiving."""
        if self._restore is None:
            raise oob.ProtocolError(f"{self.name} was not restored: there is nothing to resume")
        with self._lock:
            if self._replayed is None:
                started = time.monotonic()
                replayed: dict[str, int] = {}
                for sender, message in self._restore.replay():
                    self._log.recv(message["id"], sender)
                    self._deliver(self._app.on_peer, message, sender)
                    replayed[sender] = replayed.get(sender, 0) + 1
                self._replay_ms = (time.monotonic() - started) * 1000
                self._replayed = replayed
                self._start_loops()
            state = self._app.local_state() if with_state else None
        answer = {"v": oob.VERSION, "op": "resumed", **self._restored()}
        if with_state:
            answer["state"] = state
        return answer

    def _restored(self) -> dict[str, Any]:
        r = self._restore
        return {"process": self.name, "snapshot": r.number, "outcome": r.outcome.value,
                "forced": r.forced, "resume_id": r.resume_id, "held": self._holding,
                "in_flight": {peer: len(items) for peer, items in r.in_flight.items()},
                "replayed": dict(self._replayed or {}),
                "load_ms": round(r.load_ms, 3),
                "replay_ms": None if self._holding else round(self._replay_ms, 3)}
