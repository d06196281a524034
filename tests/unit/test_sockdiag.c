// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket seeding: the parsers against fixed input, then live scans that must
 * find sockets this process (or a child, or a child in its own netns) holds,
 * with the inode and cookie the kernel gives through fstat() and SO_COOKIE.
 * The sockets live in network namespaces of the tests' own, with lo up and
 * IPv6 enabled by the test, and each live test runs as pid 1 of a pid
 * namespace of its own with its own /proc: a scan reads the fds of the
 * test's processes only and visits only the test's network namespaces,
 * never the host's. Needs root (unshare, setns).
 */
#define _GNU_SOURCE /* unshare */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include "fixture.h"
#include "sockdiag.h"
#include "tm_test.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* What every live test unshares: its network, mounts (for /proc) and pids. */
#define OWN_NS (CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID)

struct seeds {
	struct tm_sock_seed *v;
	size_t n, cap;
};

struct sock_id {
	uint64_t inode;
	uint64_t cookie;
	uint64_t netns_ino;
};

static int collect(const struct tm_sock_seed *s, void *ctx)
{
	struct seeds *c = ctx;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct tm_sock_seed *v = reallocarray(c->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *s;
	return 0;
}

static const struct tm_sock_seed *find(const struct seeds *c, uint64_t inode)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].inode == inode)
			return &c->v[i];
	return NULL;
}

static int netns_ino(uint64_t *ino)
{
	struct stat st;

	if (stat("/proc/thread-self/ns/net", &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

static int sock_id(int fd, struct sock_id *id)
{
	socklen_t len = sizeof(id->cookie);
	struct stat st;

	if (fstat(fd, &st) || getsockopt(fd, SOL_SOCKET, SO_COOKIE, &id->cookie, &len))
		return -errno;
	id->inode = st.st_ino;
	return netns_ino(&id->netns_ino);
}

/* A socket bound to an ephemeral port of 127.0.0.1 or ::1, or -1. */
static int bound_socket(int family, int type)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (family == AF_INET ? bind(fd, (struct sockaddr *)&a4, sizeof(a4))
			      : bind(fd, (struct sockaddr *)&a6, sizeof(a6))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* listener, client, accepted: a TCP connection over loopback. */
static int tcp_pair(int family, int fds[3])
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);

	fds[0] = bound_socket(family, SOCK_STREAM);
	if (fds[0] < 0 || listen(fds[0], 4) || getsockname(fds[0], (struct sockaddr *)&a, &len))
		return -1;
	fds[1] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[1] < 0 || connect(fds[1], (struct sockaddr *)&a, len))
		return -1;
	fds[2] = accept4(fds[0], NULL, NULL, SOCK_CLOEXEC);
	return fds[2] < 0 ? -1 : 0;
}

static int scan(struct seeds *c, struct tm_sockdiag_stats *st)
{
	free(c->v);
	*c = (struct seeds){ 0 };
	return tm_sockdiag_scan_stats(collect, c, st);
}

/* s is fd's socket, held by tgid alone or with others. */
static bool check_seed(const struct seeds *c, int fd, uint32_t tgid, uint32_t holders,
		       int family, int protocol, int state)
{
	unsigned int before = tm_test_failures();
	const struct tm_sock_seed *s;
	struct sock_id id;

	if (!ASSERT_EQ(sock_id(fd, &id), 0))
		return false;
	s = find(c, id.inode);
	if (!ASSERT_TRUE(s))
		return false;
	ASSERT_EQ(s->cookie, id.cookie);
	ASSERT_EQ(s->tgid, tgid);
	ASSERT_EQ(s->holders, holders);
	ASSERT_EQ(s->family, family);
	ASSERT_EQ(s->protocol, protocol);
	ASSERT_EQ(s->state, state);
	ASSERT_EQ(s->netns_ino, id.netns_ino);
	return tm_test_failures() == before;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

TM_TEST(sockdiag_parse_link)
{
	static const char *const bad[] = {
		"pipe:[1]", "anon_inode:[eventfd]", "socket:[", "socket:[12x]", "socket:[]",
		"socket:[12", "socket:[12]x", "socket:[-1]", "socket:[99999999999999999999]",
		"/dev/null", "",
	};
	uint64_t ino = 0;

	ASSERT_EQ(tm_sockdiag_parse_link("socket:[12345]", &ino), 0);
	ASSERT_EQ(ino, 12345);
	ASSERT_EQ(tm_sockdiag_parse_link("socket:[18446744073709551615]", &ino), 0);
	ASSERT_TRUE(ino == UINT64_MAX);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ino = 7;
		if (tm_sockdiag_parse_link(bad[i], &ino) != -EINVAL || ino != 7) {
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
			return false;
		}
	}
	return true;
}

static struct nlmsghdr *diag_msg(void *buf, uint16_t type, uint8_t family)
{
	struct nlmsghdr *nlh = buf;
	struct inet_diag_msg *m = NLMSG_DATA(nlh);

	memset(buf, 0, NLMSG_SPACE(sizeof(*m)));
	nlh->nlmsg_len = NLMSG_LENGTH(sizeof(*m));
	nlh->nlmsg_type = type;
	m->idiag_family = family;
	m->idiag_state = TCP_LISTEN;
	m->idiag_inode = 4000000001u;
	m->id.idiag_cookie[0] = 0x89abcdef;
	m->id.idiag_cookie[1] = 0x01234567;
	return nlh;
}

TM_TEST(sockdiag_parse_msg)
{
	char buf[NLMSG_SPACE(sizeof(struct inet_diag_msg))] __attribute__((aligned(8)));
	struct tm_sock_seed s = { .protocol = IPPROTO_UDP, .tgid = 42 };
	struct nlmsghdr *nlh;

	nlh = diag_msg(buf, SOCK_DIAG_BY_FAMILY, AF_INET6);
	ASSERT_EQ(tm_sockdiag_parse(nlh, &s), 0);
	ASSERT_TRUE(s.cookie == 0x0123456789abcdefull);
	ASSERT_EQ(s.inode, 4000000001u);
	ASSERT_EQ(s.family, AF_INET6);
	ASSERT_EQ(s.state, TCP_LISTEN);
	/* Left for the caller, who knows what it asked for. */
	ASSERT_EQ(s.protocol, IPPROTO_UDP);
	ASSERT_EQ(s.tgid, 42);

	nlh->nlmsg_len--;
	ASSERT_EQ(tm_sockdiag_parse(nlh, &s), -EPROTO);
	ASSERT_EQ(tm_sockdiag_parse(diag_msg(buf, NLMSG_ERROR, AF_INET), &s), -EPROTO);
	ASSERT_EQ(tm_sockdiag_parse(diag_msg(buf, SOCK_DIAG_BY_FAMILY, AF_UNIX), &s), -EPROTO);
	return true;
}

/* Sockets of every kind this process holds, in a netns of the test's own. */
static bool own_sockets(int family)
{
	int fds[5] = { -1, -1, -1, -1, -1 };
	struct seeds c = { 0 };
	uint32_t me = getpid();

	if (!tm_fx_netns_up(family == AF_INET6))
		return true; /* failed or skipped: the verdict is set */
	if (!ASSERT_EQ(tcp_pair(family, fds), 0))
		goto out;
	fds[3] = bound_socket(family, SOCK_DGRAM);
	fds[4] = dup(fds[0]); /* a second fd is not a second holder */
	if (!ASSERT_TRUE(fds[3] >= 0 && fds[4] >= 0) ||
	    !ASSERT_TRUE(scan(&c, NULL) >= 0))
		goto out;
	check_seed(&c, fds[0], me, 1, family, IPPROTO_TCP, TCP_LISTEN);
	check_seed(&c, fds[1], me, 1, family, IPPROTO_TCP, TCP_ESTABLISHED);
	check_seed(&c, fds[2], me, 1, family, IPPROTO_TCP, TCP_ESTABLISHED);
	check_seed(&c, fds[3], me, 1, family, IPPROTO_UDP, TCP_CLOSE);
out:
	close_all(fds, 5);
	free(c.v);
	return true;
}

static bool own_sockets_v4(void *ctx)
{
	(void)ctx;
	return own_sockets(AF_INET);
}

static bool own_sockets_v6(void *ctx)
{
	(void)ctx;
	return own_sockets(AF_INET6);
}

TM_TEST(sockdiag_own_sockets)
{
	return tm_test_in_child(OWN_NS, own_sockets_v4, NULL);
}

TM_TEST(sockdiag_own_sockets_v6)
{
	return tm_test_in_child(OWN_NS, own_sockets_v6, NULL);
}

/* Lives until the parent closes its end of the pipe (or dies). */
static pid_t spawn_holder(int *release)
{
	int p[2];
	pid_t pid;
	char ch;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		while (read(p[0], &ch, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	*release = p[1];
	return pid;
}

static void reap(pid_t pid, int release)
{
	close(release);
	waitpid(pid, NULL, 0);
}

static bool shared_by_fork(void *ctx)
{
	int fds[3] = { -1, -1, -1 }, release = -1;
	struct seeds c = { 0 };
	uint32_t me = getpid(), lowest;
	pid_t child;

	(void)ctx;
	if (!tm_fx_netns_up(false))
		return true; /* failed: the verdict is set */
	if (!ASSERT_EQ(tcp_pair(AF_INET, fds), 0))
		goto out;
	child = spawn_holder(&release);
	if (!ASSERT_TRUE(child > 0))
		goto out;
	lowest = (uint32_t)child < me ? (uint32_t)child : me;
	if (ASSERT_TRUE(scan(&c, NULL) >= 0)) {
		check_seed(&c, fds[0], lowest, 2, AF_INET, IPPROTO_TCP, TCP_LISTEN);
		check_seed(&c, fds[2], lowest, 2, AF_INET, IPPROTO_TCP, TCP_ESTABLISHED);
	}
	reap(child, release);
out:
	close_all(fds, 3);
	free(c.v);
	return true;
}

TM_TEST(sockdiag_shared_by_fork)
{
	return tm_test_in_child(OWN_NS, shared_by_fork, NULL);
}

/*
 * In a fresh netns lo is down, but binding to 0.0.0.0 needs no interface:
 * the socket is hashed, so sock_diag lists it.
 */
static void netns_child(int report, int release)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct sock_id id = { 0 };
	char ch;
	int fd;

	if (unshare(CLONE_NEWNET))
		_exit(1);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || sock_id(fd, &id))
		_exit(1);
	if (write(report, &id, sizeof(id)) != sizeof(id))
		_exit(1);
	while (read(release, &ch, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

static bool other_netns(void *ctx)
{
	int report[2], release[2];
	struct seeds c = { 0 };
	const struct tm_sock_seed *s;
	struct sock_id id;
	uint64_t my_ns = 0;
	bool ok = false;
	pid_t child;

	(void)ctx;
	if (!ASSERT_EQ(netns_ino(&my_ns), 0) || !ASSERT_EQ(pipe2(report, O_CLOEXEC), 0))
		return false;
	if (!ASSERT_EQ(pipe2(release, O_CLOEXEC), 0)) {
		close(report[0]);
		close(report[1]);
		return false;
	}
	child = fork();
	if (child == 0) {
		close(release[1]);
		netns_child(report[1], release[0]);
	}
	close(report[1]);
	close(release[0]);
	if (child < 0 || read(report[0], &id, sizeof(id)) != sizeof(id))
		goto out;
	if (scan(&c, NULL) < 0)
		goto out;
	s = find(&c, id.inode);
	if (!s) {
		fprintf(stderr, "  socket %llu of pid %d not found\n",
			(unsigned long long)id.inode, child);
		goto out;
	}
	ok = s->cookie == id.cookie && s->tgid == (uint32_t)child && s->holders == 1 &&
	     s->netns_ino == id.netns_ino && s->netns_ino != my_ns &&
	     s->protocol == IPPROTO_UDP && s->family == AF_INET && s->state == TCP_CLOSE;
	if (!ok)
		fprintf(stderr, "  got tgid %u cookie %llu netns %llu, want %d %llu %llu\n",
			s->tgid, (unsigned long long)s->cookie, (unsigned long long)s->netns_ino,
			child, (unsigned long long)id.cookie, (unsigned long long)id.netns_ino);
out:
	close(release[1]);
	close(report[0]);
	if (child > 0)
		waitpid(child, NULL, 0);
	free(c.v);
	return ok;
}

TM_TEST(sockdiag_other_netns)
{
	return tm_test_in_child(OWN_NS, other_netns, NULL);
}

/* An error from the callback stops the scan and comes back unchanged. */
static int refuse(const struct tm_sock_seed *s, void *ctx)
{
	(void)s;
	(*(int *)ctx)++;
	return -ECANCELED;
}

static bool cb_error(void *ctx)
{
	int fds[3] = { -1, -1, -1 }, calls = 0;

	(void)ctx;
	if (!tm_fx_netns_up(false))
		return true; /* failed: the verdict is set */
	/* at least one socket to report */
	if (ASSERT_EQ(tcp_pair(AF_INET, fds), 0)) {
		ASSERT_EQ(tm_sockdiag_scan(refuse, &calls), -ECANCELED);
		ASSERT_EQ(calls, 1);
	}
	close_all(fds, 3);
	return true;
}

TM_TEST(sockdiag_cb_error)
{
	return tm_test_in_child(OWN_NS, cb_error, NULL);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define TIMING_SOCKS 256
#define TIMING_ROUNDS 5
/* Generous: a scan of 256 sockets in one process takes a few ms. */
#define TIMING_MAX_MS 5000.0

static bool timing_round(const int *fds, struct seeds *c, double *ms)
{
	unsigned int before = tm_test_failures();
	struct tm_sockdiag_stats st;
	uint32_t me = getpid();
	double t0 = now_ms();
	int ret = scan(c, &st);

	*ms = now_ms() - t0;
	if (!ASSERT_TRUE(ret >= 0))
		return false;
	/* Our pid and network namespaces hold nothing but ours: exact counts. */
	ASSERT_EQ(st.sockets, TIMING_SOCKS);
	ASSERT_EQ(st.held, TIMING_SOCKS);
	ASSERT_EQ(st.socket_fds, TIMING_SOCKS);
	ASSERT_EQ(st.procs, 1);
	ASSERT_EQ(st.netns, 1);
	ASSERT_EQ(ret, st.held);
	for (int i = 0; i < TIMING_SOCKS && tm_test_failures() == before; i++)
		check_seed(c, fds[i], me, 1, AF_INET, i % 2 ? IPPROTO_UDP : IPPROTO_TCP,
			   i % 2 ? TCP_CLOSE : TCP_LISTEN);
	ASSERT_TRUE(*ms < TIMING_MAX_MS);
	if (tm_test_failures() == before)
		return true;
	fprintf(stderr, "  scan: %.2f ms; %u netns, %u processes, %llu socket fds, "
		"%llu sockets, %llu held\n", *ms, st.netns, st.procs,
		(unsigned long long)st.socket_fds, (unsigned long long)st.sockets,
		(unsigned long long)st.held);
	return false;
}

/* Every scan finds all of TIMING_SOCKS known sockets, each within the bound. */
static bool timing(void *ctx)
{
	int fds[TIMING_SOCKS];
	struct seeds c = { 0 };
	double best = 1e9, ms;
	int n;

	(void)ctx;
	if (!tm_fx_netns_up(false))
		return true; /* failed: the verdict is set */
	for (n = 0; n < TIMING_SOCKS; n++) {
		fds[n] = bound_socket(AF_INET, n % 2 ? SOCK_DGRAM : SOCK_STREAM);
		if (!ASSERT_TRUE(fds[n] >= 0) || (n % 2 == 0 && !ASSERT_EQ(listen(fds[n], 1), 0)))
			break;
	}
	for (int i = 0; n == TIMING_SOCKS && i < TIMING_ROUNDS; i++) {
		if (!timing_round(fds, &c, &ms))
			break;
		best = ms < best ? ms : best;
	}
	if (!tm_test_failures())
		printf("    scan: %.2f ms best of %d, %d sockets of ours found each time\n", best,
		       TIMING_ROUNDS, TIMING_SOCKS);
	close_all(fds, n < TIMING_SOCKS ? n + 1 : n);
	free(c.v);
	return true;
}

TM_TEST(sockdiag_timing)
{
	return tm_test_in_child(OWN_NS, timing, NULL);
}
