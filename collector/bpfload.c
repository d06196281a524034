// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "bpfload.h"
#include "log.h"
#include "procfs.h"
#include "sockdiag.h"
#include "taskmeter.h"
#include "taskmeter.skel.h"

const char *tm_bpf_detect_kfunc(void)
{
	static const char *const names[] = {
		"bpf_task_work_schedule_signal",      /* Linux 7.0+ */
		"bpf_task_work_schedule_signal_impl", /* Linux 6.18 */
	};
	const char *found = NULL;
	struct btf *btf;

	btf = btf__load_vmlinux_btf();
	if (!btf)
		return NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !found; i++)
		if (btf__find_by_name_kind(btf, names[i], BTF_KIND_FUNC) > 0)
			found = names[i];
	btf__free(btf);
	return found;
}

static int set_sizes(struct taskmeter_bpf *skel, const struct tm_config *c)
{
	int err;

	err = bpf_map__set_max_entries(skel->maps.tm_counters, c->max_owner_records);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.tm_meta, c->meta_entries);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.tm_events, c->ringbuf_kib * 1024u);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.tm_flows, c->flow_entries);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.tm_if_counters, c->if_counter_entries);
	return err;
}

int tm_bpf_load(struct tm_bpf *b, const struct tm_config *c)
{
	int err;

	b->kfunc = tm_bpf_detect_kfunc();
	b->task_work = b->kfunc && !c->metadata_procfs;
	if (b->kfunc)
		tm_info("kernel has task_work kfunc %s\n", b->kfunc);
	else
		tm_warn("kernel has no task_work kfunc: metadata comes from /proc\n");
	if (!b->task_work && b->kfunc)
		tm_info("metadata = procfs forced by configuration\n");

	b->skel = taskmeter_bpf__open();
	if (!b->skel) {
		err = -errno;
		tm_err("opening BPF object: %s\n", strerror(-err));
		return err;
	}
	b->skel->rodata->tm_cfg_task_work = b->task_work;
	b->skel->rodata->tm_cfg_argv_max = c->argv_max;
	b->skel->rodata->tm_cfg_env_max = c->env_max;
	err = set_sizes(b->skel, c);
	if (err) {
		tm_err("sizing BPF maps: %s\n", strerror(-err));
		return err;
	}
	err = taskmeter_bpf__load(b->skel);
	if (err) {
		tm_err("loading BPF programs: %s (run with -v for the verifier log)\n",
		       strerror(-err));
		return err;
	}
	return 0;
}

static int add_link(struct tm_bpf *b, struct bpf_link *link, const char *what)
{
	int err;

	if (!link) {
		err = -errno;
		tm_err("attaching %s: %s\n", what, strerror(-err));
		return err;
	}
	b->links[b->n_links++] = link;
	return 0;
}

/* cgroup: a path under the cgroup2 mount, or one relative to it. */
int tm_bpf_open_cgroup(struct tm_bpf *b, const struct tm_config *c)
{
	const char *rel = c->cgroup;
	char mnt[2048];
	size_t n;
	int err;

	err = tm_cgroup2_mount(mnt, sizeof(mnt));
	if (err) {
		tm_err("no cgroup v2 mount found in /proc/self/mountinfo\n");
		return err;
	}
	n = strlen(mnt);
	if (strncmp(rel, mnt, n) == 0 && (rel[n] == '/' || rel[n] == '\0'))
		rel += n;
	while (*rel == '/')
		rel++;
	if ((size_t)snprintf(b->cgroup_path, sizeof(b->cgroup_path), "%s%s%s", mnt,
			     *rel ? "/" : "", rel) >= sizeof(b->cgroup_path)) {
		tm_err("cgroup path too long: %s\n", c->cgroup);
		return -ENAMETOOLONG;
	}
	b->cgroup_fd = open(b->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->cgroup_fd < 0) {
		err = -errno;
		tm_err("opening cgroup %s: %s\n", b->cgroup_path, strerror(-err));
		return err;
	}
	return 0;
}

int tm_bpf_attach(struct tm_bpf *b, const struct tm_config *c)
{
	struct taskmeter_bpf *s = b->skel;
	int err;

	(void)c;
	/* Lifecycle first, so no exec or exit of an owner is missed. */
	err = add_link(b, bpf_program__attach(s->progs.tm_exec), "tp_btf/sched_process_exec");
	if (!err)
		err = add_link(b, bpf_program__attach(s->progs.tm_exit),
			       "tp_btf/sched_process_exit");
	if (!err)
		err = add_link(b, bpf_program__attach_cgroup(s->progs.tm_sock_create, b->cgroup_fd),
			       "cgroup/sock_create");
	if (!err)
		err = add_link(b, bpf_program__attach_cgroup(s->progs.tm_cgskb_egress, b->cgroup_fd),
			       "cgroup_skb/egress");
	if (!err)
		err = add_link(b, bpf_program__attach_cgroup(s->progs.tm_cgskb_ingress, b->cgroup_fd),
			       "cgroup_skb/ingress");
	if (!err)
		err = add_link(b, bpf_program__attach_cgroup(s->progs.tm_post_bind4, b->cgroup_fd),
			       "cgroup/post_bind4");
	if (!err)
		err = add_link(b, bpf_program__attach_cgroup(s->progs.tm_post_bind6, b->cgroup_fd),
			       "cgroup/post_bind6");
	if (!err)
		err = add_link(b, bpf_program__attach(s->progs.tm_drop), "tp_btf/kfree_skb");
	if (!err)
		err = add_link(b, bpf_program__attach(s->progs.tm_recv_length),
			       "tp_btf/sock_recv_length");
	if (!err)
		tm_info("attached to cgroup %s\n", b->cgroup_path);
	return err;
}

void tm_bpf_destroy(struct tm_bpf *b)
{
	/* Reverse order: packet hooks go before what they feed. */
	while (b->n_links > 0)
		bpf_link__destroy(b->links[--b->n_links]);
	if (b->cgroup_fd >= 0)
		close(b->cgroup_fd);
	b->cgroup_fd = -1;
	taskmeter_bpf__destroy(b->skel);
	b->skel = NULL;
}

unsigned long long tm_bpf_map_memory(const struct tm_config *c, int ncpus)
{
	/* hash element: key + value + ~48 bytes of kernel bookkeeping */
	unsigned long long counters = (unsigned long long)c->max_owner_records *
		(sizeof(struct tm_counter_key) + 48 +
		 (unsigned long long)ncpus * sizeof(struct tm_counter_val));
	unsigned long long meta = (unsigned long long)c->meta_entries * (sizeof(struct tm_owner) + 16 + 48);

	return counters + meta + c->ringbuf_kib * 1024ull;
}

static int seed_one(const struct tm_sock_seed *s, void *ctx)
{
	int fd = *(int *)ctx;
	__u32 tgid = s->tgid;

	if (bpf_map_update_elem(fd, &s->cookie, &tgid, BPF_NOEXIST) && errno != EEXIST)
		return errno == E2BIG ? 0 : -errno; /* full: the rest stays unattributed */
	return 0;
}

int tm_bpf_seed_sockets(struct tm_bpf *b)
{
	int fd = bpf_map__fd(b->skel->maps.tm_seed), n;

	n = tm_sockdiag_scan(seed_one, &fd);
	if (n < 0) {
		tm_warn("enumerating existing sockets: %s: their traffic stays unattributed "
			"until a process uses them\n", strerror(-n));
		return n;
	}
	tm_info("seeded the owners of %d sockets that existed before start-up\n", n);
	return 0;
}
