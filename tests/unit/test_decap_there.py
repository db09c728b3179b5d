"""attach_there and a remote Decap's counters read one JSON line that
`python -m beaver.topologies.decap` printed on another server, through the
host's shell there: every byte of it is hostile (a shell's noise, another
program's output, a wrong shape), and anything but the expected answer is
one DecapError line naming what was being done.  (Loaded on a real second
server: tests/docker/test_two_servers.py.)"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from beaver.topologies import decap

MAPS = {"slb_addrs": 11, "flow_ids": 12, "newest_id": 14, "decap_counts": 13}


def shell(answer: str):
    commands = []

    def run(command: str) -> str:
        commands.append(command)
        return answer
    return run, commands


def test_the_answer_of_the_other_server_is_its_program_and_maps():
    run, commands = shell("Warning: noise first\r\n" + json.dumps({"prog_id": 7, "maps": MAPS})
                          + "\r\n")
    loaded = decap.attach_there(run, "bvi2-eth0", ["10.0.0.11", "10.0.0.12"])
    assert (loaded.iface, loaded.prog_id, loaded.maps) == ("bvi2-eth0", 7, MAPS)
    assert loaded.there is run
    (command,) = commands
    assert command.endswith("-m beaver.topologies.decap attach bvi2-eth0 10.0.0.11 10.0.0.12 2>&1")


def test_the_counters_of_a_remote_program_are_read_there():
    counts = {"decapsulated": 3, "foreign": 0, "malformed": 1, "left_udp": 0, "map_full": 0}
    run, commands = shell(json.dumps(counts) + "\n")
    loaded = decap.Decap("bvi2-eth0", 7, MAPS, there=run)
    assert loaded.counters() == counts
    assert commands[0].endswith("decap counters 13 2>&1")


def test_an_interface_name_reaches_the_shell_quoted():
    run, commands = shell(json.dumps({"prog_id": 7, "maps": MAPS}))
    decap.attach_there(run, "x; rm -rf /", ["10.0.0.11"])
    assert "attach 'x; rm -rf /' 10.0.0.11" in commands[0]


@pytest.mark.parametrize("answer, says", [
    ("", "no answer"),
    ("decap: box2: tc cannot load the decapsulation program on bvi2-eth0: ...\n",
     "decap: box2: tc cannot load"),
    ('{"prog_id": "seven", "maps": {}}', "no program id and maps"),
    ('[1, 2]', "no program id and maps"),
    ('{"prog_id": true, "maps": {}}', "no program id and maps"),
    ('{"prog_id": 7, "maps": {"flow_ids": 12}}', "expected"),
    ('{"prog_id": 7, "maps": {"slb_addrs": 11, "flow_ids": "12", "decap_counts": 13}}',
     "expected"),
])
def test_a_wrong_answer_is_one_line(answer, says):
    run, _ = shell(answer)
    with pytest.raises(decap.DecapError, match=says) as e:
        decap.attach_there(run, "bvi2-eth0", ["10.0.0.11"])
    assert "\n" not in str(e.value) and "bvi2-eth0" in str(e.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_answer_is_a_program_or_one_line(answer):
    run, _ = shell(answer)
    try:
        loaded = decap.attach_there(run, "bvi2-eth0", ["10.0.0.11"])
    except decap.DecapError as e:
        assert "\n" not in str(e)
    else:
        assert loaded.maps == MAPS


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200),
                 st.dictionaries(st.text(max_size=12), st.integers() | st.text(max_size=5)
                                 | st.booleans(), max_size=6).map(json.dumps)))
def test_any_counters_answer_is_five_counts_or_one_line(answer):
    run, _ = shell(answer)
    try:
        counts = decap.Decap("bvi2-eth0", 7, MAPS, there=run).counters()
    except decap.DecapError as e:
        assert "\n" not in str(e)
    else:
        assert set(counts) == {"decapsulated", "foreign", "malformed", "left_udp", "map_full"}
        assert all(type(v) is int for v in counts.values())
