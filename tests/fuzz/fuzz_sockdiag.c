// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The socket-seeding parsers on arbitrary input: the input is a receive
 * buffer of NETLINK_SOCK_DIAG replies, each message given to
 * tm_sockdiag_parse() in a buffer of exactly its nlmsg_len bytes; and, as
 * a string, a /proc/<pid>/fd link for tm_sockdiag_parse_link().
 *
 * The walk over the buffer is the harness's, not libmnl's: the scan gets
 * its buffers from the kernel, and mnl_cb_run() (libmnl 1.0.4) trusts an
 * nlmsg_len of 2 GiB or more, which only a hostile buffer has. What is
 * fuzzed is ours: a message whose nlmsg_len lies about its own size.
 *
 * Promises checked: a parsed reply is AF_INET or AF_INET6, reads nothing
 * past nlmsg_len and leaves the fields it does not own alone; a parsed
 * link is exactly
 * "socket:[<inode>]" for the inode returned (leading zeros aside).
 */
#include <errno.h>
#include <inttypes.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "log.h"
#include "sockdiag.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tm_log_level = TM_LOG_ERROR;
	return 0;
}

/* One message, alone in a buffer of nlmsg_len bytes. */
static void check_msg(const uint8_t *p)
{
	struct tm_sock_seed s = { .tgid = 7, .holders = 3, .protocol = 17, .netns_ino = 9 };
	struct nlmsghdr hdr;
	void *msg;

	memcpy(&hdr, p, sizeof(hdr));
	msg = fuzz_copy(p, hdr.nlmsg_len);
	if (!tm_sockdiag_parse(msg, &s)) {
		FUZZ_CHECK(s.family == AF_INET || s.family == AF_INET6);
		FUZZ_CHECK(s.tgid == 7 && s.holders == 3 && s.protocol == 17 && s.netns_ino == 9);
	}
	free(msg);
}

static void check_link(const char *link)
{
	char back[64];
	const char *digits = link + 8;
	uint64_t ino = 0;

	if (tm_sockdiag_parse_link(link, &ino))
		return;
	/* The kernel writes no leading zeros; taking them is harmless. */
	while (digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9')
		digits++;
	snprintf(back, sizeof(back), "%" PRIu64 "]", ino);
	FUZZ_CHECK(!strncmp(link, "socket:[", 8) && !strcmp(back, digits));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	size_t at = 0;

	/* As NLMSG_OK / NLMSG_NEXT walk a buffer, without trusting nlmsg_len. */
	while (size - at >= sizeof(struct nlmsghdr)) {
		uint32_t len;

		memcpy(&len, data + at, sizeof(len));
		if (len < sizeof(struct nlmsghdr) || len > size - at)
			break;
		check_msg(data + at);
		at += NLMSG_ALIGN(len) < size - at ? NLMSG_ALIGN(len) : size - at;
	}
	check_link(text);
	free(text);
	return 0;
}
