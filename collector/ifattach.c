// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP and TC on one interface: attach, adopt, detach (see ifattach.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/types.h>

#include "bpfload.h"
#include "bpfmaps.h"
#include "clsact.h"
#include "ifattach.h"
#include "log.h"
#include "taskmeter.h"
#include "taskmeter.skel.h"
#include "taskmeter_tc.skel.h"
#include "taskmeter_xdp.skel.h"
#include "util.h"

#define TM_BPF_TCX_INGRESS 46 /* enum bpf_attach_type, Linux 6.6; not in our uapi headers */
#define TM_BPF_TCX_EGRESS 47
/* Our clsact filters: first in line (they only count and return "next",
 * so whatever comes after still sees every packet), and a handle of ours. */
#define TM_TC_PRIO 1
#define TM_TC_HANDLE 0x7a5c
#define TM_PIN_NAME 96
#define TM_OTHERS_MAX 64
#define TM_PROG_MAPS_MAX 32

struct tm_attacher {
	const struct tm_config *cfg;
	struct tm_bpf *bpf;
	struct taskmeter_tc *tc;       /* loaded once for every interface */
	struct taskmeter_xdp *xdp;     /* the same for XDP links, loaded when needed */
	bool tcx_missing;              /* the kernel refused TCX once: clsact */
	bool no_dispatcher;            /* libxdp's dispatcher did not load: links */
	uint32_t own_map;              /* our tm_classes: programs using it are ours */
	uint32_t others[TM_OTHERS_MAX]; /* other instances' */
	int n_others;
	struct tm_vec stale;           /* char[TM_PIN_NAME]: pinned links not claimed yet */
};

const char *tm_ifattach_xdp_mode(enum xdp_attach_mode m)
{
	return m == XDP_MODE_NATIVE ? "native" : m == XDP_MODE_SKB ? "skb" : "off";
}

const char *tm_ifattach_tc_mode(const struct tm_ifattach *x)
{
	return x->tcx[1] >= 0 ? "tcx" : x->filter[1] ? "clsact" : "off"; /* of egress */
}

/* ---- whose is a program ---- */

static uint32_t map_id_of(int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* The id of the tm_classes map prog_id uses; 0 if it uses none (it
 * is not a taskmeter program at all). */
static uint32_t counters_map_of(uint32_t prog_id)
{
	__u32 ids[TM_PROG_MAPS_MAX], len = sizeof(struct bpf_prog_info), found = 0;
	struct bpf_prog_info info = { 0 };
	int fd = bpf_prog_get_fd_by_id(prog_id);

	if (fd < 0)
		return 0;
	info.nr_map_ids = TM_PROG_MAPS_MAX;
	info.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.nr_map_ids = 0;
	close(fd);
	for (__u32 i = 0; i < info.nr_map_ids && i < TM_PROG_MAPS_MAX && !found; i++) {
		struct bpf_map_info mi = { 0 };
		__u32 mlen = sizeof(mi);
		int mfd = bpf_map_get_fd_by_id(ids[i]);

		if (mfd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(mfd, &mi, &mlen) && !strcmp(mi.name, "tm_classes"))
			found = mi.id;
		close(mfd);
	}
	return found;
}

/* May we replace prog_id? Ours (an earlier program of this instance), or
 * a taskmeter program whose state no instance has: an orphan. Never
 * another tool's, never another instance's. */
static bool replaceable(const struct tm_attacher *a, uint32_t prog_id)
{
	uint32_t m = counters_map_of(prog_id);

	if (!m)
		return false;
	for (int i = 0; i < a->n_others; i++)
		if (a->others[i] == m)
			return false;
	if (m != a->own_map)
		tm_info("program %u is a taskmeter program no instance owns: replacing it\n",
			prog_id);
	return true;
}

/* ---- pinned links ---- */

static void pin_name(const struct tm_ifattach *x, const char *what, char *buf)
{
	snprintf(buf, TM_PIN_NAME, "%s_%s", x->pin_prefix, what);
}

/* A pinned link named name is claimed: the sweep leaves it. */
static void claim(struct tm_attacher *a, const char *name)
{
	char (*names)[TM_PIN_NAME] = a->stale.data;

	for (size_t i = 0; i < a->stale.len; i++) {
		if (strcmp(names[i], name))
			continue;
		memcpy(names[i], names[--a->stale.len], TM_PIN_NAME);
		return;
	}
}

static void unpin(struct tm_attacher *a, const char *name)
{
	char path[PATH_MAX];

	if (!tm_pin_path(&a->bpf->pin, name, path, sizeof(path)))
		unlink(path);
}

struct link_facts {
	uint32_t prog_id;
	uint32_t ifindex;     /* 0: its device is gone */
};

static int link_facts(int fd, struct link_facts *f)
{
	struct bpf_link_info li = { 0 };
	__u32 len = sizeof(li);

	if (bpf_obj_get_info_by_fd(fd, &li, &len))
		return -errno;
	f->prog_id = li.prog_id;
	f->ifindex = li.xdp.ifindex; /* tcx's ifindex sits at the same place */
	return 0;
}

/* Is prog_id among the programs of a TCX hook here? */
static bool tcx_has(int ifindex, int type, uint32_t prog_id)
{
	__u32 ids[64], n = 64, flags = 0;

	if (bpf_prog_query(ifindex, type, 0, &flags, ids, &n))
		return false;
	for (__u32 i = 0; i < n; i++)
		if (ids[i] == prog_id)
			return true;
	return false;
}

/*
 * The pinned link of this interface called name, switched to prog_fd, or
 * -ENOENT. A pinned link whose device is no longer this one (deleted, or
 * moved to another namespace) is detached and unpinned instead.
 */
static int adopt_link(struct tm_attacher *a, const struct tm_ifattach *x, const char *name,
		      const struct tm_link *l, int tcx_type, int prog_fd)
{
	char path[PATH_MAX];
	struct link_facts f = { 0 };
	bool here;
	int fd;

	if (tm_pin_path(&a->bpf->pin, name, path, sizeof(path)))
		return -ENOENT;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -ENOENT;
	claim(a, name);
	here = !link_facts(fd, &f) && f.ifindex == (uint32_t)l->ifindex &&
	       (tcx_type ? tcx_has(l->ifindex, tcx_type, f.prog_id) : l->xdp_prog_id == f.prog_id);
	(void)x;
	if (here && !bpf_link_update(fd, prog_fd, NULL))
		return fd;
	bpf_link_detach(fd);
	close(fd);
	unlink(path);
	return -ENOENT;
}

static int new_link(struct tm_attacher *a, const char *name, int prog_fd, int ifindex, int type,
		    __u32 flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
	char path[PATH_MAX];
	int fd, err;

	fd = bpf_link_create(prog_fd, ifindex, type, &opts);
	if (fd < 0)
		return -errno;
	err = tm_pin_path(&a->bpf->pin, name, path, sizeof(path));
	if (!err && bpf_obj_pin(fd, path))
		err = -errno;
	if (err) {
		close(fd); /* unpinned: it detaches */
		return err;
	}
	claim(a, name);
	return fd;
}

static void drop_link(struct tm_attacher *a, int *fd, const char *name, bool keep)
{
	if (*fd < 0)
		return;
	if (!keep) {
		bpf_link_detach(*fd); /* wherever the device is now */
		unpin(a, name);
	}
	close(*fd);
	*fd = -1;
}

/* ---- TC ---- */

static const char *const tcx_pins[2] = { "tcx_in", "tcx_out" };

/* first = 0: ingress too (no XDP here), 1: egress only */
static int tcx_attach(struct tm_attacher *a, struct tm_ifattach *x, const struct tm_link *l,
		      int first)
{
	int progs[2] = { bpf_program__fd(a->tc->progs.tm_tc_ingress),
			 bpf_program__fd(a->tc->progs.tm_tc_egress) };
	int types[2] = { TM_BPF_TCX_INGRESS, TM_BPF_TCX_EGRESS };
	char name[TM_PIN_NAME];

	for (int d = first; d < 2; d++) {
		pin_name(x, tcx_pins[d], name);
		x->tcx[d] = adopt_link(a, x, name, l, types[d], progs[d]);
		if (x->tcx[d] < 0)
			x->tcx[d] = new_link(a, name, progs[d], l->ifindex, types[d], 0);
		if (x->tcx[d] < 0) {
			int err = x->tcx[d];

			x->tcx[d] = -1;
			return err;
		}
	}
	return 0;
}

static bool made_before(struct tm_attacher *a, const struct tm_ifattach *x, int ifindex)
{
	struct tm_iface_key k = { .netns = (__u32)x->netns_ino, .ifindex = (__u32)ifindex };
	struct tm_iface_val v = { 0 };

	return a->bpf->start == TM_START_ADOPTED &&
	       !bpf_map_lookup_elem(bpf_map__fd(a->bpf->skel->maps.tm_ifaces), &k, &v) &&
	       (v.flags & TM_IFACE_CLSACT_OURS);
}

static int clsact_attach(struct tm_attacher *a, struct tm_ifattach *x, const struct tm_link *l,
			 struct tm_nl *nl, int first)
{
	int progs[2] = { bpf_program__fd(a->tc->progs.tm_tc_ingress),
			 bpf_program__fd(a->tc->progs.tm_tc_egress) };
	static const char *const names[2] = { "taskmeter_in", "taskmeter_out" };
	struct tm_nlsock *s = tm_nl_sock(nl);
	bool made;
	int err, old;

	err = tm_clsact_ensure(s, l->ifindex, &made);
	/* an earlier collector of this instance made it: then it is ours to remove */
	x->clsact_created = made || made_before(a, x, l->ifindex);
	for (int d = first; !err && d < 2; d++) {
		/* a filter with our handle: ours from before, or an orphan */
		old = tm_clsact_filter_prog(s, l->ifindex, d == 0, TM_TC_PRIO, TM_TC_HANDLE);
		if (old > 0 && !replaceable(a, (uint32_t)old))
			err = -EEXIST;
		else
			err = tm_clsact_filter_add(s, l->ifindex, d == 0, progs[d], names[d],
						   TM_TC_PRIO, TM_TC_HANDLE, old > 0);
		x->filter[d] = !err;
	}
	return err;
}

static void tc_detach(struct tm_attacher *a, struct tm_ifattach *x, struct tm_nl *nl,
		      int ifindex, bool keep, bool gone)
{
	struct tm_nlsock *s = tm_nl_sock(nl);
	char name[TM_PIN_NAME];

	for (int d = 0; d < 2; d++) {
		pin_name(x, tcx_pins[d], name);
		drop_link(a, &x->tcx[d], name, keep);
		if (x->filter[d] && !keep && !gone)
			tm_clsact_filter_del(s, ifindex, d == 0, TM_TC_PRIO, TM_TC_HANDLE);
		x->filter[d] = false;
	}
	/* the qdisc goes only if we made it and nobody else put filters on it */
	if (x->clsact_created && !keep && !gone && tm_clsact_filter_count(s, ifindex, true) == 0 &&
	    tm_clsact_filter_count(s, ifindex, false) == 0)
		tm_clsact_del(s, ifindex);
	x->clsact_created = false;
}

/* TC egress always; TC ingress only where XDP does not count the ingress
 * (XDP off or refused): running both would only add a lookup per frame. */
static int tc_attach(struct tm_attacher *a, struct tm_ifattach *x, const struct tm_link *l,
		     struct tm_nl *nl)
{
	enum tm_tc_attach how = a->cfg->tc_attach;
	int err = -EOPNOTSUPP, first = x->xdp_mode == XDP_MODE_UNSPEC ? 0 : 1;

	if (how == TM_TC_OFF || !a->tc)
		return 0;
	if (how == TM_TC_TCX || (how == TM_TC_AUTO && !a->tcx_missing)) {
		err = tcx_attach(a, x, l, first);
		if (!err || how == TM_TC_TCX)
			goto out;
		tc_detach(a, x, nl, l->ifindex, false, false);
		a->tcx_missing = true; /* EINVAL: this kernel has no TCX */
		tm_info("TCX attach refused (%s): using clsact filters\n", strerror(-err));
	}
	err = clsact_attach(a, x, l, nl, first);
out:
	if (err)
		tc_detach(a, x, nl, l->ifindex, false, false);
	return err;
}

/* ---- XDP ---- */

static enum xdp_attach_mode xdp_first_mode(const struct tm_config *c, const char *kind)
{
	switch (c->xdp_mode) {
	case TM_XDP_NATIVE:
		return XDP_MODE_NATIVE;
	case TM_XDP_SKB:
		return XDP_MODE_SKB;
	case TM_XDP_OFF:
		return XDP_MODE_UNSPEC;
	default:
		/* Not on veth: native XDP there turns GRO/GSO off across the
		 * pair (TCP throughput fell from ~20 to ~5 Gbit/s here), skb mode
		 * copies every non-linear skb (-15%), and TC ingress sees the
		 * same frames for a fraction of that (see BENCHMARKS.md). */
		return strcmp(kind, "veth") ? XDP_MODE_NATIVE : XDP_MODE_UNSPEC;
	}
}

static const char *xdp_pin(enum xdp_attach_mode mode)
{
	return mode == XDP_MODE_NATIVE ? "xdp_native" : "xdp_skb";
}

static int load_xdp(struct tm_attacher *a)
{
	int err;

	if (a->xdp)
		return 0;
	a->xdp = taskmeter_xdp__open();
	if (!a->xdp)
		return -errno;
	err = tm_bpfmaps_reuse(a->xdp->obj, a->bpf->skel->obj);
	if (!err)
		err = taskmeter_xdp__load(a->xdp);
	if (err) {
		taskmeter_xdp__destroy(a->xdp);
		a->xdp = NULL;
	}
	return err;
}

/* An XDP program in the way: if it is a taskmeter orphan (or ours from
 * before, attached without a link), take it off. */
static bool clear_orphan_xdp(struct tm_attacher *a, const struct tm_link *l)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (!l->xdp_prog_id || !replaceable(a, l->xdp_prog_id))
		return false;
	if (bpf_xdp_query(l->ifindex, 0, &q))
		return false;
	return !bpf_xdp_detach(l->ifindex, q.attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE
				       : XDP_FLAGS_DRV_MODE, NULL);
}

/* XDP alone, as a link (pinned; detachable from anywhere). */
static int xdp_link(struct tm_attacher *a, struct tm_ifattach *x, const struct tm_link *l,
		    enum xdp_attach_mode mode)
{
	char name[TM_PIN_NAME];
	int prog, err = load_xdp(a);

	if (err)
		return err;
	prog = bpf_program__fd(a->xdp->progs.tm_xdp);
	pin_name(x, xdp_pin(mode), name);
	x->xdp_link = adopt_link(a, x, name, l, 0, prog);
	if (x->xdp_link < 0)
		x->xdp_link = new_link(a, name, prog, l->ifindex, BPF_XDP,
				       mode == XDP_MODE_NATIVE ? XDP_FLAGS_DRV_MODE
							       : XDP_FLAGS_SKB_MODE);
	if (x->xdp_link == -EBUSY && clear_orphan_xdp(a, l))
		x->xdp_link = new_link(a, name, prog, l->ifindex, BPF_XDP,
				       mode == XDP_MODE_NATIVE ? XDP_FLAGS_DRV_MODE
							       : XDP_FLAGS_SKB_MODE);
	if (x->xdp_link < 0) {
		err = x->xdp_link;
		x->xdp_link = -1;
		return err;
	}
	x->xdp_mode = mode;
	return 0;
}

/* Through libxdp: its dispatcher shares the hook with other XDP programs.
 * Where the dispatcher does not load (here: its freplace step is refused)
 * libxdp attaches the program alone over netlink; we then use a link
 * instead, from now on for every interface. */
static int xdp_dispatched(struct tm_attacher *a, struct tm_ifattach *x, const struct tm_link *l,
			  enum xdp_attach_mode mode)
{
	DECLARE_LIBXDP_OPTS(xdp_program_opts, opts);
	struct taskmeter_xdp *skel = taskmeter_xdp__open();
	struct xdp_multiprog *mp;
	bool legacy = true;
	int err;

	if (!skel)
		return -errno;
	err = tm_bpfmaps_reuse(skel->obj, a->bpf->skel->obj);
	opts.obj = skel->obj;
	opts.prog_name = "tm_xdp";
	x->xdp_prog = err ? NULL : xdp_program__create(&opts);
	err = err ? err : libxdp_get_error(x->xdp_prog);
	if (!err)
		err = xdp_program__attach(x->xdp_prog, l->ifindex, mode, 0);
	if (!err) {
		mp = xdp_multiprog__get_from_ifindex(l->ifindex);
		legacy = libxdp_get_error(mp) || xdp_multiprog__is_legacy(mp);
		if (!libxdp_get_error(mp))
			xdp_multiprog__close(mp);
		if (legacy)
			xdp_program__detach(x->xdp_prog, l->ifindex, mode, 0);
	}
	if (err || legacy) {
		xdp_program__close(libxdp_get_error(x->xdp_prog) ? NULL : x->xdp_prog);
		x->xdp_prog = NULL;
	}
	taskmeter_xdp__destroy(skel); /* libxdp keeps what it loaded */
	if (!err && legacy) {
		a->no_dispatcher = true;
		tm_info("libxdp's dispatcher is not available here: XDP attaches alone, as a link\n");
		return xdp_link(a, x, l, mode);
	}
	if (!err) {
		x->xdp_mode = mode;
		x->xdp_dispatcher = true;
	}
	return err;
}

static bool pinned(struct tm_attacher *a, const char *name)
{
	char path[PATH_MAX];

	return !tm_pin_path(&a->bpf->pin, name, path, sizeof(path)) && !access(path, F_OK);
}

static int xdp_try(struct tm_attacher *a, struct tm_ifattach *x, const struct tm_link *l,
		   enum xdp_attach_mode mode)
{
	char name[TM_PIN_NAME];

	pin_name(x, xdp_pin(mode), name);
	if (a->no_dispatcher || pinned(a, name))
		return xdp_link(a, x, l, mode); /* a pinned link is adopted as a link */
	return xdp_dispatched(a, x, l, mode);
}

static void xdp_detach(struct tm_attacher *a, struct tm_ifattach *x, int ifindex, bool keep,
		       bool gone)
{
	char name[TM_PIN_NAME];

	pin_name(x, xdp_pin(x->xdp_mode), name);
	drop_link(a, &x->xdp_link, name, keep);
	if (x->xdp_prog && !keep && !gone)
		xdp_program__detach(x->xdp_prog, ifindex, x->xdp_mode, 0);
	xdp_program__close(x->xdp_prog);
	x->xdp_prog = NULL;
	x->xdp_mode = XDP_MODE_UNSPEC;
	x->xdp_dispatcher = false;
}

static int xdp_attach(struct tm_attacher *a, struct tm_ifattach *x, const struct tm_link *l,
		      const char *kind)
{
	enum xdp_attach_mode mode = xdp_first_mode(a->cfg, kind);
	int err;

	if (mode == XDP_MODE_UNSPEC)
		return 0;
	err = xdp_try(a, x, l, mode);
	if (err && mode == XDP_MODE_NATIVE && a->cfg->xdp_mode == TM_XDP_AUTO) {
		xdp_detach(a, x, l->ifindex, false, false);
		tm_info("%s: native XDP refused (%s): skb mode\n", l->name, strerror(-err));
		err = xdp_try(a, x, l, XDP_MODE_SKB);
	}
	if (err)
		xdp_detach(a, x, l->ifindex, false, false);
	return err;
}

/* ---- one interface ---- */

void tm_attacher_attach(struct tm_attacher *a, struct tm_ifattach *x, const struct tm_link *l,
	       uint64_t netns_ino, const char *kind, struct tm_nl *nl)
{
	int err;

	x->xdp_link = x->tcx[0] = x->tcx[1] = -1;
	x->netns_ino = netns_ino;
	snprintf(x->pin_prefix, sizeof(x->pin_prefix), "if%llu_%d", (unsigned long long)netns_ino,
		 l->ifindex);
	err = xdp_attach(a, x, l, kind);
	if (err)
		tm_warn("%s: XDP attach failed: %s (TC ingress counts instead)\n", l->name,
			strerror(-err));
	err = tc_attach(a, x, l, nl);
	if (err)
		tm_warn("%s: TC attach failed: %s (%s not counted here)\n", l->name,
			strerror(-err), x->xdp_mode ? "egress" : "egress and ingress");
}

void tm_attacher_detach(struct tm_attacher *a, struct tm_ifattach *x, struct tm_nl *nl, int ifindex,
	       bool keep, bool gone)
{
	xdp_detach(a, x, ifindex, keep, gone);
	tc_detach(a, x, nl, ifindex, keep, gone);
}

/* ---- the attacher ---- */

static int load_tc(struct tm_attacher *a)
{
	int err;

	a->tc = taskmeter_tc__open();
	if (!a->tc)
		return -errno;
	err = tm_bpfmaps_reuse(a->tc->obj, a->bpf->skel->obj);
	if (!err)
		err = taskmeter_tc__load(a->tc);
	if (err)
		tm_err("loading the TC programs: %s\n", strerror(-err));
	return err;
}

static int note_stale(const struct tm_pin *p, const char *name, void *ctx)
{
	struct tm_attacher *a = ctx;
	char *slot;

	(void)p;
	if (strncmp(name, "if", 2) || strlen(name) >= TM_PIN_NAME)
		return 0;
	slot = tm_vec_push(&a->stale, TM_PIN_NAME);
	if (!slot)
		return -ENOMEM;
	snprintf(slot, TM_PIN_NAME, "%s", name);
	return 0;
}

/* Other instances' counter maps, ours excluded. */
static void note_others(struct tm_attacher *a)
{
	uint32_t ids[TM_OTHERS_MAX];
	int n = tm_pin_map_ids(a->bpf->pin.root, "tm_classes", ids, TM_OTHERS_MAX);

	for (int i = 0; i < n; i++)
		if (ids[i] != a->own_map)
			a->others[a->n_others++] = ids[i];
}

struct tm_attacher *tm_attacher_new(const struct tm_config *c, struct tm_bpf *b)
{
	struct tm_attacher *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return NULL;
	a->cfg = c;
	a->bpf = b;
	a->own_map = map_id_of(bpf_map__fd(b->skel->maps.tm_classes));
	note_others(a);
	err = tm_pin_each(&b->pin, note_stale, a);
	if (!err && c->n_ifaces && c->tc_attach != TM_TC_OFF)
		err = load_tc(a);
	if (err) {
		tm_attacher_free(a);
		errno = -err;
		return NULL;
	}
	return a;
}

void tm_attacher_sweep(struct tm_attacher *a)
{
	char (*names)[TM_PIN_NAME] = a->stale.data;
	char path[PATH_MAX];

	for (size_t i = 0; i < a->stale.len; i++) {
		int fd;

		if (tm_pin_path(&a->bpf->pin, names[i], path, sizeof(path)))
			continue;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			bpf_link_detach(fd);
			close(fd);
		}
		unlink(path);
		tm_info("detached %s: its interface is gone or no longer watched\n", names[i]);
	}
	a->stale.len = 0;
}

void tm_attacher_free(struct tm_attacher *a)
{
	if (!a)
		return;
	taskmeter_tc__destroy(a->tc);
	taskmeter_xdp__destroy(a->xdp);
	tm_vec_free(&a->stale);
	free(a);
}
