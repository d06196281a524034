// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rtnetlink against the real kernel, each test in a network namespace of its
 * own ("taskmeter-unit-<pid>-<n>", so that concurrent runs do not meet),
 * removed by the fixture whether the test passed or not: deleting the netns
 * takes its veths and qdiscs with it. Needs root and iproute2.
 */
#define _GNU_SOURCE /* asprintf, CLONE_NEWNET */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "clsact.h"
#include "netlink.h"
#include "tm_test.h"

/* The kernel's own instruction macros (tools/include/linux/filter.h) are not exported. */
#define BPF_MOV64_IMM(DST, IMM)                                                      \
	((struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = DST, .imm = IMM })
#define BPF_EXIT_INSN() ((struct bpf_insn){ .code = BPF_JMP | BPF_EXIT })

/* lo counts from the IP header on: loopback_xmit() has pulled the Ethernet header. */
#define IP_UDP_HDRS (20 + 8)

struct fx {
	char ns[64];
	int nsfd;
	struct tm_nl *nl;
	int prog_fd;
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	ret = system(cmd);
	free(cmd);
	return ret;
}

/* Whether the output of a command contains needle; -1 if it could not run. */
static int sh_grep(const char *needle, const char *cmd)
{
	char line[512];
	int found = 0;
	FILE *f = popen(cmd, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		found |= !!strstr(line, needle);
	return pclose(f) ? -1 : found;
}

static bool fx_setup(struct fx *f, bool subscribe)
{
	static int n;
	char path[96];

	*f = (struct fx){ .nsfd = -1, .prog_fd = -1 };
	snprintf(f->ns, sizeof(f->ns), "taskmeter-unit-%d-%d", (int)getpid(), ++n);
	if (sh("ip netns add %s", f->ns)) {
		f->ns[0] = '\0';
		fprintf(stderr, "  cannot create netns\n");
		return false;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", f->ns);
	f->nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (!ASSERT_TRUE(f->nsfd >= 0))
		return false;
	f->nl = tm_nl_open(f->nsfd, subscribe);
	return ASSERT_TRUE(f->nl);
}

static void fx_teardown(struct fx *f)
{
	char path[96];

	tm_nl_close(f->nl);
	if (f->prog_fd >= 0)
		close(f->prog_fd);
	if (f->nsfd >= 0)
		close(f->nsfd);
	if (!f->ns[0])
		return;
	if (sh("ip netns del %s", f->ns))
		fprintf(stderr, "  netns %s could not be deleted\n", f->ns);
	snprintf(path, sizeof(path), "/run/netns/%s", f->ns);
	if (!access(path, F_OK))
		fprintf(stderr, "  netns %s left behind\n", f->ns);
}

/* A test body that runs between fx_setup() and fx_teardown(), whatever it returns. */
#define NL_TEST(name, subscribe)                                                     \
	static bool body_##name(struct fx *f);                                       \
	TM_TEST(name)                                                                \
	{                                                                            \
		struct fx f;                                                         \
		bool ok = fx_setup(&f, subscribe) && body_##name(&f);                \
		fx_teardown(&f);                                                     \
		return ok;                                                           \
	}                                                                            \
	static bool body_##name(struct fx *f)

#define LINKS_MAX 512

struct links {
	struct tm_link v[LINKS_MAX];
	int n;
	int overflow;
};

static void collect(void *ctx, enum tm_link_event ev, const struct tm_link *l)
{
	struct links *ls = ctx;

	if (ev != TM_LINK_NEW || ls->n == LINKS_MAX) {
		ls->overflow++;
		return;
	}
	ls->v[ls->n++] = *l;
}

static const struct tm_link *find(const struct links *ls, const char *name)
{
	for (int i = 0; i < ls->n; i++)
		if (!strcmp(ls->v[i].name, name))
			return &ls->v[i];
	return NULL;
}

static int ifindex_in(struct fx *f, const char *name)
{
	static struct links ls;
	const struct tm_link *l;

	ls.n = 0;
	if (tm_nl_dump_links(f->nl, collect, &ls))
		return -1;
	l = find(&ls, name);
	return l ? l->ifindex : -1;
}

NL_TEST(netlink_dump_links_netns, false)
{
	static struct links ls;

	ASSERT_EQ(tm_nl_dump_links(f->nl, collect, &ls), 0);
	ASSERT_EQ(ls.n, 1);
	ASSERT_EQ(ls.overflow, 0);
	ASSERT_STREQ(ls.v[0].name, "lo");
	ASSERT_EQ(ls.v[0].ifindex, 1);
	ASSERT_STREQ(ls.v[0].kind, "");
	ASSERT_TRUE(ls.v[0].flags & IFF_LOOPBACK);
	ASSERT_TRUE(!(ls.v[0].flags & IFF_UP));
	return true;
}

/* The links of our netns as if_nameindex() sees them: the same set, the same ifindexes. */
static bool same_as_nameindex(const struct links *ls)
{
	struct if_nameindex *ni = if_nameindex(), *p;
	int n = 0;

	if (!ASSERT_TRUE(ni))
		return false;
	for (p = ni; p->if_index; p++, n++) {
		const struct tm_link *l = find(ls, p->if_name);

		if (!l || l->ifindex != (int)p->if_index)
			TM_TEST_FAILED("if_nameindex has %s (%u), the dump %s %d", p->if_name,
				       p->if_index, l ? "has ifindex" : "has not", l ? l->ifindex : 0);
	}
	if_freenameindex(ni);
	return ASSERT_EQ(n, ls->n);
}

/*
 * The calling process's own namespace (tm_nl_open(-1)): a namespace of the
 * test's own with lo and a veth pair, so that nothing else can add or
 * remove a link meanwhile and the host's links are never read.
 */
static bool dump_links_own(void *ctx)
{
	static struct links ls;
	struct tm_nl *nl;

	(void)ctx;
	if (!ASSERT_EQ(sh("ip link add tmo0 type veth peer name tmo1"), 0))
		return false;
	nl = tm_nl_open(-1, false);
	if (!ASSERT_TRUE(nl))
		return false;
	ASSERT_EQ(tm_nl_dump_links(nl, collect, &ls), 0);
	tm_nl_close(nl);
	ASSERT_EQ(ls.n, 3);
	ASSERT_EQ(ls.overflow, 0);
	same_as_nameindex(&ls);
	if (ASSERT_TRUE(find(&ls, "lo")))
		ASSERT_EQ(find(&ls, "lo")->ifindex, 1);
	if (ASSERT_TRUE(find(&ls, "tmo0")))
		ASSERT_STREQ(find(&ls, "tmo0")->kind, "veth");
	ASSERT_TRUE(find(&ls, "tmo1"));
	return true;
}

TM_TEST(netlink_dump_links_own)
{
	return tm_test_in_child(CLONE_NEWNET, dump_links_own, NULL);
}

struct events {
	int new_a, new_b, del_a, del_b, del_other;
	int ifindex_a, ifindex_b;
	char kind_a[16], kind_b[16];
};

static void on_event(void *ctx, enum tm_link_event ev, const struct tm_link *l)
{
	struct events *e = ctx;
	bool a = !strcmp(l->name, "tma0"), b = !strcmp(l->name, "tma1");

	if (ev == TM_LINK_NEW && a) {
		e->new_a++;
		e->ifindex_a = l->ifindex;
		snprintf(e->kind_a, sizeof(e->kind_a), "%s", l->kind);
	} else if (ev == TM_LINK_NEW && b) {
		e->new_b++;
		e->ifindex_b = l->ifindex;
		snprintf(e->kind_b, sizeof(e->kind_b), "%s", l->kind);
	} else if (ev == TM_LINK_DEL) {
		a ? e->del_a++ : b ? e->del_b++ : e->del_other++;
	}
}

/* Reads events until done(e) or 2 s without any. */
static int wait_events(struct tm_nl *nl, struct events *e, bool (*done)(const struct events *))
{
	struct pollfd p = { .fd = tm_nl_event_fd(nl), .events = POLLIN };
	int err = 0;

	while (!err && !done(e)) {
		int n = poll(&p, 1, 2000);

		if (n <= 0)
			return n ? -errno : -ETIMEDOUT;
		err = tm_nl_read_events(nl, on_event, e);
	}
	return err;
}

static bool both_new(const struct events *e)
{
	return e->new_a && e->new_b;
}

static bool both_del(const struct events *e)
{
	return e->del_a && e->del_b;
}

NL_TEST(netlink_link_events, true)
{
	struct events e = { 0 };

	ASSERT_TRUE(tm_nl_event_fd(f->nl) >= 0);
	ASSERT_EQ(sh("ip -n %s link add tma0 type veth peer name tma1", f->ns), 0);
	ASSERT_EQ(wait_events(f->nl, &e, both_new), 0);
	ASSERT_STREQ(e.kind_a, "veth");
	ASSERT_STREQ(e.kind_b, "veth");
	ASSERT_EQ(ifindex_in(f, "tma0"), e.ifindex_a);
	ASSERT_EQ(sh("ip -n %s link del tma0", f->ns), 0);
	ASSERT_EQ(wait_events(f->nl, &e, both_del), 0);
	ASSERT_EQ(e.del_a, 1);
	ASSERT_EQ(e.del_b, 1);
	ASSERT_EQ(e.del_other, 0);
	return true;
}

static bool never(const struct events *e)
{
	(void)e;
	return false;
}

/* A port leaving a bridge is an AF_BRIDGE RTM_DELLINK: not a link deletion. */
NL_TEST(netlink_bridge_port_is_no_del, true)
{
	struct events e = { 0 };

	ASSERT_EQ(sh("ip -n %s link add br0 type bridge && "
		     "ip -n %s link add tma0 type veth peer name tma1 && "
		     "ip -n %s link set tma0 master br0 && ip -n %s link set tma0 nomaster",
		     f->ns, f->ns, f->ns, f->ns),
		  0);
	ASSERT_EQ(wait_events(f->nl, &e, never), -ETIMEDOUT);
	ASSERT_TRUE(e.new_a);
	ASSERT_EQ(e.del_a + e.del_b + e.del_other, 0);
	return true;
}

/* Runs "ip -batch" with one line per i < n: fmt gets i twice (it may use one). */
static int ip_batch(const char *ns, const char *fmt, int n)
{
	char *cmd;
	FILE *p;

	if (asprintf(&cmd, "ip -n %s -batch -", ns) < 0)
		return -1;
	p = popen(cmd, "w");
	free(cmd);
	if (!p)
		return -1;
	for (int i = 0; i < n; i++) {
		fprintf(p, fmt, i, i);
		fputc('\n', p);
	}
	return pclose(p);
}

/* Reads until the queue is empty; 1 if an overrun was reported on the way. */
static int read_all(struct tm_nl *nl, struct events *e)
{
	int err, overran = 0;

	while ((err = tm_nl_read_events(nl, on_event, e)) == -ENOBUFS)
		overran = 1;
	return err ? err : overran;
}

NL_TEST(netlink_events_enobufs, true)
{
	static struct links ls;
	struct events e = { 0 };

	ASSERT_EQ(tm_nl_set_rcvbuf(f->nl, 1), 0); /* the kernel's minimum */
	ASSERT_EQ(ip_batch(f->ns, "link add tmb%d type veth peer name tmc%d", 200), 0);
	ASSERT_EQ(tm_nl_read_events(f->nl, on_event, &e), -ENOBUFS);
	/* What was queued before the loss is gone with it: nothing stale follows. */
	e = (struct events){ 0 };
	ASSERT_EQ(tm_nl_read_events(f->nl, on_event, &e), 0);
	ASSERT_EQ(e.new_a + e.new_b + e.del_other, 0);
	ASSERT_EQ(tm_nl_dump_links(f->nl, collect, &ls), 0);
	ASSERT_EQ(ls.n, 401);
	ASSERT_EQ(ip_batch(f->ns, "link del tmb%d", 200), 0);
	ASSERT_EQ(read_all(f->nl, &e), 1);
	ls.n = 0;
	ASSERT_EQ(tm_nl_dump_links(f->nl, collect, &ls), 0);
	ASSERT_EQ(ls.n, 1);
	ASSERT_STREQ(ls.v[0].name, "lo");
	return true;
}

#define UDP_N 5
#define UDP_LEN 100

/* Inside the netns: UDP_N datagrams of UDP_LEN bytes to ourselves over lo. */
static int udp_to_self(void *arg)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char buf[UDP_LEN] = { 0 };
	int fd, err = 0;

	(void)arg;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		err = -errno;
	for (int i = 0; !err && i < UDP_N; i++)
		if (sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&sa, sizeof(sa)) != UDP_LEN)
			err = -EIO;
	for (int i = 0; !err && i < UDP_N; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) != UDP_LEN)
			err = -EIO;
	close(fd);
	return err;
}

struct stats_find {
	int ifindex, seen;
	struct tm_link_stats st;
};

static void on_stats(void *ctx, int ifindex, const struct tm_link_stats *st)
{
	struct stats_find *sf = ctx;

	if (ifindex != sf->ifindex)
		return;
	sf->seen++;
	sf->st = *st;
}

NL_TEST(netlink_stats_lo, false)
{
	struct tm_link_stats a, b;
	struct stats_find sf = { .ifindex = 1 };
	const uint64_t bytes = UDP_N * (UDP_LEN + IP_UDP_HDRS);

	ASSERT_EQ(sh("ip -n %s link set lo up", f->ns), 0);
	ASSERT_EQ(tm_nl_link_stats(f->nl, 1, &a), 0);
	ASSERT_EQ(tm_nlsock_netns_run(f->nsfd, udp_to_self, NULL), 0);
	ASSERT_EQ(tm_nl_link_stats(f->nl, 1, &b), 0);
	/* lo counts each packet once as sent and once as received. */
	ASSERT_EQ(b.tx_packets - a.tx_packets, UDP_N);
	ASSERT_EQ(b.rx_packets - a.rx_packets, UDP_N);
	ASSERT_EQ(b.tx_bytes - a.tx_bytes, bytes);
	ASSERT_EQ(b.rx_bytes - a.rx_bytes, bytes);
	ASSERT_EQ(b.rx_dropped + b.tx_dropped, 0);
	ASSERT_EQ(tm_nl_dump_stats(f->nl, on_stats, &sf), 0);
	ASSERT_EQ(sf.seen, 1);
	ASSERT_TRUE(!memcmp(&sf.st, &b, sizeof(b)));
	ASSERT_EQ(tm_nl_link_stats(f->nl, 4242, &a), -ENODEV);
	return true;
}

static int load_prog(void)
{
	const struct bpf_insn insns[] = {
		BPF_MOV64_IMM(BPF_REG_0, -1), /* TC_ACT_UNSPEC */
		BPF_EXIT_INSN(),
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "tm_test", "GPL", insns, 2, NULL);
}

static bool tc_shows(struct fx *f, const char *what, const char *needle)
{
	char cmd[192];

	snprintf(cmd, sizeof(cmd), "tc -n %s %s", f->ns, what);
	return sh_grep(needle, cmd) == 1;
}

NL_TEST(netlink_legacy_tc, false)
{
	bool created = false;
	int ifindex;

	ASSERT_EQ(sh("ip -n %s link add tmt0 type veth peer name tmt1", f->ns), 0);
	ifindex = ifindex_in(f, "tmt0");
	ASSERT_TRUE(ifindex > 0);
	f->prog_fd = load_prog();
	ASSERT_TRUE(f->prog_fd >= 0);
	ASSERT_EQ(tm_clsact_filter_count(tm_nl_sock(f->nl), ifindex, true), 0);
	ASSERT_EQ(tm_clsact_ensure(tm_nl_sock(f->nl), ifindex, &created), 0);
	ASSERT_TRUE(created);
	ASSERT_EQ(tm_clsact_ensure(tm_nl_sock(f->nl), ifindex, &created), 0);
	ASSERT_TRUE(!created);
	ASSERT_EQ(tm_clsact_filter_add(tm_nl_sock(f->nl), ifindex, true, f->prog_fd, "tm_test", 1, 1, false), 0);
	ASSERT_EQ(tm_clsact_filter_add(tm_nl_sock(f->nl), ifindex, true, f->prog_fd, "tm_test", 1, 1, false), -EEXIST);
	ASSERT_EQ(tm_clsact_filter_add(tm_nl_sock(f->nl), ifindex, true, f->prog_fd, "tm_test", 1, 1, true), 0);
	ASSERT_TRUE(tm_clsact_filter_prog(tm_nl_sock(f->nl), ifindex, true, 1, 1) > 0);
	ASSERT_EQ(tm_clsact_filter_prog(tm_nl_sock(f->nl), ifindex, true, 1, 2), -ENOENT);
	ASSERT_EQ(tm_clsact_filter_count(tm_nl_sock(f->nl), ifindex, true), 1);
	ASSERT_EQ(tm_clsact_filter_count(tm_nl_sock(f->nl), ifindex, false), 0);
	ASSERT_TRUE(tc_shows(f, "filter show dev tmt0 ingress", "tm_test"));
	ASSERT_TRUE(tc_shows(f, "filter show dev tmt0 ingress", "direct-action"));
	ASSERT_EQ(tm_clsact_filter_del(tm_nl_sock(f->nl), ifindex, true, 1, 1), 0);
	ASSERT_EQ(tm_clsact_filter_count(tm_nl_sock(f->nl), ifindex, true), 0);
	ASSERT_EQ(tm_clsact_del(tm_nl_sock(f->nl), ifindex), 0);
	ASSERT_TRUE(!tc_shows(f, "qdisc show dev tmt0", "clsact"));
	ASSERT_EQ(tm_clsact_filter_count(tm_nl_sock(f->nl), ifindex, true), 0);
	return true;
}

/* An "ingress" qdisc answers EEXIST like clsact would: it must not pass for one. */
NL_TEST(netlink_legacy_tc_ingress_qdisc, false)
{
	bool created = true;
	int ifindex;

	ASSERT_EQ(sh("ip -n %s link add tmt0 type veth peer name tmt1 && "
		     "tc -n %s qdisc add dev tmt0 ingress",
		     f->ns, f->ns),
		  0);
	ifindex = ifindex_in(f, "tmt0");
	ASSERT_TRUE(ifindex > 0);
	ASSERT_EQ(tm_clsact_ensure(tm_nl_sock(f->nl), ifindex, &created), -EBUSY);
	ASSERT_TRUE(!created);
	ASSERT_TRUE(tm_clsact_del(tm_nl_sock(f->nl), ifindex) < 0);
	ASSERT_TRUE(tc_shows(f, "qdisc show dev tmt0", "ingress"));
	return true;
}

static int ino_of(const char *path, uint64_t *ino)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

static int netns_ino(void *arg)
{
	return ino_of("/proc/thread-self/ns/net", arg);
}

NL_TEST(netlink_netns_run, false)
{
	uint64_t before = 0, inside = 0, after = 0, target;
	struct stat st;

	ASSERT_EQ(fstat(f->nsfd, &st), 0);
	target = st.st_ino;
	ASSERT_EQ(ino_of("/proc/thread-self/ns/net", &before), 0);
	ASSERT_TRUE(before != target);
	ASSERT_EQ(tm_nlsock_netns_run(f->nsfd, netns_ino, &inside), 0);
	ASSERT_EQ(inside, target);
	ASSERT_EQ(ino_of("/proc/thread-self/ns/net", &after), 0);
	ASSERT_EQ(after, before);
	ASSERT_EQ(tm_nlsock_netns_run(-1, netns_ino, &inside), 0);
	ASSERT_EQ(inside, before);
	ASSERT_EQ(tm_nlsock_netns_run(-2, netns_ino, &inside), -EBADF);
	return true;
}
