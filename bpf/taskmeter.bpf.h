/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every taskmeter BPF object shares: kfunc declarations, load-time
 * settings and the maps. The maps and settings are defined once, in
 * maps.bpf.c (which defines TM_DEFINE_MAPS); every other object sees them as
 * extern and `bpftool gen object` links them into one.
 */
#ifndef TASKMETER_BPF_H
#define TASKMETER_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "taskmeter.h"

#ifdef TM_DEFINE_MAPS
#define TM_DECL
#define TM_RODATA(type, name, init) const volatile type name = init
#else
#define TM_DECL extern
#define TM_RODATA(type, name, init) extern const volatile type name
#endif

#define ENOENT 2
#define ESRCH 3
#define EEXIST 17
#define PF_KTHREAD 0x00200000

/* Load-time settings, written by the collector between open and load. */
TM_RODATA(__u32, tm_cfg_task_work, 1);  /* 0: metadata from /proc (fallback mode) */
TM_RODATA(__u32, tm_cfg_argv_max, 4096); /* <= TM_ARGV_CAP */
TM_RODATA(__u32, tm_cfg_env_max, 8192);  /* <= TM_ENV_CAP */

/* The task_work kfunc is named ..._impl on 6.18 and takes the program's aux
 * itself from 7.0 on. Both are weak: the one the kernel lacks stays NULL and
 * its call is removed by the verifier as dead code. */
extern int bpf_task_work_schedule_signal_impl(struct task_struct *task, struct bpf_task_work *tw,
					      void *map__map, bpf_task_work_callback_t callback,
					      void *aux__prog) __ksym __weak;
extern int bpf_task_work_schedule_signal(struct task_struct *task, struct bpf_task_work *tw,
					 void *map__map,
					 bpf_task_work_callback_t callback) __ksym __weak;
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* Kernel memory read as type (plain loads, no helper call; the verifier
 * turns the cast into nothing). libbpf 1.1 has no bpf_core_cast(). */
#define tm_core_cast(ptr, type) \
	((type *)bpf_rdonly_cast((ptr), bpf_core_type_id_kernel(type)))

/* libbpf 1.1 has no bpf_ksym_exists(). */
#define tm_ksym_exists(sym) (!!(&(sym)))

/*
 * Per-socket state. The owner is the process that last sent or received on
 * the socket in process context: stamped at creation, re-stamped by a send
 * (egress in task context) or a receive syscall of another process. A
 * socket accepted from a listener inherits the listener's state
 * (BPF_F_CLONE) with `adopt` set: until a process uses it, its traffic waits
 * in `pend` and then goes to that process, so a pre-fork worker gets the
 * request bytes that arrived before it called accept(). The slots of the
 * owner's classes are cached here, so that a packet needs this one lookup.
 */
struct tm_sk {
	/* what every packet reads (the first 64 bytes) */
	struct tm_owner owner;
	__u32 adopt;         /* 1: inherited from a listener, not used by a process yet */
	__u32 exec_seq;      /* the owner's, when the slots below were resolved */
	__u32 slot[TM_DIR_MAX];  /* socket-layer classes [rx, tx] ... */
	__u32 gen[TM_DIR_MAX];   /* ... valid while their generation is this */
	__u8 l4, family;     /* ... and the packets are of these */
	__u8 tx_init;        /* tx_next is set */
	__u8 rx_fin;         /* TCP: 1 the peer's FIN seen at rx_fin_seq, 2 it was taken */
	__u8 pend_l4, pend_family;
	__u8 pad[2];
	__u32 pending;       /* 1: pend may hold counts (set after adding, cleared before taking) */
	__u32 pub_tgid;      /* owner and exec_seq last published to tm_flows4/6 */
	__u32 pub_seq;       /* (pub_tgid 0: never) */
	__u32 if_ifindex;    /* TC egress class on if_ifindex, and its generation */
	/* what some packets read */
	__u32 if_slot;
	__u32 if_gen;
	__u32 tx_next;       /* TCP: sequence number after the highest payload sent */
	__u32 dgram_hdr;     /* datagram sockets: header bytes of the last datagram */
	__u64 rx_seen;       /* TCP: tcp_sock.bytes_received counted so far */
	__u32 rx_fin_seq;
	__u32 pad2;
	struct tm_counter_val dgram;  /* datagram sockets: received, not read yet */
	struct tm_counter_val pend[TM_DIR_MAX];
};

_Static_assert(__builtin_offsetof(struct tm_sk, if_slot) == 64,
	       "what every packet reads of struct tm_sk fits 64 bytes");

/* Key: socket. Value: struct tm_sk. Written: sock_create (create), packet
 * hooks and the recv tracepoint (claim, counts), packet hooks for sockets
 * from tm_seed. Lifetime: the socket's. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct tm_sk);
} tm_sk_owner SEC(".maps");

/* Sockets that existed before the collector started. Key: socket cookie.
 * Value: tgid of a process holding it. Written: collector at start-up, from
 * sock_diag and /proc/<pid>/fd. Read: packet hooks, for a socket without
 * storage (which they then create). Deleted: never (bounded, small). */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TM_SEED_ENTRIES);
	__type(key, __u64);
	__type(value, __u32);
} tm_seed SEC(".maps");

/* Per-owner metadata state. The value embeds the task_work slot, so one
 * callback per owner can be pending at a time, and lists the slots of the
 * owner's socket-layer classes, so that an execve can retire them.
 * Key: struct tm_owner. Written: packet path (create, claim), exec
 * tracepoint (exec_seq++), callback (state). Deleted: collector, after the
 * owner's exit was reported. Size set by the collector (meta_entries). */
enum tm_meta_state {
	TM_META_NEED = 0,    /* metadata missing or stale: next packet asks */
	TM_META_PENDING = 1, /* task_work scheduled, callback not run yet */
	TM_META_DONE = 2,    /* asked (callback ran, or /proc read requested) */
};

struct tm_meta_slot {
	struct bpf_task_work tw;
	__u32 exec_seq;
	__u32 state;         /* enum tm_meta_state */
	__u32 cls[TM_OVERFLOW_SLOTS]; /* slots by TM_OVERFLOW_IDX(dir, l4, family), 0 none */
};

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TM_DEFAULT_META_ENTRIES);
	__type(key, struct tm_owner);
	__type(value, struct tm_meta_slot);
} tm_meta SEC(".maps");

/* A zeroed tm_meta value to create entries from, off the stack (never
 * written). Plain bytes: the verifier refuses a value holding a task_work
 * slot as the source of an update. */
struct tm_meta_blank {
	char b[sizeof(struct tm_meta_slot)];
};

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tm_meta_blank);
} tm_meta_zero SEC(".maps");

/* The counters, one slot per class (and the reserved slots, see
 * TM_SLOTS_RESERVED). Value: per-CPU struct tm_counter_val. Written: packet
 * hooks (no atomics: per-CPU). Read: collector, every interval; zeroed by it
 * when it frees a slot. Size: counter_entries. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TM_DEFAULT_COUNTER_ENTRIES);
	__type(key, __u32);
	__type(value, struct tm_counter_val);
} tm_counters SEC(".maps");

/* Generation of each slot: a cached slot is used only while its generation
 * is the one cached. Bumped by the collector when it frees a slot and by the
 * exec tracepoint for the owner's classes. Starts at TM_GEN_FIRST. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TM_DEFAULT_COUNTER_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} tm_class_gen SEC(".maps");

/* Class -> slot. Written: the hook that first counts a class. Read: the
 * hooks on a cache miss; the collector (which slot counts what). Deleted:
 * collector, when it retires the class. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TM_DEFAULT_COUNTER_ENTRIES);
	__type(key, struct tm_class);
	__type(value, __u32);
} tm_classes SEC(".maps");

/* Free slots, last freed on top so that slots in use stay few and low.
 * Filled by the collector; popped by the hooks. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, TM_DEFAULT_COUNTER_ENTRIES);
	__type(value, __u32);
} tm_free SEC(".maps");

/* Flow -> owner (or bucket), for hooks that run before the socket is known;
 * IPv4 flows in tm_flows4, IPv6 ones in tm_flows6 (flow.bpf.h: one map for
 * the hooks). Written: cgroup_skb (connected flows, listeners, unconnected
 * sockets, when the owner changes), cgroup/post_bind; XDP and TC ingress
 * (their cache of a classification). Read: XDP, TC ingress, drops. LRU:
 * bounded; an evicted flow falls back to its listener or to a bucket. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TM_DEFAULT_FLOW_ENTRIES);
	__type(key, struct tm_flow_key4);
	__type(value, struct tm_flow_val);
} tm_flows4 SEC(".maps");

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TM_DEFAULT_FLOW_ENTRIES);
	__type(key, struct tm_flow_key);
	__type(value, struct tm_flow_val);
} tm_flows6 SEC(".maps");

/* The flow of a fragmented datagram, whose fragments after the first carry
 * no ports. Key: its addresses, protocol and IP id (struct tm_frag_key);
 * value: the flow key its first fragment had. Written by XDP and TC ingress
 * at a first fragment, read by them at the fragments after it (Linux sends
 * them in order). LRU: an entry outlives its datagram until evicted, and
 * the next first fragment with the same id replaces it. */
struct tm_frag_key {
	__u32 netns;
	__u8 family;
	__u8 proto;
	__u16 pad;
	__u32 id;
	__u32 saddr[4];
	__u32 daddr[4];
};

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tm_frag_key);
	__type(value, struct tm_flow_key);
} tm_frags SEC(".maps");

/* Local ports some socket is bound or listening on, a bit each, by
 * protocol (TM_PORTS_TCP, _UDP, _ICMP): a flow that misses tm_flows4/6 is
 * looked up by its local port only where one of these says it may be
 * bound. Set by post_bind and publishing; never cleared (a stale bit costs
 * a lookup, no accuracy). */
#define TM_PORTS_TCP 0
#define TM_PORTS_UDP 1
#define TM_PORTS_ICMP 2
#define TM_PORT_WORDS (65536 / 64)

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3 * TM_PORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} tm_ports SEC(".maps");

/* Interfaces taskmeterd attached to. Written: collector. Read: TC (GSO
 * counting, does XDP count this interface's ingress already?). */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TM_IFACES_MAX);
	__type(key, struct tm_iface_key);
	__type(value, struct tm_iface_val);
} tm_ifaces SEC(".maps");

/* Handed from cgroup_skb egress to TC egress, which runs next for the same
 * skb on the same CPU: its class on the output interface and how it parsed
 * and counted, so that TC egress needs neither a socket lookup nor a parse
 * nor a class lookup. Identified by the skb's and its socket's addresses and
 * its length; consumed (skb = 0) when used. Index 0. */
struct tm_egress_hint {
	__u64 skb;
	__u64 sk;
	struct tm_owner owner;
	__u32 exec_seq;
	__u32 ifindex;          /* if_slot counts TC egress on this interface */
	__u32 if_slot;
	__u32 if_gen;
	__u32 skb_len;
	__u32 hdr_len;
	__u32 ip_len;
	__u8 l4;
	__u8 family;
	__u8 pad[2];
	__u64 payload;          /* new payload (TCP: not sent before) */
	__u64 retrans_bytes;
	__u64 retrans_packets;
};

/* What cgroup_skb ingress counted for an skb, for the drop tracepoint that
 * may see the same skb freed right after (receive buffer full, backlog): it
 * takes the counts back out, so that the socket layer has only what was
 * delivered. Also what TC egress counted, for a device that refuses the
 * frame (tx_dropped). Index 0: ingress, 1: TC egress. */
struct tm_undo_hint {
	__u64 skb;           /* the skb, its socket and length: a drop of another */
	__u64 sk;            /* skb at the same address must not match */
	__u32 len;
	__u32 ifindex;       /* TC egress: the device */
	__u32 slot;          /* where it was counted ... */
	__u32 dgram;         /* ... or 1: into the socket's unread datagrams */
	struct tm_counter_val a;
	struct tm_class k;   /* TC egress: the class it was counted in */
};

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tm_egress_hint);
} tm_egress_hint SEC(".maps");

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct tm_undo_hint);
} tm_undo SEC(".maps");

/* Self-monitoring counters. Index: enum tm_stat. Read: collector. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TM_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tm_stats SEC(".maps");

/* State every program shares, in a map rather than .bss so that it is
 * pinned with the rest and shared by the programs of successive collectors.
 * Index 0. */
struct tm_globals {
	/* Bumped when a port is bound: classifications cached in tm_flows4/6
	 * from before (a bucket, or a listener found by port) are redone. */
	__u64 bind_epoch;
};

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tm_globals);
} tm_globals SEC(".maps");

/* Metadata read in the procfs mode by a hook running in the process (no
 * task_work): built here, then sent sized by what it holds. Per CPU: only
 * non-sleepable programs use it. Index 0. */
struct tm_meta_scratch {
	char buf[TM_META_EVENT_MAX]; /* a struct tm_meta_event and its data */
};

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tm_meta_scratch);
} tm_scratch SEC(".maps");

/* Metadata, owner and exit events to the collector. Size: ringbuf_kib. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TM_DEFAULT_RINGBUF_KIB * 1024);
} tm_events SEC(".maps");

static __always_inline struct tm_globals *tm_globals_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tm_globals, &zero); /* inlined: an array */
}

static __always_inline void tm_stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&tm_stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline void tm_owner_of_task(struct task_struct *task, struct tm_owner *o)
{
	o->tgid = BPF_CORE_READ(task, tgid);
	o->pad = 0;
	o->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
}

#endif /* TASKMETER_BPF_H */
