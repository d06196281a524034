/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Metadata for an owner seen on the packet path. In task_work mode the first
 * packet schedules a callback on the owner's task; the callback runs in that
 * task before it returns to user mode and copies argv and the environment
 * region from the task's own memory, so even a process that exits right
 * after its first send is described. Without task_work (older kernels, or
 * metadata = procfs) a hook that runs in the owner itself reads what is
 * resident there (the first packet sent in process context, and execve);
 * otherwise the collector is told to read /proc.
 *
 * Events carry what they hold, not their largest size (struct
 * tm_meta_event): a ring buffer holds as many as their real sizes allow.
 *
 * Included by every object with a packet hook: the callback must live in the
 * object of the program that schedules it.
 */
#ifndef TM_METADATA_BPF_H
#define TM_METADATA_BPF_H

#include "taskmeter.bpf.h"

extern int bpf_copy_from_user_dynptr(struct bpf_dynptr *dptr, __u64 off, __u64 size,
				     const void *unsafe_ptr__ign) __ksym __weak;

static __always_inline void tm_emit_owner(const struct tm_owner *owner, __u32 exec_seq, int reason)
{
	struct tm_owner_event *ev;

	ev = bpf_ringbuf_reserve(&tm_events, sizeof(*ev), 0);
	if (!ev) {
		tm_stat_inc(TM_STAT_RINGBUF_DROPS);
		return;
	}
	ev->hdr.type = TM_EV_OWNER;
	ev->hdr.exec_seq = exec_seq;
	ev->hdr.owner = *owner;
	__builtin_memset(ev->hdr.comm, 0, sizeof(ev->hdr.comm));
	ev->reason = reason;
	ev->pad = 0;
	bpf_ringbuf_submit(ev, 0);
}

/* The pid namespace the task itself lives in (not the one for children). */
static __always_inline __u64 tm_pidns(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	bpf_probe_read_kernel(&up, sizeof(up), &pid->numbers[level & 31]);
	return BPF_CORE_READ(up.ns, ns.inum);
}

static __always_inline void tm_task_ids(struct task_struct *task, struct tm_task_ids *ids)
{
	ids->uid = BPF_CORE_READ(task, cred, uid.val);
	ids->gid = BPF_CORE_READ(task, cred, gid.val);
	ids->ppid = BPF_CORE_READ(task, real_parent, tgid);
	ids->pad = 0;
	ids->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	ids->netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	ids->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	ids->pidns = tm_pidns(task);
}

/* Bytes of [start, end) to take, at most max (and the cap, for the
 * verifier); flags the cut. */
static __always_inline __u32 tm_region_len(__u64 start, __u64 end, __u32 max, __u32 *flags,
					   __u32 trunc_flag)
{
	__u64 len = end > start ? end - start : 0;

	if (len > max) {
		len = max;
		*flags |= trunc_flag;
	}
	if (len > TM_ARGV_CAP) /* also TM_ENV_CAP */
		len = TM_ARGV_CAP;
	return (__u32)len;
}

/* The fixed part of a metadata event for the current task. */
static __always_inline void tm_meta_head(struct tm_meta_event *ev, const struct tm_owner *owner,
					 __u32 exec_seq, struct task_struct *task, __u32 flags)
{
	ev->hdr.type = TM_EV_META;
	ev->hdr.exec_seq = exec_seq;
	ev->hdr.owner = *owner;
	bpf_get_current_comm(ev->hdr.comm, sizeof(ev->hdr.comm));
	tm_task_ids(task, &ev->ids);
	ev->flags = flags;
	ev->pad = 0;
}

/* Kernels with task_work but without bpf_copy_from_user_dynptr: the event
 * takes its largest size in the ring. */
static __always_inline int tm_meta_fixed(const struct tm_meta_event *head, __u64 as, __u64 es)
{
	struct tm_meta_event *ev = bpf_ringbuf_reserve(&tm_events, TM_META_EVENT_MAX, 0);
	__u32 alen = head->argv_len, elen = head->env_len;

	if (!ev)
		return -1;
	*ev = *head;
	if (alen > TM_ARGV_CAP)
		alen = TM_ARGV_CAP;
	if (elen > TM_ENV_CAP)
		elen = TM_ENV_CAP;
	if (alen && bpf_copy_from_user(ev->data, alen, (const void *)as))
		alen = 0;
	if (elen && bpf_copy_from_user(ev->data + alen, elen, (const void *)es))
		elen = 0;
	ev->argv_len = alen;
	ev->env_len = elen;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* task_work: the callback runs in the owner, sleepable, so it may fault the
 * pages in. The event is reserved at its real size. */
static __always_inline int tm_meta_task_work(const struct tm_owner *owner, __u32 exec_seq)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = task->mm;
	__u64 as = mm->arg_start, es = mm->env_start;
	struct tm_meta_event ev = {};
	struct bpf_dynptr dp;
	__u32 alen, elen;

	alen = tm_region_len(as, mm->arg_end, tm_cfg_argv_max, &ev.flags, TM_META_ARGV_TRUNCATED);
	elen = tm_region_len(es, mm->env_end, tm_cfg_env_max, &ev.flags, TM_META_ENV_TRUNCATED);
	tm_meta_head(&ev, owner, exec_seq, task, ev.flags);
	ev.argv_len = alen;
	ev.env_len = elen;
	if (!tm_ksym_exists(bpf_copy_from_user_dynptr))
		return tm_meta_fixed(&ev, as, es);
	if (bpf_ringbuf_reserve_dynptr(&tm_events, sizeof(ev) + alen + elen, 0, &dp)) {
		bpf_ringbuf_discard_dynptr(&dp, 0);
		return -1;
	}
	bpf_dynptr_write(&dp, 0, &ev, sizeof(ev), 0);
	if (alen && bpf_copy_from_user_dynptr(&dp, sizeof(ev), alen, (const void *)as))
		ev.argv_len = 0;
	if (elen && bpf_copy_from_user_dynptr(&dp, sizeof(ev) + alen, elen, (const void *)es))
		ev.env_len = 0;
	if (ev.argv_len != alen || ev.env_len != elen) /* what was read, from where */
		bpf_dynptr_write(&dp, 0, &ev, sizeof(ev), 0);
	bpf_ringbuf_submit_dynptr(&dp, 0);
	return 0;
}

static int tm_meta_callback(struct bpf_map *map, void *key, void *value)
{
	struct tm_meta_slot *slot = value;

	tm_stat_inc(TM_STAT_TW_CALLBACKS);
	if (tm_meta_task_work(key, slot->exec_seq))
		tm_stat_inc(TM_STAT_RINGBUF_DROPS); /* the collector falls back to /proc */
	slot->state = TM_META_DONE;
	return 0;
}

/*
 * Without task_work, from a hook running in (a thread of) the owner: argv
 * and environment as far as they are resident (they nearly always are: a
 * process touches both at start), copied without sleeping. The event is
 * built in a per-CPU buffer and sent at its real size.
 */
static __always_inline int tm_meta_read_self(const struct tm_owner *owner, __u32 exec_seq)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = task->mm;
	struct tm_meta_scratch *sc;
	__u32 zero = 0, alen, elen, flags = TM_META_NO_TASK_WORK;
	struct tm_meta_event *ev;
	__u64 as, es;

	sc = bpf_map_lookup_elem(&tm_scratch, &zero);
	if (!sc || !mm)
		return -1;
	ev = (void *)sc->buf;
	as = BPF_CORE_READ(mm, arg_start);
	es = BPF_CORE_READ(mm, env_start);
	alen = tm_region_len(as, BPF_CORE_READ(mm, arg_end), tm_cfg_argv_max, &flags,
			     TM_META_ARGV_TRUNCATED);
	elen = tm_region_len(es, BPF_CORE_READ(mm, env_end), tm_cfg_env_max, &flags,
			     TM_META_ENV_TRUNCATED);
	tm_meta_head(ev, owner, exec_seq, task, flags);
	if (alen && bpf_probe_read_user(ev->data, alen, (const void *)as))
		alen = 0;
	if (elen && bpf_probe_read_user(ev->data + alen, elen, (const void *)es))
		elen = 0;
	ev->argv_len = alen;
	ev->env_len = elen;
	if (bpf_ringbuf_output(&tm_events, sc, sizeof(*ev) + alen + elen, 0)) {
		tm_stat_inc(TM_STAT_RINGBUF_DROPS);
		return -1;
	}
	return 0;
}

/* Is the current task (a thread of) owner? Then its memory is the owner's. */
static __always_inline bool tm_current_is(const struct tm_owner *owner)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return task->tgid == owner->tgid && task->group_leader->start_boottime == owner->start_ns &&
	       !(task->flags & PF_KTHREAD);
}

static __always_inline int tm_schedule(const struct tm_owner *owner, struct tm_meta_slot *slot)
{
	struct task_struct *task;
	int err = -ENOENT;

	task = bpf_task_from_pid(owner->tgid);
	if (!task)
		return -ESRCH;
	/* pid reused since the socket was stamped: not our owner */
	if (BPF_CORE_READ(task, start_boottime) != owner->start_ns) {
		bpf_task_release(task);
		return -ESRCH;
	}
	if (tm_ksym_exists(bpf_task_work_schedule_signal))
		err = bpf_task_work_schedule_signal(task, &slot->tw, &tm_meta, tm_meta_callback);
	else if (tm_ksym_exists(bpf_task_work_schedule_signal_impl))
		err = bpf_task_work_schedule_signal_impl(task, &slot->tw, &tm_meta,
							 tm_meta_callback, NULL);
	bpf_task_release(task);
	return err;
}

/* Metadata of this owner is missing: ask for it, by the best means there
 * is from where we run. */
static __always_inline void tm_meta_ask(const struct tm_owner *owner, struct tm_meta_slot *slot)
{
	int err;

	if (!tm_cfg_task_work) {
		slot->state = TM_META_DONE;
		if (!tm_current_is(owner) || tm_meta_read_self(owner, slot->exec_seq))
			tm_emit_owner(owner, slot->exec_seq, 0);
		return;
	}
	err = tm_schedule(owner, slot);
	if (err) {
		slot->state = TM_META_DONE;
		tm_stat_inc(TM_STAT_TW_FAILED);
		tm_emit_owner(owner, slot->exec_seq, err);
	} else {
		tm_stat_inc(TM_STAT_TW_SCHEDULED);
	}
}

/* The owner's metadata slot (created if need be; NULL if the map is full),
 * asking for metadata when it is missing. */
static __noinline __attribute__((unused)) struct tm_meta_slot *tm_meta_touch(const struct tm_owner *owner)
{
	struct tm_meta_blank *fresh;
	struct tm_meta_slot *slot;
	__u32 zero = 0;
	int err;

	slot = bpf_map_lookup_elem(&tm_meta, owner);
	if (!slot) {
		fresh = bpf_map_lookup_elem(&tm_meta_zero, &zero); /* off the stack */
		if (!fresh)
			return NULL;
		err = bpf_map_update_elem(&tm_meta, owner, fresh, BPF_NOEXIST);
		if (err && err != -EEXIST) {
			tm_stat_inc(TM_STAT_META_MAP_FULL);
			return NULL;
		}
		slot = bpf_map_lookup_elem(&tm_meta, owner);
		if (!slot)
			return NULL;
	}
	if (slot->state != TM_META_NEED)
		return slot;
	/* one CPU claims the request; the others go on counting */
	if (__sync_val_compare_and_swap(&slot->state, TM_META_NEED, TM_META_PENDING) == TM_META_NEED)
		tm_meta_ask(owner, slot);
	return slot;
}

#endif /* TM_METADATA_BPF_H */
