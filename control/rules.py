"""The OGM detection rules: could the cut be inconsistent?

A causal chain from an initiated SLB, through the out-group, back in
through a not-yet-initiated SLB takes at least tau.  Both rules accept only
when no such chain fits.

coarse (the paper's prototype): accept iff t1 - t0 < tau, where t0 is when
  the first INIT left and t1 when the last acknowledgement came back, both on
  the controller's clock.

fine: each SLB reports, on its own clock, when it switched to the ID and
  when it last forwarded a packet marked with an older one.  Mapped to the
  controller's clock, reject iff some SLB's last old-ID packet came later
  than (earliest switch + tau).  Clock error is taken against acceptance:
  last-old times at their latest, switch times at their earliest.  No SLB can
  switch before t0 (the ID did not exist), so t0 bounds every switch from
  below; an SLB that passed the ID without recording it (STALE) has only
  that bound, and its record (of its newer ID) bounds its last old-ID packet
  from above.
"""
from __future__ import annotations

from .record import Ack, Outcome, Verdict

COARSE = "coarse"
FINE = "fine"


def coarse(t0_us: int, t1_us: int, tau_us: int) -> Verdict:
    elapsed = t1_us - t0_us
    margin = elapsed - tau_us
    if margin >= 0:
        return Verdict(Outcome.REJECTED, f"coarse rule: t1 - t0 = {elapsed} us is not "
                       f"below tau = {tau_us} us (over by {margin} us)", COARSE, margin)
    return Verdict(Outcome.ACCEPTED, f"coarse rule: t1 - t0 = {elapsed} us < tau = "
                   f"{tau_us} us", COARSE, margin)


def fine(acks: list[Ack], t0_us: int, tau_us: int) -> Verdict:
    missing = [a.slb for a in acks if a.clock is None]
    if missing:
        return Verdict(Outcome.REJECTED, f"fine rule: no clock alignment for "
                       f"{', '.join(missing)}", FINE)
    first_slb, first = None, None
    for ack in acks:
        switched = t0_us
        if ack.exact:
            switched = max(t0_us, ack.clock.to_controller(ack.body.switch_time)[0])
        if first is None or switched < first:
            first_slb, first = ack.slb, switched
    last_slb, last = None, None
    for ack in acks:
        if ack.body.last_old_time == 0:   # never forwarded a marked packet
            continue
        latest = ack.clock.to_controller(ack.body.last_old_time)[1]
        if last is None or latest > last:
            last_slb, last = ack.slb, latest
    if last is None:
        return Verdict(Outcome.ACCEPTED, "fine rule: no SLB forwarded an old-ID packet", FINE)
    after = last - first
    margin = after - tau_us
    if margin > 0:
        return Verdict(Outcome.REJECTED,
                       f"fine rule: {last_slb} forwarded an old-ID packet {after:.0f} us after "
                       f"{first_slb} switched, tau = {tau_us} us (over by {margin:.0f} us)",
                       FINE, margin)
    return Verdict(Outcome.ACCEPTED,
                   f"fine rule: last old-ID packet ({last_slb}) {after:.0f} us after the "
                   f"first switch ({first_slb}), within tau = {tau_us} us", FINE, margin)
