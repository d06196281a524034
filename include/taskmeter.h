/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every struct that crosses the kernel/user boundary. Included by the BPF
 * programs (after vmlinux.h) and by the collector (after <linux/types.h>).
 * Fixed-width types, explicit padding, no pointers, no bool.
 */
#ifndef TASKMETER_H
#define TASKMETER_H

#define TM_COMM_LEN 16
/* Upper bounds of what one metadata event carries; the configured limits
 * (argv_max, env_max) are at most these. */
#define TM_ARGV_CAP 8192
#define TM_ENV_CAP 8192

/* Map sizes: the defaults of the config keys that size them (config.c),
 * and the sizes of the maps no key sets. One place for both. */
#define TM_DEFAULT_COUNTER_ENTRIES 65536    /* counter_entries */
#define TM_DEFAULT_META_ENTRIES 16384       /* meta_entries */
#define TM_DEFAULT_RINGBUF_KIB 8192         /* ringbuf_kib */
#define TM_DEFAULT_FLOW_ENTRIES 65536       /* flow_entries */
#define TM_SEED_ENTRIES 65536               /* sockets older than the collector */
#define TM_IFACES_MAX 4096                  /* attached interfaces */

enum tm_dir {
	TM_DIR_INGRESS = 0,
	TM_DIR_EGRESS = 1,
	TM_DIR_MAX,
};

enum tm_l4 {
	TM_L4_TCP = 0,
	TM_L4_UDP = 1,
	TM_L4_ICMP = 2,
	TM_L4_OTHER = 3,
	TM_L4_MAX,
};

enum tm_family {
	TM_FAMILY_IPV4 = 0,
	TM_FAMILY_IPV6 = 1,
	TM_FAMILY_MAX,
	TM_FAMILY_NONE = TM_FAMILY_MAX, /* interface layer: not IP */
};

/* Where a packet was counted. The socket layer (cgroup_skb) is the
 * per-process truth; the interface layers see every frame of an interface. */
enum tm_layer {
	TM_LAYER_CGROUP_SKB = 0,
	TM_LAYER_XDP = 1,     /* interface ingress, first look */
	TM_LAYER_TC = 2,      /* interface egress (and ingress without XDP) */
	TM_LAYER_DROP = 3,    /* received for an owner, dropped before its socket had it */
	TM_LAYER_MAX,
};

/* Who interface-layer traffic without a local owner belongs to. */
enum tm_bucket {
	TM_BUCKET_OWNER = 0,     /* the key's owner */
	TM_BUCKET_FORWARDED,     /* routed through this host */
	TM_BUCKET_LOCAL,         /* to/from this host, no owning process: closed
				  * ports, kernel-generated (RST, ICMP, ND) */
	TM_BUCKET_NON_IP,        /* ARP, LLDP, ... */
	TM_BUCKET_MALFORMED,     /* headers that do not parse */
	TM_BUCKET_MAX,
};

/* Process identity: pid reuse gives a new start time, so the pair is unique.
 * tgid 0 means "no owner known" (unattributed). */
struct tm_owner {
	__u32 tgid;        /* in the initial pid namespace */
	__u32 pad;
	__u64 start_ns;    /* group leader's start_boottime */
};

/*
 * What one counter counts: a class of traffic. The socket layer counts per
 * owner x exec generation x direction x L4 x family (netns and ifindex 0);
 * the interface layers (XDP, TC) and drops also per interface and layer,
 * with a bucket in place of an owner for traffic that has none. Every class
 * gets a slot of tm_counters, allocated by the program that first sees it.
 */
struct tm_class {
	struct tm_owner owner;  /* tgid 0: see bucket (TM_BUCKET_OWNER: unattributed) */
	__u32 exec_seq;         /* bumped by every execve of the owner */
	__u32 netns;            /* inode of the interface's network namespace */
	__u32 ifindex;
	__u8 layer;             /* enum tm_layer */
	__u8 dir;               /* enum tm_dir */
	__u8 l4;                /* enum tm_l4 */
	__u8 family;            /* enum tm_family, or TM_FAMILY_NONE */
	__u8 bucket;            /* enum tm_bucket */
	__u8 pad[7];
};

/*
 * A counter: wire packets and IP bytes (headers included, per segment);
 * payload is what the application sent or received, once; the retransmitted
 * fields are what went over the wire again (TCP), so that on the wire
 * payload + retrans_bytes is the L4 data carried.
 */
struct tm_counter_val {
	__u64 packets;
	__u64 bytes;
	__u64 payload_bytes;
	__u64 retrans_packets;
	__u64 retrans_bytes;
};

/* Slots with a fixed meaning, below the ones classes get: where traffic
 * goes when no slot is free (counted in TM_STAT_CLASS_FULL), so that no
 * byte is lost, and where traffic of sockets without an owner goes. */
#define TM_OVERFLOW_IDX(dir, l4, fam) (((dir) * TM_L4_MAX + (l4)) * TM_FAMILY_MAX + (fam))
#define TM_OVERFLOW_SLOTS (TM_DIR_MAX * TM_L4_MAX * TM_FAMILY_MAX)
#define TM_SLOT_IF_OVERFLOW(layer, dir) (TM_OVERFLOW_SLOTS + (layer) * TM_DIR_MAX + (dir))
#define TM_SLOT_UNATTRIBUTED(dir, l4, fam) \
	(TM_OVERFLOW_SLOTS + TM_LAYER_MAX * TM_DIR_MAX + TM_OVERFLOW_IDX(dir, l4, fam))
/* Counts nothing: its generation moves when the collector attaches to an
 * interface or detaches, so caches of "no program counts there" go stale. */
#define TM_SLOT_IFACES (2 * TM_OVERFLOW_SLOTS + TM_LAYER_MAX * TM_DIR_MAX)
#define TM_SLOTS_RESERVED (TM_SLOT_IFACES + 1)
/* A slot's generation (tm_class_gen) starts at 1: a cached generation of 0
 * is never valid. */
#define TM_GEN_FIRST 1

/* Local socket by flow, for the hooks that run before the socket is known
 * (XDP, TC ingress, drops). Addresses as in the packet: v4-mapped sockets
 * are keyed as IPv4. rport 0 and raddr 0: a listener or unconnected socket;
 * laddr 0 as well: bound to the wildcard address. The key of tm_flows6; an
 * IPv4 flow is kept in tm_flows4 under the same fields, its addresses alone
 * (struct tm_flow_key4: a key less than half as long to hash and compare,
 * for every packet). */
struct tm_flow_key {
	__u32 netns;
	__u8 family;            /* enum tm_family */
	__u8 proto;             /* IPPROTO_TCP, _UDP, _ICMP(V6) (ports: echo id) */
	__be16 lport;
	__be16 rport;
	__u16 pad;
	__u32 laddr[4];
	__u32 raddr[4];
};

struct tm_flow_key4 {
	__u32 netns;
	__u8 family;            /* TM_FAMILY_IPV4 */
	__u8 proto;
	__be16 lport;
	__be16 rport;
	__u16 pad;
	__u32 laddr;
	__u32 raddr;
};

/* tm_flows4's key of an IPv4 flow's key. */
static inline void tm_flow_key4_of(const struct tm_flow_key *k, struct tm_flow_key4 *k4)
{
	__builtin_memset(k4, 0, sizeof(*k4));
	k4->netns = k->netns;
	k4->family = k->family;
	k4->proto = k->proto;
	k4->lport = k->lport;
	k4->rport = k->rport;
	k4->laddr = k->laddr[0];
	k4->raddr = k->raddr[0];
}

/*
 * tm_flows4/6 value: the owner and its exec generation (or the bucket of a
 * flow that has none, cached by the hook that classified it), and the slot
 * of the class the interface layer last counted this flow's received
 * traffic in, so that a packet takes one lookup.
 */
struct tm_flow_val {
	struct tm_owner owner;
	__u32 exec_seq;
	__u8 bucket;            /* enum tm_bucket; TM_BUCKET_OWNER: owner is set */
	__u8 cached;            /* 1: a hook's cache of a classification (epoch below) */
	__u16 pad;
	__u64 epoch;            /* tm_globals.bind_epoch when cached */
	__u32 c_ifindex;        /* the class cache: interface, layer ... */
	__u32 c_layer;
	__u32 c_slot;           /* ... slot and its generation */
	__u32 c_gen;
};

/* Per interface the collector attached to. Key: struct tm_iface_key. */
struct tm_iface_key {
	__u32 netns;
	__u32 ifindex;
};

#define TM_IFACE_XDP_RX (1u << 0)     /* XDP counts this interface's ingress */
#define TM_IFACE_COUNT_SEGS (1u << 1) /* the device counts GSO/GRO segments, not skbs */
#define TM_IFACE_CLSACT_OURS (1u << 2) /* the collector made the clsact qdisc (collector only) */
#define TM_IFACE_NAPI_L3 (1u << 3)    /* veth: what its NAPI queue receives is counted before
				       * GRO, from the network header */

struct tm_iface_val {
	__u32 flags;            /* TM_IFACE_* */
	__u32 pad;
};

enum tm_stat {
	TM_STAT_TW_SCHEDULED = 0,
	TM_STAT_TW_FAILED,
	TM_STAT_TW_CALLBACKS,
	TM_STAT_RINGBUF_DROPS,
	TM_STAT_CLASS_FULL,      /* packets that went to an overflow slot */
	TM_STAT_META_MAP_FULL,
	TM_STAT_MALFORMED,
	TM_STAT_FLOW_PUBLISHED,  /* flow -> owner entries written */
	TM_STAT_CLASSES_MADE,    /* slots given to new classes */
	TM_STAT_DROPS_UNDONE,    /* packets counted, then dropped by the stack: moved to DROP */
	TM_STAT_MAX,
};

enum tm_event_type {
	TM_EV_META = 1,   /* metadata read in-task (task_work, or the first packet / exec) */
	TM_EV_OWNER = 2,  /* new owner, metadata must come from /proc */
	TM_EV_EXIT = 3,   /* last thread of an owner exited */
};

/* Flags of tm_meta_event */
#define TM_META_ARGV_TRUNCATED (1u << 0)
#define TM_META_ENV_TRUNCATED (1u << 1)
#define TM_META_NO_TASK_WORK (1u << 2) /* read by a hook running in the process
					* (first packet, execve), not task_work */

struct tm_event_hdr {
	__u32 type;        /* enum tm_event_type */
	__u32 exec_seq;
	struct tm_owner owner;
	char comm[TM_COMM_LEN];
};

/* A process's identity as the kernel keeps it: read from task_struct by
 * the task_work callback, or from /proc by the collector. */
struct tm_task_ids {
	__u32 uid;         /* real */
	__u32 gid;
	__u32 ppid;        /* tgid of the real parent */
	__u32 pad;
	__u64 cgroup_id;   /* cgroup v2 */
	__u64 netns;       /* namespace inode numbers */
	__u64 mntns;
	__u64 pidns;
};

/*
 * Sized by what it carries: data[] holds argv_len bytes of the argument
 * region (NUL-separated strings), then env_len bytes of the environment
 * region (NUL-separated NAME=value). The ring buffer record is exactly
 * offsetof(data) + argv_len + env_len bytes.
 */
struct tm_meta_event {
	struct tm_event_hdr hdr;
	struct tm_task_ids ids;
	__u32 flags;       /* TM_META_* */
	__u32 argv_len;
	__u32 env_len;
	__u32 pad;
	char data[];
};

#define TM_META_EVENT_MAX (sizeof(struct tm_meta_event) + TM_ARGV_CAP + TM_ENV_CAP)

struct tm_owner_event {
	struct tm_event_hdr hdr;
	__s32 reason;      /* 0: procfs mode; else the task_work schedule error */
	__u32 pad;
};

/* The ids are read from the exiting task, for owners whose metadata was
 * never read (has_ids 0 if the task was already past the point). */
struct tm_exit_event {
	struct tm_event_hdr hdr;
	__s32 exit_code;
	__u32 has_ids;
	struct tm_task_ids ids;
};

#endif /* TASKMETER_H */
