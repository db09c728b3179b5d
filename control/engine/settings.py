"""What a snapshot run is asked to do (RunSettings), and what it did
(RunSummary)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from beaver.p4src.wire import SCHEDULE_MAX

from beaver.control.config import LEAD_MAX_US, TAU_MAX_US
from beaver.control.engine import rules
from beaver.control.engine.record import Mode, Outcome
from beaver.control.engine.window import MAX_SPAN

IMMEDIATE, TIMED = "immediate", "timed"
WITHOUT_SLBS = (Mode.LAI_YANG, Mode.POLLING)   # baselines that initiate no SLB
SCHEDULE_SPAN_US = 1 << 31   # the longest schedule: the switch's division is exact within 2^32 us


class SettingsError(ValueError):
    """A run that cannot be made with this service (for example MGM with 3 SLBs)."""


@dataclass(frozen=True)
class RunSettings:
    mode: Mode = Mode.OGM
    rule: str = rules.FINE
    tau_us: int = 5000
    count: int = 1                  # snapshots asked for (retakes come on top)
    inflight: int = 1               # k: most snapshots in flight at once
    batch: int = 1                  # IDs per schedule (timed OGM; 1: one control message each)
    rate: float | None = None       # snapshots started per second; None: as the window allows
    ack_timeout_ms: float = 100.0
    retries: int = 2
    report_timeout_ms: float = 2000.0
    retake: int = 0                 # retakes allowed for each rejected snapshot
    initiation: str = IMMEDIATE     # OGM: immediate or timed
    lead_us: int | None = None      # timed: activation this far ahead; None: from round trips
    clock_interval_s: float = 10.0
    recover_timeout_s: float = 30.0
    delays_us: dict[str, int] = field(default_factory=dict)   # SLB or process -> late start

    def check(self, slbs: int):
        if self.count < 1:
            raise SettingsError("--count must be at least 1")
        if self.inflight < 1:
            raise SettingsError("--inflight must be at least 1")
        if self.inflight > MAX_SPAN:
            raise SettingsError(f"--inflight {self.inflight} could overwrite SLB records before "
                                f"they are read: the ring keeps the last {MAX_SPAN + 1} IDs, "
                                f"so at most {MAX_SPAN} may be in flight")
        if not 1 <= self.batch <= min(SCHEDULE_MAX, self.inflight):
            raise SettingsError(f"--batch must be 1 to {SCHEDULE_MAX} (one schedule's IDs) and "
                                f"no more than --inflight ({self.inflight}): a batch is in "
                                "flight whole")
        if self.batch > 1 and (self.mode is not Mode.OGM or self.initiation != TIMED):
            raise SettingsError("--batch is for mode ogm with --initiation timed: batched "
                                "IDs activate at their own times")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise SettingsError(f"--rate must be a positive number of snapshots per second, "
                                f"got {self.rate:g}")
        if self.rate and self.batch * 1e6 / self.rate >= SCHEDULE_SPAN_US:
            raise SettingsError(f"--batch {self.batch} at --rate {self.rate:g} spans "
                                f"{self.batch / self.rate:.0f} s: a schedule spans at most "
                                f"{SCHEDULE_SPAN_US / 1e6:.0f} s")
        if self.retake < 0:
            raise SettingsError("--retake must not be negative")
        if self.tau_us < 0:
            raise SettingsError("--tau must not be negative")
        if self.tau_us > TAU_MAX_US:
            raise SettingsError(f"--tau {self.tau_us} us is over {TAU_MAX_US} (an hour), the "
                                "configuration's bound")
        if self.rule not in (rules.FINE, rules.COARSE):
            raise SettingsError(f"unknown rule {self.rule!r}: fine or coarse")
        if self.batch > 1 and self.rule != rules.FINE:
            raise SettingsError("--batch judges by the schedules, a form of the fine rule: "
                                "--rule fine")
        if self.mode is Mode.MGM and slbs != 1:
            raise SettingsError(f"mode mgm is for one SLB; the service has {slbs}")
        if self.mode is Mode.BLOCKING and self.inflight != 1:
            raise SettingsError("mode blocking holds traffic until all SLBs commit: "
                                "it takes one snapshot at a time (--inflight 1)")
        if any(delay < 0 for delay in self.delays_us.values()):
            raise SettingsError("initiation delays must not be negative")
        if self.initiation not in (IMMEDIATE, TIMED):
            raise SettingsError(f"unknown initiation {self.initiation!r}: immediate or timed")
        if self.initiation == TIMED and self.mode is not Mode.OGM:
            raise SettingsError("--initiation timed is for mode ogm")
        if self.lead_us is not None and not 0 < self.lead_us <= LEAD_MAX_US:
            raise SettingsError(f"--lead-us must be 1 to {LEAD_MAX_US} (10 s), the "
                                "configuration's bound")


@dataclass
class RunSummary:
    started: int = 0
    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    elapsed_s: float = 0.0
    first: int | None = None
    last: int | None = None
    interrupted: bool = False
    late_inits: int = 0             # timed: INITs that reached their SLB after their time
    lead_us: list[int] = field(default_factory=list)   # timed: least and most lead used
    behind_us: int = 0              # with a rate: the furthest starts fell behind it
    cpu_s: float = 0.0              # this process's CPU time during the run, every thread
    reports_asked: int = 0          # in-group report requests: first asks, then re-asks
    reasked: int = 0                # of them, re-asks (a channel not yet whole, or a
                                    # polling timer not yet fired)
    by_records: int = 0             # batched: snapshots its schedules left to their records
    latencies: list[tuple[int, int]] = field(default_factory=list)   # (us, snapshots)
    saved: list[tuple[int, int]] = field(default_factory=list)   # (when committed, snapshots)

    @property
    def finished(self) -> int:
        return sum(self.outcomes.values())

    @property
    def rate(self) -> float:
        return self.finished / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def steady_rate(self, edge: float = 0.1) -> float | None:
        """Snapshots per second between the commits that saw the first
        `edge` and all but the last `edge` of them stored: the rate held,
        without the first batches' start nor the last ones' drain (None if
        too few commits to tell)."""
        total = sum(n for _, n in self.saved)
        begin = end = None
        done = 0
        for at_us, n in sorted(self.saved):
            done += n
            if begin is None and done >= edge * total:
                begin, begun = at_us, done
            if done <= (1 - edge) * total:
                end, ended = at_us, done
        if begin is None or end is None or end <= begin:
            return None
        return (ended - begun) / ((end - begin) / 1e6)

    def latency_us(self, quantile: float) -> int | None:
        """Start (the first request sent) to verdict (stored), at a quantile
        over every snapshot finished."""
        total = sum(n for _, n in self.latencies)
        if not total:
            return None
        rank, seen = quantile * (total - 1), 0
        for latency, n in sorted(self.latencies):
            seen += n
            if seen > rank:
                return latency
        return self.latencies[-1][0]
