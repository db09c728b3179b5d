"""The controller's hold on every SLB of a service: sessions, pipeline,
tables, IDs and clocks.

One `Slb` per SLB bundles its configuration, its P4Runtime session, the
Beaver requests over it and its clock: probed through its probe port when
it has one, else aligned by packet-out round trips.  `SlbFleet` connects
them all (bounded retries, then one clear error), programs them, reports
their state, aligns their clocks and brings back a switch that restarted.
SLBs that run the plain pipeline (the SLB without Beaver, [pipeline] name =
"plain") have Beaver's tables and no epoch state: they are programmed, and
asked nothing of IDs or clocks.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from beaver.p4src import ids
from beaver.p4src.wire import Op, Status

from beaver.control.slbs import clock
from beaver.control.engine import timing
from beaver.control.config import ServiceConfig, SlbConfig
from beaver.control.slbs.probe import ClockProbe
from beaver.control.slbs.program import slb_updates
from beaver.control.p4runtime.session import NotPrimary, SwitchError, SwitchSession, SwitchUnavailable
from beaver.control.slbs.requests import RequestTimeout, SlbRequests
from beaver.control.p4runtime.tables import sync

log = logging.getLogger(__name__)

BASE_TABLES = ("routes", "ingroup_ports", "ingroup_sources", "probe_ports")
VIP_TABLES = ("vips", "pool_members")   # written only once the SLB's ID is restored
REQUEST_TIMEOUT = 0.5                   # s, for one-off requests outside a snapshot
PROBE_SAMPLES = 500                     # probe answers an estimate needs before a run
PROBE_WAIT_S = 15.0   # for them (a switch busy forwarding lost ~1 in 9: 439 of 500 in 5 s once)


class Slb:
    """One SLB as the controller drives it."""

    def __init__(self, config: SlbConfig, election_id: int):
        self.config = config
        self.session = SwitchSession(config.name, config.address, config.device_id,
                                     (election_id >> 64, election_id & ((1 << 64) - 1)))
        self.control = SlbRequests(self.session)
        probed = config.probe_iface is not None
        self.clock = clock.ClockEstimate(config.name, clock.PROBE if probed else clock.PACKET_OUT)
        self.probe: ClockProbe | None = None   # started once the pipeline reflects probes
        self.incarnation = 0   # bumped at every connection: tells a stale "down" apart

    def start_probe(self):
        if self.config.probe_iface is not None and self.probe is None:
            self.probe = ClockProbe(self.config.probe_iface, self.clock).start()

    def stop_probe(self):
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    def close(self):
        self.stop_probe()
        self.session.close()

    @property
    def name(self) -> str:
        return self.config.name

    def request(self, op: Op, snapshot_id: int = 0, flags: int = 0, retries: int = 2):
        """One request, resent on timeout (INIT and READ are idempotent)."""
        for attempt in range(retries + 1):
            try:
                return self.control.request(op, snapshot_id, flags, REQUEST_TIMEOUT)
            except RequestTimeout:
                if attempt == retries:
                    raise

    def current_id(self) -> int:
        return self.request(Op.READ).body.id_after


@dataclass(frozen=True)
class SlbStatus:
    name: str
    address: str
    reachable: bool
    error: str = ""
    primary: bool = False
    pipeline: bool = False           # runs this controller's P4 program
    current_id: int | None = None
    holding: bool | None = None
    marking: bool | None = None
    offset_us: float | None = None   # switch clock - controller clock
    offset_error_us: float | None = None
    clock_source: str | None = None  # probe, or packet-out (no probe port)
    clock_samples: int | None = None


class SlbFleet:
    def __init__(self, config: ServiceConfig, election_id: int | None = None):
        self.config = config
        self.settings = config.controller
        election = election_id if election_id is not None else self.settings.election_id
        self.slbs = [Slb(slb, election) for slb in config.slbs]
        self.round_trips = timing.round_trips()   # lately, across runs: the leads
        # Called as on_down(slb, incarnation) from a receive thread when a
        # stream closes unexpectedly; the snapshot engine sets it during a run.
        self.on_down: Callable[[Slb, int], None] | None = None

    @property
    def plain(self) -> bool:
        """The SLBs run the plain pipeline: no epoch state to ask, no clock to
        keep, no snapshot to take."""
        return self.config.pipeline == "plain"

    # -- connection -----------------------------------------------------------

    def connect(self, retries: int | None = None):
        """Connects every SLB; SwitchUnavailable names the first that stayed down."""
        retries = self.settings.connect_retries if retries is None else retries
        for gw in self.slbs:
            self._connect(gw, retries)

    def _connect(self, gw: Slb, retries: int):
        delay, errors = 0.2, []
        for attempt in range(retries + 1):
            try:
                gw.session.connect(self.config.p4info, self.settings.connect_timeout_s,
                                   on_packet_in=gw.control.on_packet_in,
                                   on_close=lambda _s, gw=gw: self._closed(gw))
            except SwitchUnavailable as e:
                errors.append(str(e))
                if attempt < retries:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                continue
            gw.incarnation += 1
            return
        raise SwitchUnavailable(f"{errors[-1]} (gave up after {retries + 1} attempts)")

    def _closed(self, gw: Slb):
        gw.control.fail_all()
        if self.on_down is not None:
            self.on_down(gw, gw.incarnation)

    def close(self):
        for gw in self.slbs:
            gw.close()

    def require_primary(self):
        """NotPrimary unless this controller may write to every SLB."""
        backups = [gw.name for gw in self.slbs if not gw.session.is_primary]
        if backups:
            raise NotPrimary(f"another controller with a higher election ID is primary on "
                             f"{', '.join(backups)}: this one must not write")

    def require_pipeline(self):
        missing = [gw.name for gw in self.slbs if not gw.session.pipeline_installed()]
        if missing:
            raise SwitchError(f"{', '.join(missing)} not running the Beaver pipeline: "
                              f"run 'beaver ctl apply CONFIG' first")

    # -- programming ----------------------------------------------------------

    def marking_off(self) -> list[str]:
        """The SLBs whose marking is off (their answers say so)."""
        return [gw.name for gw in self.slbs if not gw.request(Op.READ).body.marking]

    def newest_id(self) -> int:
        """The newest ID any SLB holds (wire ID, 0 if all are fresh)."""
        newest = 0
        for gw in self.slbs:
            newest = ids.newest(gw.current_id(), newest)
        return newest

    def apply(self, push: bool = False, restore_id: int | None = None) -> list[str]:
        """Programs every SLB; pushes the pipeline where it is missing (or
        always with push).  A freshly pushed SLB gets back the newest ID of the
        others (or restore_id) before its VIPs, so it never marks older IDs.
        Returns what was done, one line per SLB."""
        self.require_primary()
        fresh = [push or not gw.session.pipeline_installed() for gw in self.slbs]
        if self.plain:
            restore_id = 0   # no ID to restore: program() asks none
        elif restore_id is None:
            running = [gw for gw, f in zip(self.slbs, fresh) if not f]
            restore_id = 0
            for gw in running:
                restore_id = ids.newest(gw.current_id(), restore_id)
        done = []
        for gw, pushed in zip(self.slbs, fresh):
            if pushed:
                gw.session.set_pipeline(self.config.p4info, self.config.bmv2_json)
            writes = self.program(gw, restore_id)
            done.append(f"{gw.name}: {'pipeline pushed, ' if pushed else ''}"
                        f"{writes} table writes")
        return done

    def program(self, gw: Slb, restore_id: int) -> int:
        """Writes gw's tables; before its VIPs, moves its ID up to restore_id
        if it is behind.  Returns the number of table updates written."""
        slb, session = gw.config, gw.session
        wanted = slb_updates(session.ctx, slb.slb_id, slb.slb_addr, self.config.vips,
                             slb.routes, self.config.ingroup, slb.marking,
                             slb.ingroup_ports, slb.probe_port)
        vip_ids = {session.ctx.get_table_id(t) for t in VIP_TABLES}
        first = [u for u in wanted if u.entity.table_entry.table_id not in vip_ids]
        later = [u for u in wanted if u.entity.table_entry.table_id in vip_ids]
        writes = sync(session, first, BASE_TABLES)
        if writes:
            session.write(*writes)
        if not self.plain and ids.is_newer(restore_id, gw.current_id()):
            answer = gw.request(Op.INIT, restore_id)
            if answer.status not in (Status.OK, Status.ALREADY):
                raise SwitchError(f"{gw.name}: could not restore ID {restore_id}: "
                                  f"{answer.status.name}")
        vip_writes = sync(session, later, VIP_TABLES)
        if vip_writes:
            session.write(*vip_writes)
        if not self.plain:
            gw.start_probe()
        return len(writes) + len(vip_writes)

    # -- clocks ---------------------------------------------------------------

    def align_clocks(self, samples: int = 16) -> list[int]:
        """Aligns every SLB's clock; returns the packet-out round trips seen
        (what an INIT's answer takes, unloaded)."""
        rtts = []
        for gw in self.slbs:
            rtts += self.align_clock(gw, samples)
        return rtts

    def settle_clocks(self, timeout_s: float = PROBE_WAIT_S):
        """Aligns every clock and waits until each probe's fast phase (a probe
        a millisecond through the switch) is over, so that a measurement that
        starts now sees only the steady probes, as a deployment whose
        controller has long been running does (Fig. 14).  SwitchError if a
        probe is still fast after timeout_s."""
        self.align_clocks()
        deadline = time.monotonic() + timeout_s
        for gw in self.slbs:
            while gw.probe is not None and not gw.probe.settled:
                if time.monotonic() > deadline:
                    raise SwitchError(f"{gw.name}: {gw.clock.samples} of "
                                      f"{gw.probe.fast_answers} clock probes answered "
                                      f"within {timeout_s:g} s")
                time.sleep(0.01)

    def align_clock(self, gw: Slb, samples: int = 16) -> list[int]:
        """Packet-out round trips into a packet-out clock; for a probed one,
        waits for PROBE_SAMPLES probe answers (SwitchError if they stay away:
        the probe port is not linked where the configuration says)."""
        answers = clock.measure(gw.control, samples, REQUEST_TIMEOUT)
        if gw.clock.source == clock.PACKET_OUT:
            for answer in answers:
                gw.clock.add(clock.Sample.of(answer))
        else:
            gw.start_probe()
            deadline = time.monotonic() + PROBE_WAIT_S
            while gw.clock.samples < PROBE_SAMPLES:
                if time.monotonic() > deadline:
                    raise SwitchError(
                        f"{gw.name}: {gw.clock.samples} of {PROBE_SAMPLES} clock probes "
                        f"answered on {gw.config.probe_iface} within {PROBE_WAIT_S:g} s "
                        f"({gw.probe.stats.sent} sent): is it linked to port "
                        f"{gw.config.probe_port}?")
                time.sleep(0.01)
        return [a.rtt_us for a in answers]

    # -- a switch that went away ----------------------------------------------

    def recover(self, gw: Slb, restore_id: int, timeout_s: float):
        """Reconnects gw (retrying until timeout_s), pushes the pipeline if the
        switch lost it, restores its tables and an ID at least restore_id, and
        re-measures its clock.  SwitchUnavailable if it stays away."""
        deadline = time.monotonic() + timeout_s
        gw.session.close()
        while True:
            try:
                self._connect(gw, retries=0)
                break
            except SwitchUnavailable as e:
                if time.monotonic() > deadline:
                    raise SwitchUnavailable(f"{gw.name} did not come back within "
                                            f"{timeout_s:.0f} s: {e}") from None
                time.sleep(0.2)
        self.require_primary()
        restarted = not gw.session.pipeline_installed()
        if restarted:
            log.warning("%s restarted: pushing the pipeline again", gw.name)
            gw.session.set_pipeline(self.config.p4info, self.config.bmv2_json)
        gw.clock.reset()   # before any answer of the new incarnation is read
        self.program(gw, restore_id)
        self.align_clock(gw)
        return restarted

    # -- state ----------------------------------------------------------------

    def status(self) -> list[SlbStatus]:
        """Each SLB's state; never raises for an SLB that is down."""
        out = []
        for gw in self.slbs:
            base = dict(name=gw.name, address=gw.config.address)
            try:
                if not gw.session.connected:
                    self._connect(gw, retries=0)
            except SwitchUnavailable as e:
                out.append(SlbStatus(reachable=False, error=str(e), **base))
                continue
            primary = gw.session.is_primary
            pipeline = gw.session.pipeline_installed()
            if not (primary and pipeline):
                why = "not primary" if not primary else "no Beaver pipeline"
                out.append(SlbStatus(reachable=True, primary=primary, pipeline=pipeline,
                                     error=f"registers unreadable: {why}", **base))
                continue
            if self.plain:
                out.append(SlbStatus(reachable=True, primary=primary, pipeline=pipeline,
                                     error="plain pipeline: no epoch state", **base))
                continue
            try:
                body = gw.request(Op.READ).body
                self.align_clock(gw)
                estimate = gw.clock.current
            except (RequestTimeout, SwitchError) as e:
                out.append(SlbStatus(reachable=True, primary=primary, pipeline=pipeline,
                                     error=str(e), **base))
                continue
            out.append(SlbStatus(reachable=True, primary=primary, pipeline=pipeline,
                                 current_id=body.id_after, holding=body.holding,
                                 marking=body.marking, offset_us=estimate.offset_us,
                                 offset_error_us=estimate.error_us,
                                 clock_source=estimate.source, clock_samples=estimate.samples,
                                 **base))
        return out
