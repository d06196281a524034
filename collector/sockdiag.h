/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sockets that existed before the collector started: NETLINK_SOCK_DIAG dumps
 * every TCP / UDP socket of each network namespace with its inode and cookie,
 * one pass over /proc/<pid>/fd says which processes hold which inode. The
 * collector seeds socket ownership from this once its BPF hooks are attached,
 * so that a socket created meanwhile is seen by one or the other.
 */
#ifndef TM_SOCKDIAG_H
#define TM_SOCKDIAG_H

#include <stdint.h>

#include <linux/netlink.h>

struct tm_sock_seed {
	uint64_t cookie;     /* what bpf_get_socket_cookie() returns */
	uint64_t inode;      /* sockfs inode, "socket:[<inode>]" in /proc/<pid>/fd */
	uint32_t tgid;       /* a process holding the socket: the lowest pid */
	uint32_t holders;    /* how many processes hold it */
	uint8_t  family;     /* AF_INET / AF_INET6 */
	uint8_t  protocol;   /* IPPROTO_TCP / IPPROTO_UDP */
	uint8_t  state;      /* TCP state from inet_diag (TCP_CLOSE for unconnected UDP) */
	uint64_t netns_ino;  /* network namespace inode */
};

struct tm_sockdiag_stats {
	uint32_t netns;         /* network namespaces dumped */
	uint32_t netns_skipped; /* ... that setns() refused */
	uint32_t procs;         /* processes whose fds were read */
	uint64_t socket_fds;    /* fds that point at a dumped socket */
	uint64_t sockets;       /* TCP / UDP sockets dumped, inode != 0 */
	uint64_t held;          /* ... held by a process: cb calls */
};

/*
 * Called once per socket held by a process, after the scan is complete and
 * the calling thread is back in its own network namespace. Return 0 to go on,
 * -errno to stop the scan with that error.
 */
typedef int (*tm_sock_seed_cb)(const struct tm_sock_seed *s, void *ctx);

/*
 * Calls cb for every TCP/UDP socket (IPv4 and IPv6, every state) held by a
 * process, in every network namespace some process is in. Returns how many
 * sockets were reported or -errno; on error cb may not have been called.
 * Needs CAP_SYS_ADMIN (setns) and CAP_SYS_PTRACE-level access to /proc/<pid>/fd.
 * Switches the calling thread's network namespace for a moment: other threads
 * are unaffected. Sockets that are neither bound nor connected are not in the
 * kernel's tables and are not reported (they carry no traffic yet).
 */
int tm_sockdiag_scan(tm_sock_seed_cb cb, void *ctx);
/* The same, filling *stats (may be NULL) also when it fails. */
int tm_sockdiag_scan_stats(tm_sock_seed_cb cb, void *ctx, struct tm_sockdiag_stats *stats);

/*
 * Cookie, inode, family and state of one SOCK_DIAG_BY_FAMILY reply; the rest
 * of *out is left alone (the request, not the reply, names the protocol).
 * -EPROTO for another message type, a short message or an unknown family.
 * inode is 0 for TIME_WAIT and request (SYN_RECV) sockets.
 */
int tm_sockdiag_parse(const struct nlmsghdr *nlh, struct tm_sock_seed *out);

/* Inode of a /proc/<pid>/fd link "socket:[<inode>]"; -EINVAL for anything else. */
int tm_sockdiag_parse_link(const char *link, uint64_t *inode);

#endif /* TM_SOCKDIAG_H */
