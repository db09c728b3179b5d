"""The in-group processes' reports of an accepted snapshot.

After every SLB acknowledged (and the rule accepted), each in-group process
is asked out of band for its report (local state, channel state); the
channel state must add up (traffic/oob/links.py's channel_gaps) before the snapshot is
accepted: while a channel is short its receiver is asked again, until the
report timeout.  Polling initiates nothing: it only asks for what the
processes' timers took.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

from beaver.control.config import ProcessConfig
from beaver.control.engine.calls import EngineCalls
from beaver.control.engine.flight import Flight
from beaver.control.engine.loop import Loop
from beaver.control.engine.record import Mode, Outcome, Verdict
from beaver.control.engine.settings import RunSettings
from beaver.control.slbs.requests import now_us
from beaver.traffic.oob.links import Answered, ProcessLink, channel_gaps, strangers

REPORT = "report"
POLL_INTERVAL_US = 10_000  # re-asking for reports whose channel state is not whole yet


class Reports:
    def __init__(self, engine: EngineCalls, loop: Loop, settings: RunSettings,
                 processes: Sequence[ProcessConfig]):
        self.engine = engine
        self.loop = loop
        self.settings = settings
        timeout = settings.report_timeout_ms / 1000
        self.links = [ProcessLink(p, timeout, self._reported) for p in processes]
        self.asked = self.reasked = 0    # requests, and of them re-asks (the run's summary)

    def close(self):
        for link in self.links:
            link.close()

    def ask(self, flight: Flight):
        """Every SLB answered and the rule accepted: ask every process."""
        flight.phase = None
        flight.waiting = {link.name for link in self.links}
        op = "report" if flight.record.mode is Mode.POLLING else "snapshot"
        for link in self.links:
            self.loop.later(link.name, partial(link.ask, op, flight.record.snapshot_id, flight))
        self.asked += len(self.links)
        self.loop.at(now_us() + self.loop.most_delay(flight.waiting) +
                     int(self.settings.report_timeout_ms * 1000),
                     partial(self._overdue, flight))

    def _reported(self, answered: Answered):
        """On a link's thread."""
        self.loop.put((REPORT, answered.token, answered))

    def on_report(self, flight: Flight, answered: Answered):
        if flight.done:
            return
        if answered.error is not None:
            return self.engine.fail(flight, str(answered.error))
        report = answered.report
        if not report.taken and flight.record.mode is Mode.POLLING:
            return self.loop.at(now_us() + POLL_INTERVAL_US,   # its timer has not fired yet
                                partial(self._poll, flight, {answered.process}))
        if not report.taken:
            return self.engine.fail(flight, f"{answered.process} has not taken snapshot "
                                            f"{flight.record.snapshot_id}")
        flight.record.reports[answered.process] = report
        flight.waiting.discard(answered.process)
        if not flight.waiting:
            self._check_channels(flight)

    def _check_channels(self, flight: Flight):
        if unknown := strangers(flight.record.reports):
            return self.engine.finish(flight, Verdict(
                Outcome.REJECTED, f"channel state from {', '.join(unknown)}, which is no "
                "configured process: its state is not in the snapshot", "channels"))
        gaps = channel_gaps(flight.record.reports)
        impossible = [g for g in gaps if g.impossible]
        if impossible:
            return self.engine.finish(flight, Verdict(
                Outcome.REJECTED, f"inconsistent cut: {impossible[0]}", "channels"))
        if not gaps:
            return self.engine.finish(flight, flight.verdict)
        receivers = {g.receiver for g in gaps}
        flight.waiting = set(receivers)
        self.loop.at(now_us() + POLL_INTERVAL_US, partial(self._poll, flight, receivers))

    def _poll(self, flight: Flight, receivers: set[str]):
        if flight.done:
            return
        for link in self.links:
            if link.name in receivers:
                link.ask("report", flight.record.snapshot_id, flight)
                self.asked += 1
                self.reasked += 1

    def _overdue(self, flight: Flight):
        if flight.done:
            return
        gaps = channel_gaps(flight.record.reports)
        missing = sorted({link.name for link in self.links} - set(flight.record.reports))
        if missing:
            reason = f"no report from {', '.join(missing)}"
        else:
            reason = f"{gaps[0]}" if gaps else "reports incomplete"
        self.engine.fail(flight, f"{reason} within {self.settings.report_timeout_ms:g} ms")
