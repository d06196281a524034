// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket seeding: dump sockets per network namespace, then map inodes to
 * processes in one pass over /proc/<pid>/fd through a hash index, so that the
 * cost is O(sockets + fds) however many processes share the host.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

#include "log.h"
#include "nlsock.h"
#include "sockdiag.h"
#include "util.h"

#define INDEX_BUCKETS 64

struct seed_ent {
	struct tm_hnode node; /* in sock_idx, by inode */
	struct tm_sock_seed s;
	uint32_t last_pid; /* counts a process once however many fds it has */
};

struct netns_ent {
	struct tm_hnode node; /* in ns_idx, by inode */
	uint64_t ino;
	int fd;
};

struct scan {
	struct seed_ent *socks;
	size_t n_socks, cap_socks;
	struct netns_ent **ns;  /* each allocated: ns_idx points into them */
	size_t n_ns, cap_ns;
	struct tm_htab ns_idx;
	struct tm_htab sock_idx;
	uint64_t home_ino;
	uint64_t cur_netns;     /* netns of the dump in progress */
	uint8_t cur_protocol;
	struct tm_sockdiag_stats st;
};

static const struct {
	uint8_t family;
	uint8_t protocol;
} dumps[] = {
	{ AF_INET, IPPROTO_TCP },
	{ AF_INET6, IPPROTO_TCP },
	{ AF_INET, IPPROTO_UDP },
	{ AF_INET6, IPPROTO_UDP },
};

int tm_sockdiag_parse_link(const char *link, uint64_t *inode)
{
	static const char prefix[] = "socket:[";
	const char *p = link + sizeof(prefix) - 1;
	uint64_t v = 0;

	if (strncmp(link, prefix, sizeof(prefix) - 1))
		return -EINVAL;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (*p - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	if (p[0] != ']' || p[1])
		return -EINVAL;
	*inode = v;
	return 0;
}

int tm_sockdiag_parse(const struct nlmsghdr *nlh, struct tm_sock_seed *out)
{
	const struct inet_diag_msg *m;

	if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EPROTO;
	m = NLMSG_DATA(nlh);
	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return -EPROTO;
	/* As sock_diag_save_cookie() splits sock_gen_cookie()'s u64. */
	out->cookie = m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32;
	out->inode = m->idiag_inode;
	out->family = m->idiag_family;
	out->state = m->idiag_state;
	return 0;
}

static bool ns_is(const struct tm_hnode *x, const void *ino)
{
	return TM_CONTAINER_OF(x, struct netns_ent, node)->ino == *(const uint64_t *)ino;
}

static bool sock_is(const struct tm_hnode *x, const void *inode)
{
	return TM_CONTAINER_OF(x, struct seed_ent, node)->s.inode == *(const uint64_t *)inode;
}

static struct netns_ent *ns_find(const struct scan *sc, uint64_t ino)
{
	struct tm_hnode *x = tm_htab_find(&sc->ns_idx, tm_hash64(ino), ns_is, &ino);

	return x ? TM_CONTAINER_OF(x, struct netns_ent, node) : NULL;
}

static struct seed_ent *sock_find(const struct scan *sc, uint64_t inode)
{
	struct tm_hnode *x = tm_htab_find(&sc->sock_idx, tm_hash64(inode), sock_is, &inode);

	return x ? TM_CONTAINER_OF(x, struct seed_ent, node) : NULL;
}

/* Numeric /proc entries are thread group ids: readdir never lists threads. */
static uint32_t proc_pid(const struct dirent *de)
{
	char *end;
	unsigned long pid;

	if (de->d_name[0] < '1' || de->d_name[0] > '9')
		return 0;
	pid = strtoul(de->d_name, &end, 10);
	return *end || pid > UINT32_MAX ? 0 : pid;
}

static int add_netns(struct scan *sc, int fd)
{
	struct netns_ent *ns;
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	/* The pid may have been reused since the fstatat(): trust the fd. */
	if (ns_find(sc, st.st_ino))
		return -EEXIST;
	if (tm_array_reserve(&sc->ns, &sc->cap_ns, sizeof(*sc->ns), sc->n_ns + 1, 16))
		return -ENOMEM;
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->ino = st.st_ino;
	ns->fd = fd;
	ns->node.hash = tm_hash64(ns->ino);
	tm_htab_insert(&sc->ns_idx, &ns->node);
	sc->ns[sc->n_ns++] = ns;
	return 0;
}

/* One fd per distinct netns; it pins the netns until the dump is done. */
static int netns_of_pid(struct scan *sc, int procfd, uint32_t pid)
{
	char path[32];
	struct stat st;
	int fd, err;

	snprintf(path, sizeof(path), "%u/ns/net", pid);
	/* Gone, a zombie (no namespaces left) or not ours to see: not an error. */
	if (fstatat(procfd, path, &st, 0))
		return 0;
	if (ns_find(sc, st.st_ino))
		return 0;
	fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	err = add_netns(sc, fd);
	if (err)
		close(fd);
	return err == -EEXIST ? 0 : err;
}

static int collect_netns(struct scan *sc)
{
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = opendir("/proc");
	if (!d)
		return -errno;
	while (!err && (errno = 0, de = readdir(d))) {
		uint32_t pid = proc_pid(de);

		if (pid)
			err = netns_of_pid(sc, dirfd(d), pid);
	}
	if (!err && errno)
		err = -errno;
	closedir(d);
	return err;
}

static int dump_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct scan *sc = data;
	struct tm_sock_seed s = { 0 };
	if (tm_sockdiag_parse(nlh, &s)) {
		tm_dbg("sock_diag: skipping message type %u len %u\n", nlh->nlmsg_type,
		       nlh->nlmsg_len);
		return MNL_CB_OK;
	}
	/* TIME_WAIT and request sockets: no inode, no fd, no process. */
	if (!s.inode)
		return MNL_CB_OK;
	if (tm_array_reserve(&sc->socks, &sc->cap_socks, sizeof(*sc->socks), sc->n_socks + 1, 256)) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	s.protocol = sc->cur_protocol;
	s.netns_ino = sc->cur_netns;
	sc->socks[sc->n_socks++] = (struct seed_ent){ .s = s };
	return MNL_CB_OK;
}

static int dump_one(struct scan *sc, struct tm_nlsock *nl, int i)
{
	struct nlmsghdr *nlh = tm_nlsock_msg(nl, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP);
	struct inet_diag_req_v2 *req;
	size_t mark = sc->n_socks;
	int err;

	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = dumps[i].family;
	req->sdiag_protocol = dumps[i].protocol;
	req->idiag_states = ~0u;
	sc->cur_protocol = dumps[i].protocol;
	err = tm_nlsock_talk(nl, nlh, dump_msg_cb, sc);
	if (!err)
		return 0;
	sc->n_socks = mark;
	/* The kernel has no diag module for this protocol: nothing to dump. */
	if (err == -ENOENT) {
		tm_dbg("sock_diag: family %d protocol %d not supported\n", dumps[i].family,
		       dumps[i].protocol);
		return 0;
	}
	if (err == -ENOBUFS)
		tm_warn("sock_diag: receive queue overflowed (ENOBUFS): "
			"the dump lost replies, scan aborted\n");
	tm_warn("sock_diag dump (family %d protocol %d) in netns %llu: %s\n", dumps[i].family,
		dumps[i].protocol, (unsigned long long)sc->cur_netns, strerror(-err));
	return err;
}

static int dump_netns(struct scan *sc, const struct netns_ent *ns)
{
	struct tm_nlsock nl;
	int err;

	/* The socket is made in the netns and dumps that netns's sockets. */
	err = tm_nlsock_open(&nl, NETLINK_SOCK_DIAG, ns->ino == sc->home_ino ? -1 : ns->fd, 0);
	if (err == -ENOTRECOVERABLE)
		return err;
	if (err) {
		tm_warn("sock_diag socket in netns %llu: %s: its sockets are not seeded\n",
			(unsigned long long)ns->ino, strerror(-err));
		sc->st.netns_skipped++;
		return 0;
	}
	sc->cur_netns = ns->ino;
	for (size_t i = 0; !err && i < sizeof(dumps) / sizeof(dumps[0]); i++)
		err = dump_one(sc, &nl, i);
	tm_nlsock_close(&nl);
	if (!err)
		sc->st.netns++;
	return err;
}

/* After the dumps: the array does not move any more. */
static int index_sockets(struct scan *sc)
{
	size_t n = INDEX_BUCKETS;

	while (n < sc->n_socks)
		n *= 2;
	tm_htab_free(&sc->sock_idx);
	if (tm_htab_init(&sc->sock_idx, n))
		return -ENOMEM;
	for (size_t i = 0; i < sc->n_socks; i++) {
		struct seed_ent *e = &sc->socks[i];

		/*
		 * sockfs inodes are unique host-wide; a socket rehashed while
		 * the dump walked its table can be listed twice.
		 */
		if (sock_find(sc, e->s.inode))
			continue;
		e->node.hash = tm_hash64(e->s.inode);
		tm_htab_insert(&sc->sock_idx, &e->node);
	}
	return 0;
}

static void count_holder(struct scan *sc, const char *link, uint32_t pid)
{
	struct seed_ent *e;
	uint64_t inode;

	if (tm_sockdiag_parse_link(link, &inode))
		return;
	e = sock_find(sc, inode);
	if (!e)
		return;
	sc->st.socket_fds++;
	if (e->last_pid == pid)
		return;
	e->last_pid = pid;
	if (!e->s.holders || pid < e->s.tgid)
		e->s.tgid = pid;
	e->s.holders++;
}

static void scan_fds(struct scan *sc, int procfd, uint32_t pid)
{
	char path[32], link[64];
	struct dirent *de;
	DIR *d;
	int fd;

	snprintf(path, sizeof(path), "%u/fd", pid);
	/* ENOENT / ESRCH: the process exited; EACCES: not ours to see. */
	fd = openat(procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	sc->st.procs++;
	while ((de = readdir(d))) {
		ssize_t n = readlinkat(fd, de->d_name, link, sizeof(link) - 1);

		/* "." and "..", an fd closed since readdir(), a dying process. */
		if (n <= 0)
			continue;
		link[n] = '\0';
		count_holder(sc, link, pid);
	}
	closedir(d);
}

static int map_holders(struct scan *sc)
{
	struct dirent *de;
	DIR *d;
	int err;

	err = index_sockets(sc);
	if (err)
		return err;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		uint32_t pid = proc_pid(de);

		if (pid)
			scan_fds(sc, dirfd(d), pid);
	}
	err = -errno;
	closedir(d);
	return err;
}

static int deliver(struct scan *sc, tm_sock_seed_cb cb, void *ctx)
{
	int err;

	for (size_t i = 0; i < sc->n_socks; i++) {
		if (!sc->socks[i].s.holders)
			continue;
		err = cb(&sc->socks[i].s, ctx);
		if (err < 0)
			return err;
		sc->st.held++;
	}
	return sc->st.held > INT_MAX ? INT_MAX : (int)sc->st.held;
}

static int scan_open(struct scan *sc)
{
	struct stat st;

	/* thread-self, not self: the netns of this thread is the one to compare. */
	if (stat("/proc/thread-self/ns/net", &st))
		return -errno;
	sc->home_ino = st.st_ino;
	if (tm_htab_init(&sc->ns_idx, INDEX_BUCKETS) || tm_htab_init(&sc->sock_idx, INDEX_BUCKETS))
		return -ENOMEM;
	return 0;
}

static void scan_close(struct scan *sc)
{
	for (size_t i = 0; i < sc->n_ns; i++) {
		close(sc->ns[i]->fd);
		free(sc->ns[i]);
	}
	tm_htab_free(&sc->ns_idx);
	tm_htab_free(&sc->sock_idx);
	free(sc->ns);
	free(sc->socks);
}

int tm_sockdiag_scan_stats(tm_sock_seed_cb cb, void *ctx, struct tm_sockdiag_stats *stats)
{
	struct scan sc = { 0 };
	int err;

	err = scan_open(&sc);
	if (!err)
		err = collect_netns(&sc);
	for (size_t i = 0; !err && i < sc.n_ns; i++)
		err = dump_netns(&sc, sc.ns[i]);
	sc.st.sockets = sc.n_socks;
	if (!err)
		err = map_holders(&sc);
	if (!err)
		err = deliver(&sc, cb, ctx);
	tm_dbg("sock_diag: %u netns (%u skipped), %u processes, %llu sockets, %llu held\n",
	       sc.st.netns, sc.st.netns_skipped, sc.st.procs, (unsigned long long)sc.st.sockets,
	       (unsigned long long)sc.st.held);
	if (stats)
		*stats = sc.st;
	scan_close(&sc);
	return err;
}

int tm_sockdiag_scan(tm_sock_seed_cb cb, void *ctx)
{
	return tm_sockdiag_scan_stats(cb, ctx, NULL);
}
