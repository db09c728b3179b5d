/* The SLB: VIP lookup, backend choice and encapsulation towards the DIP. */
#ifndef BEAVER_LOAD_BALANCER_P4
#define BEAVER_LOAD_BALANCER_P4

/* Which VIP, if any, the packet is addressed to.
 *
 * Input:  IPv4 destination, protocol and L4 destination port (TCP or UDP).
 * Output: meta.is_vip, meta.pool and meta.pool_size; a miss leaves the
 *         packet to ordinary forwarding.
 * Postcondition: meta.is_vip is 1 exactly for inbound VIP traffic.
 */
control VipLookup(inout headers_t hdr, inout metadata_t meta) {
    action to_pool(bit<16> pool, bit<16> pool_size) {
        meta.is_vip = 1;
        meta.pool = pool;
        meta.pool_size = pool_size;
    }

    table vips {
        key = {
            hdr.ipv4.dst_addr: exact;
            hdr.ipv4.protocol: exact;
            meta.l4_dst_port: exact;
        }
        actions = { to_pool; NoAction; }
        default_action = NoAction();
        size = 1024;
    }

    apply {
        if (hdr.tcp.isValid() || hdr.udp.isValid()) {
            vips.apply();
        }
    }
}

/* Picks the backend: a 5-tuple hash modulo the pool size names a member.
 *
 * Input:  meta.pool, meta.pool_size (from VipLookup), the 5-tuple.
 * Output: meta.dip and meta.flow_hash; DROP_NO_BACKEND when the pool is
 *         empty or the member is not installed.
 * Postcondition: every packet of one flow gets the same DIP while the pool
 *   is unchanged.
 */
control BackendChoice(inout headers_t hdr, inout metadata_t meta) {
    action set_dip(bit<32> dip) {
        meta.dip = dip;
    }

    table pool_members {
        key = {
            meta.pool: exact;
            meta.member: exact;
        }
        actions = { set_dip; NoAction; }
        default_action = NoAction();
        size = 4096;
    }

    apply {
        hash(meta.flow_hash, HashAlgorithm.crc16, 16w0,
             { hdr.ipv4.src_addr, hdr.ipv4.dst_addr, hdr.ipv4.protocol,
               meta.l4_src_port, meta.l4_dst_port }, 32w65536);
        if (meta.pool_size == 0) {
            meta.drop_reason = DROP_NO_BACKEND;
        } else {
            // flow_hash mod pool_size: v1model's hash with a run-time bound
            hash(meta.member, HashAlgorithm.identity, 16w0, { meta.flow_hash },
                 (bit<32>)meta.pool_size);
            if (!pool_members.apply().hit) {
                meta.drop_reason = DROP_NO_BACKEND;
            }
        }
    }
}

/* Wraps the received IPv4 packet in IPv4/UDP/Beaver towards meta.dip,
 * marked, when marking is on, with the current snapshot ID (epoch.p4's
 * mark) and the SLB's id.  The outer UDP source port carries flow entropy,
 * as real SLB encapsulations do.  Marking and pushing are one action, so a
 * marked packet costs BMv2 no extra table.
 *
 * Input:  meta.dip, meta.slb_id, meta.slb_addr, meta.marking, meta.flow_hash.
 * Output: the outer headers, marked with mark's ID (0 without Beaver or
 *         marking); meta.holding and meta.due from mark.
 */
control Encapsulate(inout headers_t hdr, inout metadata_t meta, in bit<48> now) {
    action push(bit<32> id) {
        bit<16> inner_len = hdr.ipv4.total_len;

        hdr.encap_beaver.setValid();
        hdr.encap_beaver.version = BEAVER_VERSION;
        hdr.encap_beaver.kind = BEAVER_KIND_MARK;
        hdr.encap_beaver.origin = meta.slb_id;
        hdr.encap_beaver.snapshot_id = id;

        hdr.encap_udp.setValid();
        hdr.encap_udp.src_port = 0xC000 | (meta.flow_hash & 0x3FFF);
        hdr.encap_udp.dst_port = BEAVER_UDP_PORT;
        hdr.encap_udp.length = inner_len + 8 + 6;
        hdr.encap_udp.checksum = 0;   // optional over IPv4

        hdr.encap_ipv4.setValid();
        hdr.encap_ipv4.version = 4;
        hdr.encap_ipv4.ihl = 5;
        hdr.encap_ipv4.diffserv = hdr.ipv4.diffserv;
        hdr.encap_ipv4.total_len = inner_len + 20 + 8 + 6;
        hdr.encap_ipv4.identification = 0;
        hdr.encap_ipv4.flags = 2;     // don't fragment
        hdr.encap_ipv4.frag_offset = 0;
        hdr.encap_ipv4.ttl = 64;
        hdr.encap_ipv4.protocol = PROTO_UDP;
        hdr.encap_ipv4.src_addr = meta.slb_addr;
        hdr.encap_ipv4.dst_addr = meta.dip;
    }

#ifndef PLAIN_SLB
    action mark_and_push() {
        bit<32> id;
        mark(meta, now, id);
        push(id);
    }
#endif

    apply {
#ifdef PLAIN_SLB
        push(0);
#else
        if (meta.marking == 1) {
            mark_and_push();
        } else {
            push(0);
        }
#endif
    }
}

#endif
