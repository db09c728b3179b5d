"""control/engine/ingroup.py judges a batch's report run by stretches of
distinct state: every number it keeps in the batch has every process's
report, exactly the one that ID was given, with whole channels; every
other number is finished on its own and never accepted."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from beaver.control.engine.flight import BatchFlight, ReportRun
from beaver.control.engine.ingroup import Reports
from beaver.control.engine.loop import Loop
from beaver.control.engine.record import Outcome
from beaver.control.engine.settings import RunSettings
from beaver.control.engine.record import Mode
from beaver.control.engine.window import wire_id
from beaver.traffic.oob.cuts import Cut
from beaver.traffic.oob.links import Answered, channel_gaps
from beaver.traffic.oob.protocol import ChannelState, Report

from tests.unit.test_store import batch

PROCESSES = ("p1", "p2")


class Engine:
    """What Reports calls back: the batches it finished."""
    def __init__(self):
        self.finished = []

    def finish_batch(self, flight):
        self.finished.append(flight)


def reports() -> tuple[Reports, Engine]:
    engine = Engine()
    return Reports(engine, Loop({}), RunSettings(Mode.OGM), []), engine


def channel(peer_sent: int, received: int, in_flight: int) -> ChannelState:
    return ChannelState(peer_sent, received, [{"id": f"m{i}"} for i in range(in_flight)])


def cut_of(process: str, first: int, count: int, sent: int, received: int, in_flight: int,
           state) -> Cut:
    peer = "p2" if process == "p1" else "p1"
    return Cut(wire_id(first), count, Report(process, wire_id(first), True, "oob", 1, state,
                                             {peer: channel(sent, received, in_flight)}, 99, 0))


# Each process: cuts of random lengths over a run of 12 IDs, each cut with
# random counts (so that some stretches are whole, some short, some impossible)
# or, now and then, an error (IDs no longer kept).
cut_lengths = st.lists(st.integers(1, 5), min_size=1, max_size=6)
channel_counts = st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 2),
                           st.integers(0, 9))


@st.composite
def process_cuts(draw, process: str, first: int, count: int) -> list[Cut]:
    cuts, at = [], first
    while at < first + count:
        size = min(draw(st.integers(1, 5)), first + count - at)
        sent, received, in_flight, error = draw(channel_counts)
        cuts.append(Cut(wire_id(at), size, "not kept") if error == 0 else
                    cut_of(process, at, size, sent, received, in_flight, {"at": at}))
        at += size
    return cuts


def answer_for(cuts: list[Cut], number: int):
    for cut in cuts:
        if wire_id(number) in cut.ids():
            return cut.report_of(wire_id(number))
    raise AssertionError(f"no cut holds {number}")


@settings(max_examples=80, deadline=None, database=None)
@given(st.data())
def test_every_number_kept_has_each_processs_report_and_whole_channels(data):
    owner, engine = reports()
    first, count = 100, 12
    flight = BatchFlight(batch(first, count), 0)
    run = ReportRun(flight, first, count)
    flight.runs.add(run)
    cuts = {p: data.draw(process_cuts(p, first, count)) for p in PROCESSES}
    for process in PROCESSES:
        run.waiting.add(process)
    for process in PROCESSES:
        owner.on_report(run, Answered(process, run, None, cuts=cuts[process]))
    if not run.done:   # short channels: re-asked; the timeout then judges what came
        owner._run_overdue(run)
    assert run.done and engine.finished == [flight]
    record = flight.record
    for number in record.numbers:
        per_id = {p: answer_for(cuts[p], number) for p in PROCESSES}
        whole = (all(isinstance(r, Report) for r in per_id.values())
                 and not channel_gaps(per_id))
        got = record.record(number)
        if number in record.singles:
            assert got.verdict.outcome is not Outcome.ACCEPTED
            assert not whole, f"{number} had every state, whole, yet was not kept"
        else:
            assert whole, f"{number} kept without every process's whole state"
            assert got.verdict.outcome is Outcome.ACCEPTED and got.reports == per_id
    for ranges in record.reports.values():   # each state kept once: no two ranges alike
        assert all(a.last < b.first for a, b in zip(ranges, ranges[1:]))


def test_a_quiet_run_keeps_one_range_per_process():
    owner, _ = reports()
    flight = BatchFlight(batch(1, 255), 0)
    run = ReportRun(flight, 1, 255)
    flight.runs.add(run)
    run.waiting = set(PROCESSES)
    for p in PROCESSES:
        owner.on_report(run, Answered(p, run, None, cuts=[cut_of(p, 1, 255, 4, 4, 0, {})]))
    assert {p: [(r.first, r.last) for r in ranges] for p, ranges in flight.record.reports.items()} \
        == {"p1": [(1, 255)], "p2": [(1, 255)]}
    assert not flight.record.singles


def test_a_failed_process_leaves_no_number_accepted():
    owner, engine = reports()
    flight = BatchFlight(batch(1, 20), 0)
    run = ReportRun(flight, 1, 20)
    flight.runs.add(run)
    run.waiting = set(PROCESSES)
    owner.on_report(run, Answered("p1", run, None, cuts=[cut_of("p1", 1, 20, 0, 0, 0, {})]))
    from beaver.traffic.oob.links import ProcessFailed
    owner.on_report(run, Answered("p2", run, None, ProcessFailed("p2: timed out")))
    assert sorted(flight.record.singles) == list(range(1, 21)) and engine.finished == [flight]
    assert {r.verdict.reason for r in flight.record.singles.values()} == {"p2: timed out"}
    assert flight.record.reports == {}


def test_a_run_abandoned_leaves_no_number_accepted():
    owner, _ = reports()
    flight = BatchFlight(batch(1, 5), 0)
    run = ReportRun(flight, 1, 5)
    flight.runs.add(run)
    from beaver.control.engine.record import Verdict
    owner.abandon(flight, Verdict(Outcome.INCOMPLETE, "the run ended"))
    assert sorted(flight.record.singles) == [1, 2, 3, 4, 5] and not flight.runs
