/* Epoch tracking: the SLB's snapshot ID and its history, in registers.
 *
 * IDs are 32-bit serial numbers (RFC 1982): a is newer than b when
 * 0 < (a - b) mod 2^32 < 2^31.  A ring of RING_SIZE records, indexed by
 * the ID's low bits, remembers for each recent ID when the SLB moved to it,
 * the last packet marked with an older ID, and how many packets it marked.
 *
 * Input:  meta.epoch_op and
 *           EPOCH_MARK:  nothing; EPOCH_LEARN: meta.epoch_id;
 *           EPOCH_CTL:   hdr.packet_out.opcode and hdr.ctl (a valid request).
 * Output: EPOCH_MARK:  meta.epoch_id = current ID, meta.holding;
 *         EPOCH_CTL:   hdr.ctl filled in as the answer, meta.ctl_status.
 * Postcondition: the current ID only ever moves forward; a marked packet is
 *   counted under the ID it carries unless VIP traffic is held; a request
 *   with an unknown opcode or a stale ID changes no register.
 */
#ifndef BEAVER_EPOCH_P4
#define BEAVER_EPOCH_P4

control Epoch(inout headers_t hdr, inout metadata_t meta, in bit<48> now) {
    register<bit<32>>(1) current_id;
    register<bit<1>>(1)  holding;
    register<bit<48>>(1) last_mark_time;   // newest packet marked, whatever its ID

    register<bit<32>>(RING_SIZE) slot_id;            // which ID the record holds
    register<bit<48>>(RING_SIZE) slot_switch_time;
    register<bit<48>>(RING_SIZE) slot_last_old_time;
    register<bit<32>>(RING_SIZE) slot_count;

    bit<32> cur;
    bit<1>  hold;

    // Move to id (caller checked it is newer); opens its ring record.
    action advance(bit<32> id) {
        bit<48> last_mark;
        last_mark_time.read(last_mark, 0);
        bit<32> slot = (bit<32>)id[RING_BITS-1:0];
        slot_id.write(slot, id);
        slot_switch_time.write(slot, now);
        slot_last_old_time.write(slot, last_mark);
        slot_count.write(slot, 0);
        current_id.write(0, id);
        cur = id;
    }

    // Fill the answer's record fields with the ring record of id.
    action report(bit<32> id) {
        bit<32> slot = (bit<32>)id[RING_BITS-1:0];
        hdr.ctl.snapshot_id = id;
        slot_switch_time.read(hdr.ctl.switch_time, slot);
        slot_last_old_time.read(hdr.ctl.last_old_time, slot);
        slot_count.read(hdr.ctl.count, slot);
    }

    apply {
        current_id.read(cur, 0);
        holding.read(hold, 0);

        if (meta.epoch_op == EPOCH_MARK) {
            meta.epoch_id = cur;
            meta.holding = hold;
            if (hold == 0) {
                bit<32> slot = (bit<32>)cur[RING_BITS-1:0];
                bit<32> count;
                slot_count.read(count, slot);
                slot_count.write(slot, count + 1);
                last_mark_time.write(0, now);
            }
        } else if (meta.epoch_op == EPOCH_LEARN) {
            bit<32> ahead = meta.epoch_id - cur;
            if (ahead != 0 && ahead[31:31] == 0) {
                advance(meta.epoch_id);
            }
        } else if (meta.epoch_op == EPOCH_CTL) {
            bit<8> op = hdr.packet_out.opcode;
            bit<32> id = hdr.ctl.snapshot_id;
            bit<32> ahead = id - cur;
            bool newer = ahead != 0 && ahead[31:31] == 0;
            bit<32> recorded;
            slot_id.read(recorded, (bit<32>)id[RING_BITS-1:0]);
            bool known = !newer && recorded == id;

            hdr.ctl.id_before = cur;
            meta.ctl_status = ST_OK;
            if (op == OP_INIT) {
                if (newer) {
                    advance(id);
                } else if (known) {
                    meta.ctl_status = ST_ALREADY;
                } else {
                    meta.ctl_status = ST_STALE;
                }
                if (cur == id && (hdr.ctl.flags & FLAG_HOLD) != 0) {
                    hold = 1;
                    holding.write(0, hold);
                }
            } else if (op == OP_READ) {
                if (!known) {
                    meta.ctl_status = ST_STALE;
                }
            } else if (op == OP_RELEASE) {
                hold = 0;
                holding.write(0, hold);
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
            hdr.ctl.flags = (hold == 1 ? FLAG_HOLD : 8w0) | (meta.marking == 1 ? FLAG_MARKING : 8w0);
        }
    }
}

#endif
