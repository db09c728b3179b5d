"""The engine's decisions on answers recorded from real BMv2 switches
(tests/support/replay.py): the stored recordings (tests/support/recordings/)
replay everywhere, so the engine and the rules are exercised where no switch
runs.  tests/bmv2/test_recording.py runs every case live where BMv2 is, checks
that its recording replays to the same verdicts, and with BEAVER_RECORD=1
stores the recordings anew.

The cases: accepted timed snapshots under traffic (and the same answers
judged at tau just below and at the largest gap they show), rejections
under immediate initiation, a late SLB, a lost acknowledgement, a switch
restarted mid-run, and marking switched off mid-run.  And the same answers
in an order, or at a moment, that load can make: a late SLB's READ_RECORDS
answered out of order, and an engine thread waking late after a deadline.
"""
from __future__ import annotations

import dataclasses
import math
import time

import pytest

from beaver.control.engine.loop import Loop
from beaver.control.engine.record import Outcome
from beaver.control.slbs.requests import now_us
from beaver.p4src.wire import RECORDS_MAX, Op, Status
from tests.conftest import missing_for_bmv2
from tests.support import replay

LATE_SWITCH = "old-ID packets after the activation time at "
CASES = ("timed-traffic", "immediate-traffic", "late-slb", "lost-ack", "restart",
         "marking-off", "batched-traffic", "batched-late")


def recorded(case: str) -> dict:
    path = replay.RECORDINGS / f"{case}.json"
    if not path.exists():
        pytest.skip(f"no recording {path.name}: record with BEAVER_RECORD=1 where BMv2 is "
                    f"({missing_for_bmv2() or 'it is here'})")
    return replay.load(case)


@pytest.mark.parametrize("case", CASES)
def test_a_stored_recording_replays_to_its_verdicts(case, tmp_path):
    """Where no switch runs, this is what exercises the engine's decisions."""
    recording = recorded(case)
    verdicts = replay.verdicts(replay.replay(recording, tmp_path))
    assert {str(n): list(v) for n, v in verdicts.items()} == recording["verdicts"]
    check_case(case, recording)


def outcomes(recording) -> list[str]:
    return [v[0] for v in recording["verdicts"].values()]


def check_case(case: str, recording: dict):
    """What each case must show, whoever recorded it."""
    reasons = [v[1] for v in recording["verdicts"].values()]
    if case in ("batched-traffic", "timed-traffic"):
        # SLBs told one moment ahead switch together: a cut is rejected only
        # when load made one switch late, which its record shows
        others = {n: v for n, v in recording["verdicts"].items() if v[0] != "accepted"}
        assert "accepted" in outcomes(recording), sorted({r for _, r in others.values()})
        assert all(o == "rejected" and LATE_SWITCH in r for o, r in others.values()), others
    if case == "batched-traffic":
        assert len(recording["verdicts"]) == 24
        batches = [e for r in recording["requests"].values() for e in r
                   if e.get("op") == "INIT_BATCH"]
        assert len(batches) == 6 and all(e["batch"]["count"] == 8 for e in batches)
        assert any("by schedule" in r for o, r in recording["verdicts"].values())
    elif case == "batched-late":
        verdicts = [recording["verdicts"][n] for n in sorted(recording["verdicts"], key=int)]
        for batch in (verdicts[:50], verdicts[50:100], verdicts[100:]):
            outcomes_ = [o for o, _ in batch]
            cut = outcomes_.index("accepted")
            assert cut > 0 and set(outcomes_[cut:]) == {"accepted"}, outcomes_
            assert all(LATE_SWITCH in r and "(its INIT arrived after it)" in r
                       for _, r in batch[:cut])
        assert any(e.get("op") == "READ_RECORDS" for e in recording["requests"]["s2"]), \
            "the late IDs were read one by one"
    elif case == "timed-traffic":
        assert all(e["activate_at"] for r in recording["requests"].values() for e in r
                   if e.get("op") == "INIT")
    elif case in ("immediate-traffic", "late-slb"):
        assert "rejected" in outcomes(recording)
        assert any("forwarded an old-ID packet" in r for r in reasons)
        if case == "late-slb":   # the record shows why (under load s1's INIT may be late too)
            assert all(LATE_SWITCH in r and "(its INIT arrived after it)" in r for o, r in
                       recording["verdicts"].values() if o == "rejected"), reasons
    elif case == "lost-ack":
        assert outcomes(recording) == ["accepted"]
        assert sum(e.get("op") == "INIT" for e in recording["requests"]["s2"]) == 2
    elif case == "restart":
        assert "incomplete" in outcomes(recording) and "accepted" in outcomes(recording)
        assert all(r == "s2 went down before acknowledging" for o, r in
                   recording["verdicts"].values() if o == "incomplete")
        assert any(e.get("down") for e in recording["requests"]["s2"])
    else:
        assert outcomes(recording)[0] == "accepted"
        assert "marking is off at s2" in reasons[-1]


def test_recorded_answers_judged_at_the_largest_gap_they_show(tmp_path):
    """The immediate case's answers (old-ID packets after another SLB's
    switch), judged by the fine rule at tau equal to the largest gap any
    snapshot showed (rounded down): that snapshot must be rejected, and at
    one microsecond more, all accepted."""
    recording = recorded("immediate-traffic")
    tau = recording["settings"]["tau_us"]
    records = replay.replay(recording, tmp_path)
    gaps = [r.verdict.margin_us + tau for r in records if r.verdict.margin_us is not None]
    assert gaps, "the traffic left old-ID packets to judge"
    largest = max(gaps)
    assert largest > 1, "some old-ID packet came after another SLB's switch"
    at_gap = replay.replay(recording, tmp_path, tau_us=math.floor(largest))
    above = replay.replay(recording, tmp_path, tau_us=math.floor(largest) + 1)
    assert [r.verdict.outcome for r in at_gap].count(Outcome.REJECTED) >= 1
    assert all(r.verdict.outcome is Outcome.ACCEPTED for r in above)


def test_late_inits_not_delayed_on_purpose_keep_their_verdicts(tmp_path):
    """The late-SLB answers with no delay set and the default lead: the
    engine takes s2's late INITs for load (and lengthens later leads); the
    verdicts, which rest on the answers alone, stay the same."""
    recording = recorded("late-slb")
    records = replay.replay(recording, tmp_path, delays_us={}, lead_us=None)
    assert {str(n): list(v) for n, v in replay.verdicts(records).items()} == \
        recording["verdicts"]


def s2s_second_read_first(monkeypatch, first=lambda answer: answer) -> list:
    """s2's second READ_RECORDS of each batch answered before its first
    (as when the first answer is lost and resent); the first as `first`
    makes it.  Returns the first answers still held back."""
    reply = replay._Control._reply
    held = []

    def second_first(control, callback, answer, *when):
        if control.gw.name != "s2" or answer.op is not Op.READ_RECORDS:
            return reply(control, callback, answer, *when)
        if len(answer.records) == RECORDS_MAX:   # the first: RECORDS_MAX IDs
            return held.append((callback, first(answer), *when))

        def then_the_first(second):
            callback(second)   # on the engine's queue before the first is even due
            while held:
                reply(control, *held.pop(0))
        reply(control, then_the_first, answer, *when)

    monkeypatch.setattr(replay._Control, "_reply", second_first)
    return held


def test_a_late_slbs_records_are_judged_alike_in_either_order_of_answers(tmp_path,
                                                                          monkeypatch):
    """batched-late: an ID s2 passed unrecorded (STALE) takes the record of
    the ID before it, which s2's first READ_RECORDS answer holds; answered
    second, its verdict must wait for it and be the recorded one (s2's INIT
    late), not one judged on the STALE bounds alone."""
    recording = recorded("batched-late")
    held = s2s_second_read_first(monkeypatch)
    verdicts = replay.verdicts(replay.replay(recording, tmp_path))
    assert not held
    assert {str(n): list(v) for n, v in verdicts.items()} == recording["verdicts"]


def test_a_stale_record_whose_predecessor_fails_is_judged_on_its_bounds(tmp_path,
                                                                        monkeypatch):
    """batched-late with s2's first READ_RECORDS of each batch answered
    BAD_BATCH after its second: those IDs are incomplete, and the STALE
    ones that waited for them are judged on their own bounds (rejected),
    not left waiting for a resend the recording does not hold."""
    recording = recorded("batched-late")
    s2s_second_read_first(monkeypatch, lambda answer: dataclasses.replace(
        answer, status=Status.BAD_BATCH, records=()))
    verdicts = replay.verdicts(replay.replay(recording, tmp_path))
    first_reads = {e["snapshot_id"] + i for e in recording["requests"]["s2"]
                   if e["op"] == "READ_RECORDS" and e["batch"]["count"] == RECORDS_MAX
                   for i in range(RECORDS_MAX)}
    waited = {n for n, v in recording["verdicts"].items()
              if v[0] == "rejected" and int(n) not in first_reads}
    assert len(first_reads) == 48 and len(waited) == 27
    for n, (outcome, reason) in verdicts.items():
        if n in first_reads:
            assert (outcome, reason) == ("incomplete", "s2 answered BAD_BATCH to READ_RECORDS")
        elif str(n) in waited:
            assert outcome == "rejected" and LATE_SWITCH not in reason, reason
        else:
            assert [outcome, reason] == recording["verdicts"][str(n)]


def test_an_answer_recorded_after_its_deadline_comes_after_the_resend(tmp_path, monkeypatch):
    """lost-ack: s2's answer came back 105 ms after its INIT, after the
    100 ms deadline that resent it.  With the engine's thread waking 60 ms
    after each of its deadlines (as under load), the replay still hands it
    that answer only after the resend, as it came: the recorded resend is
    sent and the verdict stays (before, the answer waited in the queue when
    the thread woke, and the engine judged without resending)."""
    recording = recorded("lost-ack")
    wait = Loop.wait

    def waking_late(loop, handle, *deadlines_us):
        if loop._timers:
            time.sleep(max(0.0, (loop._timers[0][0] - now_us()) / 1e6) + 0.06)
        return wait(loop, handle, *deadlines_us)

    monkeypatch.setattr(Loop, "wait", waking_late)
    verdicts = replay.verdicts(replay.replay(recording, tmp_path))
    assert {str(n): list(v) for n, v in verdicts.items()} == recording["verdicts"]
