// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Per-packet cost of the packet programs (tm_xdp, tm_tc_*, tm_cgskb_*): what
 * each adds over an empty program of its type (tests/bpf/empty.bpf.c), both
 * run on the same hand-built frame through BPF_PROG_TEST_RUN with a large
 * repeat count. Program and baseline alternate, round after round, and the
 * medians are quoted, so that a slow patch of the machine hits both.
 *
 * As tests/packet does: the real objects, the solo XDP/TC objects sharing the
 * main object's maps by fd, the slots filled as the collector fills them, a
 * network namespace of our own (test runs happen on its loopback device, and
 * bpf_fib_lookup sees nothing of the host).
 *
 * The paths measured (enum owner):
 *   XDP and TC ingress look the flow up in tm_flows4/6: "found" seeds the
 *   frame's flow with an owner, as the socket hooks publish it; "not found
 *   (cached)" leaves it out, so the first packet classifies the flow (a
 *   bucket) and caches that there for the others; "stale" then moves
 *   the bind epoch, as any bind() on the host does: the first packet finds
 *   the cached entry stale, classifies again and renews it, the others find
 *   it fresh.
 *   cgroup_skb and TC egress take the owner from socket storage. A test
 *   run's skb carries a dummy socket of its own, without storage; "found"
 *   seeds tm_seed with the cookie that socket will get (the next few
 *   cookies after one we take), so that its first packet creates the
 *   storage as for a socket older than the collector, and every later
 *   packet takes the owner-found path. The dummy socket is no TCP socket:
 *   TCP frames take the datagram socket's path there. TC egress does not
 *   create storage: only its no-owner path can be run here; its owner path
 *   (with cgroup_skb's hint) is measured under load (bpf_stats, bench.py).
 *
 * Every timed configuration is checked afterwards: the counter its path
 * ends in must have grown by exactly repeat * rounds packets and the
 * matching bytes, so an early exit cannot pass for a cheap program. (Owned
 * datagrams received are counted when read, not at cgroup_skb ingress:
 * there the check is that the path published the owner's flow.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfmaps.h"
#include "log.h"
#include "taskmeter.h"
#include "taskmeter.skel.h"
#include "taskmeter_tc.skel.h"
#include "taskmeter_xdp.skel.h"

#include "pkt.h"

#define DEF_EMPTY_OBJ "build/tests/empty.bpf.o"
#define DEF_REPEAT 1000000u
#define DEF_ROUNDS 5
#define MAX_ROUNDS 21
#define MAX_CONFIGS 128
#define CAL_REPEAT 20000u  /* calibration and warm-up run of each program */
#define BUDGET_S 150.0
#define ETH_LEN 14
#define EXEC_SEQ 7         /* exec_seq of the seeded flow owner */
#define COOKIE_WINDOW 4096 /* cookies seeded after ours: the dummy socket's is among them */
#define TARGET_FOUND_NS 40 /* issue 12: owner found, every hook */
#define TARGET_NONE_NS 60  /* owner not found */

enum obj { OBJ_MAIN, OBJ_XDP, OBJ_TC, OBJ_EMPTY, OBJ_MAX };

enum owner { OWN_FLOW, OWN_CACHED, OWN_STALE, OWN_SOCK, OWN_NOSTORE, OWN_MAX };

#define OWN(o) (1u << (o))

static const char *const owner_text[] = {
	[OWN_FLOW] = "found (flow)",
	[OWN_CACHED] = "not found (cached)",
	[OWN_STALE] = "not found (after a bind: cache renewed)",
	[OWN_SOCK] = "found (socket storage)",
	[OWN_NOSTORE] = "not found (socket without storage)",
};
static const char *const owner_token[] = {
	[OWN_FLOW] = "found", [OWN_CACHED] = "cached", [OWN_STALE] = "stale",
	[OWN_SOCK] = "sock", [OWN_NOSTORE] = "nostore",
};

static bool owner_found(enum owner o)
{
	return o == OWN_FLOW || o == OWN_SOCK;
}

enum hook { H_XDP, H_TC_IN, H_TC_EG, H_CG_EG, H_CG_IN, H_MAX };

struct hook_info {
	const char *name;       /* prog=... in the output */
	const char *prog;       /* the program under test */
	const char *empty;      /* its baseline in the empty object */
	enum obj obj;
	__u8 dir;               /* enum tm_dir */
	__u8 layer;             /* enum tm_layer */
	unsigned int owners;    /* OWN() bits: the paths a test run can take */
	__u32 retval;           /* what both programs return */
};

static const struct hook_info hooks[H_MAX] = {
	[H_XDP] = { "xdp", "tm_xdp", "empty_xdp", OBJ_XDP, TM_DIR_INGRESS, TM_LAYER_XDP,
		    OWN(OWN_FLOW) | OWN(OWN_CACHED) | OWN(OWN_STALE), XDP_PASS },
	[H_TC_IN] = { "tc_ingress", "tm_tc_ingress", "empty_tc", OBJ_TC, TM_DIR_INGRESS,
		      TM_LAYER_TC, OWN(OWN_FLOW) | OWN(OWN_CACHED) | OWN(OWN_STALE), (__u32)-1 },
	[H_TC_EG] = { "tc_egress", "tm_tc_egress", "empty_tc", OBJ_TC, TM_DIR_EGRESS,
		      TM_LAYER_TC, OWN(OWN_NOSTORE), (__u32)-1 },
	[H_CG_EG] = { "cgskb_egress", "tm_cgskb_egress", "empty_cgskb_egress", OBJ_MAIN,
		      TM_DIR_EGRESS, TM_LAYER_CGROUP_SKB, OWN(OWN_SOCK) | OWN(OWN_NOSTORE), 1 },
	[H_CG_IN] = { "cgskb_ingress", "tm_cgskb_ingress", "empty_cgskb_ingress", OBJ_MAIN,
		      TM_DIR_INGRESS, TM_LAYER_CGROUP_SKB, OWN(OWN_SOCK) | OWN(OWN_NOSTORE), 1 },
};

/* How a configuration's path is checked. */
enum check { CHECK_COUNT, CHECK_PUBLISHED };

/* One measured configuration and what it gave. */
struct config {
	enum hook hook;
	unsigned int size;      /* nominal frame size */
	int family;             /* 4 or 6 */
	__u8 proto;             /* 6 or 17 */
	enum owner owner;
	enum check check;
	unsigned int frame_len; /* what was built (IPv6 TCP: at least 74) */
	unsigned int seen_len;  /* what the program sees (cgroup_skb: no Ethernet) */
	double cal_ns;          /* calibration: program + baseline, ns per run */
	__u32 prog_ns[MAX_ROUNDS], empty_ns[MAX_ROUNDS];
	__u64 counted;          /* packets the expected counter grew by */
	bool verified;
};

static struct {
	const char *path[OBJ_MAX];   /* NULL: the skeleton's embedded object */
	struct bpf_object *obj[OBJ_MAX];
	__u32 netns;
	__u32 tgid;                  /* ours: the seeded sockets' owner */
	int ncpus;
	__u32 repeat;
	int rounds;
	int cpu;
	bool json;
	bool forwarding;
	bool no_verify;               /* variants that do not count (experiments) */
	unsigned int only;           /* bit per enum hook; 0: all */
	unsigned int size;           /* filters; 0: all */
	int family, proto;
	__u64 cookies[COOKIE_WINDOW]; /* the window seeded in tm_seed, if any */
	bool seeded;
} bench = {
	.path = { [OBJ_EMPTY] = DEF_EMPTY_OBJ },
	.repeat = DEF_REPEAT,
	.rounds = DEF_ROUNDS,
};

static const struct tm_owner flow_owner = { .tgid = 4242, .start_ns = 1111111 };

#define PEER4 "192.0.2.7"
#define LOCAL4 "127.0.0.1"
#define PEER6 "2001:db8::7"
#define LOCAL6 "::1"
#define PEER_PORT 40000

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* one level lower than libbpf's own: its warnings are our info */
	enum tm_log_level l = level == LIBBPF_WARN ? TM_LOG_INFO : TM_LOG_DEBUG;
	char msg[1024];

	if (l > tm_log_level)
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	tm_log(l, "%s", msg);
	return 0;
}

/* ---- set-up: CPU, network namespace, objects ---- */

static int pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/* A netns of our own with lo up; forwarding in it only if asked. */
static int enter_netns(bool forwarding)
{
	int err = pkt_enter_netns(&bench.netns);

	if (!err && forwarding)
		err = pkt_sysctl_set("/proc/sys/net/ipv4/ip_forward", "1");
	if (!err && forwarding)
		err = pkt_sysctl_set("/proc/sys/net/ipv6/conf/all/forwarding", "1");
	return err;
}

static struct bpf_object *open_obj(enum obj which)
{
	LIBBPF_OPTS(bpf_object_open_opts, o);
	const void *elf;
	size_t sz;

	if (bench.path[which])
		return bpf_object__open_file(bench.path[which], NULL);
	switch (which) {
	case OBJ_MAIN:
		elf = taskmeter_bpf__elf_bytes(&sz);
		o.object_name = "taskmeter_bpf";
		break;
	case OBJ_XDP:
		elf = taskmeter_xdp__elf_bytes(&sz);
		o.object_name = "taskmeter_xdp";
		break;
	default:
		elf = taskmeter_tc__elf_bytes(&sz);
		o.object_name = "taskmeter_tc";
		break;
	}
	return bpf_object__open_mem(elf, sz, &o);
}

static const char *obj_name(enum obj which)
{
	static const char *const names[] = { "main (taskmeter_bpf)", "xdp (taskmeter_xdp)",
					     "tc (taskmeter_tc)", "empty" };

	return bench.path[which] ? bench.path[which] : names[which];
}

/* Loaded as the collector loads them: XDP and TC on the main object's
 * maps, every slot free with its first generation. */
static int load_objs(void)
{
	int err;

	for (int i = 0; i < OBJ_MAX; i++) {
		bench.obj[i] = open_obj(i);
		if (!bench.obj[i]) {
			err = -errno;
			tm_err("cannot open %s: %s\n", obj_name(i), strerror(-err));
			return err;
		}
		err = i == OBJ_XDP || i == OBJ_TC ? tm_bpfmaps_reuse(bench.obj[i], bench.obj[OBJ_MAIN])
						  : 0;
		if (!err)
			err = bpf_object__load(bench.obj[i]);
		if (!err && i == OBJ_MAIN)
			err = tm_bpfmaps_fill_slots(bench.obj[i]);
		if (err) {
			tm_err("cannot load %s: %s\n", obj_name(i), strerror(-err));
			return err;
		}
	}
	return 0;
}

static void close_objs(void)
{
	for (int i = OBJ_MAX - 1; i >= 0; i--)
		bpf_object__close(bench.obj[i]);
}

static int prog_fd(enum obj which, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(bench.obj[which], name);

	if (!p) {
		tm_err("no program %s in %s\n", name, obj_name(which));
		return -ENOENT;
	}
	return bpf_program__fd(p);
}

static int map_fd(const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(bench.obj[OBJ_MAIN], name);

	return m ? bpf_map__fd(m) : -ENOENT;
}

/* ---- frames, flows and counters of a configuration ---- */

static bool cfg_egress(const struct config *c)
{
	return hooks[c->hook].dir == TM_DIR_EGRESS;
}

static const char *proto_name(const struct config *c)
{
	return c->proto == 6 ? "tcp" : "udp";
}

/* The socket layer's configurations publish their (dummy) socket as bound
 * to its local port: ports of their own, so that the interface layer's
 * "not found" flows are not found through them. */
static __u16 local_port(const struct config *c)
{
	if (hooks[c->hook].layer == TM_LAYER_CGROUP_SKB)
		return c->proto == 6 ? 8443 : 5353;
	return c->proto == 6 ? 443 : 53;
}

static __u8 cfg_l4(const struct config *c)
{
	return c->proto == 6 ? TM_L4_TCP : TM_L4_UDP;
}

static __u8 cfg_fam(const struct config *c)
{
	return c->family == 4 ? TM_FAMILY_IPV4 : TM_FAMILY_IPV6;
}

static void cfg_frame(const struct config *c, struct pkt *p)
{
	const char *local = c->family == 4 ? LOCAL4 : LOCAL6, *peer = c->family == 4 ? PEER4 : PEER6;
	const char *src = cfg_egress(c) ? local : peer, *dst = cfg_egress(c) ? peer : local;
	__u16 sport = cfg_egress(c) ? local_port(c) : PEER_PORT;
	__u16 dport = cfg_egress(c) ? PEER_PORT : local_port(c);
	size_t hdrs = ETH_LEN + (c->family == 4 ? 20 : 40) + (c->proto == 6 ? 20 : 8);
	size_t payload = c->size > hdrs ? c->size - hdrs : 0;

	memset(p, 0, sizeof(*p));
	pkt_eth(p, c->family == 4 ? PKT_ETH_IP : PKT_ETH_IPV6);
	if (c->family == 4)
		pkt_ipv4(p, src, dst, c->proto, 0, 5);
	else
		pkt_ipv6(p, src, dst, c->proto);
	if (c->proto == 6)
		pkt_tcp(p, sport, dport, 5, payload);
	else
		pkt_udp(p, sport, dport, payload);
	pkt_finish(p);
}

/* The frame's flow as this host sees it. wildcard: as a socket without a
 * peer is published (cgroup_skb's dummy socket has no ports). */
static void cfg_flow(const struct config *c, bool wildcard, struct tm_flow_key *k)
{
	int af = c->family == 4 ? AF_INET : AF_INET6;

	memset(k, 0, sizeof(*k));
	k->netns = bench.netns;
	k->family = cfg_fam(c);
	k->proto = c->proto;
	k->lport = htons(local_port(c));
	pkt_addr(af, c->family == 4 ? LOCAL4 : LOCAL6, k->laddr);
	if (wildcard)
		return;
	k->rport = htons(PEER_PORT);
	pkt_addr(af, c->family == 4 ? PEER4 : PEER6, k->raddr);
}

/* A flow's key in its family's map (tm_flows4 or tm_flows6), as the
 * programs key it: the map's fd, the key in *k or *k4. */
static int flow_map(const struct tm_flow_key *k, struct tm_flow_key4 *k4, const void **key)
{
	if (k->family == TM_FAMILY_IPV6) {
		*key = k;
		return map_fd("tm_flows6");
	}
	tm_flow_key4_of(k, k4);
	*key = k4;
	return map_fd("tm_flows4");
}

/* tm_flows4/6 for the XDP/TC ingress paths: the owner's flow, or nothing
 * (the first packet then caches its classification). */
static int flow_seed(const struct config *c)
{
	struct tm_flow_val v = { .owner = flow_owner, .exec_seq = EXEC_SEQ };
	struct tm_flow_key k;
	struct tm_flow_key4 k4;
	const void *key;
	int fd;

	cfg_flow(c, false, &k);
	fd = flow_map(&k, &k4, &key);
	if (c->owner == OWN_FLOW)
		return bpf_map_update_elem(fd, key, &v, BPF_ANY) ? -errno : 0;
	if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
		return -errno;
	return 0;
}

/* What a bind() on the host does to cached classifications: moves the bind
 * epoch (tm_globals[0].bind_epoch, the value's first and only field). */
static int bump_epoch(void)
{
	int fd = map_fd("tm_globals");
	__u32 zero = 0;
	__u64 v[4] = { 0 };
	struct bpf_map *m = bpf_object__find_map_by_name(bench.obj[OBJ_MAIN], "tm_globals");

	if (fd < 0 || !m || bpf_map__value_size(m) != sizeof(__u64))
		return -EINVAL;
	if (bpf_map_lookup_elem(fd, &zero, v))
		return -errno;
	v[0]++;
	return bpf_map_update_elem(fd, &zero, v, BPF_ANY) ? -errno : 0;
}

/* The cookie the next socket gets is one past ours, or a little further if
 * other sockets were made meanwhile: seed a window of them with our tgid,
 * so that the test run's dummy socket is "a socket older than the
 * collector" held by us. */
static int cookies_seed(void)
{
	int fd = map_fd("tm_seed"), s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;
	__u32 tgids[COOKIE_WINDOW], count = COOKIE_WINDOW;
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	socklen_t len = sizeof(__u64);
	__u64 cookie = 0;

	if (s < 0)
		return -errno;
	if (getsockopt(s, SOL_SOCKET, SO_COOKIE, &cookie, &len))
		err = -errno;
	close(s);
	for (int i = 0; !err && i < COOKIE_WINDOW; i++) {
		bench.cookies[i] = cookie + 1 + i;
		tgids[i] = bench.tgid;
	}
	if (!err && bpf_map_update_batch(fd, bench.cookies, tgids, &count, &o))
		err = -errno;
	bench.seeded = !err;
	return err;
}

static void cookies_unseed(void)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	__u32 count = COOKIE_WINDOW;

	if (bench.seeded)
		bpf_map_delete_batch(map_fd("tm_seed"), bench.cookies, &count, &o);
	bench.seeded = false;
}

/* Before every run of the program: what its path needs. */
static int cfg_prepare(const struct config *c)
{
	if (c->owner != OWN_SOCK)
		return 0; /* flows: seeded once, in cfg_seed() */
	cookies_unseed();
	return cookies_seed();
}

/* Once per configuration, before its warm-up run. */
static int cfg_seed(const struct config *c)
{
	if (c->owner == OWN_FLOW || c->owner == OWN_CACHED || c->owner == OWN_STALE)
		return flow_seed(c);
	return 0;
}

/* An interface-layer class, as the hooks make it. */
static void if_class(const struct config *c, struct tm_class *k)
{
	memset(k, 0, sizeof(*k));
	if (c->owner == OWN_FLOW) {
		k->owner = flow_owner;
		k->exec_seq = EXEC_SEQ;
	}
	k->bucket = c->owner == OWN_FLOW ? TM_BUCKET_OWNER : TM_BUCKET_LOCAL;
	k->netns = bench.netns;
	k->ifindex = 1;
	k->layer = hooks[c->hook].layer;
	k->dir = hooks[c->hook].dir;
	k->l4 = cfg_l4(c);
	k->family = cfg_fam(c);
}

/* Our own socket-layer class (exec_seq and start time as the kernel has
 * them): the one class of our tgid for this direction, L4 and family. */
static int own_class_slot(const struct config *c, __u32 *slot)
{
	int fd = map_fd("tm_classes");
	struct tm_class k, prev;
	bool first = true;

	while (!bpf_map_get_next_key(fd, first ? NULL : &prev, &k)) {
		first = false;
		prev = k;
		if (k.owner.tgid == bench.tgid && k.layer == TM_LAYER_CGROUP_SKB &&
		    k.dir == hooks[c->hook].dir && k.l4 == cfg_l4(c) && k.family == cfg_fam(c))
			return bpf_map_lookup_elem(fd, &k, slot) ? -errno : 0;
	}
	return -ENOENT;
}

/* The slot this configuration's path counts in; -ENOENT before its class
 * exists. */
static int cfg_slot(const struct config *c, __u32 *slot)
{
	struct tm_class k;

	if (hooks[c->hook].layer == TM_LAYER_CGROUP_SKB) {
		if (c->owner == OWN_SOCK)
			return own_class_slot(c, slot);
		*slot = TM_SLOT_UNATTRIBUTED(hooks[c->hook].dir, cfg_l4(c), cfg_fam(c));
		return 0;
	}
	if_class(c, &k);
	return bpf_map_lookup_elem(map_fd("tm_classes"), &k, slot) ? -errno : 0;
}

/* The configuration's counter, summed over CPUs; zero if it does not exist. */
static int cfg_counter(const struct config *c, struct tm_counter_val *sum)
{
	struct tm_counter_val *percpu = calloc(bench.ncpus, sizeof(*percpu));
	__u32 slot;
	int err;

	memset(sum, 0, sizeof(*sum));
	if (!percpu)
		return -ENOMEM;
	err = cfg_slot(c, &slot);
	if (err == -ENOENT)
		err = 0; /* not counted yet */
	else if (!err && bpf_map_lookup_elem(map_fd("tm_counters"), &slot, percpu))
		err = -errno;
	for (int i = 0; !err && i < bench.ncpus; i++) {
		sum->packets += percpu[i].packets;
		sum->bytes += percpu[i].bytes;
	}
	free(percpu);
	return err;
}

/* ---- running ---- */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One test run of repeat runs: the kernel's average ns per run. Not the
 * wall clock: an XDP test run swaps the XDP dispatcher's program in and
 * waits for RCU, milliseconds that have nothing to do with the program.
 * A run that schedules task_work on us (our socket's first packet asks for
 * our metadata) is cut short by its signal: run again, once it ran. */
static int test_run(int fd, const struct pkt *p, __u32 repeat, __u32 want, __u32 *ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->d, .data_size_in = (__u32)p->len,
		    .repeat = repeat);
	int tries = 3, err;

	while ((err = bpf_prog_test_run_opts(fd, &o) ? -errno : 0) == -EINTR && --tries)
		;
	if (err)
		return err;
	*ns = o.duration;
	if (o.retval != want) {
		tm_err("test run returned %d, expected %d\n", (int)o.retval, (int)want);
		return -EPROTO;
	}
	return 0;
}

struct fds {
	int prog, empty;
};

static int cfg_fds(const struct config *c, struct fds *f)
{
	const struct hook_info *h = &hooks[c->hook];

	f->prog = prog_fd(h->obj, h->prog);
	f->empty = prog_fd(OBJ_EMPTY, h->empty);
	return f->prog < 0 ? f->prog : f->empty < 0 ? f->empty : 0;
}

static int prog_run(const struct config *c, int fd, const struct pkt *p, __u32 repeat, __u32 *ns)
{
	int err = cfg_prepare(c);

	return err ? err : test_run(fd, p, repeat, hooks[c->hook].retval, ns);
}

/* Seed, warm up (creates the classes and caches: the steady state), and
 * for "stale" make the cache stale. */
static int cfg_warm(const struct config *c, const struct fds *f, const struct pkt *p, __u32 *ns)
{
	int err = cfg_seed(c);

	if (!err)
		err = prog_run(c, f->prog, p, CAL_REPEAT, ns);
	if (!err && c->owner == OWN_STALE)
		err = bump_epoch();
	return err;
}

/* Warm-up and calibration: tells how long the timed runs will take. */
static int cfg_calibrate(struct config *c)
{
	__u32 pns = 0, ens = 0;
	struct fds f;
	struct pkt p;
	int err;

	cfg_frame(c, &p);
	err = cfg_fds(c, &f);
	if (!err)
		err = cfg_warm(c, &f, &p, &pns);
	if (!err)
		err = test_run(f.empty, &p, CAL_REPEAT, hooks[c->hook].retval, &ens);
	if (!err && c->owner == OWN_STALE) /* the warm-up ran before the epoch moved */
		err = prog_run(c, f.prog, &p, CAL_REPEAT, &pns);
	c->cal_ns = (double)pns + ens;
	cookies_unseed();
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Medians over the rounds: of the program, of the baseline, and of the
 * difference of the two within each round. */
static double med_prog(const struct config *c)
{
	double v[MAX_ROUNDS];

	for (int i = 0; i < bench.rounds; i++)
		v[i] = c->prog_ns[i];
	return median(v, bench.rounds);
}

static double med_empty(const struct config *c)
{
	double v[MAX_ROUNDS];

	for (int i = 0; i < bench.rounds; i++)
		v[i] = c->empty_ns[i];
	return median(v, bench.rounds);
}

static double added(const struct config *c)
{
	double v[MAX_ROUNDS];

	for (int i = 0; i < bench.rounds; i++)
		v[i] = (double)c->prog_ns[i] - c->empty_ns[i];
	return median(v, bench.rounds);
}

/* The owner path of cgroup_skb ingress on a datagram socket: the flow of
 * the socket published with our tgid (its counts wait for a read). */
static int cfg_published(struct config *c)
{
	struct tm_flow_key4 k4;
	struct tm_flow_val v;
	struct tm_flow_key k;
	const void *key;
	int fd;

	cfg_flow(c, true, &k);
	fd = flow_map(&k, &k4, &key);
	if (bpf_map_lookup_elem(fd, key, &v))
		return -errno;
	c->verified = v.owner.tgid == bench.tgid;
	if (!c->verified)
		tm_err("%s ipv%d %s: flow published for tgid %u, want %u\n", hooks[c->hook].name,
		       c->family, proto_name(c), v.owner.tgid, bench.tgid);
	return c->verified ? 0 : -EPROTO;
}

/* On a failed check: every class and what it counted, to see where the
 * packets went instead. */
static void dump_classes(void)
{
	struct tm_counter_val *percpu = calloc(bench.ncpus, sizeof(*percpu));
	int fd = map_fd("tm_classes");
	struct tm_class k, prev;
	bool first = true;
	__u32 slot;

	while (percpu && !bpf_map_get_next_key(fd, first ? NULL : &prev, &k)) {
		__u64 packets = 0;

		first = false;
		prev = k;
		if (bpf_map_lookup_elem(fd, &k, &slot) ||
		    bpf_map_lookup_elem(map_fd("tm_counters"), &slot, percpu))
			continue;
		for (int i = 0; i < bench.ncpus; i++)
			packets += percpu[i].packets;
		tm_err("  class tgid %u seq %u netns %u if %u layer %u dir %u l4 %u fam %u "
		       "bucket %u: slot %u, %llu packets\n", k.owner.tgid, k.exec_seq, k.netns,
		       k.ifindex, k.layer, k.dir, k.l4, k.family, k.bucket, slot,
		       (unsigned long long)packets);
	}
	free(percpu);
}

/* Did every timed run take the path the configuration names? */
static int cfg_verify(struct config *c, const struct tm_counter_val *before)
{
	__u64 runs = (__u64)bench.repeat * bench.rounds;
	struct tm_counter_val after;
	int err;

	if (c->check == CHECK_PUBLISHED)
		return cfg_published(c);
	err = cfg_counter(c, &after);
	if (err)
		return err;
	c->counted = after.packets - before->packets;
	c->verified = c->counted == runs &&
		      after.bytes - before->bytes == runs * c->seen_len;
	if (!c->verified)
		tm_err("%s size %u ipv%d %s owner %s: the expected counter grew by %llu packets, "
		       "%llu bytes; want %llu packets of %u bytes\n", hooks[c->hook].name, c->size,
		       c->family, proto_name(c), owner_token[c->owner],
		       (unsigned long long)c->counted,
		       (unsigned long long)(after.bytes - before->bytes), (unsigned long long)runs,
		       c->seen_len);
	if (!c->verified)
		dump_classes();
	return c->verified ? 0 : -EPROTO;
}

static int cfg_measure(struct config *c)
{
	__u32 want = hooks[c->hook].retval, warm;
	struct tm_counter_val before;
	struct fds f;
	struct pkt p;
	int err;

	cfg_frame(c, &p);
	err = cfg_fds(c, &f);
	if (!err)
		err = cfg_warm(c, &f, &p, &warm);
	if (!err)
		err = cfg_counter(c, &before);
	for (int i = 0; !err && i < bench.rounds; i++) {
		err = test_run(f.empty, &p, bench.repeat, want, &c->empty_ns[i]);
		if (!err)
			err = prog_run(c, f.prog, &p, bench.repeat, &c->prog_ns[i]);
	}
	cookies_unseed();
	if (!err && !bench.no_verify)
		err = cfg_verify(c, &before);
	return err;
}

/* ---- the configurations ---- */

static const unsigned int sizes[] = { 64, 1500 };

static bool wanted(unsigned int size, int family, int proto)
{
	return (!bench.size || bench.size == size) && (!bench.family || bench.family == family) &&
	       (!bench.proto || bench.proto == proto);
}

static void cfg_init(struct config *c, enum hook h, unsigned int size, int fam, __u8 proto,
		     enum owner o)
{
	struct pkt p;

	memset(c, 0, sizeof(*c));
	c->hook = h;
	c->size = size;
	c->family = fam;
	c->proto = proto;
	c->owner = o;
	c->check = h == H_CG_IN && o == OWN_SOCK ? CHECK_PUBLISHED : CHECK_COUNT;
	cfg_frame(c, &p);
	c->frame_len = (unsigned int)p.len;
	c->seen_len = c->frame_len - (hooks[h].layer == TM_LAYER_CGROUP_SKB ? ETH_LEN : 0);
}

static size_t make_configs(struct config *cfg, size_t max)
{
	size_t n = 0;

	for (int h = 0; h < H_MAX; h++) {
		if (bench.only && !(bench.only & (1u << h)))
			continue;
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
			for (int fam = 4; fam <= 6; fam += 2)
				for (int pr = 0; pr < 2; pr++)
					for (int o = 0; o < OWN_MAX && n < max; o++) {
						__u8 proto = pr ? 17 : 6;

						if (!(hooks[h].owners & OWN(o)) ||
						    !wanted(sizes[s], fam, proto))
							continue;
						cfg_init(&cfg[n++], h, sizes[s], fam, proto, o);
					}
	}
	return n;
}

/* ---- output ---- */

static unsigned int target(const struct config *c)
{
	return owner_found(c->owner) ? TARGET_FOUND_NS : TARGET_NONE_NS;
}

static const char *verified_text(const struct config *c)
{
	if (!c->verified)
		return "no";
	return c->check == CHECK_PUBLISHED ? "published" : "counted";
}

static void print_line(const struct config *c)
{
	printf("prog=%s size=%u frame_len=%u family=ipv%d proto=%s owner=%s fwd=%s "
	       "added_ns=%.1f prog_ns=%.1f empty_ns=%.1f counted=%llu verified=%s\n",
	       hooks[c->hook].name, c->size, c->frame_len, c->family, proto_name(c),
	       owner_token[c->owner], bench.forwarding ? "on" : "off", added(c), med_prog(c),
	       med_empty(c), (unsigned long long)c->counted, verified_text(c));
}

static void print_json(const struct config *cfg, size_t n)
{
	printf("[\n");
	for (size_t i = 0; i < n; i++) {
		const struct config *c = &cfg[i];

		printf("  {\"prog\": \"%s\", \"program\": \"%s\", \"size\": %u, \"frame_len\": %u, "
		       "\"seen_len\": %u, \"family\": \"ipv%d\", \"proto\": \"%s\", "
		       "\"owner\": \"%s\", \"owner_token\": \"%s\", \"found\": %s, "
		       "\"forwarding\": %s, \"added_ns\": %.1f, \"prog_ns\": %.1f, "
		       "\"empty_ns\": %.1f, \"target_ns\": %u, \"repeat\": %u, \"rounds\": %d, "
		       "\"counted\": %llu, \"verified\": \"%s\"}%s\n",
		       hooks[c->hook].name, hooks[c->hook].prog, c->size, c->frame_len, c->seen_len,
		       c->family, proto_name(c), owner_text[c->owner], owner_token[c->owner],
		       owner_found(c->owner) ? "true" : "false",
		       bench.forwarding ? "true" : "false", added(c), med_prog(c), med_empty(c),
		       target(c), bench.repeat, bench.rounds, (unsigned long long)c->counted,
		       verified_text(c), i + 1 < n ? "," : "");
	}
	printf("]\n");
}

static void print_table(const struct config *cfg, size_t n)
{
	printf("\n%-13s %5s %5s %-4s %-5s %-48s %7s %7s %7s %6s  %s\n", "program", "size",
	       "frame", "fam", "proto", "owner", "added", "prog", "empty", "target", "verdict");
	for (size_t i = 0; i < n; i++) {
		const struct config *c = &cfg[i];

		printf("%-13s %5u %5u v%-3d %-5s %-48s %7.1f %7.1f %7.1f %6u  %s\n",
		       hooks[c->hook].name, c->size, c->frame_len, c->family, proto_name(c),
		       owner_text[c->owner], added(c), med_prog(c), med_empty(c), target(c),
		       added(c) <= target(c) ? "ok" : "OVER");
	}
	printf("ns per packet as the kernel times test runs, medians of %d rounds of %u runs;\n"
	       "added: program - empty program of its type, in the same round. Targets: %d ns\n"
	       "with the owner found, %d ns without. cgroup_skb sees the frame without\n"
	       "Ethernet; its test-run socket is a datagram socket (TCP frames included).\n",
	       bench.rounds, bench.repeat, TARGET_FOUND_NS, TARGET_NONE_NS);
}

static void print_env(FILE *f)
{
	struct utsname u = { 0 };
	char stats[8] = "?";
	int fd = open("/proc/sys/kernel/bpf_stats_enabled", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		ssize_t r = read(fd, stats, sizeof(stats) - 1);

		stats[r > 0 ? r : 0] = 0;
		stats[strcspn(stats, "\n")] = 0;
		close(fd);
	}
	uname(&u);
	fprintf(f, "# bench_prog: kernel %s, cpu %d, repeat %u, rounds %d, forwarding %s, "
		"bpf_stats_enabled %s\n", u.release, bench.cpu, bench.repeat, bench.rounds,
		bench.forwarding ? "on" : "off", stats);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench_prog [OPTIONS] [EMPTY_OBJ]\n"
		"Added ns/packet of taskmeter's packet programs over empty ones, through\n"
		"BPF_PROG_TEST_RUN in a private network namespace. Needs root.\n"
		"\n"
		"  EMPTY_OBJ            baselines (default " DEF_EMPTY_OBJ ")\n"
		"  --json               one JSON array on stdout instead of lines and a table\n"
		"  -r, --repeat N       runs per test run (default 1000000)\n"
		"  -k, --rounds N       program/baseline alternations (default 5, odd, <= 21)\n"
		"  --only LIST          xdp,tc_ingress,tc_egress,cgskb_egress,cgskb_ingress\n"
		"  --size N, --family 4|6, --proto tcp|udp   only these frames\n"
		"  --forwarding         enable forwarding in the private netns: the no-owner\n"
		"                       path's bpf_fib_lookup then does a full route lookup\n"
		"  --no-verify          do not check the counters (variants that do not count)\n"
		"  --cpu N              CPU to run on (default 0)\n"
		"  --main-obj FILE      a linked main object instead of the built-in skeleton\n"
		"  --xdp-obj FILE       an XDP object instead of the built-in skeleton\n"
		"  --tc-obj FILE        a TC object instead of the built-in skeleton\n"
		"  -v, --verbose        libbpf's messages too\n");
}

static int parse_only(const char *list)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int h;

		for (h = 0; h < H_MAX && strcmp(tok, hooks[h].name); h++)
			;
		if (h == H_MAX)
			return -EINVAL;
		bench.only |= 1u << h;
	}
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },  { "repeat", required_argument, NULL, 'r' },
		{ "rounds", required_argument, NULL, 'k' }, { "only", required_argument, NULL, 'o' },
		{ "forwarding", no_argument, NULL, 'f' },
		{ "no-verify", no_argument, NULL, 'n' }, { "cpu", required_argument, NULL, 'c' },
		{ "main-obj", required_argument, NULL, 'M' },
		{ "xdp-obj", required_argument, NULL, 'X' },
		{ "tc-obj", required_argument, NULL, 'T' }, { "verbose", no_argument, NULL, 'v' },
		{ "size", required_argument, NULL, 'S' }, { "family", required_argument, NULL, 'F' },
		{ "proto", required_argument, NULL, 'P' }, { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "r:k:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': bench.json = true; break;
		case 'r': bench.repeat = (__u32)strtoul(optarg, NULL, 0); break;
		case 'k': bench.rounds = atoi(optarg); break;
		case 'o': if (parse_only(optarg)) return -EINVAL; break;
		case 'f': bench.forwarding = true; break;
		case 'n': bench.no_verify = true; break;
		case 'c': bench.cpu = atoi(optarg); break;
		case 'M': bench.path[OBJ_MAIN] = optarg; break;
		case 'X': bench.path[OBJ_XDP] = optarg; break;
		case 'T': bench.path[OBJ_TC] = optarg; break;
		case 'S': bench.size = (unsigned int)atoi(optarg); break;
		case 'F': bench.family = atoi(optarg); break;
		case 'P': bench.proto = !strcmp(optarg, "tcp") ? 6 : !strcmp(optarg, "udp") ? 17 : -1;
			break;
		case 'v': tm_log_level = TM_LOG_DEBUG; break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (optind < argc)
		bench.path[OBJ_EMPTY] = argv[optind++];
	if (bench.proto < 0 || (bench.family && bench.family != 4 && bench.family != 6))
		return -EINVAL;
	if (optind < argc || !bench.repeat || bench.rounds < 1 || bench.rounds > MAX_ROUNDS ||
	    bench.rounds % 2 == 0)
		return -EINVAL;
	return 0;
}

static int setup(void)
{
	int err;

	bench.tgid = (__u32)getpid();
	bench.ncpus = libbpf_num_possible_cpus();
	if (bench.ncpus < 0)
		return bench.ncpus;
	err = pin_cpu(bench.cpu);
	if (err) {
		tm_err("cannot pin to CPU %d: %s\n", bench.cpu, strerror(-err));
		return err;
	}
	err = enter_netns(bench.forwarding);
	if (err) {
		tm_err("cannot set up a network namespace: %s\n", strerror(-err));
		return err;
	}
	return load_objs();
}

static int run_all(struct config *cfg, size_t n)
{
	double est = 0, t0;
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		err = cfg_calibrate(&cfg[i]);
		est += cfg[i].cal_ns * bench.repeat * bench.rounds / 1e9;
	}
	if (err) {
		tm_err("calibration run failed: %s\n", strerror(-err));
		return err;
	}
	fprintf(stderr, "# %zu configurations x %d rounds x 2 programs x %u runs: about %.0f s\n",
		n, bench.rounds, bench.repeat, est);
	if (est > BUDGET_S)
		tm_warn("over the %.0f s budget: narrow it with --only\n", BUDGET_S);
	t0 = now_ns();
	for (size_t i = 0; i < n && !err; i++) {
		err = cfg_measure(&cfg[i]);
		if (err)
			tm_err("%s size %u ipv%d %s owner %s: %s\n", hooks[cfg[i].hook].name,
			       cfg[i].size, cfg[i].family, proto_name(&cfg[i]),
			       owner_token[cfg[i].owner], strerror(-err));
		else if (!bench.json)
			print_line(&cfg[i]);
		fflush(stdout);
	}
	fprintf(stderr, "# measured in %.1f s\n", (now_ns() - t0) / 1e9);
	return err;
}

int main(int argc, char **argv)
{
	static struct config cfg[MAX_CONFIGS];
	size_t n;
	int err;

	if (parse_args(argc, argv)) {
		usage(stderr);
		return 2;
	}
	libbpf_set_print(libbpf_print);
	if (bench.repeat < DEF_REPEAT)
		tm_warn("repeat %u is under %u: not a valid measurement\n", bench.repeat,
			DEF_REPEAT);
	n = make_configs(cfg, MAX_CONFIGS);
	err = setup();
	if (!err) {
		print_env(bench.json ? stderr : stdout);
		err = run_all(cfg, n);
	}
	if (!err && bench.json)
		print_json(cfg, n);
	else if (!err)
		print_table(cfg, n);
	close_objs();
	return err ? 1 : 0;
}
