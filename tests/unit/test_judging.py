"""control/engine/judging.py: a verdict rests on the SLBs' answers alone,
never on the order in which they arrived (a replay answers in name order,
a live run as load has it)."""
from dataclasses import replace

from beaver.control.engine import rules
from beaver.control.engine.judging import judge
from beaver.control.engine.record import Mode, Outcome, SnapshotRecord
from beaver.control.engine.settings import RunSettings
from tests.unit.test_rules import OFFSETS, T0, ack

ACTIVATE = T0 + 1_000   # when both SLBs were to switch, controller clock


def timed_record(order: list[str]) -> SnapshotRecord:
    """Both SLBs switched late and forwarded old-ID packets after the
    activation time; their answers arrived in `order`."""
    acks = {"s1": ack("s1", ACTIVATE + 5_000, ACTIVATE + 4_000),
            "s2": ack("s2", ACTIVATE + 9_000, ACTIVATE + 8_000)}
    for name, a in acks.items():
        acks[name] = replace(a, body=replace(a.body, activate_at=ACTIVATE + OFFSETS[name]))
    record = SnapshotRecord(5, Mode.OGM, rules.FINE, 1_000, ["s1", "s2"], T0, 0.0,
                            finished_us=ACTIVATE + 9_300, activate_us=ACTIVATE)
    record.acks = {name: acks[name] for name in order}
    return record


def test_a_verdict_does_not_depend_on_which_slb_answered_first():
    settings = RunSettings(Mode.OGM, rules.FINE, 1_000)
    first_s1 = judge(timed_record(["s1", "s2"]), settings, newest_id=5, late={"s2"})
    first_s2 = judge(timed_record(["s2", "s1"]), settings, newest_id=5, late={"s2"})
    assert first_s1 == first_s2
    assert first_s1.outcome is Outcome.REJECTED
    assert first_s1.reason.endswith(
        "old-ID packets after the activation time at s1 (more schedules due at once than "
        "one packet activates), s2 (its INIT arrived after it)"), first_s1.reason
