/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The XDP and TC programs on one interface: attached as links where the
 * kernel has them (pinned in the instance's state, so that they count on
 * while no collector runs, and detachable from any network namespace),
 * through libxdp's dispatcher where that loads, as clsact filters where TCX
 * is missing. Attachments a previous collector of this instance left are
 * adopted (switched to our programs in one step); taskmeter programs that
 * no instance's state owns any more are removed; anybody else's are never
 * touched.
 */
#ifndef TM_IFATTACH_H
#define TM_IFATTACH_H

#include <stdbool.h>
#include <stdint.h>

#include <xdp/libxdp.h>

#include "config.h"
#include "netlink.h"

struct tm_bpf;
struct tm_attacher;

/* What is attached to one interface. */
struct tm_ifattach {
	enum xdp_attach_mode xdp_mode;  /* XDP_MODE_UNSPEC: no XDP */
	bool xdp_dispatcher;            /* through libxdp's dispatcher */
	struct xdp_program *xdp_prog;   /* libxdp's handle (dispatcher mode) */
	int xdp_link;                   /* link fd (alone), or -1 */
	int tcx[2];                     /* TCX link fds [ingress, egress], or -1 */
	bool filter[2];                 /* our clsact filter is installed */
	bool clsact_created;
	uint64_t netns_ino;
	char pin_prefix[48];            /* "if<netns inode>_<ifindex>" */
};

/* Loads the TC programs if any interface is configured. NULL with errno set. */
struct tm_attacher *tm_attacher_new(const struct tm_config *c, struct tm_bpf *b);
void tm_attacher_free(struct tm_attacher *a);

/* In the interface's network namespace (nl is bound to it): XDP as the
 * config says, then TC egress, and TC ingress where XDP does not count.
 * Failures are logged; what did attach stays. */
void tm_attacher_attach(struct tm_attacher *a, struct tm_ifattach *x, const struct tm_link *l,
	       uint64_t netns_ino, const char *kind, struct tm_nl *nl);

/*
 * Undo tm_attacher_attach. keep: leave the pinned links (and filters) counting for
 * the next collector. gone: the device left its namespace (deleted or
 * moved): links are detached wherever it is, filters went with it.
 */
void tm_attacher_detach(struct tm_attacher *a, struct tm_ifattach *x, struct tm_nl *nl, int ifindex,
	       bool keep, bool gone);

/* Once every watched interface is attached: pinned links of interfaces
 * that are no longer there (or no longer watched) are detached. */
void tm_attacher_sweep(struct tm_attacher *a);

const char *tm_ifattach_xdp_mode(enum xdp_attach_mode m);
const char *tm_ifattach_tc_mode(const struct tm_ifattach *x);

#endif /* TM_IFATTACH_H */
