"""Answers of real BMv2 switches, recorded during engine runs and replayed
through the engine where no switch runs (CI on a new machine).

A recording is what the engine sent each SLB and what came back, exactly as
the switch answered: every request (op, ID, flags, activation time), and its
answer or its absence (a lost packet), with the clock estimate in force when
the answer arrived, plus each switch's restarts.  These are recordings of
the real switch, not a model of it: the replay answers only requests the
recording holds, in the recorded order, and any other request is a mismatch
that fails the test.  Files live in tests/support/recordings/, each labelled with
the switch build and the date it was recorded.

    Recorder(controller)        wraps a live controller's slbs
    replay(recording, ...)      runs the engine against the recording
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import defaultdict, deque
from datetime import datetime, timezone
from pathlib import Path

from beaver.control.slbs.clock import Estimate
from beaver.control.engine.engine import Engine, RunSettings
from beaver.control.engine.record import Mode
from beaver.control.slbs.requests import Answer
from beaver.control.engine.timing import round_trips
from beaver.control.store import SnapshotStore
from beaver.p4src import ids
from beaver.p4src.wire import Batch, ControlBody, Op, Record, Status
from beaver.topologies.bmv2 import bmv2_build

RECORDINGS = Path(__file__).parent / "recordings"


class ReplayMismatch(AssertionError):
    """The engine sent a request the recording does not hold."""


def _answer_json(answer: Answer, estimate: Estimate | None) -> dict:
    out = {"status": answer.status.name, "body": dataclasses.asdict(answer.body),
           "sent_us": answer.sent_us, "received_us": answer.received_us,
           "clock": dataclasses.asdict(estimate) if estimate else None}
    if answer.batch is not None:
        out["batch"] = dataclasses.asdict(answer.batch)
    if answer.records:
        out["records"] = [dataclasses.asdict(r) for r in answer.records]
    return out


def _answer(op: Op, answer: dict) -> Answer:
    batch = answer.get("batch")
    return Answer(op, Status[answer["status"]], ControlBody(**answer["body"]),
                  answer["sent_us"], answer["received_us"],
                  Batch(**batch) if batch is not None else None,
                  tuple(Record(**r) for r in answer.get("records", ())))


def settings_json(settings: RunSettings) -> dict:
    out = dataclasses.asdict(settings)
    out["mode"] = settings.mode.value
    return out


class Recorder:
    """Records every request and answer of a controller's slbs."""

    def __init__(self, controller):
        self.controller = controller
        self.requests: dict[str, list[dict]] = defaultdict(list)
        self._lock = threading.Lock()
        for gw in controller.slbs:
            self._wrap(gw)
        recover = controller.recover

        def recorded_recover(gw, *args, **kwargs):
            with self._lock:   # what went before went to the switch that went away
                self.requests[gw.name].append({"down": True})
            return recover(gw, *args, **kwargs)
        controller.recover = recorded_recover
        self.rtts: list[int] = []
        align = controller.align_clocks

        def recorded_align(*args, **kwargs):
            rtts = align(*args, **kwargs)
            self.rtts = self.rtts or list(rtts)   # the run's first: what sets the lead
            return rtts
        controller.align_clocks = recorded_align

    def _wrap(self, gw):
        send = gw.control.send

        def recorded_send(op, snapshot_id=0, flags=0, callback=None, activate_at=0,
                          batch=b""):
            if callback is None:   # the controller's own requests, not the engine's
                return send(op, snapshot_id, flags, None, activate_at, batch)
            entry = {"op": Op(op).name, "snapshot_id": snapshot_id, "flags": flags,
                     "activate_at": activate_at, "incarnation": gw.incarnation,
                     "answer": None}
            if batch:
                entry["batch"] = dataclasses.asdict(Batch.unpack(batch))
            with self._lock:
                self.requests[gw.name].append(entry)

            def answered(answer):
                entry["answer"] = _answer_json(answer, gw.clock.current)
                callback(answer)
            return send(op, snapshot_id, flags, answered, activate_at, batch)
        gw.control.send = recorded_send

    def save(self, path: Path, label: str, what: str, settings: RunSettings,
             newest_before: int, verdicts: dict[int, tuple[str, str]]):
        data = {"label": label, "what": what,
                "recorded": {"switch": bmv2_build(),
                             "date": datetime.now(timezone.utc).isoformat(timespec="seconds")},
                "settings": settings_json(settings), "newest_before": newest_before,
                "align_rtts": self.rtts, "requests": dict(self.requests),
                "verdicts": {str(n): list(v) for n, v in sorted(verdicts.items())}}
        path.write_text(json.dumps(data, indent=1) + "\n")


def load(name: str) -> dict:
    return json.loads((RECORDINGS / f"{name}.json").read_text())


# -- replaying ---------------------------------------------------------------------

class _Pending:
    def __init__(self, sent_us: int):
        self.sent_us = sent_us

    def cancel(self):
        pass


class _Clock:
    def __init__(self):
        self.current: Estimate | None = None
        self.source = "probe"   # answers already carry their estimates; add no samples

    def add(self, sample):
        pass


class _Session:
    connected = True
    is_primary = True


class _Control:
    """One SLB's recorded answers.  Each life of the switch (the requests
    between two restarts) is answered on its own, a request matched by its
    op and ID in the order recorded; when a life's requests are used up and
    the switch restarted in the recording, its stream closes here too.

    An answer that came back after the engine's deadline, where the
    recording holds the resend that deadline made, comes after that resend
    here too: a timer thread late under load would otherwise hand it to the
    engine before its deadline fired, and the engine, rightly, would not
    resend what is answered."""

    def __init__(self, replay: "_ReplayController", gw: "_Gateway", requests: list[dict]):
        self.replay = replay
        self.gw = gw
        self.lives: list[dict] = [{}]
        for entry in requests:
            if entry.get("down"):
                self.lives.append({})
            else:
                self.lives[-1].setdefault((entry["op"], entry["snapshot_id"]),
                                          deque()).append(entry)
        self.life = 0
        self.outstanding = 0                # answers still to come (the engine's back-pressure)
        self.after_resend: dict[tuple[str, int], list[tuple]] = defaultdict(list)
        self.first_estimates = [next((Estimate(**e["answer"]["clock"]) for q in life.values()
                                      for e in q if e["answer"] and e["answer"]["clock"]),
                                     None) for life in self.lives]
        gw.clock.current = self.first_estimates[0]

    def waiting_us(self, now: int) -> int:
        """Nothing waits on a recording: its answers come as requests go."""
        return 0

    def left(self) -> list:
        return [key for life in self.lives for key, q in life.items() if q]

    def send_batch(self, op, first_id, batch, callback=None, activate_at=0):
        return self.send(op, first_id, 0, callback, activate_at, batch.pack())

    def send(self, op, snapshot_id=0, flags=0, callback=None, activate_at=0, batch=b""):
        if Op(op) in (Op.INIT, Op.INIT_BATCH):
            count = Batch.unpack(batch).count if batch else 1
            self.replay.started(snapshot_id + count - 1)
        key = (Op(op).name, snapshot_id)
        entries = self.lives[self.life].get(key)
        if not entries:
            raise ReplayMismatch(f"{self.gw.name}: {key} was not sent to this life of the "
                                 f"switch (life {self.life}) in the recording")
        entry = entries.popleft()
        if (entry["flags"], entry["activate_at"] != 0) != (flags, activate_at != 0):
            raise ReplayMismatch(f"{self.gw.name}: {key} sent with flags {flags}, "
                                 f"activation {activate_at}; recorded {entry}")
        for late in self.after_resend.pop(key, ()):   # this is its resend
            self._reply(*late)
        answer = entry["answer"]
        if answer is not None:   # after its recorded round trip, as the switch answered
            self.outstanding += 1
            reply = (callback, _answer(Op(op), answer), answer["clock"], time.monotonic())
            if entries and answer["received_us"] - answer["sent_us"] > self.replay.deadline_us:
                self.after_resend[key].append(reply)
            else:
                self._reply(*reply)
        self._closed_if_used_up()
        return _Pending(answer["sent_us"] if answer else 0)

    def _reply(self, callback, answer: Answer, clock: dict | None, sent_s: float):
        """The recorded round trip after the request was sent (at
        time.monotonic() sent_s), as the switch answered."""
        estimate = Estimate(**clock) if clock else None
        delay_s = max(0.0, answer.rtt_us / 1e6 - (time.monotonic() - sent_s))
        self.replay.after_start(answer.body.id_after, delay_s, self._answer,
                                callback, answer, estimate)

    def _closed_if_used_up(self):
        if not any(self.lives[self.life].values()) and self.life + 1 < len(self.lives):
            self.replay.later(0, self.replay.down, self.gw)

    def _answer(self, callback, answer: Answer, estimate: Estimate | None):
        self.outstanding -= 1
        self.gw.clock.current = estimate
        callback(answer)


class _Gateway:
    def __init__(self, replay, name: str, requests: list[dict]):
        self.name = name
        self.session = _Session()
        self.clock = _Clock()
        self.incarnation = 1
        self.control = _Control(replay, self, requests)

    def request(self, op, snapshot_id=0, flags=0, retries=2):
        return None   # only the engine's last-resort RELEASE comes here


class _ReplayController:
    """What the engine needs of an SlbFleet, from a recording."""

    def __init__(self, recording: dict, deadline_us: int):
        self.recording = recording
        self.deadline_us = deadline_us   # the engine's least wait for an answer
        self.slbs = [_Gateway(self, name, requests)
                         for name, requests in sorted(recording["requests"].items())]
        self.on_down = None
        self.round_trips = round_trips()   # none yet: as the live run's new controller
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self._newest = recording["newest_before"]   # the newest ID the engine started
        self._parked: list[tuple] = []              # answers showing an ID not started yet
        self.plain = False   # the recorded SLBs ran Beaver's pipeline

    def started(self, snapshot_id: int):
        with self._lock:
            if ids.is_newer(snapshot_id, self._newest):
                self._newest = snapshot_id
            due = [p for p in self._parked if not ids.is_newer(p[0], self._newest)]
            self._parked = [p for p in self._parked if p not in due]
        for _, delay_s, action, args in due:
            self.later(delay_s, action, *args)

    def after_start(self, id_after: int, delay_s: float, action, *args):
        """Runs action after delay_s, and not before the engine started
        id_after: the live answer came after that INIT left, and the engine
        judges an SLB ahead of every ID it started as forged."""
        with self._lock:
            if ids.is_newer(id_after, self._newest):
                self._parked.append((id_after, delay_s, action, args))
                return
        self.later(delay_s, action, *args)

    def later(self, delay_s: float, action, *args):
        timer = threading.Timer(delay_s, action, args)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def down(self, gw: _Gateway):
        if self.on_down is not None:
            self.on_down(gw, gw.incarnation)

    def require_primary(self):
        pass

    def marking_off(self) -> list[str]:
        return []

    def newest_id(self) -> int:
        return self.recording["newest_before"]

    def align_clocks(self) -> list[int]:
        return list(self.recording["align_rtts"])

    def recover(self, gw: _Gateway, restore_id: int, timeout_s: float):
        gw.incarnation += 1
        gw.control.life += 1
        gw.clock.current = gw.control.first_estimates[gw.control.life]
        return True


def verdicts(records) -> dict[int, tuple[str, str]]:
    return {r.number: (r.verdict.outcome.value, r.verdict.reason) for r in records}


def replay(recording: dict, tmp_path: Path, **changes) -> list:
    """Runs the engine on the recording (settings as recorded, with changes);
    returns the finished SnapshotRecords."""
    settings = dict(recording["settings"])
    settings["mode"] = Mode(settings["mode"])
    settings.update(changes)
    controller = _ReplayController(recording, int(settings["ack_timeout_ms"] * 1000))
    store = SnapshotStore(tmp_path / f"replay-{recording['label']}-{len(changes)}-"
                                     f"{threading.get_ident()}-{id(changes)}.db")
    finished = []
    try:
        Engine(controller, store, RunSettings(**settings), on_finished=finished.append).run()
    finally:
        store.close()
    for gw in controller.slbs:
        if left := gw.control.left():
            raise ReplayMismatch(f"{gw.name}: recorded requests never sent: {left[:5]}")
    return finished
