/* Beaver SLB: constants, headers and metadata.
 *
 * The wire layouts here are mirrored byte for byte by p4src/wire.py; change
 * both together (tests/unit/test_wire.py checks the Python side against the
 * P4Info and the compiled JSON).
 */
#ifndef BEAVER_HEADERS_P4
#define BEAVER_HEADERS_P4

const bit<9>  CPU_PORT = 255;

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<16> ETHERTYPE_PROBE = 0x88B5;   // IEEE local experimental: clock probes
const bit<8>  PROTO_TCP = 6;
const bit<8>  PROTO_UDP = 17;

/* Beaver header: rides after a UDP header whose destination port is
 * BEAVER_UDP_PORT.  kind MARK: an SLB's encapsulation towards a backend, the
 * original IPv4 packet follows.  kind STAMP: a message between in-group
 * processes, the application payload follows. */
const bit<16> BEAVER_UDP_PORT = 4790;
const bit<4>  BEAVER_VERSION = 1;
const bit<4>  BEAVER_KIND_MARK = 1;
const bit<4>  BEAVER_KIND_STAMP = 2;

/* Control requests (packet-out) and their answers (packet-in). */
const bit<8> OP_INIT = 1;      // move to ctl.snapshot_id if newer, at ctl.activate_at if that
                               // is later than now; flag HOLD also holds VIP traffic
const bit<8> OP_READ = 2;      // report the epoch registers for ctl.snapshot_id
const bit<8> OP_RELEASE = 3;   // stop holding VIP traffic
const bit<8> OP_INIT_BATCH = 4;   // schedule batch.count IDs from ctl.snapshot_id, the i-th
                                  // at ctl.activate_at + i * batch.spacing: one schedule
const bit<8> OP_READ_BATCH = 5;   // the schedule that starts at ctl.snapshot_id, as the SLB
                                  // holds it, with its lateness (batch.track, batch.late_last)
const bit<8> OP_READ_RECORDS = 6; // the records of batch.count IDs from ctl.snapshot_id

const bit<8> ST_OK = 0;          // done; the slot fields describe ctl.snapshot_id
const bit<8> ST_ALREADY = 1;     // nothing to do; the SLB already holds that ID
const bit<8> ST_STALE = 2;       // ID neither current nor recorded; fields describe the current ID
const bit<8> ST_BAD_OPCODE = 3;  // unknown opcode; nothing changed
const bit<8> ST_TRUNCATED = 4;   // request shorter than ctl_t; nothing changed
const bit<8> ST_SCHEDULED = 5;   // the ID activates at ctl.activate_at; fields describe the current ID
const bit<8> ST_BAD_BATCH = 6;   // batch.count is 0 or too many, or the spacing or its
                                 // reciprocal is wrong; nothing changed
const bit<8> ST_TOO_FAR = 7;     // the batch reaches RING_SIZE or more past the current ID, where
                                 // it would overwrite records not yet final; nothing changed

const bit<8> FLAG_HOLD = 1;      // request: hold VIP traffic; reply: VIP traffic is held
const bit<8> FLAG_MARKING = 2;   // reply: marking is enabled

/* Rings of per-ID epoch records and of schedules, indexed by the ID's low
 * bits (a schedule by its first ID's).  The controller never has more IDs
 * in flight than the ring holds, so a record is read before it is reused. */
#define RING_BITS 13
const bit<32> RING_SIZE = 8192;
/* The most IDs one INIT_BATCH schedules: a whole ring. */
const bit<16> SCHEDULE_MAX = 8191;
/* The most records one READ_RECORDS reads (the records stack).  Every
 * header, valid or not, costs BMv2 about 1.5 us on every packet (measured:
 * a READ round trip took 183 us of switch CPU with no stack, 228 us with 16
 * records, 272 us with 64), so the stack stays small: records are read
 * only for the IDs that a schedule's lateness does not clear. */
#define RECORDS_MAX 16

/* How far a schedule's lateness (batch.late_last) can be trusted. */
const bit<8> TRACK_NONE = 0;    // scheduled, never armed
const bit<8> TRACK_KEPT = 1;    // armed before its first ID was reached: lateness kept
const bit<8> TRACK_FINAL = 2;   // ... and its last ID reached while armed: lateness final
const bit<8> TRACK_LOST = 3;    // some ID reached while it was not armed: read the records
/* Learning moves at most this far ahead: the controller never has more IDs
 * in flight than the ring holds, so an ID further ahead is forged or foreign. */
const bit<32> LEARN_WINDOW = RING_SIZE - 1;

/* Why a packet was dropped: index into the drop_reasons counter. */
const bit<32> DROP_TRUNCATED = 1;     // a header ended early
const bit<32> DROP_BAD_IPV4 = 2;      // IPv4 version != 4 or IHL < 5
const bit<32> DROP_BAD_CHECKSUM = 3;  // IPv4 header checksum wrong
const bit<32> DROP_BAD_BEAVER = 4;    // Beaver header with unknown version or kind
const bit<32> DROP_NOT_IPV4 = 5;      // ethertype other than IPv4
const bit<32> DROP_NO_ROUTE = 6;      // no route to the (outer) destination
const bit<32> DROP_TTL = 7;           // TTL expired
const bit<32> DROP_HOLD = 8;          // VIP traffic held by the blocking strawman
const bit<32> DROP_NO_BACKEND = 9;    // VIP pool empty or member missing
const bit<32> DROP_PROBE = 10;        // clock probe on a port that is not a probe port
const bit<32> DROP_OUTGROUP_BEAVER = 11;  // a Beaver header on a port that is not in-group
                                          // facing: forged by the out-group, or astray
const bit<32> DROP_REASONS = 16;

/* Why a STAMP did not move the ID: index into the learn_refused counter. */
const bit<32> REFUSED_SOURCE = 1;     // not from an in-group source
const bit<32> REFUSED_AHEAD = 2;      // further ahead than LEARN_WINDOW
const bit<32> REFUSED_REASONS = 4;

error { IPv4BadVersion, IPv4BadIHL, BeaverBadVersion, BeaverBadKind }

@controller_header("packet_out")
header packet_out_t {
    bit<8> opcode;
}

@controller_header("packet_in")
header packet_in_t {
    bit<8> opcode;   // echoed from the request
    bit<8> status;   // ST_*
}

/* Body of a control request; the answer is the same header filled in. */
header ctl_t {
    bit<32> seq;            // chosen by the controller, echoed
    bit<32> snapshot_id;    // request: the ID; answer: the ID the slot fields describe
    bit<32> id_before;      // answer: current ID before the request
    bit<32> id_after;       // answer: current ID after the request
    bit<48> now;            // answer: data-plane time (us since switch start)
    bit<48> switch_time;    // answer: when the SLB moved to snapshot_id
    bit<48> last_old_time;  // answer: last packet marked with an ID older than snapshot_id
    bit<32> count;          // answer: packets marked with snapshot_id
    bit<8>  slb_id;         // answer: the SLB's id
    bit<8>  flags;          // FLAG_*
    bit<48> activate_at;    // INIT: when to move (0: at once); answer: when snapshot_id
                            // was scheduled to activate (0: it was not scheduled)
}

/* After ctl_t in a batched request (OP_INIT_BATCH, OP_READ_BATCH,
 * OP_READ_RECORDS).  A schedule is count IDs from ctl.snapshot_id, the i-th
 * due at ctl.activate_at + i * spacing. */
header batch_t {
    bit<16> count;          // INIT_BATCH 1..SCHEDULE_MAX IDs; READ_RECORDS 1..RECORDS_MAX
    bit<32> spacing;        // us between consecutive activations (any, for one ID)
    bit<32> recip;          // INIT_BATCH: floor((2^32 - 1) / spacing), 0 for one ID: the
                            // switch has no division, so it multiplies by this
    bit<8>  track;          // READ_BATCH answer: TRACK_*
    bit<48> late_last;      // READ_BATCH answer: the latest packet forwarded with an ID
                            // older than one whose time had come (0: none)
}

/* One ID's record in the answer to OP_READ_RECORDS, in ID order. */
header record_t {
    bit<8>  status;         // ST_OK: the fields describe the ID; ST_SCHEDULED: newer than
                            // the current ID; ST_STALE: passed without being recorded
    bit<32> snapshot_id;
    bit<48> switch_time;
    bit<48> last_old_time;
    bit<32> count;
}

/* A clock probe: reflected on a probe port with both data-plane stamps, so
 * the controller bounds the switch clock's origin by the frame's own send
 * and receive times. */
header probe_t {
    bit<32> seq;            // chosen by the controller, echoed
    bit<48> ingress_time;   // answer: ingress_global_timestamp
    bit<48> egress_time;    // answer: egress_global_timestamp
}

header ethernet_t {
    bit<48> dst_addr;
    bit<48> src_addr;
    bit<16> ether_type;
}

header ipv4_t {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  diffserv;
    bit<16> total_len;
    bit<16> identification;
    bit<3>  flags;
    bit<13> frag_offset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdr_checksum;
    bit<32> src_addr;
    bit<32> dst_addr;
}

header ipv4_options_t {
    varbit<320> data;
}

header tcp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<32> seq_no;
    bit<32> ack_no;
    bit<4>  data_offset;
    bit<4>  res;
    bit<8>  flags;
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent_ptr;
}

header udp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

header beaver_t {
    bit<4>  version;
    bit<4>  kind;
    bit<8>  origin;        // MARK: the SLB's id; STAMP: 0
    bit<32> snapshot_id;
}

struct headers_t {
    packet_out_t   packet_out;
    ctl_t          ctl;
    batch_t        batch;
    record_t[RECORDS_MAX] records;
    packet_in_t    packet_in;
    ethernet_t     ethernet;
    probe_t        probe;
    ipv4_t         encap_ipv4;    // pushed by the SLB towards the backend
    udp_t          encap_udp;
    beaver_t       encap_beaver;
    ipv4_t         ipv4;          // as received
    ipv4_options_t ipv4_options;
    tcp_t          tcp;
    udp_t          udp;
    beaver_t       beaver;        // as received: a STAMP from an in-group process
}

/* What the Epoch control is asked to do (meta.epoch_op); VIP packets are
 * marked by the mark action instead, inside Encapsulate. */
const bit<8> EPOCH_NONE = 0;
const bit<8> EPOCH_LEARN = 1;  // an in-group STAMP: move forward if newer
const bit<8> EPOCH_CTL = 2;    // a control request in hdr.ctl

struct metadata_t {
    bit<32> drop_reason;
    bit<16> l4_src_port;
    bit<16> l4_dst_port;
    // set by the slb_config table
    bit<8>  slb_id;
    bit<32> slb_addr;
    bit<1>  marking;
    // load balancing
    bit<1>  is_vip;
    bit<16> pool;
    bit<16> pool_size;
    bit<16> member;
    bit<32> dip;
    bit<16> flow_hash;
    // epoch tracking
    bit<8>  epoch_op;   // EPOCH_*
    bit<1>  holding;
    bit<8>  ctl_status;
    bit<1>  due;        // from mark: an armed ID's time has come; the packet carries it
    bit<1>  reflected;  // a clock probe going back out of its port
    bit<16> records_left;   // parser: READ_RECORDS records still to extract
}

#endif
