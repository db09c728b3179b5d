/* Epoch tracking: the SLB's snapshot ID and its history, in registers.
 *
 * IDs are 32-bit serial numbers (RFC 1982): a is newer than b when
 * 0 < (a - b) mod 2^32 < 2^31.  A ring of RING_SIZE records, indexed by
 * the ID's low bits, remembers for each recent ID when the SLB moved to it,
 * the last packet marked with an older ID and how many it marked.
 *
 * Timed initiation works by schedules.  A schedule is `count` consecutive
 * IDs from `first`, the i-th due at `at + i * spacing` on this switch's
 * clock: a timed INIT is a schedule of one ID, an INIT_BATCH one of up to
 * SCHEDULE_MAX.  Schedules sit in a second ring, indexed by their first
 * ID.  One is armed (epoch_due: its first ID and the time the ID after the
 * current one is due); the first VIP packet or request at or after that
 * time moves the SLB to the newest of its IDs that is due, computed from
 * the schedule (no step per ID), and a schedule that is done arms the one
 * that starts at the next ID.  So however fast IDs fall due, a packet
 * carries the ID due when it is forwarded.
 *
 * Each schedule keeps its lateness: the latest packet forwarded with an ID
 * older than one of the schedule's whose time had come (late_last, 0 when
 * none), whatever move passed that ID (a due step, a learned ID, a READ).
 * That happens only when a schedule came too late (its INIT arrived
 * after its first time) or was not armed in time.  So for each of its IDs
 * n, on this switch's clock, every old-ID packet left before
 * max(T_n, late_last + 1) and the switch moved at T_n or later; the
 * controller judges a whole schedule by that one number (rules.py).  The
 * number is trusted only while the schedule was armed from before its first
 * ID was reached until its last (TRACK_FINAL), and no immediate INIT moved
 * the SLB past one of its IDs before that ID's time; otherwise (TRACK_LOST)
 * the controller reads the per-ID records instead.
 *
 * The registers are shared by:
 *   mark     an action for every VIP packet (Encapsulate calls it);
 *            output: id = the current ID, meta.holding, meta.due
 *            (the armed schedule's next time has come); the packet counted
 *            under the current ID unless it is due.
 *   Epoch    for a VIP packet that found an ID due (it counts the packet
 *            under the ID it moved to), and for every control request or
 *            STAMP: a request that schedules arms first; then due IDs are
 *            activated; then
 *            input: meta.epoch_op, and for EPOCH_LEARN hdr.beaver.snapshot_id,
 *            for EPOCH_CTL hdr.packet_out.opcode and a valid hdr.ctl.
 *            output: for EPOCH_CTL, hdr.ctl (and hdr.batch, hdr.records)
 *            filled in as the answer and meta.ctl_status.
 * Postcondition: the current ID only ever moves forward, and by learning at
 *   most LEARN_WINDOW at a time (a refused learn is counted); no schedule
 *   moves the SLB to an ID before that ID's time; a marked packet is counted
 *   under the ID it carries unless VIP traffic is held; a request with an
 *   unknown opcode, a bad batch or a stale ID changes no register.
 *
 * Marking is on every VIP packet's path, so it is two register reads and one
 * write, inside the action that encapsulates: BMv2 pays about a microsecond
 * for every table it applies, and statements outside actions become tables.
 * Everything else here runs once per ID change or request.
 *
 * BMv2 also resets every metadata field for every packet, and p4c keeps
 * the control's locals and its temporaries there; the compiler moves those
 * no packet reads before writing out of it (p4src/scratch.py).  So no
 * action takes a header argument (p4c would copy it into a header of its
 * own, which BMv2 invalidates for every packet too), and no action nests a
 * ?: (p4c lifts the inner one into a temporary whose first write reads its
 * old value, so it would stay).
 */
#ifndef BEAVER_EPOCH_P4
#define BEAVER_EPOCH_P4

// The current ID and its running record, one register so that marking is
// one read and one write:  hold (112) | ID (111:80) | packets marked (79:48)
// | time of the last one (47:0).
register<bit<113>>(1) epoch_state;
// The armed schedule: armed (80) | its first ID (79:48) | when the ID after
// the current one is due (47:0).
register<bit<81>>(1) epoch_due;
// The ring of records: each recent ID's, final once the SLB moved past it.
register<bit<32>>(RING_SIZE) epoch_slot_id;             // which ID the record holds
register<bit<48>>(RING_SIZE) epoch_slot_switch_time;
register<bit<48>>(RING_SIZE) epoch_slot_last_old_time;
register<bit<80>>(RING_SIZE) epoch_slot_marks;          // packets marked (79:48), last (47:0)
// The ring of schedules, by first ID.
register<bit<32>>(RING_SIZE) sched_first;    // which ID the schedule starts at
register<bit<48>>(RING_SIZE) sched_at;       // its first ID's time (0: none)
register<bit<80>>(RING_SIZE) sched_span;     // count (79:64) | spacing (63:32) | recip (31:0)
register<bit<56>>(RING_SIZE) sched_track;    // TRACK_* (55:48) | late_last (47:0)

// A VIP packet: its mark (id), the hold flag (meta.holding) and
// whether the armed schedule has an ID due (meta.due, and then Epoch counts
// the packet under the ID it moves to).  Held packets are dropped, not
// forwarded: they leave the record unchanged.  The record keeps the
// latest time it marked, not the last packet's: BMv2 stamps a packet as it
// is received, on the thread that received it, so stamps reach the
// pipeline out of order now and then.  Called by Encapsulate.
action mark(inout metadata_t meta, in bit<48> now, out bit<32> id) {
    bit<113> st;
    epoch_state.read(st, 0);
    bit<81> armed;
    epoch_due.read(armed, 0);
    bool due = armed[80:80] == 1 && now >= armed[47:0];
    meta.due = due ? 1w1 : 1w0;
    meta.holding = st[112:112];
    id = st[111:80];
    // A held packet leaves the state as it is, and so does one that is
    // due (Epoch counts it, under the ID it moves to); any other is
    // counted.  One condition for both: p4c copies each operand's whole
    // expression in, and BMv2 computes each operator of it.
    bit<48> last = now < st[47:0] ? st[47:0] : now;
    epoch_state.write(0, due || st[112:112] == 1 ? st : st[112:80] ++ (st[79:48] + 1) ++ last);
}

control Epoch(inout headers_t hdr, inout metadata_t meta, in bit<48> now) {
    bit<113> s;   // the state
    bit<32> cur;
    bit<1>  hold;
    bit<81> due;
    // A schedule, as its slot holds it (fetch).
    bit<32> sc_slot;
    bit<32> sc_first;
    bit<48> sc_at;
    bit<80> sc_span;
    bit<56> sc_track;
    // What the last step, rearm or arm found.
    bit<48> offset;       // step: target's offset in the schedule, or one less
    bit<32> target;       // aim: the newest due ID of the armed schedule
    bool    moves;        // weigh_move: target is newer than the current ID
    bool    ours;         // weigh_lateness: the move is within the armed schedule
    bit<48> passed_at;    // weigh_lateness: the time of the first ID it passes
    bit<48> latest_old_at; // weigh_lateness: the current ID's last old-ID packet
    bit<32> next_offset;  // locate_next: the ID after the current one, in the schedule
    bool    gone;         // locate_next: the armed schedule's slot was rewritten
    bool    finished;     // rearm: the armed schedule's last ID is reached
    bit<32> next_first;   // rearm: where the schedule after it would start
    bool    displacing;   // arm: an armed (newer) schedule gave way
    bit<32> displaced;
    // The request: whether its ID was newer before anything moved, and the
    // ID a READ_RECORDS step is at.
    bool    was_newer;
    bit<32> step_id;
    bool    step_carry;      // READ_RECORDS: the ID before step_id had a record ...
    bit<48> step_switched;   // ... these times (and step_id's record, once stepped)
    bit<48> step_last_old;
    bit<8>  step_status;     // step_id's record, once stepped (record_step)
    bit<32> step_snapshot_id;
    bit<32> step_count;

    // Only what some path reads before writing is zeroed: BMv2 pays for
    // every assignment, and a VIP packet that takes a scheduled ID runs this.
    action load() {
        epoch_state.read(s, 0);
        cur = s[111:80];
        hold = s[112:112];
        epoch_due.read(due, 0);
        displacing = false;
        displaced = 0;
        was_newer = false;
    }

    action fetch(bit<32> first) {
        sc_slot = (bit<32>)first[RING_BITS-1:0];
        sched_first.read(sc_first, sc_slot);
        sched_at.read(sc_at, sc_slot);
        sched_span.read(sc_span, sc_slot);
        sched_track.read(sc_track, sc_slot);
    }

    // Move to id (the caller checked it is newer): the current ID's record is
    // filed in the ring and id's opened.  The last old-ID packet is the
    // current ID's last mark, or, if it marked none, what it inherited.  The
    // ID after the current one gets the same record when the move passes it
    // (it was reached and left at once): READ_RECORDS carries it over the
    // IDs passed after it, so every ID passed has its true record.
    action open(bit<32> id) {
        bit<32> from = (bit<32>)cur[RING_BITS-1:0];
        epoch_slot_marks.write(from, s[79:0]);
        bit<48> inherited;
        epoch_slot_last_old_time.read(inherited, from);
        bit<48> latest_old = s[47:0] > inherited ? s[47:0] : inherited;
        bit<32> next = cur + 1;
        bit<32> passed = (bit<32>)next[RING_BITS-1:0];
        epoch_slot_id.write(passed, next);
        epoch_slot_switch_time.write(passed, now);
        epoch_slot_last_old_time.write(passed, latest_old);
        epoch_slot_marks.write(passed, 80w0);
        bit<32> slot = (bit<32>)id[RING_BITS-1:0];
        epoch_slot_id.write(slot, id);
        epoch_slot_switch_time.write(slot, now);
        epoch_slot_last_old_time.write(slot, latest_old);
        cur = id;
        s = hold ++ cur ++ 80w0;
        epoch_state.write(0, s);
    }

    // The armed schedule has an ID due (now >= its next time): target is
    // the newest of its IDs at or before now, without division: q = d *
    // recip >> 32 is floor(d / spacing) or one less, and one comparison
    // (aim) tells.  Apart: within one action, p4c copies each value's
    // whole expression into every use of it, and BMv2 evaluated the
    // quotient's seven times a step.  So each value read more than once
    // below is an action's output, read by the next: a step evaluates 226
    // operators in 11 actions, where it evaluated 336 in 7.
    action step() {
        fetch(due[79:48]);
        bit<48> last_q = (bit<48>)sc_span[79:64] - 1;
        bit<48> q = (bit<48>)((((bit<80>)(now - sc_at)) * (bit<80>)sc_span[31:0]) >> 32);
        offset = q > last_q ? last_q : q;
    }

    action aim() {
        bit<48> last_q = (bit<48>)sc_span[79:64] - 1;
        bool under = offset < last_q && sc_at + (offset + 1) * (bit<48>)sc_span[63:32] <= now;
        target = sc_first + (bit<32>)offset + (under ? 32w1 : 32w0);
    }

    action weigh_move() {
        bit<32> ahead = target - cur;
        // (a slot rewritten since it was armed may hold another schedule)
        bool armed_ours = sc_first == due[79:48] && now >= sc_at;
        moves = armed_ours && ahead != 0 && ahead[31:31] == 0;
    }

    // Before any move to `to` with the schedule armed (and fetched): if
    // the move passes its IDs, and an old-ID packet left at or after the
    // time of the first of them it passes, the schedule keeps the latest
    // such packet (its lateness).  Every move, not only the due steps: a
    // learned ID may pass IDs whose time had come and no step reached.  A
    // move by the controller ahead of that time (an immediate INIT) is
    // early: the schedule no longer says when its IDs were reached (LOST).
    // A learned one may be early: another SLB was there first.
    action weigh_lateness(bit<32> to) {
        bit<32> reach = to - sc_first;
        ours = sc_first == due[79:48] && sc_at != 0 && reach[31:31] == 0;
        bit<32> passed = cur + 1 - sc_first;   // the first ID passed, within the schedule
        passed_at = passed[31:31] == 0 ? sc_at + (bit<48>)passed * (bit<48>)sc_span[63:32]
                                       : sc_at;
        bit<48> inherited;
        epoch_slot_last_old_time.read(inherited, (bit<32>)cur[RING_BITS-1:0]);
        latest_old_at = s[47:0] > inherited ? s[47:0] : inherited;
    }

    action keep_lateness(bool by_controller) {
        bool late = ours && latest_old_at >= passed_at && latest_old_at > sc_track[47:0];
        bool early = ours && by_controller && now < passed_at;
        sc_track = (early ? TRACK_LOST : sc_track[55:48]) ++
                   (late ? latest_old_at : sc_track[47:0]);
        sched_track.write(sc_slot, sc_track);
    }

    // After any move, with a schedule armed (and fetched before the move:
    // a move changes no schedule but its lateness, which keep_lateness
    // keeps in sc_track too): its next time, from the ID after the current
    // one.  Once its last ID is reached it is done (its lateness final if
    // it was kept from the start) and disarmed; the caller arms the
    // schedule that starts at next_first, if there is one.
    action locate_next() {
        next_offset = cur + 1 - sc_first;
        gone = sc_first != due[79:48] || sc_at == 0;   // its slot was rewritten
    }

    action rearm() {
        bool before = next_offset[31:31] == 1;
        finished = gone || !before && next_offset >= (bit<32>)sc_span[79:64];
        bit<48> next_at = before ? sc_at
                                 : sc_at + (bit<48>)next_offset * (bit<48>)sc_span[63:32];
        bool done = finished && !gone && sc_track[55:48] == TRACK_KEPT;
        sched_track.write(sc_slot, done ? TRACK_FINAL ++ sc_track[47:0] : sc_track);
        due = finished ? 81w0 : 1w1 ++ sc_first ++ next_at;
        next_first = sc_first + (bit<32>)sc_span[79:64];
    }

    // (Apart from rearm, which would copy due's expression into the write.)
    action store_due() {
        epoch_due.write(0, due);
    }

    // Arm the fetched schedule if it has IDs ahead and no older one is
    // armed.  Its lateness is kept (TRACK_KEPT) only if none of its IDs was
    // reached yet; a newer one that was armed gives way (displace).
    action arm() {
        bit<32> last_ahead = sc_first + (bit<32>)sc_span[79:64] - 1 - cur;
        bit<32> first_ahead = sc_first - cur;
        bit<32> armed_ahead = due[79:48] - sc_first;
        bool older = due[80:80] == 0 || (armed_ahead != 0 && armed_ahead[31:31] == 0);
        bool go = sc_at != 0 && last_ahead != 0 && last_ahead[31:31] == 0 && older;
        bool fresh = first_ahead != 0 && first_ahead[31:31] == 0;
        bit<8> first_track = fresh ? TRACK_KEPT : TRACK_LOST;
        bit<8> track = sc_track[55:48] == TRACK_NONE ? first_track : sc_track[55:48];
        sched_track.write(sc_slot, go ? track ++ sc_track[47:0] : sc_track);
        displacing = go && due[80:80] == 1;
        displaced = due[79:48];
        due = go ? 1w1 ++ sc_first ++ sc_at : due;
        epoch_due.write(0, due);
    }

    // The schedule that gave way: if none of its IDs was reached it may be
    // armed afresh later; else some were reached unarmed, so its lateness
    // cannot be trusted.
    action displace() {
        fetch(displaced);
        bit<32> first_ahead = sc_first - cur;
        bool fresh = first_ahead != 0 && first_ahead[31:31] == 0;
        bit<8> given_way = fresh ? TRACK_NONE : TRACK_LOST;
        bit<8> track = sc_track[55:48] == TRACK_KEPT ? given_way : sc_track[55:48];
        sched_track.write(sc_slot, track ++ sc_track[47:0]);
    }

    // Write a schedule into its slot; a resend of the same one keeps what
    // its tracking found.
    action plan(bit<32> first, bit<48> at, bit<80> span) {
        fetch(first);
        bool same = sc_first == first && sc_at == at && sc_span == span;
        sc_first = first;
        sc_at = at;
        sc_span = span;
        sc_track = same ? sc_track : 56w0;
        sched_first.write(sc_slot, sc_first);
        sched_at.write(sc_slot, sc_at);
        sched_span.write(sc_slot, sc_span);
        sched_track.write(sc_slot, sc_track);
    }

    // The packet that found an ID due, or any marked one: counted under the
    // current ID, which it carries.
    action count_packet() {
        bit<32> n = s[79:48] + (bit<32>)(~hold);
        s = hold ++ cur ++ n ++ (hold == 1 || now < s[47:0] ? s[47:0] : now);
        epoch_state.write(0, s);
        hdr.encap_beaver.snapshot_id = cur;
    }

    action set_hold(bit<1> value) {
        hold = value;
        s = hold ++ s[111:0];
        epoch_state.write(0, s);
    }

    // Fill the answer's record fields with the record of id (the current
    // ID's running one, or the ring's), and its schedule's time if a
    // schedule starts at it.
    action report(bit<32> id) {
        bit<32> slot = (bit<32>)id[RING_BITS-1:0];
        hdr.ctl.snapshot_id = id;
        epoch_slot_switch_time.read(hdr.ctl.switch_time, slot);
        epoch_slot_last_old_time.read(hdr.ctl.last_old_time, slot);
        bit<80> marks;
        epoch_slot_marks.read(marks, slot);
        hdr.ctl.count = id == cur ? s[79:48] : marks[79:48];
        bit<32> first;
        bit<48> at;
        sched_first.read(first, slot);
        sched_at.read(at, slot);
        hdr.ctl.activate_at = first == id ? at : 48w0;
    }

    // READ_BATCH's answer: the fetched schedule as this SLB holds it.
    action describe() {
        hdr.batch.count = sc_span[79:64];
        hdr.batch.spacing = sc_span[63:32];
        hdr.batch.recip = sc_span[31:0];
        hdr.batch.track = sc_track[55:48];
        hdr.batch.late_last = sc_track[47:0];
    }

    // READ_RECORDS, one ID: into step_* its record (OK), or, for an ID
    // passed without one, the record of the ID before it when that one was
    // passed too or is the first of the move (OK: the same move passed
    // both); else what a single READ answers (SCHEDULED: newer than the
    // current ID; STALE: passed unrecorded; both with the current ID's
    // record).  Then on to the next.  The caller copies step_* into the
    // answer's stack: a header argument would be copied into a header of its
    // own at each call, sixteen headers BMv2 invalidates for every packet.
    action record_step() {
        bit<32> ahead = step_id - cur;
        bool newer = ahead != 0 && ahead[31:31] == 0;
        bit<32> recorded;
        epoch_slot_id.read(recorded, (bit<32>)step_id[RING_BITS-1:0]);
        bool known = !newer && recorded == step_id;
        bool carried = !newer && !known && step_carry;
        bit<32> about = known ? step_id : cur;
        bit<32> slot = (bit<32>)about[RING_BITS-1:0];
        bit<48> switched;
        bit<48> last_old;
        bit<80> marks;
        epoch_slot_switch_time.read(switched, slot);
        epoch_slot_last_old_time.read(last_old, slot);
        epoch_slot_marks.read(marks, slot);
        bit<8> unknown = newer ? ST_SCHEDULED : ST_STALE;
        step_status = known || carried ? ST_OK : unknown;
        step_snapshot_id = carried ? step_id : about;
        step_switched = carried ? step_switched : switched;
        step_last_old = carried ? step_last_old : last_old;
        bit<32> counted = about == cur ? s[79:48] : marks[79:48];
        step_count = carried ? 32w0 : counted;
        step_carry = known || carried;
        step_id = step_id + 1;
    }

// After a move with a schedule armed and fetched: re-arm it, and chain to
// the next.
#define REARM                                                       \
    locate_next();                                                  \
    rearm();                                                        \
    store_due();                                                    \
    if (finished) {                                                 \
        fetch(next_first);                                          \
        if (sc_first == next_first) { arm(); }                      \
    }
// A move that is not a due step (a learned ID, an immediate INIT).
#define MOVE(to, by_controller)                                     \
    if (due[80:80] == 1) {                                          \
        fetch(due[79:48]);                                          \
        weigh_lateness(to);                                         \
        keep_lateness(by_controller);                               \
        open(to);                                                   \
        REARM                                                       \
    } else {                                                        \
        open(to);                                                   \
    }
// One schedule's due IDs (DUE_STEPS = 4 schedules at most on one packet,
// unrolled: P4 has no loops).  A batch is one schedule, however many IDs.
#define DUE_STEP                                                    \
    if (due[80:80] == 1 && now >= due[47:0]) {                      \
        step();                                                     \
        aim();                                                      \
        weigh_move();                                               \
        if (moves) {                                                \
            weigh_lateness(target);                                 \
            keep_lateness(false);                                   \
            open(target);                                           \
        }                                                           \
        REARM                                                       \
    }
#define RECORD_STEP(i)                                              \
    if (hdr.batch.count > i) {                                      \
        record_step();                                              \
        hdr.records[i].setValid();                                  \
        hdr.records[i].status = step_status;                        \
        hdr.records[i].snapshot_id = step_snapshot_id;              \
        hdr.records[i].switch_time = step_switched;                 \
        hdr.records[i].last_old_time = step_last_old;               \
        hdr.records[i].count = step_count;                          \
    }
#define EIGHT(STEP, b) STEP(b) STEP(b + 1) STEP(b + 2) STEP(b + 3) \
                       STEP(b + 4) STEP(b + 5) STEP(b + 6) STEP(b + 7)

    apply {
        load();
        bit<8> request = hdr.packet_out.opcode;
        bit<32> id = hdr.ctl.snapshot_id;
        bit<48> at = hdr.ctl.activate_at;
        bit<32> slot = (bit<32>)id[RING_BITS-1:0];

        // 1. A request that schedules plans and arms its schedule; one that
        //    reads a schedule arms it if nothing older is armed (it was
        //    displaced, or no schedule before it chained to it).
        if (meta.epoch_op == EPOCH_CTL) {
            bit<32> ahead = id - cur;
            was_newer = ahead != 0 && ahead[31:31] == 0;
            meta.ctl_status = ST_OK;
            if (request == OP_INIT) {
                if (was_newer && at != 0) {
                    plan(id, at, 16w1 ++ 64w0);
                    arm();
                }
            } else if (request == OP_INIT_BATCH) {
                bit<16> count = hdr.batch.count;
                bit<64> spacing = (bit<64>)hdr.batch.spacing;
                bit<64> recip = (bit<64>)hdr.batch.recip;
                bit<32> last_ahead = id + (bit<32>)count - 1 - cur;
                if (count == 0 || count > SCHEDULE_MAX || at == 0 ||
                        (count > 1 && (spacing == 0 || recip * spacing > 0xFFFFFFFF ||
                                       (recip + 1) * spacing <= 0xFFFFFFFF))) {
                    meta.ctl_status = ST_BAD_BATCH;
                } else if (last_ahead[31:31] == 0 && last_ahead >= RING_SIZE) {
                    meta.ctl_status = ST_TOO_FAR;
                } else {
                    plan(id, at, count ++ hdr.batch.spacing ++ hdr.batch.recip);
                    arm();
                    meta.ctl_status = ST_SCHEDULED;
                }
            } else if (request == OP_READ || request == OP_READ_BATCH) {
                fetch(id);
                if (sc_first == id) {
                    arm();
                }
            }
            if (displacing) {
                displace();
            }
        }

        // 2. IDs whose time has come.
        DUE_STEP
        DUE_STEP
        DUE_STEP
        DUE_STEP

        // 3. What the packet or request does.
        if (meta.epoch_op == EPOCH_NONE) {   // a VIP packet that found an ID due
            count_packet();
        } else if (meta.epoch_op == EPOCH_LEARN) {
            bit<32> learned = hdr.beaver.snapshot_id;
            bit<32> ahead = learned - cur;
            if (ahead != 0 && ahead[31:31] == 0) {
                if (ahead <= LEARN_WINDOW) {
                    MOVE(learned, false)
                } else {
                    learn_refused.count(REFUSED_AHEAD);
                }
            }
        } else if (meta.epoch_op == EPOCH_CTL) {
            bit<32> ahead = id - cur;
            bool newer = ahead != 0 && ahead[31:31] == 0;
            bit<32> recorded;
            epoch_slot_id.read(recorded, slot);
            bool known = !newer && recorded == id;
            bit<32> first;
            sched_first.read(first, slot);
            bit<48> first_at;
            sched_at.read(first_at, slot);
            bool scheduled = newer && first == id && first_at != 0;

            hdr.ctl.id_before = cur;
            if (request == OP_INIT) {
                if (!was_newer) {
                    meta.ctl_status = known ? ST_ALREADY : ST_STALE;
                } else if (at == 0) {
                    if (newer) {   // (a schedule may have passed it meanwhile)
                        MOVE(id, true)
                    }
                } else if (newer) {
                    meta.ctl_status = ST_SCHEDULED;
                }   // else late: a due step moved the SLB on arrival, the record shows it
                if (cur == id && (hdr.ctl.flags & FLAG_HOLD) != 0) {
                    set_hold(1);
                }
            } else if (request == OP_READ) {
                if (scheduled) {
                    meta.ctl_status = ST_SCHEDULED;
                } else if (!known) {
                    meta.ctl_status = ST_STALE;
                }
            } else if (request == OP_INIT_BATCH) {
                // answered in step 1
            } else if (request == OP_READ_BATCH) {
                fetch(id);
                bit<32> last_ahead = sc_first + (bit<32>)sc_span[79:64] - 1 - cur;
                if (sc_first != id || sc_at == 0) {
                    meta.ctl_status = ST_STALE;
                } else {
                    describe();
                    if (last_ahead != 0 && last_ahead[31:31] == 0) {
                        meta.ctl_status = ST_SCHEDULED;
                    }
                }
            } else if (request == OP_READ_RECORDS) {
                if (hdr.batch.count == 0 || hdr.batch.count > RECORDS_MAX) {
                    meta.ctl_status = ST_BAD_BATCH;
                } else {
                    step_id = id;
                    step_carry = false;
                    step_switched = 0;
                    step_last_old = 0;
                    EIGHT(RECORD_STEP, 0)
                    EIGHT(RECORD_STEP, 8)
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
            if (meta.ctl_status == ST_SCHEDULED ||
                    request == OP_READ_BATCH && meta.ctl_status == ST_OK) {
                sched_at.read(hdr.ctl.activate_at, slot);   // the schedule's first time
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
