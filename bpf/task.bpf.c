// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Process lifecycle: execve makes an owner's metadata stale and starts a
 * new record (exec_seq + 1): the slots of its classes are retired so that
 * its sockets find the new image's; the exit of its last thread is reported
 * so the collector can flush the final record and free the owner's state.
 * Only owners with traffic (an entry in tm_meta) are tracked.
 */
#include "taskmeter.bpf.h"
#include "metadata.bpf.h"

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tm_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct tm_meta_slot *slot;
	struct tm_owner owner;

	tm_owner_of_task(p, &owner);
	slot = bpf_map_lookup_elem(&tm_meta, &owner);
	if (!slot)
		return 0;
	__sync_fetch_and_add(&slot->exec_seq, 1);
	for (int i = 0; i < TM_OVERFLOW_SLOTS; i++) {
		__u32 s = slot->cls[i], *g;

		if (!s)
			continue;
		g = bpf_map_lookup_elem(&tm_class_gen, &s);
		if (g)
			__sync_fetch_and_add(g, 1); /* sockets: find the new image's class */
		slot->cls[i] = 0;
	}
	if (tm_cfg_task_work) {
		slot->state = TM_META_NEED; /* the next packet schedules a callback */
		return 0;
	}
	/* no task_work: the new image's argv and environment are in place now */
	slot->state = TM_META_DONE;
	if (tm_meta_read_self(&owner, slot->exec_seq))
		tm_emit_owner(&owner, slot->exec_seq, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tm_exit, struct task_struct *p, bool group_dead)
{
	struct tm_meta_slot *slot;
	struct tm_exit_event *ev;
	struct tm_owner owner;

	if (!group_dead)
		return 0;
	tm_owner_of_task(p, &owner);
	slot = bpf_map_lookup_elem(&tm_meta, &owner);
	if (!slot)
		return 0;
	ev = bpf_ringbuf_reserve(&tm_events, sizeof(*ev), 0);
	if (!ev) {
		tm_stat_inc(TM_STAT_RINGBUF_DROPS);
		return 0;
	}
	ev->hdr.type = TM_EV_EXIT;
	ev->hdr.exec_seq = slot->exec_seq;
	ev->hdr.owner = owner;
	BPF_CORE_READ_STR_INTO(&ev->hdr.comm, p, comm);
	ev->exit_code = BPF_CORE_READ(p, exit_code);
	/* for owners whose metadata never came: what the kernel still has */
	tm_task_ids(p, &ev->ids);
	ev->has_ids = 1;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}
