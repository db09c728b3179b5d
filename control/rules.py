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
  last-old times at their latest, switch times at their earliest, except
  that an SLB's own two times share one clock and are compared exactly.  No SLB can
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
    # earliest each SLB can have switched, on the controller's clock
    switched = {a.slb: max(t0_us, a.clock.to_controller(a.body.switch_time)[0]) if a.exact
                else t0_us for a in acks}
    worst = None   # (how long after a switch an old-ID packet left, its SLB, the switched SLB)
    for old in acks:
        if old.body.last_old_time == 0:   # never forwarded a marked packet
            continue
        latest = old.clock.to_controller(old.body.last_old_time)[1]
        for new in acks:
            if new is old and old.exact:   # one switch, one clock: no alignment error
                after = old.body.last_old_time - old.body.switch_time
            else:
                after = latest - switched[new.slb]
            if worst is None or after > worst[0]:
                worst = (after, old.slb, new.slb)
    if worst is None:
        return Verdict(Outcome.ACCEPTED, "fine rule: no SLB forwarded an old-ID packet", FINE)
    after, last_slb, first_slb = worst
    margin = after - tau_us
    if margin > 0:
        return Verdict(Outcome.REJECTED,
                       f"fine rule: {last_slb} forwarded an old-ID packet {after:.0f} us after "
                       f"{first_slb} switched, tau = {tau_us} us (over by {margin:.0f} us)",
                       FINE, margin)
    return Verdict(Outcome.ACCEPTED,
                   f"fine rule: last old-ID packet ({last_slb}) {after:.0f} us after the "
                   f"switch of {first_slb}, within tau = {tau_us} us", FINE, margin)
