"""The event log keeps every record its process made, SIGKILL or not
(issue 25, item 10)."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from beaver.traffic.analysis.checker import Trace
from beaver.traffic.runtime.eventlog import GROW, EventLog, LogError, read_log

# Records well past the first GROW bytes, so the file was grown and remapped.
EVENTS = 3 * GROW // 60

RECORD_THEN_WAIT = f"""
import sys, time
from beaver.traffic.runtime.eventlog import EventLog
log = EventLog(sys.argv[1], "p", True, "beaver")
for i in range({EVENTS}):
    log.recv(f"c:{{i}}", "10.0.0.1:5000")
print("recorded", flush=True)
time.sleep(60)
"""


def test_a_sigkilled_process_log_holds_every_event_it_recorded(tmp_path):
    path = tmp_path / "p.jsonl"
    process = subprocess.Popen([sys.executable, "-c", RECORD_THEN_WAIT, str(path)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "recorded\n"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert path.stat().st_size > EVENTS * 50   # past the first GROW bytes
    header, events = read_log(path)
    events = list(events)
    assert header["process"] == "p"
    assert [e["msg"] for e in events] == [f"c:{i}" for i in range(EVENTS)]
    assert [e["seq"] for e in events] == list(range(1, EVENTS + 1))
    assert Trace.load([path]).short_logs == ["p"]   # no closing record: counted short


def test_a_closed_log_is_its_records_and_nothing_after(tmp_path):
    path = tmp_path / "p.jsonl"
    with EventLog(path, "p", True) as log:
        log.send("p:1", "q")
    log.recv("late", "q")   # a straggling thread after the end: not recorded
    log.close()             # closing again does nothing
    data = path.read_bytes()
    assert data.endswith(b'"kind":"end"}\n') and b"\0" not in data
    assert [e["kind"] for e in read_log(path)[1]] == ["send", "end"]


def test_a_log_whose_process_died_before_its_first_line_is_one_clear_error(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\0" * 4096)   # created and grown, nothing written yet
    with pytest.raises(LogError, match="empty: its process ended before it wrote a line"):
        read_log(path)
