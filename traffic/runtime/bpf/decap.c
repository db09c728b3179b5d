// SPDX-License-Identifier: GPL-2.0
/* Kernel decapsulation of the SLB's MARKs, on an in-group host's data
 * interface (tc ingress, clsact, direct action).
 *
 * A MARK is outer IPv4 / UDP to 4790 / Beaver header (6 bytes, see
 * p4src/wire.py) / the client's original IPv4 packet.  One from a configured
 * SLB address whose inner packet is TCP is stripped to that inner packet, so
 * the host's TCP stack terminates the client's connection to the VIP, and
 * its snapshot ID is recorded first in flow_ids, per inner flow, the newest
 * one seen.  The recording comes before the packet goes on, so when the
 * runtime reads bytes from a socket, the ID it then finds is never older
 * than the ID of those bytes (traffic/runtime/tcp.py relies on that).
 * Before the flow's, newest_id is raised: the newest ID of any flow, which
 * the runtime reads from memory (mmap) after each read, without a system
 * call, and looks up the flow only when it differs from its own ID.
 *
 * Everything else passes unchanged: STAMPs and MARKs carrying UDP, which the
 * user-space runtime decapsulates itself, and every non-Beaver packet.  A MARK
 * from an address that is no SLB (anyone could forge an ID) or one that does
 * not hold what it announces is counted and passed unchanged, still
 * encapsulated: no TCP socket ever sees it.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define BEAVER_UDP_PORT 4790
#define BEAVER_VERSION 1
#define BEAVER_KIND_MARK 1
#define IP_FRAGMENT 0x3FFF   /* MF flag and fragment offset */

struct beaver_hdr {
	__u8 version_kind;
	__u8 origin;
	__be32 snapshot_id;
} __attribute__((packed));

#define OUTER_LEN (sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct beaver_hdr))

/* The inner flow as the host's TCP socket sees it (network byte order). */
struct flow {
	__be32 client_ip;
	__be32 vip_ip;
	__be16 client_port;
	__be16 vip_port;
};

/* Indexes of decap_counts; traffic/runtime/flowmap.py names them in this order. */
enum counter {
	DECAPSULATED,
	FOREIGN,      /* a MARK from an address that is no configured SLB */
	MALFORMED,    /* a MARK from an SLB that does not hold one whole inner packet */
	LEFT_UDP,     /* a MARK carrying UDP: left to the user-space runtime */
	MAP_FULL,     /* an ID not recorded (a new flow with no room in flow_ids, or
		       * raced too long): dropped, TCP resends */
	COUNTERS,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __be32);
	__type(value, __u8);
} slb_addrs SEC(".maps");

/* A plain hash, not an LRU: an entry must never vanish while its connection
 * lives (the runtime deletes it when the connection closes). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow);
	__type(value, __u32);
} flow_ids SEC(".maps");

/* The newest ID recorded for any flow: never older than any flow's ID, as
 * it is raised first.  Mapped into the runtime's memory (BPF_F_MMAPABLE). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u32);
} newest_id SEC(".maps");

/* One count per CPU, summed by the reader: every decapsulated packet is
 * counted, and an atomic add on a line shared by the CPUs would be the one
 * write on the fast path that every CPU contends for. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} decap_counts SEC(".maps");

static __always_inline int count(__u32 which, int verdict)
{
	__u64 *value = bpf_map_lookup_elem(&decap_counts, &which);

	if (value)
		(*value)++;
	return verdict;
}

/* RFC 1982 serial order, as p4src/ids.py and epoch.p4 decide it. */
static __always_inline int is_newer(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

/* Raises *held to snapshot_id if that is newer, never lowers it (another CPU
 * may raise it meanwhile: compare-and-swap); 0 once it is at least as new. */
static __always_inline int raise_id(__u32 *held, __u32 snapshot_id)
{
	for (int tries = 0; tries < 8; tries++) {
		__u32 seen = *held;

		if (!is_newer(snapshot_id, seen))
			return 0;
		if (__sync_val_compare_and_swap(held, seen, snapshot_id) == seen)
			return 0;
	}
	return -1;
}

/* Raises newest_id, then the flow's ID, to snapshot_id if that is newer; 0
 * when both hold an ID at least as new, so the packet may go on. */
static __always_inline int record(struct flow *key, __u32 snapshot_id)
{
	__u32 zero = 0;
	__u32 *newest = bpf_map_lookup_elem(&newest_id, &zero);
	__u32 *held;

	if (!newest || raise_id(newest, snapshot_id) != 0)
		return -1;
	held = bpf_map_lookup_elem(&flow_ids, key);
	if (!held) {
		if (bpf_map_update_elem(&flow_ids, key, &snapshot_id, BPF_NOEXIST) == 0)
			return 0;
		held = bpf_map_lookup_elem(&flow_ids, key);   /* another CPU added it */
		if (!held)
			return -1;
	}
	return raise_id(held, snapshot_id);
}

SEC("tc")
int beaver_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = (void *)(eth + 1);
	struct udphdr *udp = (void *)(outer + 1);
	struct beaver_hdr *beaver = (void *)(udp + 1);
	struct iphdr *inner = (void *)(beaver + 1);
	struct tcphdr *tcp;
	struct flow key = {};
	__u32 inner_len;

	if ((void *)(beaver + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)
	    || outer->protocol != IPPROTO_UDP || outer->ihl != 5
	    || (outer->frag_off & bpf_htons(IP_FRAGMENT))
	    || udp->dest != bpf_htons(BEAVER_UDP_PORT)
	    || (beaver->version_kind & 0xF) != BEAVER_KIND_MARK)
		return TC_ACT_OK;   /* not a MARK (STAMPs among them) */
	if (!bpf_map_lookup_elem(&slb_addrs, &outer->saddr))
		return count(FOREIGN, TC_ACT_OK);
	if ((beaver->version_kind >> 4) != BEAVER_VERSION || (void *)(inner + 1) > data_end
	    || inner->version != 4 || inner->ihl < 5)
		return count(MALFORMED, TC_ACT_OK);
	inner_len = bpf_ntohs(inner->tot_len);
	if (inner_len + OUTER_LEN != bpf_ntohs(outer->tot_len)
	    || (inner->frag_off & bpf_htons(IP_FRAGMENT)))
		return count(MALFORMED, TC_ACT_OK);
	if (inner->protocol == IPPROTO_UDP)
		return count(LEFT_UDP, TC_ACT_OK);
	if (inner->protocol != IPPROTO_TCP)
		return count(MALFORMED, TC_ACT_OK);
	tcp = (void *)inner + inner->ihl * 4;
	if ((void *)(tcp + 1) > data_end || inner_len < inner->ihl * 4 + sizeof(*tcp))
		return count(MALFORMED, TC_ACT_OK);

	key.client_ip = inner->saddr;
	key.vip_ip = inner->daddr;
	key.client_port = tcp->source;
	key.vip_port = tcp->dest;
	if (record(&key, bpf_ntohl(beaver->snapshot_id)) != 0)
		return count(MAP_FULL, TC_ACT_SHOT);
	if (bpf_skb_adjust_room(skb, -(__s32)OUTER_LEN, BPF_ADJ_ROOM_MAC, 0) != 0)
		return count(MALFORMED, TC_ACT_SHOT);
	return count(DECAPSULATED, TC_ACT_OK);
}

char LICENSE[] SEC("license") = "GPL";
