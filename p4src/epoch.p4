/* Epoch tracking: the SLB's snapshot ID and its history, in registers.
 *
 * IDs are 32-bit serial numbers (RFC 1982): a is newer than b when
 * 0 < (a - b) mod 2^32 < 2^31.  A ring of RING_SIZE records, indexed by
 * the ID's low bits, remembers for each recent ID when the SLB moved to it,
 * the last packet marked with an older ID, and how many packets it marked.
 *
 * The registers are shared by:
 *   mark     an action for every VIP packet (Encapsulate calls it);
 *            output: meta.epoch_id = the current ID, meta.holding; the packet
 *            counted under the current ID.
 *   Epoch    input: meta.epoch_op, and for EPOCH_LEARN hdr.beaver.snapshot_id,
 *            for EPOCH_CTL hdr.packet_out.opcode and a valid hdr.ctl.
 *            output: for EPOCH_CTL, hdr.ctl filled in as the answer and
 *            meta.ctl_status.
 * Postcondition: the current ID only ever moves forward; a marked packet is
 *   counted under the ID it carries unless VIP traffic is held; a request
 *   with an unknown opcode or a stale ID changes no register.
 *
 * Marking is on every VIP packet's path, so it is one register read and one
 * write, inside the action that encapsulates (BMv2 pays about a microsecond
 * for every table it applies).
 */
#ifndef BEAVER_EPOCH_P4
#define BEAVER_EPOCH_P4

// The current ID and its running record, one register so that marking is
// one read and one write:  hold (112) | ID (111:80) | packets marked (79:48)
// | time of the last one (47:0).
register<bit<113>>(1) epoch_state;
// The ring: each recent ID's record, final once the SLB moved past it.
register<bit<32>>(RING_SIZE) epoch_slot_id;             // which ID the record holds
register<bit<48>>(RING_SIZE) epoch_slot_switch_time;
register<bit<48>>(RING_SIZE) epoch_slot_last_old_time;
register<bit<80>>(RING_SIZE) epoch_slot_marks;          // packets marked (79:48), last (47:0)

// A VIP packet: its mark (meta.epoch_id) and the hold flag (meta.holding);
// the packet is counted under the current ID.  Held packets are dropped, not
// forwarded: they leave the record unchanged.  Called by Encapsulate.
action mark(inout metadata_t meta, in bit<48> now) {
    bit<113> st;
    epoch_state.read(st, 0);
    meta.holding = st[112:112];
    meta.epoch_id = st[111:80];
    bit<32> count = st[79:48] + (bit<32>)(~st[112:112]);
    bit<48> last = st[112:112] == 1 ? st[47:0] : now;
    epoch_state.write(0, st[112:80] ++ count ++ last);
}

control Epoch(inout headers_t hdr, inout metadata_t meta, in bit<48> now) {
    bit<113> s;   // the state, read once per request
    bit<32> cur;
    bit<1>  hold;

    // Move to id (caller checked it is newer): the current ID's record is
    // filed in the ring and id's opened.  The last old-ID packet is the
    // current ID's last mark, or, if it marked none, what it inherited.
    action advance(bit<32> id) {
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

    action set_hold(bit<1> value) {
        hold = value;
        s = hold ++ s[111:0];
        epoch_state.write(0, s);
    }

    // Fill the answer's record fields with the record of id (the current
    // ID's running one, or the ring's).
    action report(bit<32> id) {
        bit<32> slot = (bit<32>)id[RING_BITS-1:0];
        hdr.ctl.snapshot_id = id;
        epoch_slot_switch_time.read(hdr.ctl.switch_time, slot);
        epoch_slot_last_old_time.read(hdr.ctl.last_old_time, slot);
        bit<80> marks;
        epoch_slot_marks.read(marks, slot);
        hdr.ctl.count = id == cur ? s[79:48] : marks[79:48];
    }

    apply {
        epoch_state.read(s, 0);
        cur = s[111:80];
        hold = s[112:112];

        if (meta.epoch_op == EPOCH_LEARN) {
            bit<32> learned = hdr.beaver.snapshot_id;
            bit<32> ahead = learned - cur;
            if (ahead != 0 && ahead[31:31] == 0) {
                advance(learned);
            }
        } else if (meta.epoch_op == EPOCH_CTL) {
            bit<8> request = hdr.packet_out.opcode;
            bit<32> id = hdr.ctl.snapshot_id;
            bit<32> ahead = id - cur;
            bool newer = ahead != 0 && ahead[31:31] == 0;
            bit<32> recorded;
            epoch_slot_id.read(recorded, (bit<32>)id[RING_BITS-1:0]);
            bool known = !newer && recorded == id;

            hdr.ctl.id_before = cur;
            meta.ctl_status = ST_OK;
            if (request == OP_INIT) {
                if (newer) {
                    advance(id);
                } else if (known) {
                    meta.ctl_status = ST_ALREADY;
                } else {
                    meta.ctl_status = ST_STALE;
                }
                if (cur == id && (hdr.ctl.flags & FLAG_HOLD) != 0) {
                    set_hold(1);
                }
            } else if (request == OP_READ) {
                if (!known) {
                    meta.ctl_status = ST_STALE;
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
            hdr.ctl.id_after = cur;
            hdr.ctl.now = now;
            hdr.ctl.slb_id = meta.slb_id;
            hdr.ctl.flags = (hold == 1 ? FLAG_HOLD : 8w0) |
                            (meta.marking == 1 ? FLAG_MARKING : 8w0);
        }
    }
}

#endif
