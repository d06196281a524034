// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ownership: every socket created by a process in the attached cgroup is
 * stamped with its creator's identity, in the creator's own context.
 */
#include "taskmeter.bpf.h"

SEC("cgroup/sock_create")
int tm_sock_create(struct bpf_sock *sk)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tm_sk *st;

	st = bpf_sk_storage_get(&tm_sk_owner, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (st)
		tm_owner_of_task(task, &st->owner);
	return 1; /* never refuse a socket */
}
