"""The in-group processes' reports of an accepted snapshot.

After every SLB acknowledged (and the rule accepted), each in-group process
is asked out of band for its report (local state, channel state); the
channel state must add up (traffic/oob/links.py's channel_gaps) before the snapshot is
accepted: while a channel is short its receiver is asked again, until the
report timeout.  Polling initiates nothing: it only asks for what the
processes' timers took.

The snapshots a batch's schedules accepted are asked as runs of
consecutive IDs (ReportRun), answered by distinct state (traffic/oob/cuts.py):
the run is judged once per stretch over which no process's state changes,
and each process's report is kept once per stretch of its own (the
batch's `reports`).  A number any stretch leaves without every process's
whole state is no longer the batch's: it is finished on its own, rejected
or incomplete.
"""
from __future__ import annotations

import bisect
from functools import partial
from typing import Sequence

from beaver.control.config import ProcessConfig
from beaver.control.engine.calls import EngineCalls
from beaver.control.engine.flight import BatchFlight, Flight, ReportRun
from beaver.control.engine.loop import Loop
from beaver.control.engine.record import Mode, Outcome, ReportRange, Verdict
from beaver.control.engine.window import wire_id
from beaver.control.engine.settings import RunSettings
from beaver.control.slbs.requests import now_us
from beaver.traffic.oob.cuts import Cut
from beaver.traffic.oob.links import Answered, ProcessLink, channel_gaps, strangers
from beaver.traffic.oob.protocol import Report

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

    def ask_run(self, batch: BatchFlight, first: int, count: int):
        """The batch's snapshots first .. first + count - 1 were accepted by
        its schedules: ask every process for them, by distinct state."""
        run = ReportRun(batch, first, count)
        batch.runs.add(run)
        run.waiting = {link.name for link in self.links}
        for link in self.links:
            self.loop.later(link.name, partial(link.ask_run, "snapshot", wire_id(first),
                                               count, run))
        self.asked += len(self.links)
        self.loop.at(now_us() + self.loop.most_delay(run.waiting) +
                     int(self.settings.report_timeout_ms * 1000),
                     partial(self._run_overdue, run))

    def _reported(self, answered: Answered):
        """On a link's thread."""
        self.loop.put((REPORT, answered.token, answered))

    def on_report(self, flight: Flight | ReportRun, answered: Answered):
        if isinstance(flight, ReportRun):
            return self._on_run(flight, answered)
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

    # -- a batch's runs -----------------------------------------------------------

    def _on_run(self, run: ReportRun, answered: Answered):
        if run.done:
            return
        if answered.error is not None:
            return self._finish_run(run, [(0, run.count, Verdict(Outcome.INCOMPLETE,
                                                                 str(answered.error)))])
        run.cuts[answered.process] = answered.cuts
        run.waiting.discard(answered.process)
        if not run.waiting:
            self._judge_run(run, final=False)

    def _judge_run(self, run: ReportRun, final: bool):
        """Each stretch judged as one snapshot is (on_report, _check_channels);
        while some are short their receivers are asked again, until final."""
        judged, short = [], set()
        for start, stop, reports in _stretches(run):
            verdict, receivers = _judge_stretch(reports, run.first + start)
            if receivers and not final:
                short |= receivers
            judged.append((start, stop, verdict))
        if short:
            run.waiting = set(short)
            return self.loop.at(now_us() + POLL_INTERVAL_US, partial(self._poll_run, run, short))
        self._finish_run(run, judged, run.cuts)

    def _poll_run(self, run: ReportRun, receivers: set[str]):
        if run.done:
            return
        for link in self.links:
            if link.name in receivers:
                link.ask_run("report", wire_id(run.first), run.count, run)
                self.asked += 1
                self.reasked += 1

    def _run_overdue(self, run: ReportRun):
        if run.done:
            return
        missing = sorted({link.name for link in self.links} - set(run.cuts))
        if missing:
            within = f"within {self.settings.report_timeout_ms:g} ms"
            return self._finish_run(run, [(0, run.count, Verdict(
                Outcome.INCOMPLETE, f"no report from {', '.join(missing)} {within}"))])
        self._judge_run(run, final=True)

    def _finish_run(self, run: ReportRun, judged: list[tuple[int, int, Verdict | None]],
                    cuts: dict[str, list[Cut]] | None = None):
        """judged: (start, stop, verdict) by offset from run.first; None keeps
        the batch's verdict, with every process's report kept once per cut."""
        run.done = True
        record = run.batch.record
        cuts = cuts or {}
        kept: dict[str, list[tuple[int, int, Cut]]] = {}   # (first, last, its cut) by process
        for start, stop, verdict in judged:
            first, last = run.first + start, run.first + stop - 1
            if verdict is not None:
                for number in range(first, last + 1):
                    record.singles[number] = self._single(record, number, verdict, cuts,
                                                          run.first)
                continue
            for process, process_cuts in cuts.items():
                cut = _cut_at(process_cuts, start)
                ranges = kept.setdefault(process, [])
                if ranges and ranges[-1][1] == first - 1 and ranges[-1][2] is cut:
                    ranges[-1] = (ranges[-1][0], last, cut)
                else:
                    ranges.append((first, last, cut))
        for process, ranges in kept.items():
            record.reports.setdefault(process, []).extend(
                ReportRange(first, last, cut.report_of(wire_id(first)))
                for first, last, cut in ranges)
            record.reports[process].sort(key=lambda r: r.first)
        run.batch.runs.discard(run)
        if run.batch.settled():
            self.engine.finish_batch(run.batch)

    @staticmethod
    def _single(record, number: int, verdict: Verdict, cuts: dict[str, list[Cut]],
                run_first: int):
        """Snapshot number, no longer the batch's: its own verdict, with the
        reports that came."""
        single = record.record(number)
        single.verdict = verdict
        single.reports = {}
        for process, process_cuts in cuts.items():
            report = _cut_at(process_cuts, number - run_first).report_of(wire_id(number))
            if isinstance(report, Report):
                single.reports[process] = report
        return single

    def abandon(self, batch: BatchFlight, verdict: Verdict):
        """The run ends before these reports came: none of them is accepted."""
        for run in list(batch.runs):
            self._finish_run(run, [(0, run.count, verdict)])


def _cut_at(cuts: list[Cut], offset: int) -> Cut:
    """The cut that holds the ID offset from the run's first."""
    return cuts[bisect.bisect_right(_offsets(cuts), offset) - 1]


def _offsets(cuts: list[Cut]) -> list[int]:
    """Where each cut starts, as an offset from the run's first ID."""
    starts, at = [], 0
    for cut in cuts:
        starts.append(at)
        at += cut.count
    return starts


def _stretches(run: ReportRun):
    """(start, stop, {process: report or error}) for each stretch of the run
    over which no process's answer changes, by offset from run.first."""
    starts = {process: _offsets(cuts) for process, cuts in run.cuts.items()}
    bounds = sorted({0, *(s for offsets in starts.values() for s in offsets)})
    for start, stop in zip(bounds, bounds[1:] + [run.count]):
        yield start, stop, {process: run.cuts[process][bisect.bisect_right(offsets, start) - 1]
                            .report_of(wire_id(run.first + start))
                            for process, offsets in starts.items()}


def _judge_stretch(reports: dict[str, Report | str], number: int
                   ) -> tuple[Verdict | None, set[str]]:
    """A stretch's verdict (None: accepted with its reports), and the
    receivers whose channel state is still short."""
    for process, report in sorted(reports.items()):
        if isinstance(report, str):
            return Verdict(Outcome.INCOMPLETE, f"{process}: {report}"), set()
        if not report.taken:
            return Verdict(Outcome.INCOMPLETE, f"{process} has not taken snapshot "
                                               f"{wire_id(number)}"), set()
    if unknown := strangers(reports):
        return Verdict(Outcome.REJECTED, f"channel state from {', '.join(unknown)}, which is "
                       "no configured process: its state is not in the snapshot",
                       "channels"), set()
    gaps = channel_gaps(reports)
    if impossible := [g for g in gaps if g.impossible]:
        return Verdict(Outcome.REJECTED, f"inconsistent cut: {impossible[0]}", "channels"), set()
    if gaps:
        return Verdict(Outcome.INCOMPLETE, f"{gaps[0]} within the report timeout"), \
            {g.receiver for g in gaps}
    return None, set()
