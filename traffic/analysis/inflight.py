"""The in-flight tracking use case: which messages were on each in-group
channel at a snapshot's cut, from the recorded channel state, against the
ground truth rebuilt from the logs (checker.Trace).

On a channel q -> p, a message is in flight at a cut when q sent it before
q's cut and p received it after p's.  A message sent after q's cut and
received before p's crossed the cut backwards: no channel state can hold
it (the snapshot counts it received and never sent), so it is a mismatch
whatever was recorded.  The same can happen between any two in-group
processes through the out-group (a reply to a client who then asks
another process, a webhook's callback): p receives, before its cut, a
message from an out-group process that already knew of q's events after
q's cut.  Lai-Yang's stamps rule the first kind out on in-group channels,
but it sees nothing of the second; a consistent cut has neither.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from beaver.traffic.oob.protocol import Report

from beaver.traffic.analysis.checker import Trace


@dataclass
class ChannelAtCut:
    """One ordered pair of in-group processes at one cut."""
    sender: str
    receiver: str
    direct: bool                   # an in-group channel (else: only through the out-group)
    truth: set[str] = field(default_factory=set)      # in flight, from the logs
    recorded: set[str] = field(default_factory=set)   # in flight, from the channel state
    backwards: int = 0             # messages on the channel that crossed the cut backwards
    via_outgroup: int = 0          # receives that carried q's after-cut events into p's cut

    @property
    def missed(self) -> set[str]:
        return self.truth - self.recorded

    @property
    def extra(self) -> set[str]:
        return self.recorded - self.truth

    @property
    def matches(self) -> bool:
        return not (self.missed or self.extra or self.backwards or self.via_outgroup)


def at_cut(trace: Trace, snapshot_id: int, reports: Mapping[str, Report]) -> list[ChannelAtCut]:
    """Every ordered pair of in-group processes at snapshot_id (as on the wire),
    given each process's report for it; [] if some process has no cut there."""
    cuts = trace.cut(trace.unwrap(snapshot_id))
    if len(cuts) < len(trace.in_group):
        return []
    name = {i: trace.processes[i].name for i in trace.in_group}
    pairs = []
    for q in trace.in_group:
        for p in trace.in_group:
            if p == q:
                continue
            channel = trace.channels.get((q, p))
            pair = ChannelAtCut(name[q], name[p], channel is not None)
            if channel is not None:
                pair.truth = trace.channel_truth(channel, cuts[q][0], cuts[p][0])[1]
                pair.backwards = sum(send >= cuts[q][0] and receive < cuts[p][0]
                                     for send, receive in zip(channel[0], channel[1]))
                report = reports.get(name[p])
                state = report.channels.get(name[q]) if report is not None else None
                pair.recorded = {item["id"] for item in state.in_flight} if state else set()
            if cuts[p][1][trace.component[q]] > cuts[q][0]:   # p's cut knows of q's after
                pair.via_outgroup = _through_outgroup(trace, q, cuts[q][0], p, cuts[p][0])
            if channel is not None or pair.via_outgroup:
                pairs.append(pair)
    return pairs


def _through_outgroup(trace: Trace, q: int, q_cut: int, p: int, p_cut: int) -> int:
    """Receives at p before its cut, from out-group senders who knew of an event
    of q after q's cut."""
    events = trace.processes[p]
    component = trace.component[q]
    count = 0
    for kind, msg in zip(events.kinds[:p_cut], events.msgs[:p_cut]):
        if kind != "recv" or msg not in trace.sent_at:
            continue
        sender = trace.sent_at[msg][0]
        if sender not in trace.component and trace.sent[msg][component] > q_cut:
            count += 1
    return count
