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
#define TM_DEFAULT_IF_COUNTER_ENTRIES 65536 /* if_counter_entries */
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

struct tm_counter_key {
	struct tm_owner owner;
	__u32 exec_seq;    /* bumped by every execve of the owner */
	__u8 dir;          /* enum tm_dir */
	__u8 l4;           /* enum tm_l4 */
	__u8 family;       /* enum tm_family */
	__u8 pad;
};

struct tm_counter_val {
	__u64 packets;
	__u64 bytes;
	__u64 payload_bytes;
};

/* Interface-layer counters: per owner (or bucket) per interface. */
struct tm_if_key {
	struct tm_owner owner;  /* tgid 0: see bucket */
	__u32 exec_seq;
	__u32 ifindex;
	__u32 netns;            /* inode of the interface's network namespace */
	__u8 dir;               /* enum tm_dir */
	__u8 l4;                /* enum tm_l4 */
	__u8 family;            /* enum tm_family, or TM_FAMILY_NONE */
	__u8 layer;             /* enum tm_layer */
	__u8 bucket;            /* enum tm_bucket */
	__u8 pad[3];
};

/* Local socket by flow, for the hooks that run before the socket is known
 * (XDP, TC ingress, drops). Addresses as in the packet: v4-mapped sockets
 * are keyed as IPv4. rport 0 and raddr 0: a listener or unconnected socket;
 * laddr 0 as well: bound to the wildcard address. */
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

/* tm_flows value: the owner and its exec generation, so the hooks that
 * read it need no second lookup. */
struct tm_flow_val {
	struct tm_owner owner;
	__u32 exec_seq;
	__u32 pad;
};

/* Per interface the collector attached to. Key: struct tm_iface_key. */
struct tm_iface_key {
	__u32 netns;
	__u32 ifindex;
};

#define TM_IFACE_XDP_RX (1u << 0)     /* XDP counts this interface's ingress */
#define TM_IFACE_COUNT_SEGS (1u << 1) /* the device counts GSO/GRO segments, not skbs */
#define TM_IFACE_CLSACT_OURS (1u << 2) /* the collector made the clsact qdisc (collector only) */

struct tm_iface_val {
	__u32 flags;            /* TM_IFACE_* */
	__u32 pad;
};

/* Where interface-layer packets go when tm_if_counters is full.
 * Index: layer * TM_DIR_MAX + dir. */
#define TM_IF_OVERFLOW_SLOTS (TM_LAYER_MAX * TM_DIR_MAX)

/* Index into the overflow per-CPU array: where a packet goes when the
 * counter map is full. */
#define TM_OVERFLOW_IDX(dir, l4, fam) (((dir) * TM_L4_MAX + (l4)) * TM_FAMILY_MAX + (fam))
#define TM_OVERFLOW_SLOTS (TM_DIR_MAX * TM_L4_MAX * TM_FAMILY_MAX)

enum tm_stat {
	TM_STAT_TW_SCHEDULED = 0,
	TM_STAT_TW_FAILED,
	TM_STAT_TW_CALLBACKS,
	TM_STAT_RINGBUF_DROPS,
	TM_STAT_COUNTER_MAP_FULL,
	TM_STAT_META_MAP_FULL,
	TM_STAT_MALFORMED,
	TM_STAT_IF_MAP_FULL,     /* interface-layer packets that went to overflow */
	TM_STAT_FLOW_PUBLISHED,  /* flow -> owner entries written */
	TM_STAT_MAX,
};

enum tm_event_type {
	TM_EV_META = 1,   /* metadata read in-task by the task_work callback */
	TM_EV_OWNER = 2,  /* new owner, metadata must come from /proc */
	TM_EV_EXIT = 3,   /* last thread of an owner exited */
};

/* Flags of tm_meta_event */
#define TM_META_ARGV_TRUNCATED (1u << 0)
#define TM_META_ENV_TRUNCATED (1u << 1)

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

struct tm_meta_event {
	struct tm_event_hdr hdr;
	struct tm_task_ids ids;
	__u32 flags;       /* TM_META_* */
	__u32 argv_len;    /* bytes valid in argv[]: NUL-separated strings */
	__u32 env_len;     /* bytes valid in env[]: NUL-separated NAME=value */
	char argv[TM_ARGV_CAP];
	char env[TM_ENV_CAP];
};

struct tm_owner_event {
	struct tm_event_hdr hdr;
	__s32 reason;      /* 0: procfs mode; else the task_work schedule error */
	__u32 pad;
};

struct tm_exit_event {
	struct tm_event_hdr hdr;
	__s32 exit_code;
	__u32 pad;
};

#endif /* TASKMETER_H */
