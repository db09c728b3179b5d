"""The ground truth: was a snapshot causally consistent?

Reads every process's event log (eventlog.py), in-group and out-group,
rebuilds happens-before from program order and send -> receive (out-group
hops included), and judges each snapshot ID on its own, knowing nothing of
the controller's verdict:

* consistent: for every in-group process q, every in-group event that
  happens-before q's snapshot point is inside the cut;
* inconsistent: some event after a process's snapshot happens-before an
  event before another's; the witness is that causal chain;
* unjudged: no inconsistency among the logged events, but a receive whose
  send is in no log (a lost or short log) happens-before some process's
  snapshot point: the unseen send could have come from outside the cut, so
  the cut cannot be proven consistent;
* incomplete: some in-group process never took a snapshot covering the ID.

A message received more than once is no channel's doing (a duplicated or
replayed datagram): the verdicts judge causality all the same, and the
summary counts such messages and names them.

How: one pass of vector clocks over in-group events (out-group events carry
clocks but add no component).  The cut is inconsistent exactly when q's clock
at its snapshot counts more of p's events than p had before its own.  Two
more slots ride on every clock, merged by max like the rest: whether an
unmatched receive is in the event's causal past, and the latest time of an
inbound receive in it (for the external causal chains below).

Given the processes' reports (traffic/oob/protocol.py), it also checks the recorded
channel state of consistent cuts: for every in-group channel, listed in a
report or not, the APP messages sent before the sender's cut and received
after the receiver's, and the counts.

External causal chains, the subject of the tau assumption: an SLB forwards
a message m' into the in-group, and the in-group's answers let the out-group
send a message m that enters the in-group through an SLB again.  If the
first SLB had moved to a new snapshot ID and the second not yet, m could
carry an effect of the new snapshot's side into the old one; the rules
accept only if no such m could be forwarded within tau of the switch.  So a
chain is a pair of inbound messages (sent by an out-group process, received
by an in-group one) with the receive of m' happening-before the send of m;
its latency is t(receive of m) - t(receive of m'), on the logs' clock (the
receives stand for the SLB forwards just before them).  For each inbound m
the checker keeps its shortest chain (from the latest such m'), so the
chains of a run are one per inbound message that has a causal predecessor
of its kind.  The logs do not say which SLB forwarded what, so chains that
cross one SLB twice are counted too: the check can only be stricter for it.

Run: python -m beaver.traffic.analysis.checker LOG... [--reports REPORTS.jsonl] [--ids 1,2,5]
         [--tau-us TAU] [--json OUT]
"""
from __future__ import annotations

import bisect
import collections
import functools
import itertools
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

from beaver.traffic.boundedjson import loads
from beaver.traffic.oob.protocol import MAX_DEPTH, Report
from beaver.p4src.ids import ID_SPACE, ahead

from beaver.traffic.runtime.eventlog import LogError, read_log

NEVER = float("inf")


@dataclass
class Process:
    name: str
    in_group: bool
    kinds: list[str] = field(default_factory=list)    # "send" / "recv", in order
    msgs: list[str] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    ctl: list[bool] = field(default_factory=list)
    times: list[int] = field(default_factory=list)    # t_us of each send / recv
    # (first, last, position): IDs unwrapped along the log; position = events before it
    snapshots: list[tuple[int, int, int]] = field(default_factory=list)
    closed: bool = False     # the log ended with its closing record

    def add(self, event: dict):
        if self.closed:
            raise LogError(f"{self.name!r}: an event after the log's closing record")
        if event["kind"] == "end":
            self.closed = True
        elif event["kind"] == "snapshot":
            previous = self.snapshots[-1][1] if self.snapshots else 0
            last = previous + ahead(event["last"], previous % ID_SPACE)
            first = last - ahead(event["last"], event["first"])
            if last <= previous or first > last:
                raise LogError(f"{self.name!r}: snapshot {event} does not move forward")
            self.snapshots.append((first, last, len(self.kinds)))
        else:
            self.kinds.append(event["kind"])
            self.msgs.append(event["msg"])
            self.peers.append(event.get("peer", ""))
            self.ctl.append(bool(event.get("ctl")))
            self.times.append(event["t_us"])

    def cut(self, snapshot_id: int) -> int | None:
        """Position of the snapshot covering snapshot_id (unwrapped), if any."""
        i = bisect.bisect_left(self.snapshots, snapshot_id, key=lambda s: s[1])
        if i < len(self.snapshots) and self.snapshots[i][0] <= snapshot_id:
            return i
        return None


class Chain(NamedTuple):
    """The shortest external causal chain ending at one inbound message."""
    latency_us: int
    via: str          # the out-group process that sent the inbound message


@dataclass(frozen=True)
class Event:
    process: str
    position: int      # among the process's sends and receives, from 0
    kind: str
    msg: str

    def __str__(self):
        return f"{self.process}#{self.position} {self.kind} {self.msg}"


@dataclass
class Verdict:
    snapshot_id: int
    status: str                      # consistent / inconsistent / unjudged / incomplete
    witness: list[Event] = field(default_factory=list)  # outside the cut -> ... -> inside it
    missing: list[str] = field(default_factory=list)    # in-group processes without this ID
    channel_errors: list[str] = field(default_factory=list)

    def __str__(self):
        text = f"{self.snapshot_id} {self.status}"
        if self.witness:
            text += ": " + " -> ".join(map(str, self.witness))
        if self.missing:
            text += ": no snapshot at " + ", ".join(self.missing)
        if self.status == "unjudged":
            text += ": a receive whose send is in no log happens-before the cut"
        return text + "".join(f"\n  channel: {e}" for e in self.channel_errors)


class Trace:
    def __init__(self, processes: Iterable[Process]):
        self.processes = list(processes)
        names = [p.name for p in self.processes]
        if len(set(names)) != len(names):
            raise LogError(f"process names repeat: {sorted(names)}")
        self.in_group = [i for i, p in enumerate(self.processes) if p.in_group]
        self.component = {i: c for c, i in enumerate(self.in_group)}
        self.taint = len(self.in_group)   # clock slot: an unmatched receive in the past
        self.latest = self.taint + 1      # clock slot: the latest inbound receive's t_us
        self.by_name = {p.name: i for i, p in enumerate(self.processes)}
        self.short_logs = [p.name for p in self.processes if not p.closed]
        self.unmatched = 0    # receives of messages no log sent
        self.chains: list[Chain] = []
        self._clocks()
        # No channel delivers a message twice: a message received more than
        # once (by one process or by several) is a fault of the run (a
        # duplicated or replayed datagram) that no verdict shows.
        receives = collections.Counter(msg for p in self.processes
                                       for kind, msg in zip(p.kinds, p.msgs) if kind == "recv")
        self.repeated = {msg: times for msg, times in receives.items() if times > 1}

    @classmethod
    def load(cls, paths: Iterable[str | Path], in_group: Iterable[str] = ()) -> "Trace":
        """in_group: processes that must have a log; one without counts as a short,
        empty log, so no snapshot is complete without it."""
        processes = []
        for path in paths:
            header, events = read_log(path)
            process = Process(header["process"], bool(header["in_group"]))
            for event in events:
                process.add(event)
            processes.append(process)
        logged = {p.name for p in processes}
        processes += [Process(name, True) for name in in_group if name not in logged]
        return cls(processes)

    def _clocks(self):
        """Vector clocks at every send (self.sent) and snapshot (self.at_snapshot):
        one component per in-group process, then the taint and latest slots."""
        self.sent: dict[str, tuple[int, ...]] = {}
        self.sent_at: dict[str, tuple[int, int]] = {}
        for i, p in enumerate(self.processes):
            for j, (kind, msg) in enumerate(zip(p.kinds, p.msgs)):
                if kind == "send":
                    if msg in self.sent_at:
                        raise LogError(f"message {msg!r} sent twice "
                                       f"({self.processes[self.sent_at[msg][0]].name!r}, {p.name!r})")
                    self.sent_at[msg] = (i, j)
        taint, latest = self.taint, self.latest
        clocks = [[0] * (latest + 1) for _ in self.processes]
        self.at_snapshot = [[None] * len(p.snapshots) for p in self.processes]
        next_event = [0] * len(self.processes)
        next_snapshot = [0] * len(self.processes)
        waiting = collections.defaultdict(list)       # msg -> processes blocked on its send
        ready = collections.deque(range(len(self.processes)))
        while ready:
            i = ready.popleft()
            p, clock, own = self.processes[i], clocks[i], self.component.get(i)
            j, s = next_event[i], next_snapshot[i]
            while True:
                while s < len(p.snapshots) and p.snapshots[s][2] == j:
                    self.at_snapshot[i][s] = tuple(clock)
                    s += 1
                if j == len(p.kinds):
                    break
                kind, msg = p.kinds[j], p.msgs[j]
                if kind == "recv":
                    sent = self.sent.get(msg)
                    if sent is not None:
                        clocks[i] = clock = list(map(max, clock, sent))
                        sender = self.sent_at[msg][0]
                        if own is not None and sender not in self.component:
                            if sent[latest]:   # an inbound message with an inbound cause
                                self.chains.append(Chain(p.times[j] - sent[latest],
                                                         self.processes[sender].name))
                            clock[latest] = max(clock[latest], p.times[j])
                    elif msg in self.sent_at:
                        waiting[msg].append(i)
                        break
                    else:
                        self.unmatched += 1
                        clock[taint] = 1
                if own is not None:
                    clock[own] = j + 1
                if kind == "send":
                    self.sent[msg] = tuple(clock)
                    ready.extend(waiting.pop(msg, ()))
                j += 1
            next_event[i], next_snapshot[i] = j, s
        stuck = [p.name for i, p in enumerate(self.processes) if next_event[i] < len(p.kinds)]
        if stuck:
            raise LogError(f"the logs are causally impossible (a receive before its send): "
                           f"{', '.join(map(repr, stuck))} cannot proceed")

    # Judging.

    def snapshot_ids(self) -> list[int]:
        """Every ID some in-group process jumped to (unwrapped), in order."""
        return sorted({s[1] for i in self.in_group for s in self.processes[i].snapshots})

    def unwrap(self, snapshot_id: int) -> int:
        """The unwrapped ID nearest the newest one seen, for an ID as sent on the wire."""
        return self.newest_id + ahead(snapshot_id, self.newest_id % ID_SPACE)

    @functools.cached_property
    def newest_id(self) -> int:
        return max(self.snapshot_ids(), default=0)

    def judge(self, snapshot_id: int, reports: Mapping[tuple[str, int], Report] | None = None
              ) -> Verdict:
        """snapshot_id unwrapped (as from snapshot_ids()); reports by (process, wire ID)."""
        verdict = Verdict(snapshot_id % ID_SPACE, "consistent")
        cuts = self.cut(snapshot_id)
        verdict.missing = [self.processes[i].name for i in self.in_group if i not in cuts]
        if verdict.missing:
            verdict.status = "incomplete"
            return verdict
        for q, (_, clock) in cuts.items():
            for p, (position, _) in cuts.items():
                if clock[self.component[p]] > position:
                    verdict.status = "inconsistent"
                    verdict.witness = self._witness(q, cuts[q][0], p, position)
                    return verdict
        if any(clock[self.taint] for _, clock in cuts.values()):
            verdict.status = "unjudged"
            return verdict
        if reports is not None:
            verdict.channel_errors = self._check_channels(verdict.snapshot_id, cuts, reports)
        return verdict

    def cut(self, snapshot_id: int) -> dict[int, tuple[int, tuple[int, ...]]]:
        """Per in-group process (by index) that took snapshot_id (unwrapped): its
        cut's position (events before it) and its vector clock there."""
        cuts = {}
        for i in self.in_group:
            s = self.processes[i].cut(snapshot_id)
            if s is not None:
                cuts[i] = (self.processes[i].snapshots[s][2], self.at_snapshot[i][s])
        return cuts

    def _witness(self, q: int, q_cut: int, p: int, p_cut: int) -> list[Event]:
        """A chain from an event of p after its cut to an event of q before its cut:
        walk back from q's cut, each time through the latest receive whose send
        already knew of p's events past p_cut, to that send."""
        component = self.component[p]
        chain = []
        process, position = q, q_cut - 1
        while not (process == p and position >= p_cut):
            events = self.processes[process]
            while not self._imports(events, position, component, p_cut):
                position -= 1
            msg = events.msgs[position]
            chain.append(Event(events.name, position, "recv", msg))
            process, position = self.sent_at[msg]
            chain.append(Event(self.processes[process].name, position, "send", msg))
        return chain[::-1]

    def _imports(self, events: Process, position: int, component: int, p_cut: int) -> bool:
        """Is this event a receive whose send knew of p's events past p's cut?"""
        sent = self.sent.get(events.msgs[position]) if events.kinds[position] == "recv" else None
        return sent is not None and sent[component] > p_cut

    def _check_channels(self, wire_id: int, cuts: dict[int, tuple[int, tuple]],
                        reports: Mapping[tuple[str, int], Report]) -> list[str]:
        errors = []
        channels = self.channels
        for p in self.in_group:
            name = self.processes[p].name
            report = reports.get((name, wire_id))
            if report is None:
                errors.append(f"no report from {name}")
                continue
            senders = {self.processes[q].name for q, to in channels if to == p}
            for peer in sorted(set(report.channels) | senders):
                q = self.by_name.get(peer)
                if q not in cuts:
                    errors.append(f"{name} reports a channel with {peer}, not in-group")
                    continue
                received, in_flight = self.channel_truth(channels.get((q, p)), cuts[q][0],
                                                         cuts[p][0])
                recorded = report.channels.get(peer)
                if recorded is None:
                    if in_flight:
                        errors.append(f"{peer}->{name}: not in {name}'s report, truth "
                                      f"{sorted(in_flight)} in flight")
                    continue
                sent_before = self._sent_before(channels.get((p, q)), cuts[p][0])
                if recorded.sent_before != sent_before:
                    errors.append(f"{name}->{peer}: sent_before {recorded.sent_before}, "
                                  f"truth {sent_before}")
                if recorded.received_before != received:
                    errors.append(f"{peer}->{name}: received_before {recorded.received_before}, "
                                  f"truth {received}")
                ids = {item["id"] for item in recorded.in_flight}
                if ids != in_flight:
                    errors.append(f"{peer}->{name}: in flight recorded {sorted(ids)}, "
                                  f"truth {sorted(in_flight)}")
        return errors

    @functools.cached_property
    def channels(self) -> dict[tuple[int, int], tuple[list, list, list, list]]:
        """Per in-group channel (q, p), its APP messages by send position:
        send positions, receive positions (NEVER if not received), message ids,
        running maximum of the receive positions."""
        received = {}
        for p in self.in_group:
            events = self.processes[p]
            for j, (kind, msg) in enumerate(zip(events.kinds, events.msgs)):
                if kind == "recv":
                    received.setdefault(msg, j)
        channels = {}
        for q in self.in_group:
            events = self.processes[q]
            for j, kind in enumerate(events.kinds):
                p = self.by_name.get(events.peers[j])
                if kind == "send" and not events.ctl[j] and p in self.component:
                    sends, recvs, msgs, _ = channels.setdefault((q, p), ([], [], [], []))
                    sends.append(j)
                    recvs.append(received.get(events.msgs[j], NEVER))
                    msgs.append(events.msgs[j])
        for sends, recvs, msgs, running_max in channels.values():
            running_max.extend(itertools.accumulate(recvs, max))
        return channels

    @staticmethod
    def _sent_before(channel, q_cut: int) -> int:
        return bisect.bisect_left(channel[0], q_cut) if channel else 0

    @staticmethod
    def channel_truth(channel, q_cut: int, p_cut: int) -> tuple[int, set[str]]:
        """Received before p's cut, and delivered in flight (sent before q's cut,
        received after p's).  Messages never received cannot be recorded."""
        if not channel:
            return 0, set()
        sends, recvs, msgs, running_max = channel
        received = sum(1 for r in recvs if r < p_cut)
        in_flight = set()
        t = bisect.bisect_left(sends, q_cut) - 1
        while t >= 0 and running_max[t] >= p_cut:
            if p_cut <= recvs[t] < NEVER:
                in_flight.add(msgs[t])
            t -= 1
        return received, in_flight


def chain_summary(chains: list[Chain], tau_us: int | None) -> dict:
    """A run's external causal chains (Trace.chains) against the tau it assumed:
    tau held when no chain was shorter (None: no tau assumed, or no chain seen)."""
    latencies = [c.latency_us for c in chains]
    under = None if tau_us is None else sum(c < tau_us for c in latencies)
    return {"chains": len(chains), "shortest_chain_us": min(latencies, default=None),
            "chains_under_tau": under,
            "tau_held": None if under is None or not chains else under == 0}


def check(trace: Trace, snapshot_ids: Iterable[int] | None = None,
          reports: Iterable[Report] | None = None) -> list[Verdict]:
    """Verdicts for snapshot_ids as sent on the wire (default: every ID some
    in-group process jumped to)."""
    by_key = None if reports is None else {(r.process, r.snapshot_id): r for r in reports}
    ids = (trace.snapshot_ids() if snapshot_ids is None
           else [trace.unwrap(i) for i in snapshot_ids])
    return [trace.judge(i, by_key) for i in ids]


def wire_ids(text: str) -> list[int]:
    """--ids: snapshot IDs as sent on the wire; ValueError for one that is not."""
    ids = []
    for item in text.split(","):
        item = item.strip()
        if not (item.isascii() and item.isdigit()) or int(item) >= ID_SPACE:
            raise ValueError(f"--ids: {item!r} is not a snapshot ID (0 to {ID_SPACE - 1})")
        ids.append(int(item))
    return ids


def main(argv: list[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(description="Judge snapshots against the ground-truth logs.")
    p.add_argument("logs", nargs="+", help="event logs of every process, in- and out-group")
    p.add_argument("--reports", help="JSON lines of the processes' report messages")
    p.add_argument("--ids", help="comma-separated snapshot IDs (default: all seen)")
    p.add_argument("--tau-us", type=int, help="the tau the run assumed, to compare "
                   "with the external causal chains in the logs")
    p.add_argument("--json", help="write the verdicts here as JSON")
    args = p.parse_args(argv)
    try:
        ids = wire_ids(args.ids) if args.ids else None
        trace = Trace.load(args.logs)
        reports = None
        if args.reports:
            with open(args.reports) as f:
                reports = [Report.from_message(loads(line, MAX_DEPTH)) for line in f if line.strip()]
        verdicts = check(trace, ids, reports)
    except (OSError, LogError, ValueError) as e:
        print(f"checker: {e}", file=sys.stderr)
        return 2
    for verdict in verdicts:
        print(verdict)
    summary = collections.Counter(v.status for v in verdicts)
    print(json.dumps({"snapshots": len(verdicts), **summary,
                      "channel_errors": sum(bool(v.channel_errors) for v in verdicts),
                      "unmatched_receives": trace.unmatched,
                      "repeated_receives": len(trace.repeated),
                      "short_logs": len(trace.short_logs),
                      **chain_summary(trace.chains, args.tau_us)}))
    if trace.short_logs:
        print(f"checker: logs cut short (no closing record): {', '.join(trace.short_logs)}",
              file=sys.stderr)
    if trace.repeated:
        named = [f"{msg} ({times} times)" for msg, times in itertools.islice(
            trace.repeated.items(), 10)]
        more = len(trace.repeated) - len(named)
        print(f"checker: messages received more than once: {', '.join(named)}"
              + (f" and {more} more" if more else ""), file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(v) for v in verdicts], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
