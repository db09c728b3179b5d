/* Ordinary IPv4 forwarding, so one program serves as SLB and as fabric. */
#ifndef BEAVER_FORWARDING_P4
#define BEAVER_FORWARDING_P4

/* Routes the outermost IPv4 header: the encapsulation if the SLB pushed one,
 * else the packet as received.
 *
 * Input:  the outermost IPv4 destination and TTL.
 * Output: egress port, rewritten MACs, TTL minus one; DROP_NO_ROUTE on a
 *         miss, DROP_TTL when the TTL would reach zero.
 * Postcondition: a forwarded packet leaves with a positive TTL.
 */
control Forwarding(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std) {
    bit<32> dst = 0;

    action forward(bit<9> port, bit<48> src_mac, bit<48> dst_mac) {
        std.egress_spec = port;
        hdr.ethernet.src_addr = src_mac;
        hdr.ethernet.dst_addr = dst_mac;
    }

    action no_route() {
        meta.drop_reason = DROP_NO_ROUTE;
    }

    table routes {
        key = { dst: lpm; }
        actions = { forward; no_route; }
        default_action = no_route();
        size = 4096;
    }

    apply {
        if (hdr.encap_ipv4.isValid()) {
            dst = hdr.encap_ipv4.dst_addr;
            hdr.encap_ipv4.ttl = hdr.encap_ipv4.ttl - 1;
        } else if (hdr.ipv4.ttl <= 1) {
            meta.drop_reason = DROP_TTL;
            return;
        } else {
            dst = hdr.ipv4.dst_addr;
            hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
        }
        routes.apply();
    }
}

#endif
