// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor arm's loader: tests/bench/floor.bpf.c's empty programs attached
 * where taskmeterd attaches its own (the cgroup hooks to one cgroup, the
 * tracepoints, TC both ways and optionally XDP on the given interfaces), as
 * links only, so that nothing outlives this process, however it ends.
 * With xdp=MODE an interface's receive side is XDP's instead of TC
 * ingress's, as taskmeterd attaches it with xdp_mode = MODE.
 *
 *   bench_floor OBJ CGROUP [NETNS:IFNAME[:xdp=skb|native]]...
 *
 * Prints "attached" once everything is, then waits for stdin to close (or
 * SIGTERM/SIGINT) and detaches.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define TCX_INGRESS 46 /* enum bpf_attach_type, Linux 6.6; not in Debian 12's uapi headers */
#define TCX_EGRESS 47
#define FLOOR_LINKS 64

static struct {
	struct bpf_object *obj;
	int cgroup_fd;
	int link_fds[FLOOR_LINKS];
	struct bpf_link *links[FLOOR_LINKS];
	int n_fds, n_links;
} fl = { .cgroup_fd = -1 };

static int fail(const char *what, int err)
{
	fprintf(stderr, "bench_floor: %s: %s\n", what, strerror(-err));
	return err;
}

static struct bpf_program *prog(const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(fl.obj, name);

	if (!p)
		fprintf(stderr, "bench_floor: no program %s\n", name);
	return p;
}

/* The cgroup hooks and the tracepoints: libbpf links, by section. */
static int attach_hooks(void)
{
	static const char *const cgroup_progs[] = {
		"floor_cgskb_ingress", "floor_cgskb_egress", "floor_sock_create",
		"floor_post_bind4",    "floor_post_bind6",   "floor_sock_release",
	};
	static const char *const tracing_progs[] = {
		"floor_recv_length", "floor_drop", "floor_tcp_probe", "floor_exec", "floor_exit",
	};
	struct bpf_program *p;
	struct bpf_link *l;

	for (size_t i = 0; i < sizeof(cgroup_progs) / sizeof(cgroup_progs[0]); i++) {
		p = prog(cgroup_progs[i]);
		l = p ? bpf_program__attach_cgroup(p, fl.cgroup_fd) : NULL;
		if (!l)
			return fail(cgroup_progs[i], p ? -errno : -ENOENT);
		fl.links[fl.n_links++] = l;
	}
	for (size_t i = 0; i < sizeof(tracing_progs) / sizeof(tracing_progs[0]); i++) {
		p = prog(tracing_progs[i]);
		l = p ? bpf_program__attach(p) : NULL;
		if (!l)
			return fail(tracing_progs[i], p ? -errno : -ENOENT);
		fl.links[fl.n_links++] = l;
	}
	return 0;
}

static int link_create(const char *name, int ifindex, enum bpf_attach_type type, __u32 flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, o, .flags = flags);
	struct bpf_program *p = prog(name);
	int fd;

	if (!p)
		return -ENOENT;
	if (fl.n_fds == FLOOR_LINKS)
		return -E2BIG;
	fd = bpf_link_create(bpf_program__fd(p), ifindex, type, &o);
	if (fd < 0)
		return -errno;
	fl.link_fds[fl.n_fds++] = fd;
	return 0;
}

/* NETNS:IFNAME[:xdp=MODE]: TC (TCX links) both ways, or XDP and TC egress. */
static int attach_iface(char *spec)
{
	char path[256], *ifname = strchr(spec, ':'), *xdp;
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), ns, ifindex, err = 0;

	if (!ifname || self < 0)
		return -EINVAL;
	*ifname++ = 0;
	xdp = strchr(ifname, ':');
	if (xdp)
		*xdp++ = 0;
	snprintf(path, sizeof(path), "/run/netns/%s", spec);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0 || setns(ns, CLONE_NEWNET))
		err = -errno;
	ifindex = err ? 0 : (int)if_nametoindex(ifname);
	if (!err && !ifindex)
		err = -ENODEV;
	/* receive side: XDP, or TC ingress where XDP does not count (as taskmeterd) */
	if (!err && xdp)
		err = link_create("floor_xdp", ifindex, BPF_XDP,
				  strcmp(xdp, "xdp=native") ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
	else if (!err)
		err = link_create("floor_tc_ingress", ifindex, TCX_INGRESS, 0);
	if (!err)
		err = link_create("floor_tc_egress", ifindex, TCX_EGRESS, 0);
	if (setns(self, CLONE_NEWNET) && !err)
		err = -errno;
	if (ns >= 0)
		close(ns);
	close(self);
	return err;
}

static void detach_all(void)
{
	while (fl.n_fds)
		close(fl.link_fds[--fl.n_fds]);
	while (fl.n_links)
		bpf_link__destroy(fl.links[--fl.n_links]);
	if (fl.cgroup_fd >= 0)
		close(fl.cgroup_fd);
	bpf_object__close(fl.obj);
}

static void on_signal(int sig)
{
	(void)sig; /* read() returns EINTR: the wait ends */
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int err = 0;
	char buf[64];

	if (argc < 3) {
		fprintf(stderr, "usage: bench_floor OBJ CGROUP [NETNS:IFNAME[:xdp=skb|native]]...\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fl.obj = bpf_object__open_file(argv[1], NULL);
	if (!fl.obj) {
		fail(argv[1], -errno);
		return 1;
	}
	err = bpf_object__load(fl.obj);
	if (err)
		fail("load", err);
	fl.cgroup_fd = err ? -1 : open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!err && fl.cgroup_fd < 0)
		err = fail(argv[2], -errno);
	if (!err)
		err = attach_hooks();
	for (int i = 3; !err && i < argc; i++)
		if ((err = attach_iface(argv[i])))
			fail(argv[i], err);
	if (!err) {
		printf("attached\n");
		fflush(stdout);
		while (read(0, buf, sizeof(buf)) > 0)
			;
	}
	detach_all();
	return err ? 1 : 0;
}
