/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Metadata for an owner seen on the packet path. In task_work mode the first
 * packet schedules a callback on the owner's task; the callback runs in that
 * task before it returns to user mode and copies argv and the environment
 * region from the task's own memory, so even a process that exits right
 * after its first send is described. In procfs mode (or when scheduling
 * fails) the collector is told to read /proc instead.
 *
 * Included by every object with a packet hook: the callback must live in the
 * object of the program that schedules it.
 */
#ifndef TM_METADATA_BPF_H
#define TM_METADATA_BPF_H

#include "taskmeter.bpf.h"

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

/* Copy [start, end) of the current task's user memory, at most max bytes. */
static __always_inline __u32 tm_copy_region(char *dst, __u64 start, __u64 end, __u32 max,
					    __u32 *flags, __u32 trunc_flag)
{
	__u64 len = end > start ? end - start : 0;

	if (len > max) {
		len = max;
		*flags |= trunc_flag;
	}
	if (len > TM_ARGV_CAP) /* also TM_ENV_CAP: bounds for the verifier */
		len = TM_ARGV_CAP;
	if (!len || bpf_copy_from_user(dst, len, (const void *)start))
		return 0;
	return len;
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

static int tm_meta_callback(struct bpf_map *map, void *key, void *value)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tm_meta_slot *slot = value;
	struct tm_meta_event *ev;
	struct mm_struct *mm;

	tm_stat_inc(TM_STAT_TW_CALLBACKS);
	ev = bpf_ringbuf_reserve(&tm_events, sizeof(*ev), 0);
	if (!ev) {
		tm_stat_inc(TM_STAT_RINGBUF_DROPS);
		slot->state = TM_META_DONE; /* the collector falls back to /proc */
		return 0;
	}
	ev->hdr.type = TM_EV_META;
	ev->hdr.exec_seq = slot->exec_seq;
	ev->hdr.owner = *(struct tm_owner *)key;
	bpf_get_current_comm(ev->hdr.comm, sizeof(ev->hdr.comm));
	ev->ids.uid = BPF_CORE_READ(task, cred, uid.val);
	ev->ids.gid = BPF_CORE_READ(task, cred, gid.val);
	ev->ids.ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev->ids.pad = 0;
	ev->ids.cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	ev->ids.netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	ev->ids.mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	ev->ids.pidns = tm_pidns(task);
	ev->flags = 0;
	mm = BPF_CORE_READ(task, mm);
	ev->argv_len = tm_copy_region(ev->argv, BPF_CORE_READ(mm, arg_start),
				      BPF_CORE_READ(mm, arg_end), tm_cfg_argv_max, &ev->flags,
				      TM_META_ARGV_TRUNCATED);
	ev->env_len = tm_copy_region(ev->env, BPF_CORE_READ(mm, env_start),
				     BPF_CORE_READ(mm, env_end), tm_cfg_env_max, &ev->flags,
				     TM_META_ENV_TRUNCATED);
	slot->state = TM_META_DONE;
	bpf_ringbuf_submit(ev, 0);
	return 0;
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

/* Ask for metadata if this owner's is missing; return the owner's exec_seq. */
static __always_inline __u32 tm_meta_touch(const struct tm_owner *owner)
{
	struct tm_meta_slot *slot, fresh = {};
	int err;

	slot = bpf_map_lookup_elem(&tm_meta, owner);
	if (!slot) {
		err = bpf_map_update_elem(&tm_meta, owner, &fresh, BPF_NOEXIST);
		if (err && err != -EEXIST) {
			tm_stat_inc(TM_STAT_META_MAP_FULL);
			return 0;
		}
		slot = bpf_map_lookup_elem(&tm_meta, owner);
		if (!slot)
			return 0;
	}
	if (slot->state != TM_META_NEED)
		return slot->exec_seq;
	/* one CPU claims the request; the others go on counting */
	if (__sync_val_compare_and_swap(&slot->state, TM_META_NEED, TM_META_PENDING) != TM_META_NEED)
		return slot->exec_seq;
	if (!tm_cfg_task_work) {
		slot->state = TM_META_DONE;
		tm_emit_owner(owner, slot->exec_seq, 0);
		return slot->exec_seq;
	}
	err = tm_schedule(owner, slot);
	if (err) {
		slot->state = TM_META_DONE;
		tm_stat_inc(TM_STAT_TW_FAILED);
		tm_emit_owner(owner, slot->exec_seq, err);
	} else {
		tm_stat_inc(TM_STAT_TW_SCHEDULED);
	}
	return slot->exec_seq;
}

#endif /* TM_METADATA_BPF_H */
