/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Open, configure, load and attach the BPF programs; tear down what we made. */
#ifndef TM_BPFLOAD_H
#define TM_BPFLOAD_H

#include <stdbool.h>

#include "config.h"

struct taskmeter_bpf;
struct bpf_link;

struct tm_bpf {
	struct taskmeter_bpf *skel;
	struct bpf_link *links[16];
	int n_links;
	int cgroup_fd;
	bool task_work;        /* metadata via task_work callbacks */
	const char *kfunc;     /* the task_work kfunc this kernel has, or NULL */
	char cgroup_path[4096];
};

/* Name of the task_work kfunc in the running kernel's BTF, or NULL. */
const char *tm_bpf_detect_kfunc(void);

/* Open the configured cgroup (before anything is loaded: a wrong path is a
 * configuration error). */
int tm_bpf_open_cgroup(struct tm_bpf *b, const struct tm_config *c);

/* Open the skeleton, apply the config (map sizes, settings), load. */
int tm_bpf_load(struct tm_bpf *b, const struct tm_config *c);

/* Attach cgroup_skb/sock_create to the configured cgroup and the lifecycle
 * tracepoints. Links only: nothing survives the process. */
int tm_bpf_attach(struct tm_bpf *b, const struct tm_config *c);

/* Owners of the TCP/UDP sockets that existed before we attached, from
 * sock_diag and /proc/<pid>/fd. Call after tm_bpf_attach(): a socket
 * created in between is stamped by the hooks or found by the scan. */
int tm_bpf_seed_sockets(struct tm_bpf *b);

void tm_bpf_destroy(struct tm_bpf *b);

/* Bytes of kernel memory the maps may take with this config (upper bound). */
unsigned long long tm_bpf_map_memory(const struct tm_config *c, int ncpus);

#endif /* TM_BPFLOAD_H */
