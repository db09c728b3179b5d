"""The consistency checker on hand-built traces of the seed's figures."""
from __future__ import annotations

import json

import pytest

from beaver.traffic.oob.protocol import ChannelState, Report
from beaver.p4src.ids import ID_SPACE
from beaver.traffic.analysis.checker import Process, Trace, chain_summary, check, main
from beaver.traffic.runtime.eventlog import EventLog, LogError


def write_trace(tmp_path, spec: dict[str, tuple[bool, list[tuple]]]) -> list:
    """spec: process -> (in_group, events); an event is ("send", msg, to),
    ("recv", msg), ("snap", id) or ("snap", first, last)."""
    paths = []
    for name, (in_group, events) in spec.items():
        path = tmp_path / f"{name}.jsonl"
        log = EventLog(path, name, in_group)
        for kind, *args in events:
            if kind == "send":
                log.send(args[0], args[1])
            elif kind == "recv":
                log.recv(args[0], "?")
            else:
                log.snapshot(args[0], args[-1], "oob")
        log.close()
        paths.append(path)
    return paths


def load(tmp_path, spec) -> Trace:
    return Trace.load(write_trace(tmp_path, spec))


def only(verdicts):
    assert len(verdicts) == 1
    return verdicts[0]


# Figure 2: p0 snapshots out of band (filled dot) and its next message b
# carries the new ID, so p1 snapshots on receiving it (hollow dot).  c was
# sent by p1 before its cut and received by p0 after its own: channel state.
FIGURE_2 = {
    "p0": (True, [("send", "a", "p1"), ("snap", 1), ("send", "b", "p1"), ("recv", "c")]),
    "p1": (True, [("recv", "a"), ("send", "c", "p0"), ("snap", 1), ("recv", "b")]),
}

# Figure 3: p1 has snapshotted; its reply r to the external workflow p0out
# makes p0out ask p2, which has not: p2's receive is in the cut, its cause not.
FIGURE_3 = {
    "p0out": (False, [("send", "q1", "p1"), ("recv", "r"), ("send", "q2", "p2")]),
    "p1": (True, [("snap", 1), ("recv", "q1"), ("send", "r", "p0out")]),
    "p2": (True, [("recv", "q2"), ("snap", 1)]),
}

# Figure 4: the gateway marks q2 with the new ID, so p2 snapshots before it.
FIGURE_4 = {
    "p0out": (False, [("send", "q1", "p1"), ("recv", "r"), ("send", "q2", "p2")]),
    "p1": (True, [("snap", 1), ("recv", "q1"), ("send", "r", "p0out")]),
    "p2": (True, [("snap", 1), ("recv", "q2")]),
}

# Figure 5: g0 has initiated (p1 snapshots on its mark), g1 has not: e'_8.m
# reaches p2 unmarked, and p2 passes its effect on to p3 inside the cut.
FIGURE_5 = {
    "out": (False, [("send", "m1", "p1"), ("recv", "r1"), ("send", "m8", "p2")]),
    "p1": (True, [("snap", 1), ("recv", "m1"), ("send", "r1", "out")]),
    "p2": (True, [("recv", "m8"), ("send", "x", "p3"), ("snap", 1)]),
    "p3": (True, [("recv", "x"), ("snap", 1)]),
}


def test_figure_2_cut_is_consistent_with_c_in_flight(tmp_path):
    trace = load(tmp_path, FIGURE_2)
    reports = [Report("p0", 1, True, channels={"p1": ChannelState(1, 0, [{"id": "c"}])}),
               Report("p1", 1, True, channels={"p0": ChannelState(1, 1, [])})]
    verdict = only(check(trace, reports=reports))
    assert verdict.status == "consistent"
    assert verdict.channel_errors == []


def test_channel_state_that_misses_an_in_flight_message_is_reported(tmp_path):
    trace = load(tmp_path, FIGURE_2)
    reports = [Report("p0", 1, True, channels={"p1": ChannelState(1, 0, [])}),
               Report("p1", 1, True, channels={"p0": ChannelState(2, 1, [{"id": "a"}])})]
    errors = only(check(trace, reports=reports)).channel_errors
    assert errors == ["p1->p0: in flight recorded [], truth ['c']",
                      "p1->p0: sent_before 2, truth 1",
                      "p0->p1: in flight recorded ['a'], truth []"]


def test_figure_3_is_inconsistent_with_the_chain_through_the_out_group(tmp_path):
    verdict = only(check(load(tmp_path, FIGURE_3)))
    assert verdict.status == "inconsistent"
    assert [str(e) for e in verdict.witness] == [
        "p1#1 send r", "p0out#1 recv r", "p0out#2 send q2", "p2#0 recv q2"]


def test_figure_4_gateway_marking_makes_the_cut_consistent(tmp_path):
    assert only(check(load(tmp_path, FIGURE_4))).status == "consistent"


def test_figure_5_lagging_gateway_is_caught_through_in_group_hops(tmp_path):
    verdict = only(check(load(tmp_path, FIGURE_5)))
    assert verdict.status == "inconsistent"
    assert verdict.witness[0].process == "p1" and verdict.witness[0].kind == "send"
    assert verdict.witness[-1].process in ("p2", "p3")
    # each hop is a message: a send followed by its receive
    hops = list(zip(verdict.witness[::2], verdict.witness[1::2]))
    assert all(s.kind == "send" and r.kind == "recv" and s.msg == r.msg for s, r in hops)


def test_a_process_without_the_snapshot_makes_it_incomplete(tmp_path):
    spec = dict(FIGURE_4, p2=(True, [("recv", "q2")]))
    verdict = only(check(load(tmp_path, spec), snapshot_ids=[1]))
    assert (verdict.status, verdict.missing) == ("incomplete", ["p2"])


def test_a_jump_covers_every_id_in_between(tmp_path):
    spec = {"p1": (True, [("snap", 1, 3), ("send", "m", "p2"), ("snap", 4)]),
            "p2": (True, [("snap", 1), ("recv", "m"), ("snap", 2, 4)])}
    verdicts = check(load(tmp_path, spec), snapshot_ids=[1, 2, 3, 4])
    # m is sent after p1's cut for 1..3 and received before p2's cut for 2..4
    assert [v.status for v in verdicts] == ["consistent", "inconsistent", "inconsistent",
                                            "consistent"]


def test_ids_wrap_as_serial_numbers(tmp_path):
    top, half = ID_SPACE - 1, ID_SPACE // 2
    climb = [("snap", 1, half - 1), ("snap", half, top - 1)]   # jumps under half the space
    spec = {"p1": (True, climb + [("snap", top, 0), ("send", "m", "p2"), ("snap", 1)]),
            "p2": (True, climb + [("snap", top), ("recv", "m"), ("snap", 0, 1)])}
    verdicts = check(load(tmp_path, spec), snapshot_ids=[top, 0, 1])
    assert [(v.snapshot_id, v.status) for v in verdicts] == [
        (top, "consistent"), (0, "inconsistent"), (1, "consistent")]


def test_a_receive_before_its_send_is_refused(tmp_path):
    spec = {"p1": (True, [("recv", "b"), ("send", "a", "p2")]),
            "p2": (True, [("recv", "a"), ("send", "b", "p1")])}
    with pytest.raises(LogError, match="causally impossible"):
        load(tmp_path, spec)


def test_a_message_id_sent_twice_is_refused(tmp_path):
    spec = {"p1": (True, [("send", "a", "p2")]), "p2": (True, [("send", "a", "p1")])}
    with pytest.raises(LogError, match="sent twice"):
        load(tmp_path, spec)


def test_command_line_prints_verdicts_and_summary(tmp_path, capsys):
    assert main([str(p) for p in write_trace(tmp_path, FIGURE_3)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1 inconsistent: p1#1 send r")
    assert '"inconsistent": 1' in out[-1]


def test_command_line_reports_a_bad_log(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"log":"something else"}\n')
    assert main([str(bad)]) == 2
    assert "not a beaver-events log" in capsys.readouterr().err


def test_command_line_checks_channel_state_from_a_reports_file(tmp_path, capsys):
    logs = write_trace(tmp_path, FIGURE_2)
    reports = tmp_path / "reports.jsonl"
    reports.write_text("\n".join(json.dumps(r.to_message()) for r in (
        Report("p0", 1, True, channels={"p1": ChannelState(1, 0, [])}),   # c missing
        Report("p1", 1, True, channels={"p0": ChannelState(1, 1, [])}))))
    out_json = tmp_path / "verdicts.json"
    assert main([*map(str, logs), "--reports", str(reports), "--ids", "1",
                 "--json", str(out_json)]) == 0
    assert "channel: p1->p0: in flight recorded [], truth ['c']" in capsys.readouterr().out
    (verdict,) = json.loads(out_json.read_text())
    assert (verdict["snapshot_id"], verdict["status"]) == (1, "consistent")
    assert len(verdict["channel_errors"]) == 1


def without(spec: dict, process: str) -> dict:
    """spec with process's log lost."""
    return {name: events for name, events in spec.items() if name != process}


def test_figure_3_without_the_out_group_log_is_unjudged_never_consistent(tmp_path):
    trace = load(tmp_path, without(FIGURE_3, "p0out"))
    assert trace.unmatched == 2   # q1 at p1, q2 at p2
    assert only(check(trace)).status == "unjudged"


def test_an_unmatched_receive_outside_every_cut_leaves_the_verdict_alone(tmp_path):
    # Figure 4's receives both come after the cut: whatever sent them, the cut holds.
    trace = load(tmp_path, without(FIGURE_4, "p0out"))
    assert trace.unmatched == 2
    assert only(check(trace)).status == "consistent"


def test_an_unmatched_receive_taints_the_snapshots_after_it_through_its_effects(tmp_path):
    spec = {"p1": (True, [("snap", 1), ("recv", "lost"), ("send", "m", "p2"), ("snap", 2)]),
            "p2": (True, [("snap", 1), ("recv", "m"), ("snap", 2)])}
    # m, sent after p1 received from an unseen sender, reaches p2 before p2's cut for 2
    assert [v.status for v in check(load(tmp_path, spec))] == ["consistent", "unjudged"]


def test_an_inconsistency_among_the_logged_events_is_found_despite_a_lost_log(tmp_path):
    spec = dict(FIGURE_3, p2=(True, [("recv", "lost"), ("recv", "q2"), ("snap", 1)]))
    assert only(check(load(tmp_path, spec))).status == "inconsistent"


def test_a_channel_a_report_omits_is_checked_all_the_same(tmp_path):
    trace = load(tmp_path, FIGURE_2)   # c crossed the cut from p1 to p0
    reports = [Report("p0", 1, True, channels={}), Report("p1", 1, True, channels={})]
    verdict = only(check(trace, reports=reports))
    assert verdict.channel_errors == ["p1->p0: not in p0's report, truth ['c'] in flight"]


def test_a_channel_nothing_crossed_may_be_left_out_of_a_report(tmp_path):
    trace = load(tmp_path, FIGURE_2)
    reports = [Report("p0", 1, True, channels={"p1": ChannelState(1, 0, [{"id": "c"}])}),
               Report("p1", 1, True, channels={})]   # a and b: none in flight to p1
    assert only(check(trace, reports=reports)).channel_errors == []


def timed_trace(spec: dict[str, tuple[bool, list[tuple]]]) -> Trace:
    """spec: process -> (in_group, events); an event is (kind, msg, t_us)."""
    processes = []
    for name, (in_group, events) in spec.items():
        process = Process(name, in_group)
        for kind, msg, t_us in events:
            process.add({"kind": kind, "msg": msg, "peer": "", "t_us": t_us})
        process.add({"kind": "end", "t_us": 0})
        processes.append(process)
    return Trace(processes)


# A relay asks kv (a) and on its reply the bank (b); the bank's webhook tp,
# told of b (n), writes an audit into kv (c).  A client sends x and y without
# waiting: y is caused by no inbound receive.
CHAINS = {
    "relay": (False, [("send", "a", 50), ("recv", "ra", 200), ("send", "b", 250),
                      ("recv", "rb", 500)]),
    "kv": (True, [("recv", "a", 100), ("send", "ra", 110), ("recv", "x", 130),
                  ("recv", "y", 140), ("send", "rx", 150), ("send", "ry", 160),
                  ("recv", "c", 520)]),
    "bank": (True, [("recv", "b", 400), ("send", "n", 410), ("send", "rb", 420)]),
    "tp": (False, [("recv", "n", 450), ("send", "c", 460)]),
    "client": (False, [("send", "x", 120), ("send", "y", 125), ("recv", "rx", 170),
                       ("recv", "ry", 180)]),
}


def test_external_causal_chains_of_relays_and_webhooks_are_measured_from_the_logs():
    """Each inbound message's shortest chain, from the latest inbound receive
    in its causal past."""
    trace = timed_trace(CHAINS)
    # b: a reached kv at 100, b reached the bank at 400.  c: from b (at 400, the
    # latest inbound receive before it) to kv's receive of the audit at 520.
    assert sorted(trace.chains) == [(120, "tp"), (300, "relay")]
    assert chain_summary(trace.chains, 200) == {"chains": 2, "shortest_chain_us": 120,
                                         "chains_under_tau": 1, "tau_held": False}
    assert chain_summary(trace.chains, 120)["tau_held"] is True


def test_a_log_without_its_closing_record_is_counted_short_and_a_torn_line_ends_it(tmp_path):
    paths = write_trace(tmp_path, FIGURE_4)
    p2 = tmp_path / "p2.jsonl"
    lines = p2.read_text().splitlines(keepends=True)
    assert '"kind":"end"' in lines[-1]
    p2.write_text("".join(lines[:-1]) + '{"seq":9,"t_us":1,"ki')   # killed mid-write
    trace = Trace.load(paths)
    assert trace.short_logs == ["p2"]
    assert only(check(trace)).status == "consistent"   # what the log kept still counts


def test_an_event_after_the_closing_record_is_refused():
    process = Process("p", True)
    process.add({"kind": "end", "t_us": 1})
    with pytest.raises(LogError, match="after the log's closing record"):
        process.add({"kind": "recv", "msg": "m", "t_us": 2})


def test_a_refusal_quotes_names_from_the_log_on_one_line(tmp_path):
    # A name or message id is any string a log holds: a newline in it must
    # not split the one line of `checker: ...`.
    process = Process("p\nq", True)
    process.add({"kind": "end", "t_us": 1})
    with pytest.raises(LogError) as refused:
        process.add({"kind": "recv", "msg": "m", "t_us": 2})
    assert "\n" not in str(refused.value) and "'p\\nq'" in str(refused.value)
    spec = {"p1": (True, [("send", "a\nb", "p2")]), "p2": (True, [("send", "a\nb", "p1")])}
    with pytest.raises(LogError, match="sent twice") as refused:
        load(tmp_path, spec)
    assert "\n" not in str(refused.value)


def test_an_in_group_process_without_a_log_makes_every_snapshot_incomplete(tmp_path):
    trace = Trace.load(write_trace(tmp_path, FIGURE_4), in_group=["p1", "p2", "p3"])
    assert trace.short_logs == ["p3"]
    verdict = only(check(trace, snapshot_ids=[1]))
    assert (verdict.status, verdict.missing) == ("incomplete", ["p3"])


def one_line(err: str) -> str:
    assert err.startswith("checker: ") and err.count("\n") == 1, err
    return err[len("checker: "):].strip()


def with_line(tmp_path, line: str) -> list:
    """FIGURE_2's logs, p0's with line appended before its closing record."""
    paths = write_trace(tmp_path, FIGURE_2)
    p0 = tmp_path / "p0.jsonl"
    lines = p0.read_text().splitlines(keepends=True)
    p0.write_text("".join(lines[:-1]) + line + "\n" + lines[-1], errors="surrogateescape")
    return paths


@pytest.mark.parametrize("line, error", [
    ('{"seq":9,"t_us":1,"kind":"recv","msg":' + "[" * 5000 + "]" * 5000 + ',"peer":"x"}',
     "nested deeper than 4 levels"),
    ('{"seq":9,"t_us":1,"kind":"recv","msg":"m","peer":["p1"]}', "recv without a message id and peer"),
    ('{"seq":9,"t_us":1,"kind":"snapshot","first":-5,"last":2}', "snapshot without IDs first/last"),
    ('{"seq":9,"t_us":1,"kind":"recv","msg":"' + "m" * 70000 + '"}', "a line longer than 65536 bytes"),
    ('{"seq":9,"t_us":1,"kind":"recv","msg":"\udcff"}', "not JSON"),   # written as 0xff
], ids=["5000 deep", "peer not a string", "negative ID", "70,000 bytes", "not UTF-8"])
def test_a_hostile_log_line_is_one_clear_line_and_no_verdict(tmp_path, capsys, line, error):
    paths = with_line(tmp_path, line)
    assert main([str(p) for p in paths]) == 2
    out, err = capsys.readouterr()
    assert out == "" and one_line(err).startswith(f"{tmp_path / 'p0.jsonl'}:")
    assert error in err


def test_a_message_received_twice_is_counted_and_named(tmp_path, capsys):
    """The cut is consistent, and says so; the summary and a warning show
    that the run delivered a message twice, which no channel does."""
    twice = {"p0": FIGURE_2["p0"],
             "p1": (True, [("recv", "a"), ("send", "c", "p0"), ("snap", 1), ("recv", "b"),
                           ("recv", "a")])}
    paths = write_trace(tmp_path, twice)
    trace = Trace.load(paths)
    assert trace.repeated == {"a": 2}
    assert main([str(p) for p in paths]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "1 consistent"
    summary = json.loads(out.splitlines()[-1])
    assert (summary["consistent"], summary["repeated_receives"]) == (1, 1)
    assert one_line(err) == "messages received more than once: a (2 times)"
    assert Trace.load(write_trace(tmp_path, FIGURE_2)).repeated == {}


def test_a_reports_line_nested_5000_deep_is_one_clear_line(tmp_path, capsys):
    reports = tmp_path / "reports.jsonl"
    reports.write_text('{"v":1,"op":"report","x":' + "[" * 5000 + "]" * 5000 + "}\n")
    assert main([*map(str, write_trace(tmp_path, FIGURE_2)), "--reports", str(reports)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and one_line(err) == "nested deeper than 256 levels"
