/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The legacy TC attach path, for kernels without TCX: a clsact qdisc and
 * direct-action bpf filters on its ingress or egress hook, over an
 * rtnetlink socket bound to the interface's network namespace (see
 * tm_nl_sock()). Failures are logged with the kernel's extended ACK.
 */
#ifndef TM_CLSACT_H
#define TM_CLSACT_H

#include <stdbool.h>
#include <stdint.h>

#include "nlsock.h"

/* *created tells whether this call created the qdisc (tear down only what
 * you created); -EBUSY if another qdisc ("ingress") holds the hook. */
int tm_clsact_ensure(struct tm_nlsock *s, int ifindex, bool *created);
/* Removes the clsact qdisc and with it every filter on both hooks, anyone's. */
int tm_clsact_del(struct tm_nlsock *s, int ifindex);
/* -EEXIST if a filter with that prio and handle is there already, unless
 * replace: then it takes prog_fd in one step. */
int tm_clsact_filter_add(struct tm_nlsock *s, int ifindex, bool ingress, int prog_fd,
			 const char *name, uint16_t prio, uint32_t handle, bool replace);
/* Id of the program of the bpf filter with that prio and handle; -ENOENT. */
int tm_clsact_filter_prog(struct tm_nlsock *s, int ifindex, bool ingress, uint16_t prio,
			  uint32_t handle);
/* handle 0 deletes every filter of that prio on the hook. */
int tm_clsact_filter_del(struct tm_nlsock *s, int ifindex, bool ingress, uint16_t prio,
			 uint32_t handle);
/* Filters on that clsact hook (any kind, any owner); 0 without clsact; -errno. */
int tm_clsact_filter_count(struct tm_nlsock *s, int ifindex, bool ingress);

#endif /* TM_CLSACT_H */
