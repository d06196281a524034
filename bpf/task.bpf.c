// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Process lifecycle: execve makes an owner's metadata stale (and starts a
 * new record, exec_seq + 1); the exit of its last thread is reported so the
 * collector can flush the final record and free the owner's state.
 * Only owners with traffic (an entry in tm_meta) are tracked.
 */
#include "taskmeter.bpf.h"

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tm_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct tm_globals *g;
	struct tm_meta_slot *slot;
	struct tm_owner owner;

	tm_owner_of_task(p, &owner);
	slot = bpf_map_lookup_elem(&tm_meta, &owner);
	if (!slot)
		return 0;
	__sync_fetch_and_add(&slot->exec_seq, 1);
	slot->state = TM_META_NEED;
	g = tm_globals_get();
	if (g)
		__sync_fetch_and_add(&g->exec_epoch, 1); /* sockets: look again */
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
	ev->pad = 0;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}
