/* Epoch tracking: the SLB's snapshot ID and its history, in registers.
 *
 * IDs are 32-bit serial numbers (RFC 1982): a is newer than b when
 * 0 < (a - b) mod 2^32 < 2^31.  A ring of RING_SIZE records, indexed by
 * the ID's low bits, remembers for each recent ID when the SLB moved to it,
 * the last packet marked with an older ID, how many it marked, and, if the
 * ID was scheduled, the time it was scheduled for.
 *
 * Timed initiation: an INIT whose activate_at lies ahead schedules the ID
 * instead of moving to it.  The oldest scheduled ID ahead of the current one
 * is armed (epoch_due); the first VIP packet or control request at or after
 * its time moves the SLB to it and arms the next ID if that is scheduled
 * too, so scheduled IDs activate in ID order; up to DUE_STEPS of them that
 * are due at once activate on one packet (snapshots may come faster than an
 * SLB's packets).  A VIP packet that finds an ID due carries the newest it
 * moved to and is its first packet: mark leaves the state to Epoch, which
 * files the old records and counts the packet.
 *
 * The registers are shared by:
 *   mark     an action for every VIP packet (Encapsulate calls it);
 *            output: meta.epoch_id = the current ID, meta.holding, meta.due
 *            (an armed ID's time has come); the packet counted under the
 *            current ID.
 *   Epoch    for a VIP packet that found an ID due (it counts the packet
 *            under that ID), and for every control request or STAMP: first
 *            activates a due scheduled ID; then
 *            input: meta.epoch_op, and for EPOCH_LEARN hdr.beaver.snapshot_id,
 *            for EPOCH_CTL hdr.packet_out.opcode and a valid hdr.ctl.
 *            output: for EPOCH_CTL, hdr.ctl filled in as the answer and
 *            meta.ctl_status.
 * Postcondition: the current ID only ever moves forward, and by learning at
 *   most LEARN_WINDOW at a time (a refused learn is counted); a marked packet is counted under the ID it
 *   carries unless VIP traffic is held; a request with an unknown opcode or
 *   a stale ID changes no register.
 *
 * Batched control (OP_INIT_BATCH, OP_READ_BATCH) carries up to BATCH_MAX
 * consecutive IDs in one request, so that many snapshots cost an SLB one
 * packet-out each way: INIT_BATCH plans each ID still newer than the
 * current one at its own time, as a timed INIT does, and arms the first;
 * READ_BATCH visits each ID in order, activates it if it is scheduled and
 * its time has passed (as a single READ does), and answers its record.  A
 * batch that would reach RING_SIZE or more past the current ID is refused
 * whole (ST_TOO_FAR): its slots still hold records and schedules of IDs
 * not yet final.  The steps are unrolled (P4 has no loops).
 *
 * Marking is on every VIP packet's path, so it is two register reads and one
 * write, inside the action that encapsulates: BMv2 pays about a microsecond
 * for every table it applies, and statements outside actions become tables.
 */
#ifndef BEAVER_EPOCH_P4
#define BEAVER_EPOCH_P4

// The current ID and its running record, one register so that marking is
// one read and one write:  hold (112) | ID (111:80) | packets marked (79:48)
// | time of the last one (47:0).
register<bit<113>>(1) epoch_state;
// The armed activation: armed (80) | scheduled ID (79:48) | its time (47:0).
register<bit<81>>(1) epoch_due;
// The ring: each recent ID's record, final once the SLB moved past it.
register<bit<32>>(RING_SIZE) epoch_slot_id;             // which ID the record holds
register<bit<48>>(RING_SIZE) epoch_slot_switch_time;
register<bit<48>>(RING_SIZE) epoch_slot_last_old_time;
register<bit<80>>(RING_SIZE) epoch_slot_marks;          // packets marked (79:48), last (47:0)
register<bit<32>>(RING_SIZE) epoch_slot_sched_id;       // which ID the schedule is for
register<bit<48>>(RING_SIZE) epoch_slot_sched_at;       // when it is to activate

// Learning refused, by REFUSED_* reason.
counter(REFUSED_REASONS, CounterType.packets) learn_refused;

// A VIP packet: its mark (meta.epoch_id), the hold flag (meta.holding) and
// whether an armed ID is due (meta.due); the packet is counted under the
// current ID.  Held packets are dropped, not forwarded: they leave the
// record unchanged.  Called by Encapsulate.
action mark(inout metadata_t meta, in bit<48> now) {
    bit<113> st;
    epoch_state.read(st, 0);
    bit<81> armed;
    epoch_due.read(armed, 0);
    bool due = armed[80:80] == 1 && now >= armed[47:0];
    meta.due = due ? 1w1 : 1w0;
    meta.holding = st[112:112];
    meta.epoch_id = due ? armed[79:48] : st[111:80];
    bit<32> count = st[79:48] + (bit<32>)(~st[112:112]);
    bit<48> last = st[112:112] == 1 ? st[47:0] : now;
    epoch_state.write(0, due ? st : st[112:80] ++ count ++ last);
}

control Epoch(inout headers_t hdr, inout metadata_t meta, in bit<48> now) {
    bit<113> s;   // the state
    bit<32> cur;
    bit<1>  hold;
    bit<81> due;
    // Batched requests: the ID a step is at, its activation time, its facts.
    // (The steps of READ_BATCH open the IDs they move to and re-arm once
    // after the last: BMv2's JSON holds a copy of each step's actions.)
    bit<32> step_id;
    bit<48> step_at;
    bool    step_newer;
    bool    step_known;
    bool    step_scheduled;
    bit<48> step_sched_at;

    action load() {
        epoch_state.read(s, 0);
        cur = s[111:80];
        hold = s[112:112];
    }

    // Move to id (caller checked it is newer): the current ID's record is
    // filed in the ring and id's opened.  The last old-ID packet is the
    // current ID's last mark, or, if it marked none, what it inherited.
    action open(bit<32> id) {
        bit<32> from = (bit<32>)cur[RING_BITS-1:0];
        epoch_slot_marks.write(from, s[79:0]);
        bit<48> inherited;
        epoch_slot_last_old_time.read(inherited, from);
        bit<32> slot = (bit<32>)id[RING_BITS-1:0];
        epoch_slot_id.write(slot, id);
        epoch_slot_switch_time.write(slot, now);
        epoch_slot_last_old_time.write(slot, s[47:0] > inherited ? s[47:0] : inherited);
        cur = id;
        s = hold ++ cur ++ 80w0;
        epoch_state.write(0, s);
    }

    // After a move: the armed activation stays if it is still ahead, else
    // the next ID is armed if it is scheduled.
    action rearm() {
        bit<32> next = cur + 1;
        bit<32> next_slot = (bit<32>)next[RING_BITS-1:0];
        bit<32> next_id;
        bit<48> next_at;
        epoch_slot_sched_id.read(next_id, next_slot);
        epoch_slot_sched_at.read(next_at, next_slot);
        bit<32> armed_ahead = due[79:48] - cur;
        bool keep = due[80:80] == 1 && armed_ahead != 0 && armed_ahead[31:31] == 0;
        bool chain = next_id == next && next_at != 0;
        due = keep ? due : (chain ? 1w1 ++ next ++ next_at : 81w0);
        epoch_due.write(0, due);
    }

    action advance(bit<32> id) {
        open(id);
        rearm();
    }

    // Note id's (newer than the current one) asked-for time in its slot, so
    // that its record shows it, late or not.
    action plan(bit<32> id, bit<48> at) {
        bit<32> slot = (bit<32>)id[RING_BITS-1:0];
        epoch_slot_sched_id.write(slot, id);
        epoch_slot_sched_at.write(slot, at);
    }

    // Arm id for time at, unless an older scheduled ID is armed already.
    action arm(bit<32> id, bit<48> at) {
        bit<32> armed_ahead = due[79:48] - id;
        bool older_armed = due[80:80] == 1 && armed_ahead[31:31] == 1;
        due = older_armed ? due : 1w1 ++ id ++ at;
        epoch_due.write(0, due);
    }

    // The VIP packet that activated the current ID carries it, and is its
    // first marked one.
    action count_first() {
        s = hold ++ cur ++ (bit<32>)(~hold) ++ (hold == 1 ? 48w0 : now);
        epoch_state.write(0, s);
        meta.epoch_id = cur;
        hdr.encap_beaver.snapshot_id = cur;
    }

    action set_hold(bit<1> value) {
        hold = value;
        s = hold ++ s[111:0];
        epoch_state.write(0, s);
    }

    // Fill the answer's record fields with the record of id (the current
    // ID's running one, or the ring's), and its scheduled time if any.
    action report(bit<32> id) {
        bit<32> slot = (bit<32>)id[RING_BITS-1:0];
        hdr.ctl.snapshot_id = id;
        epoch_slot_switch_time.read(hdr.ctl.switch_time, slot);
        epoch_slot_last_old_time.read(hdr.ctl.last_old_time, slot);
        bit<80> marks;
        epoch_slot_marks.read(marks, slot);
        hdr.ctl.count = id == cur ? s[79:48] : marks[79:48];
        bit<32> sched_id;
        bit<48> sched_at;
        epoch_slot_sched_id.read(sched_id, slot);
        epoch_slot_sched_at.read(sched_at, slot);
        hdr.ctl.activate_at = sched_id == id ? sched_at : 48w0;
    }

    // Where step_id stands: newer than the current ID, recorded in the ring
    // (final or current), or scheduled (and when).
    action look() {
        bit<32> ahead = step_id - cur;
        step_newer = ahead != 0 && ahead[31:31] == 0;
        bit<32> slot = (bit<32>)step_id[RING_BITS-1:0];
        bit<32> recorded;
        epoch_slot_id.read(recorded, slot);
        step_known = !step_newer && recorded == step_id;
        bit<32> sched_id;
        epoch_slot_sched_id.read(sched_id, slot);
        epoch_slot_sched_at.read(step_sched_at, slot);
        step_scheduled = step_newer && sched_id == step_id && step_sched_at != 0;
    }

    // INIT_BATCH, one ID: planned at step_at if newer (a resent batch
    // leaves the IDs already reached alone), then on to the next.
    action plan_step() {
        bit<32> ahead = step_id - cur;
        bool newer = ahead != 0 && ahead[31:31] == 0;
        bit<32> slot = (bit<32>)step_id[RING_BITS-1:0];
        bit<32> sched_id;
        bit<48> sched_at;
        epoch_slot_sched_id.read(sched_id, slot);
        epoch_slot_sched_at.read(sched_at, slot);
        epoch_slot_sched_id.write(slot, newer ? step_id : sched_id);
        epoch_slot_sched_at.write(slot, newer ? step_at : sched_at);
        step_id = step_id + 1;
        step_at = step_at + (bit<48>)hdr.batch.spacing;
    }

    // READ_BATCH, one ID: into r what a single READ would answer (look()
    // and any activation came first): its record, or if it is still
    // scheduled or not recorded, the current ID's; then on to the next.
    action record_step(inout record_t r) {
        bool recorded = step_known || step_id == cur;
        bit<32> about = recorded ? step_id : cur;
        bit<32> slot = (bit<32>)about[RING_BITS-1:0];
        r.setValid();
        r.status = recorded ? ST_OK : (step_scheduled ? ST_SCHEDULED : ST_STALE);
        r.snapshot_id = about;
        epoch_slot_switch_time.read(r.switch_time, slot);
        epoch_slot_last_old_time.read(r.last_old_time, slot);
        bit<80> marks;
        epoch_slot_marks.read(marks, slot);
        r.count = about == cur ? s[79:48] : marks[79:48];
        bit<32> sched_id;
        bit<48> sched_at;
        epoch_slot_sched_id.read(sched_id, slot);
        epoch_slot_sched_at.read(sched_at, slot);
        r.activate_at = !recorded && step_scheduled ? step_sched_at :
                        (sched_id == about ? sched_at : 48w0);
        step_id = step_id + 1;
    }

#define PLAN_STEP(i) if (hdr.batch.count > i) { plan_step(); }
#define READ_STEP(i) if (hdr.batch.count > i) {                     \
        look();                                                       \
        if (step_scheduled && step_sched_at <= now) { open(step_id); } \
        record_step(hdr.records[i]);                                  \
    }
#define EIGHT(STEP, b) STEP(b) STEP(b + 1) STEP(b + 2) STEP(b + 3) \
                       STEP(b + 4) STEP(b + 5) STEP(b + 6) STEP(b + 7)
#define SIXTEEN(STEP) EIGHT(STEP, 0) EIGHT(STEP, 8)   // BATCH_MAX steps

    apply {
        // DUE_STEPS (4) activations at most, unrolled: P4 has no loops.
        epoch_due.read(due, 0);
        if (due[80:80] == 1 && now >= due[47:0]) {
            load();
            advance(due[79:48]);
            if (due[80:80] == 1 && now >= due[47:0]) {
                advance(due[79:48]);
                if (due[80:80] == 1 && now >= due[47:0]) {
                    advance(due[79:48]);
                    if (due[80:80] == 1 && now >= due[47:0]) {
                        advance(due[79:48]);
                    }
                }
            }
        }

        if (meta.epoch_op == EPOCH_NONE) {   // from a VIP packet that found the ID due
            load();
            count_first();
        } else if (meta.epoch_op == EPOCH_LEARN) {
            load();
            bit<32> learned = hdr.beaver.snapshot_id;
            bit<32> ahead = learned - cur;
            if (ahead != 0 && ahead[31:31] == 0) {
                if (ahead <= LEARN_WINDOW) {
                    advance(learned);
                } else {
                    learn_refused.count(REFUSED_AHEAD);
                }
            }
        } else if (meta.epoch_op == EPOCH_CTL) {
            load();
            bit<8> request = hdr.packet_out.opcode;
            bit<32> id = hdr.ctl.snapshot_id;
            bit<48> at = hdr.ctl.activate_at;
            bit<32> ahead = id - cur;
            bool newer = ahead != 0 && ahead[31:31] == 0;
            bit<32> slot = (bit<32>)id[RING_BITS-1:0];
            bit<32> recorded;
            epoch_slot_id.read(recorded, slot);
            bool known = !newer && recorded == id;
            bit<32> sched_id;
            epoch_slot_sched_id.read(sched_id, slot);
            bit<48> sched_at;
            epoch_slot_sched_at.read(sched_at, slot);
            bool scheduled = newer && sched_id == id && sched_at != 0;   // 0: at once

            hdr.ctl.id_before = cur;
            meta.ctl_status = ST_OK;
            if (request == OP_INIT) {
                if (newer) {
                    plan(id, at);
                    if (at > now) {
                        arm(id, at);
                        meta.ctl_status = ST_SCHEDULED;
                    } else {
                        advance(id);   // at once, or late: the record shows which
                    }
                } else if (known) {
                    meta.ctl_status = ST_ALREADY;
                } else {
                    meta.ctl_status = ST_STALE;
                }
                if (cur == id && (hdr.ctl.flags & FLAG_HOLD) != 0) {
                    set_hold(1);
                }
            } else if (request == OP_READ) {
                if (scheduled && sched_at <= now) {
                    advance(id);   // its time passed unarmed (an older one displaced it): late
                } else if (scheduled) {
                    meta.ctl_status = ST_SCHEDULED;
                } else if (!known) {
                    meta.ctl_status = ST_STALE;
                }
            } else if (request == OP_INIT_BATCH || request == OP_READ_BATCH) {
                bit<32> last_ahead = id + (bit<32>)hdr.batch.count - 1 - cur;
                if (hdr.batch.count == 0 || hdr.batch.count > BATCH_MAX) {
                    meta.ctl_status = ST_BAD_BATCH;
                } else if (request == OP_READ_BATCH) {
                    step_id = id;
                    SIXTEEN(READ_STEP)
                    rearm();   // once for every move the steps made
                } else if (last_ahead[31:31] == 0 && last_ahead >= RING_SIZE) {
                    meta.ctl_status = ST_TOO_FAR;
                } else {
                    step_id = id;
                    step_at = at;
                    SIXTEEN(PLAN_STEP)
                    if (newer) {
                        arm(id, at);
                    }
                    meta.ctl_status = ST_SCHEDULED;
                }
            } else if (request == OP_RELEASE) {
                set_hold(0);
            } else {
                meta.ctl_status = ST_BAD_OPCODE;
            }

            if (known || cur == id) {
                report(id);
            } else {
                report(cur);
            }
            if (meta.ctl_status == ST_SCHEDULED) {
                epoch_slot_sched_at.read(hdr.ctl.activate_at, slot);
            }
            hdr.ctl.id_after = cur;
            hdr.ctl.now = now;
            hdr.ctl.slb_id = meta.slb_id;
            hdr.ctl.flags = (hold == 1 ? FLAG_HOLD : 8w0) |
                            (meta.marking == 1 ? FLAG_MARKING : 8w0);
        }
    }
}

#endif
