"""JSON formatted directly on the per-message path (issue 26): a COUNT's body
and the event log's records.  Each must be, byte for byte, what json.dumps
wrote for the same values before, whatever the strings hold (quotes,
backslashes, control characters, non-ASCII), since peers parse the one and
the checker reads the other."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings, strategies as st

from beaver.p4src.ids import ID_SPACE
from beaver.traffic.analysis.checker import Trace
from beaver.traffic.messages import decode, encode
from beaver.traffic.runtime.datagrams import count_body
from beaver.traffic.runtime.eventlog import EventLog, read_log

ids = st.integers(0, ID_SPACE - 1)
names = st.text(max_size=40)


def dumped(record: dict) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


@settings(max_examples=300, deadline=None)
@given(first=ids, sent_before=st.integers(0, 1 << 40), message_id=names)
def test_a_count_body_is_what_encode_writes_for_its_dict(first, sent_before, message_id):
    message = {"first": first, "sent_before": sent_before, "id": message_id}
    body = count_body(first, sent_before, message_id)
    assert body == encode(message) == json.dumps(message, separators=(",", ":")).encode()
    if message_id:
        assert decode(body) == message


events = st.one_of(
    st.tuples(st.sampled_from(["send", "recv"]), names, names, st.booleans()),
    st.tuples(st.just("snapshot"), ids, ids, st.sampled_from(["mark", "peer", "oob", "timer"])))


@settings(max_examples=60, deadline=None)
@given(process=names, chosen=st.lists(events, max_size=20))
def test_log_records_are_what_json_dumps_wrote_for_them(process, chosen):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.jsonl"
        expected = [{"log": "beaver-events", "version": 1, "process": process,
                     "in_group": True, "mode": "beaver"}]
        with EventLog(path, process, True, "beaver") as log:
            for kind, a, b, c in chosen:
                if kind == "snapshot":
                    log.snapshot(a, b, c)
                    expected.append({"kind": kind, "first": a, "last": b, "trigger": c})
                else:
                    getattr(log, kind)(a, b, ctl=c)
                    expected.append({"kind": kind, "msg": a, "peer": b,
                                     **({"ctl": True} if c else {})})
        expected.append({"kind": "end"})
        lines = path.read_bytes().splitlines(keepends=True)
        assert lines[0] == dumped(expected[0])
        assert len(lines) == len(expected)
        for seq, (line, record) in enumerate(zip(lines[1:], expected[1:]), start=1):
            t_us = json.loads(line)["t_us"]
            assert line == dumped({"seq": seq, "t_us": t_us, **record})
        header, read = read_log(path)
        assert header["process"] == process and len(list(read)) == len(chosen) + 1


def test_the_checker_reads_a_formatted_log(tmp_path):
    """A send and its receive, ctl and not, and a snapshot: the checker
    pairs them as it did the json.dumps records."""
    with EventLog(tmp_path / "p.jsonl", "p", True, "beaver") as p, \
            EventLog(tmp_path / "q.jsonl", "q", True, "beaver") as q:
        p.snapshot(1, 3, "mark")
        p.send('p:1 "quoted"\n', "q")
        q.recv('p:1 "quoted"\n', "p")
        p.send("p:2", "q", ctl=True)
        q.recv("p:2", "p", ctl=True)
    trace = Trace.load([tmp_path / "p.jsonl", tmp_path / "q.jsonl"])
    assert (trace.short_logs, trace.unmatched, trace.repeated) == ([], 0, {})
    assert sorted(process.name for process in trace.processes) == ["p", "q"]
