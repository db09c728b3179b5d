"""What one snapshot leaves behind: its SLB acknowledgements, the in-group
reports and the verdict.  The engine fills it, the rules judge it, the store
keeps it, the CLI shows it."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from beaver.p4src.wire import ControlBody, Status

from .clock import Estimate
from .oob import Report
from .window import wire_id


class Mode(str, enum.Enum):
    OGM = "ogm"            # every SLB at once, no blocking; judged by a rule
    MGM = "mgm"            # one SLB: consistent by construction
    BLOCKING = "blocking"  # the strawman: hold inbound at every SLB, commit all, release
    LAI_YANG = "lai-yang"  # baseline: no gateways, the processes initiated out of band
    POLLING = "polling"    # baseline: no initiation, each process snapshots on its timer


class Outcome(str, enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"      # a detection rule saw a possible inconsistency
    INCOMPLETE = "incomplete"  # an SLB or a process did not answer in time


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    rule: str = ""                  # the rule that decided, if one did
    margin_us: float | None = None  # how far past the rule's bound (> 0 rejects)


@dataclass
class Ack:
    """One SLB's final answer for the snapshot (the INIT's, or for a timed
    initiation the READ's after the activation), with the clock estimate in
    force when it arrived."""
    slb: str
    status: Status
    body: ControlBody
    sent_us: int          # controller clock, the answered attempt
    received_us: int      # controller clock
    attempts: int         # requests sent, resends included
    clock: Estimate | None = None

    @property
    def exact(self) -> bool:
        """The record describes this snapshot's ID (STALE: the SLB's newer one)."""
        return self.status in (Status.OK, Status.ALREADY)


@dataclass
class SnapshotRecord:
    number: int                 # unwrapped: 1, 2, 3, ... never reused
    mode: Mode
    rule: str                   # the detection rule for OGM, else the mode's name
    tau_us: int
    slbs: list[str]             # the SLBs initiated
    started_us: int             # t0: first INIT sent (controller clock): the ID exists
    wall_time: float            # Unix time at the start, for people
    finished_us: int | None = None   # t1: last acknowledgement received
    acks: dict[str, Ack] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)
    verdict: Verdict | None = None
    retake_of: int | None = None     # the rejected snapshot this one retakes
    activate_us: int | None = None   # timed initiation: when every SLB was to switch

    @property
    def snapshot_id(self) -> int:
        """The ID on the wire."""
        return wire_id(self.number)
