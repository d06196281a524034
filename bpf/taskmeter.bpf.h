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
#define PF_KTHREAD 0x00200000
#define ESRCH 3
#define EEXIST 17

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

/* libbpf 1.1 has no bpf_ksym_exists(). */
#define tm_ksym_exists(sym) (!!(&(sym)))

/*
 * Per-socket ownership. The owner is the process that last sent or received
 * on the socket in process context: stamped at creation, re-stamped by a
 * send (egress in task context) or a send/recv syscall of another process.
 * A socket accepted from a listener inherits the listener's state
 * (BPF_F_CLONE) with `adopt` set: until a process uses it, its traffic waits
 * in `pending` and then goes to that process, so a pre-fork worker gets the
 * request bytes that arrived before it called accept().
 */
struct tm_sk {
	struct tm_owner owner;
	__u32 adopt;         /* 1: inherited from a listener, not used by a process yet */
	__u32 exec_seq;      /* the owner's, as of the last packet at cgroup_skb */
	__u32 pub_tgid;      /* owner and exec_seq last published to tm_flows */
	__u32 pub_seq;       /* (pub_tgid 0: never) */
	__u32 meta_tgid;     /* exec_seq above is of this owner ... */
	__u64 meta_epoch;    /* ... as of this tm_globals.exec_epoch */
	__u8 pend_l4;        /* enum tm_l4 of the pending traffic */
	__u8 pend_family;    /* enum tm_family of the pending traffic */
	__u8 pad[6];
	struct tm_counter_val pending[TM_DIR_MAX];
};

/* Key: socket. Value: struct tm_sk. Written: sock_create (create), packet
 * hooks and send/recv tracepoints (claim), packet hooks for sockets from
 * tm_seed. Lifetime: the socket's. */
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
 * callback per owner can be pending at a time.
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
};

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TM_DEFAULT_META_ENTRIES);
	__type(key, struct tm_owner);
	__type(value, struct tm_meta_slot);
} tm_meta SEC(".maps");

/* Traffic counters. Key: struct tm_counter_key. Value: per-CPU
 * struct tm_counter_val. Written: packet hooks (no atomics: per-CPU).
 * Read and deleted (exited owners): collector. Size: counter_entries. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TM_DEFAULT_COUNTER_ENTRIES);
	__type(key, struct tm_counter_key);
	__type(value, struct tm_counter_val);
} tm_counters SEC(".maps");

/* Where packets go when tm_counters is full, so no byte is lost.
 * Index: TM_OVERFLOW_IDX(dir, l4, family). Read: collector. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TM_OVERFLOW_SLOTS);
	__type(key, __u32);
	__type(value, struct tm_counter_val);
} tm_overflow SEC(".maps");

/* Interface-layer counters (XDP, TC, drops). Key: struct tm_if_key. Value:
 * per-CPU struct tm_counter_val. Written: XDP, TC, kfree_skb tracepoint.
 * Read and deleted (exited owners): collector. Size: if_counter_entries. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TM_DEFAULT_IF_COUNTER_ENTRIES);
	__type(key, struct tm_if_key);
	__type(value, struct tm_counter_val);
} tm_if_counters SEC(".maps");

/* Interface-layer traffic when tm_if_counters is full. Index: layer *
 * TM_DIR_MAX + dir. Read: collector. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TM_IF_OVERFLOW_SLOTS);
	__type(key, __u32);
	__type(value, struct tm_counter_val);
} tm_if_overflow SEC(".maps");

/* Flow -> owner, for hooks that run before the socket is known. Written:
 * cgroup_skb (connected flows, listeners, unconnected sockets, when the
 * owner changes), cgroup/post_bind. Read: XDP, TC ingress, drops. LRU:
 * bounded; an evicted flow falls back to its listener or to a bucket. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TM_DEFAULT_FLOW_ENTRIES);
	__type(key, struct tm_flow_key);
	__type(value, struct tm_flow_val);
} tm_flows SEC(".maps");

/* Interfaces taskmeterd attached to. Written: collector. Read: TC ingress
 * (does XDP count this interface's ingress already?). */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TM_IFACES_MAX);
	__type(key, struct tm_iface_key);
	__type(value, struct tm_iface_val);
} tm_ifaces SEC(".maps");

/* Handed from cgroup_skb egress to TC egress, which runs next for the same
 * skb on the same CPU: its owner and how it parsed, so that TC egress needs
 * neither a socket lookup nor a parse. Identified by the skb's and its
 * socket's addresses; consumed (skb = 0) when used. Index 0. */
struct tm_egress_hint {
	__u64 skb;
	__u64 sk;
	struct tm_owner owner;
	__u32 exec_seq;
	__u32 hdr_len;
	__u32 ip_len;
	__u8 l4;
	__u8 family;
	__u8 pad[2];
};

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tm_egress_hint);
} tm_egress_hint SEC(".maps");

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
	/* Bumped by every execve of an owner: sockets cache their owner's
	 * exec_seq and look it up again only when this moved (one load
	 * instead of a hash lookup per packet). */
	__u64 exec_epoch;
};

TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tm_globals);
} tm_globals SEC(".maps");

static __always_inline struct tm_globals *tm_globals_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tm_globals, &zero); /* inlined: an array */
}

/* Metadata, owner and exit events to the collector. Size: ringbuf_kib. */
TM_DECL struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TM_DEFAULT_RINGBUF_KIB * 1024);
} tm_events SEC(".maps");

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
