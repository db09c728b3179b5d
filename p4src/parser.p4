/* Parsing, checksums and deparsing.
 *
 * Written rules for what is not plain IPv4/TCP/UDP (the pipeline acts on
 * standard_metadata.parser_error and the valid bits):
 *   - from CPU_PORT: packet_out then ctl_t, and batch_t for a batched opcode;
 *     READ_RECORDS also brings batch.count empty record_t for the answer to
 *     fill (BMv2 cannot grow a packet by much more than it arrived with);
 *     a short body is answered ST_TRUNCATED;
 *   - clock probes (ETHERTYPE_PROBE): reflected on a probe port, else dropped
 *     (DROP_PROBE); a short one is truncated;
 *   - any other ethertype than IPv4: dropped (DROP_NOT_IPV4);
 *   - IPv4 version != 4 or IHL < 5: dropped (DROP_BAD_IPV4);
 *   - IPv4 options (IHL > 5): parsed and carried, never mistaken for L4;
 *   - fragments after the first: no L4 header is parsed, so they are routed
 *     by address and never load-balanced;
 *   - UDP to BEAVER_UDP_PORT: a Beaver header follows; an unknown version or
 *     kind is dropped (DROP_BAD_BEAVER), and so is any on a port that is not
 *     in-group facing (DROP_OUTGROUP_BEAVER, beaver.p4's Edge);
 *   - a header cut short: dropped (DROP_TRUNCATED).
 */
#ifndef BEAVER_PARSER_P4
#define BEAVER_PARSER_P4

parser BeaverParser(packet_in packet,
                    out headers_t hdr,
                    inout metadata_t meta,
                    inout standard_metadata_t std) {
    state start {
        transition select(std.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        packet.extract(hdr.packet_out);
        packet.extract(hdr.ctl);
        transition select(hdr.packet_out.opcode) {
            OP_INIT_BATCH: parse_batch;
            OP_READ_BATCH: parse_batch;
            OP_READ_RECORDS: parse_batch;
            default: accept;
        }
    }

    state parse_batch {
        packet.extract(hdr.batch);
        meta.records_left = hdr.batch.count;
        transition select(hdr.packet_out.opcode) {
            OP_READ_RECORDS: parse_records;
            default: accept;
        }
    }

    state parse_records {
        transition select(meta.records_left) {
            0: accept;
            default: parse_record;
        }
    }

    state parse_record {
        packet.extract(hdr.records.next);   // past RECORDS_MAX: StackOutOfBounds
        meta.records_left = meta.records_left - 1;
        transition parse_records;
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_PROBE: parse_probe;
            default: accept;
        }
    }

    state parse_probe {
        packet.extract(hdr.probe);
        transition accept;
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        verify(hdr.ipv4.version == 4, error.IPv4BadVersion);
        verify(hdr.ipv4.ihl >= 5, error.IPv4BadIHL);
        transition select(hdr.ipv4.ihl) {
            5: parse_l4;
            default: parse_ipv4_options;
        }
    }

    state parse_ipv4_options {
        packet.extract(hdr.ipv4_options, (bit<32>)(hdr.ipv4.ihl - 5) * 32);
        transition parse_l4;
    }

    state parse_l4 {
        transition select(hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (0, PROTO_TCP): parse_tcp;
            (0, PROTO_UDP): parse_udp;
            default: accept;
        }
    }

    state parse_tcp {
        packet.extract(hdr.tcp);
        meta.l4_src_port = hdr.tcp.src_port;
        meta.l4_dst_port = hdr.tcp.dst_port;
        transition accept;
    }

    state parse_udp {
        packet.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        transition select(hdr.udp.dst_port) {
            BEAVER_UDP_PORT: parse_beaver;
            default: accept;
        }
    }

    state parse_beaver {
        packet.extract(hdr.beaver);
        verify(hdr.beaver.version == BEAVER_VERSION, error.BeaverBadVersion);
        verify(hdr.beaver.kind == BEAVER_KIND_MARK || hdr.beaver.kind == BEAVER_KIND_STAMP,
               error.BeaverBadKind);
        transition accept;
    }
}

control BeaverVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        verify_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset,
              hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr,
              hdr.ipv4_options.data },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control BeaverComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset,
              hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr,
              hdr.ipv4_options.data },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
        update_checksum(hdr.encap_ipv4.isValid(),
            { hdr.encap_ipv4.version, hdr.encap_ipv4.ihl, hdr.encap_ipv4.diffserv,
              hdr.encap_ipv4.total_len, hdr.encap_ipv4.identification,
              hdr.encap_ipv4.flags, hdr.encap_ipv4.frag_offset, hdr.encap_ipv4.ttl,
              hdr.encap_ipv4.protocol, hdr.encap_ipv4.src_addr, hdr.encap_ipv4.dst_addr },
            hdr.encap_ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control BeaverDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.packet_in);
        packet.emit(hdr.ctl);
        packet.emit(hdr.batch);
        packet.emit(hdr.records);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.probe);
        packet.emit(hdr.encap_ipv4);
        packet.emit(hdr.encap_udp);
        packet.emit(hdr.encap_beaver);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.ipv4_options);
        packet.emit(hdr.tcp);
        packet.emit(hdr.udp);
        packet.emit(hdr.beaver);
    }
}

#endif
