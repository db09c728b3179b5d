/* Beaver on a P4 switch: a cloud software load balancer (SLB) that marks
 * inbound VIP traffic with its current snapshot ID (gateway marking) and
 * tracks its epochs in registers, for BMv2 simple_switch_grpc (v1model).
 *
 * Controls, one concern each:
 *   Config         the SLB's id, address and marking switch
 *   VipLookup      inbound VIP traffic -> backend pool      (load_balancer.p4)
 *   BackendChoice  5-tuple hash -> DIP                      (load_balancer.p4)
 *   Encapsulate    IPv4/UDP/Beaver towards the DIP, marked  (load_balancer.p4)
 *   Edge           Beaver headers only from in-group-facing ports
 *   InGroup        STAMPs from in-group sources -> learning
 *   Epoch          snapshot ID registers: the mark action,  (epoch.p4)
 *                  timed activation, learning, control requests
 *   ClockProbe     probe frames reflected with both stamps  (clock_probe.p4)
 *   Forwarding     LPM routing of the outermost header      (forwarding.p4)
 */
#include <core.p4>
#include <v1model.p4>

#include "headers.p4"
#include "parser.p4"

// Learning refused, by REFUSED_* reason (InGroup's and Epoch's).
counter(REFUSED_REASONS, CounterType.packets) learn_refused;

#ifndef PLAIN_SLB
#include "epoch.p4"
#endif
#include "clock_probe.p4"
#include "load_balancer.p4"
#include "forwarding.p4"

/* The SLB's own settings: one default entry, written by the controller.
 *
 * Input:  nothing (keyless).
 * Output: meta.slb_id, meta.slb_addr (outer source of the encapsulation) and
 *         meta.marking (0: encapsulate with ID 0 and keep no epoch state,
 *         the "without Beaver" baseline).
 */
control Config(inout metadata_t meta) {
    action configure(bit<8> slb_id, bit<32> slb_addr, bit<1> marking) {
        meta.slb_id = slb_id;
        meta.slb_addr = slb_addr;
        meta.marking = marking;
    }

    table slb_config {
        key = {}
        actions = { configure; }
        default_action = configure(0, 0, 1);
    }

    apply {
        slb_config.apply();
    }
}

/* Where the in-group begins: Beaver's own headers (MARK, STAMP) cross no
 * other port.  The in-group runtime trusts a MARK by its outer source and a
 * STAMP by its sender's address, and learning trusts a STAMP's source: all
 * forgeable by anyone who can send a packet.  So the SLB, the router between
 * the out-group and the in-group, keeps them out.
 *
 * Input:  the ingress port of a packet carrying a Beaver header (UDP to
 *         BEAVER_UDP_PORT); its own MARKs, pushed here, are not received.
 * Output: DROP_OUTGROUP_BEAVER unless the controller declared the port
 *         in-group facing.
 * Postcondition: no Beaver header from an out-group-facing port reaches an
 *   in-group host or this SLB's learning, whatever address it claims (nor
 *   a VIP on UDP BEAVER_UDP_PORT: that port is Beaver's).
 */
control Edge(inout metadata_t meta, in bit<9> ingress_port) {
    action inside() {
    }

    action outside() {
        meta.drop_reason = DROP_OUTGROUP_BEAVER;
    }

    table ingroup_ports {
        key = { ingress_port: exact; }
        actions = { inside; outside; }
        default_action = outside();
        size = 512;   // every port
    }

    apply {
        ingroup_ports.apply();
    }
}

/* Which STAMPed packets may move this SLB's ID forward.
 *
 * Input:  IPv4 source of a packet carrying a Beaver STAMP, on an in-group-
 *         facing port (Edge dropped the others).
 * Output: meta.epoch_op = EPOCH_LEARN for an in-group source; REFUSED_SOURCE
 *         otherwise.
 * Postcondition: packets from anyone else are forwarded but never learned
 *   from.
 */
control InGroup(in headers_t hdr, inout metadata_t meta) {
    action learn() {
        meta.epoch_op = EPOCH_LEARN;
    }

    action refuse() {
        learn_refused.count(REFUSED_SOURCE);
    }

    table ingroup_sources {
        key = { hdr.ipv4.src_addr: lpm; }
        actions = { learn; refuse; }
        default_action = refuse();
        size = 1024;
    }

    apply {
        ingroup_sources.apply();
    }
}

control BeaverIngress(inout headers_t hdr,
                      inout metadata_t meta,
                      inout standard_metadata_t std) {
    counter(DROP_REASONS, CounterType.packets) drop_reasons;

    Config() config;
    VipLookup() vip_lookup;
    BackendChoice() backend_choice;
    Edge() edge;
    InGroup() in_group;
#ifndef PLAIN_SLB
    Epoch() epoch;
#endif
    ClockProbe() clock_probe;
    Encapsulate() encapsulate;
    Forwarding() forwarding;

    apply {
        config.apply(meta);

        // 1. Classify: control request, malformed, probe, Beaver header from
        //    the out-group, VIP, in-group STAMP, other.
        if (std.ingress_port == CPU_PORT) {
            bool batched = hdr.packet_out.opcode == OP_INIT_BATCH ||
                           hdr.packet_out.opcode == OP_READ_BATCH ||
                           hdr.packet_out.opcode == OP_READ_RECORDS;
            // Records past RECORDS_MAX overflow the stack (answered BAD_BATCH).
            bool whole = std.parser_error == error.NoError ||
                         std.parser_error == error.StackOutOfBounds;
            if (hdr.ctl.isValid() && (!batched || hdr.batch.isValid() && whole)) {
                meta.epoch_op = EPOCH_CTL;
            } else {
                meta.ctl_status = ST_TRUNCATED;
            }
        } else if (std.parser_error == error.IPv4BadVersion ||
                   std.parser_error == error.IPv4BadIHL) {
            meta.drop_reason = DROP_BAD_IPV4;
        } else if (std.parser_error == error.BeaverBadVersion ||
                   std.parser_error == error.BeaverBadKind) {
            meta.drop_reason = DROP_BAD_BEAVER;
        } else if (std.parser_error != error.NoError) {
            meta.drop_reason = DROP_TRUNCATED;
        } else if (!hdr.ipv4.isValid()) {
            if (hdr.probe.isValid()) {
                clock_probe.apply(hdr, meta, std);
            } else {
                meta.drop_reason = DROP_NOT_IPV4;
            }
        } else if (std.checksum_error == 1) {
            meta.drop_reason = DROP_BAD_CHECKSUM;
        } else {
            if (hdr.beaver.isValid()) {   // a lookup only for Beaver headers
                edge.apply(meta, std.ingress_port);
            }
            if (meta.drop_reason == 0) {
                vip_lookup.apply(hdr, meta);
                if (meta.is_vip == 1) {
                    backend_choice.apply(hdr, meta);
                } else if (hdr.beaver.isValid() && hdr.beaver.kind == BEAVER_KIND_STAMP) {
                    in_group.apply(hdr, meta);
                }
            }
        }

        // 2. Mark and encapsulate VIP traffic.
        if (std.ingress_port != CPU_PORT && meta.drop_reason == 0 && meta.is_vip == 1) {
            encapsulate.apply(hdr, meta, std.ingress_global_timestamp);
        }

        // 3. Learning, control requests (each activates a due ID first), and
        //    a VIP packet that found a scheduled ID's time come: it moves the
        //    SLB.  One call site: p4c inlines the control at each.
#ifndef PLAIN_SLB
        if (meta.epoch_op != EPOCH_NONE || meta.due == 1) {
            epoch.apply(hdr, meta, std.ingress_global_timestamp);
        }
#endif

        // 4. Answer the controller, or forward.
        if (std.ingress_port == CPU_PORT) {
            hdr.packet_in.setValid();
            hdr.packet_in.opcode = hdr.packet_out.opcode;
            hdr.packet_in.status = meta.ctl_status;
            hdr.packet_out.setInvalid();
            std.egress_spec = CPU_PORT;
        } else {
            if (meta.holding == 1) {
                meta.drop_reason = DROP_HOLD;
            }
            if (meta.drop_reason == 0 && meta.reflected == 0) {
                forwarding.apply(hdr, meta, std);
            }
            if (meta.drop_reason != 0) {
                drop_reasons.count(meta.drop_reason);
                mark_to_drop(std);
            }
        }
    }
}

control BeaverEgress(inout headers_t hdr,
                     inout metadata_t meta,
                     inout standard_metadata_t std) {
    apply {
        if (hdr.probe.isValid()) {   // only reflected probes get this far
            hdr.probe.egress_time = std.egress_global_timestamp;
        }
    }
}

V1Switch(BeaverParser(),
         BeaverVerifyChecksum(),
         BeaverIngress(),
         BeaverEgress(),
         BeaverComputeChecksum(),
         BeaverDeparser()) main;
