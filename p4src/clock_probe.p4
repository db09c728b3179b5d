/* Clock probes: the controller's view of each switch's data-plane clock. */
#ifndef BEAVER_CLOCK_PROBE_P4
#define BEAVER_CLOCK_PROBE_P4

/* Reflects a probe frame out of the port it came in on, stamped on ingress
 * here and on egress by BeaverEgress, so the controller bounds the clock's
 * origin by the frame's own send and receive times.
 *
 * Input:  a valid hdr.probe and the ingress port.
 * Output: the reflected frame's egress port and swapped MACs, or
 *         DROP_PROBE when the port is not a probe port.
 * Postcondition: probes are reflected only on ports the controller named;
 *   they are never load-balanced, learned from or routed.
 */
control ClockProbe(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std) {
    action reflect() {
        std.egress_spec = std.ingress_port;
        bit<48> sender = hdr.ethernet.src_addr;
        hdr.ethernet.src_addr = hdr.ethernet.dst_addr;
        hdr.ethernet.dst_addr = sender;
        hdr.probe.ingress_time = std.ingress_global_timestamp;
        meta.reflected = 1;
    }

    action not_a_probe_port() {
        meta.drop_reason = DROP_PROBE;
    }

    table probe_ports {
        key = { std.ingress_port: exact; }
        actions = { reflect; not_a_probe_port; }
        default_action = not_a_probe_port();
        size = 16;
    }

    apply {
        probe_ports.apply();
    }
}

#endif
