"""Fuzzing the checker's log reader (issue 25): logs of right and wrong
lines, torn or cut.  Logs are judged, or refused with one LogError of one
line; nothing else escapes."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, strategies as st

from beaver.traffic.analysis.checker import Trace, check
from beaver.traffic.runtime.eventlog import LogError

from tests.support.fuzz import fuzz, nested, scalars

HEADER = {"log": "beaver-events", "version": 1, "process": "p", "in_group": True,
          "mode": "beaver"}
msgs = st.sampled_from(["a", "b", "c"])
values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=2), scalars,
                                                                   max_size=2)
events = st.one_of(
    st.fixed_dictionaries({"kind": st.sampled_from(["send", "recv"]), "msg": msgs,
                           "peer": st.sampled_from(["p", "q"])}, optional={"ctl": values}),
    st.fixed_dictionaries({"kind": st.just("snapshot"), "first": st.integers(0, 9),
                           "last": st.integers(0, 9), "trigger": st.just("peer")}),
)


@st.composite
def lines(draw) -> bytes:
    """One line: an event, whole or with one field of any JSON, or a
    line that is no event at all."""
    event = {"seq": draw(st.integers(0, 99)), "t_us": draw(st.integers(0, 10**6)),
             **draw(events)}
    field = draw(st.sampled_from([None] * 20 + list(event)))
    if field is not None:
        event[field] = draw(values)
    line = draw(st.sampled_from(["event"] * 20 + ["json", "deep", "bytes"]))
    if line == "json":
        return json.dumps(draw(values)).encode()
    if line == "deep":
        return draw(nested(max_depth=8) | st.just(b"[" * 5000 + b"]" * 5000))
    if line == "bytes":
        return draw(st.binary(max_size=30)).replace(b"\n", b"")
    return json.dumps(event).encode()


@st.composite
def logs(draw) -> list[bytes]:
    """Two processes' logs: a header (maybe wrong), lines, maybe the end,
    maybe a torn last line or the zeros a killed process leaves."""
    written = []
    for name in ("p", "q"):
        header = dict(HEADER, process=name)
        if draw(st.integers(0, 9)) == 0:
            header[draw(st.sampled_from(list(header)))] = draw(values)
        body = [json.dumps(header).encode(), *draw(st.lists(lines(), max_size=6))]
        if draw(st.booleans()):
            body.append(json.dumps({"seq": 99, "t_us": 1, "kind": "end"}).encode())
        tail = draw(st.sampled_from([b"", b"", b'{"seq":9,"t_', b"\0" * 64]))
        written.append(b"\n".join(body) + b"\n" + tail)
    return written


@fuzz
@given(logs())
def test_a_log_is_judged_or_refused_with_a_log_error(written):
    with tempfile.TemporaryDirectory() as directory:
        paths = [Path(directory) / f"{i}.jsonl" for i in range(len(written))]
        for path, data in zip(paths, written):
            path.write_bytes(data)
        try:
            trace = Trace.load(paths)
        except LogError as e:
            assert "\n" not in str(e)   # one line, for `checker: ...`
            return
    for verdict in check(trace):
        assert verdict.status in ("consistent", "inconsistent", "unjudged", "incomplete")
