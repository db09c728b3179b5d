"""traffic/oob/links.py: the controller's side of the out-of-band protocol,
against real in-group runtimes, and the channel-state check."""
import queue
import signal
import socket

import pytest

from beaver.traffic.oob import protocol as oob
from beaver.control.config import ProcessConfig
from beaver.traffic.oob.protocol import ChannelState, Report
from beaver.traffic.oob.links import ChannelGap, ProcessLink, channel_gaps, strangers
from beaver.p4src.wire import RING_SIZE

from tests.support.runtimes import runtime_processes, runtimes

__all__ = ["runtime_processes", "runtimes"]   # the fixtures

TCP_ESTABLISHED = "01"


@pytest.fixture
def process(runtimes):
    runtime, _ = runtimes("p1", 1)
    return runtime


def link_to(address, timeout: float = 1.0):
    answers = queue.SimpleQueue()
    link = ProcessLink(ProcessConfig("p1", *address), timeout, answers.put)
    return link, answers


def connections_to(address) -> int:
    """Established TCP connections whose local end is address (the server's side)."""
    ip, port = address
    local = f"{int.from_bytes(socket.inet_aton(ip), 'little'):08X}:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(row[1] == local and row[3] == TCP_ESTABLISHED for row in rows)


def test_a_snapshot_request_returns_the_report_and_the_link_is_reused(process):
    link, answers = link_to(process.oob_address)
    link.ask("snapshot", 5, "first")
    link.ask("report", 5, "second")
    first, second = answers.get(timeout=5), answers.get(timeout=5)
    connections = connections_to(process.oob_address)
    link.close()
    assert (first.token, second.token) == ("first", "second")
    assert first.error is None and first.report.taken and first.report.snapshot_id == 5
    assert first.report.trigger == "oob"
    assert first.report.local_state == {"requests": 0, "peer_messages": 0}
    assert second.report == first.report, "the report for 5 as it stands"
    assert connections == 1, "both requests went over one connection"


def test_an_unreachable_process_is_an_error_naming_it():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = s.getsockname()   # bound, not listening: refused
        link, answers = link_to(address)
        link.ask("snapshot", 1, None)
        answer = answers.get(timeout=5)
    link.close()
    assert answer.report is None and f"p1 (127.0.0.1:{address[1]})" in str(answer.error)


def test_a_stopped_process_times_out(runtime_processes):
    process, address = runtime_processes("p1", 3)
    process.send_signal(signal.SIGSTOP)
    link, answers = link_to(address, timeout=0.2)
    link.ask("snapshot", 1, None)
    answer = answers.get(timeout=5)
    link.close()
    assert answer.report is None and "timed out" in str(answer.error)


def test_a_refusal_is_an_error(process):
    link, answers = link_to(process.oob_address)
    link.ask("bogus", 1, None)
    assert "refused 'bogus': unknown op 'bogus'" in str(answers.get(timeout=5).error)
    link.ask("snapshot", RING_SIZE + 1, None)
    assert answers.get(timeout=5).error is None
    link.ask("report", 1, None)
    assert "snapshot 1 is not kept" in str(answers.get(timeout=5).error)
    link.close()


def test_a_report_round_trips_through_the_message_format():
    report = Report("p1", 9, True, "peer", 5, [1, {"a": 2}],
                    {"p2": ChannelState(4, 3, [{"id": "m1"}])}, 9, 8)
    assert Report.from_message(oob.check(report.to_message())) == report
    with pytest.raises(oob.ProtocolError, match="version"):
        Report.from_message({**report.to_message(), "v": 2})


def reports(**channels):
    """channels: "p_q" -> (sent_before p->q, received_before at q, in-flight at q)."""
    out = {}
    for key, (sent, received, in_flight) in channels.items():
        p, q = key.split("_")
        out.setdefault(p, Report(p, 1, True)).channels.setdefault(q, ChannelState())
        out.setdefault(q, Report(q, 1, True)).channels.setdefault(p, ChannelState())
        out[p].channels[q].sent_before = sent
        out[q].channels[p].received_before = received
        out[q].channels[p].in_flight = [{"id": i} for i in range(in_flight)]
    return out


def test_channels_are_whole_when_received_plus_in_flight_equals_sent():
    assert channel_gaps(reports(p1_p2=(5, 3, 2), p2_p1=(1, 1, 0))) == []


def test_a_channel_still_missing_in_flight_messages_is_a_gap():
    gaps = channel_gaps(reports(p1_p2=(5, 3, 1), p2_p1=(1, 1, 0)))
    assert gaps == [ChannelGap("p1", "p2", 4, 5)] and not gaps[0].impossible
    assert str(gaps[0]) == "channel p1->p2: 4 of 5 pre-cut messages recorded"


def test_more_recorded_than_sent_before_the_cut_is_impossible():
    gaps = channel_gaps(reports(p1_p2=(2, 3, 0)))
    assert gaps[0].impossible


def test_a_sender_that_did_not_report_is_a_stranger_not_a_whole_channel():
    r = reports(p1_p2=(5, 0, 0))
    del r["p1"]
    assert channel_gaps(r) == [] and strangers(r) == ["p1"]
    assert strangers(reports(p1_p2=(5, 5, 0))) == []


def test_a_receiver_that_omits_a_channel_has_recorded_nothing_of_it():
    r = reports(p1_p2=(3, 0, 0))
    del r["p2"].channels["p1"]   # p2 lists no channel from p1, which sent 3 before its cut
    assert channel_gaps(r) == [ChannelGap("p1", "p2", 0, 3)]


def test_a_receiver_missing_from_the_senders_channels_expects_nothing():
    r = reports(p1_p2=(0, 2, 1))
    del r["p1"].channels["p2"]   # p1 says it never sent to p2; p2 recorded 3
    gaps = channel_gaps(r)
    assert gaps == [ChannelGap("p1", "p2", 3, 0)] and gaps[0].impossible
