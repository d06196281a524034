// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * An independent witness for the integration tests: what one interface
 * really carried, seen through an AF_PACKET socket (the kernel's packet
 * taps, the ones tcpdump uses), with no code of taskmeter's.
 *
 *   tm_capture IFNAME PORT
 *
 * Prints "listening" once the socket is bound, then one line of counts
 * (integers, "key=value") for every line read on stdin (a snapshot: the
 * capture goes on) and a last one when stdin closes (then it exits):
 *
 *   in_frames, in_bytes, out_frames, out_bytes
 *       frames and bytes (from the Ethernet header, as the tap sees them)
 *       received and sent on the interface, every protocol;
 *   in_payload, in_dup, in_dup_segs (and out_*)
 *       TCP payload bytes of the connections with PORT at either end:
 *       all of it, the part that repeats sequence space this direction
 *       carried before (retransmissions and duplicates as they arrived),
 *       and the segments that carried such a part.
 *
 * Every TCP segment is assumed to be one frame (the tests turn TSO/GSO
 * off where they count segments). A capture socket can miss frames when
 * its buffer overflows: PACKET_STATISTICS' drops are checked and make the
 * tool fail, so a count it prints is complete.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FLOWS 64
#define MAX_RANGES 4096

static void die(const char *what)
{
	fprintf(stderr, "tm_capture: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Sequence space one direction of a connection carried: disjoint
 * [start, end) offsets from the first sequence number seen. */
struct flow {
	uint8_t key[37];      /* family, addresses, ports */
	uint32_t base;
	unsigned int n;
	uint64_t start[MAX_RANGES], end[MAX_RANGES];
};

static struct flow flows[MAX_FLOWS];
static unsigned int n_flows;

struct dir_counts {
	long long frames, bytes, payload, dup, dup_segs;
};

static struct dir_counts in, out;

static struct flow *flow_of(const uint8_t *key, uint32_t seq)
{
	for (unsigned int i = 0; i < n_flows; i++)
		if (!memcmp(flows[i].key, key, sizeof(flows[i].key)))
			return &flows[i];
	if (n_flows == MAX_FLOWS) {
		fprintf(stderr, "tm_capture: more than %d TCP flows\n", MAX_FLOWS);
		exit(1);
	}
	memcpy(flows[n_flows].key, key, sizeof(flows[n_flows].key));
	flows[n_flows].base = seq;
	return &flows[n_flows++];
}

/* Offsets from the flow's first sequence number; a segment before it (a
 * retransmission of data sent before the capture) counts from 0. */
static uint64_t offset(const struct flow *f, uint32_t seq)
{
	int32_t d = (int32_t)(seq - f->base);

	return d < 0 ? 0 : (uint64_t)d;
}

/* Adds [s, e) to the flow; returns how much of it was there before. */
static uint64_t flow_add(struct flow *f, uint64_t s, uint64_t e)
{
	uint64_t seen = 0, ns = s, ne = e;
	unsigned int i, j = 0;

	for (i = 0; i < f->n; i++) {
		if (f->end[i] < s || f->start[i] > e) { /* apart: kept as is */
			f->start[j] = f->start[i];
			f->end[j++] = f->end[i];
			continue;
		}
		uint64_t lo = f->start[i] > s ? f->start[i] : s;
		uint64_t hi = f->end[i] < e ? f->end[i] : e;

		if (hi > lo)
			seen += hi - lo;
		ns = f->start[i] < ns ? f->start[i] : ns;
		ne = f->end[i] > ne ? f->end[i] : ne;
	}
	if (j == MAX_RANGES) {
		fprintf(stderr, "tm_capture: more than %d holes\n", MAX_RANGES);
		exit(1);
	}
	/* keep them sorted: insert the merged range in place */
	for (i = j; i > 0 && f->start[i - 1] > ns; i--) {
		f->start[i] = f->start[i - 1];
		f->end[i] = f->end[i - 1];
	}
	f->start[i] = ns;
	f->end[i] = ne;
	f->n = j + 1;
	return seen;
}

static void tcp_segment(struct dir_counts *c, const uint8_t *key, const uint8_t *th,
			size_t avail, size_t l4_len)
{
	uint32_t seq;
	size_t doff;
	uint64_t s, payload, dup;
	struct flow *f;

	if (avail < 20)
		return;
	doff = (size_t)(th[12] >> 4) * 4;
	if (doff < 20 || doff > l4_len)
		return;
	memcpy(&seq, th + 4, 4);
	seq = ntohl(seq) + !!(th[13] & 0x02); /* a SYN takes one number */
	payload = l4_len - doff;
	f = flow_of(key, seq);
	if (!payload)
		return;
	s = offset(f, seq);
	dup = flow_add(f, s, s + payload);
	c->payload += (long long)payload;
	c->dup += (long long)dup;
	c->dup_segs += dup > 0;
}

static void frame(struct dir_counts *c, const uint8_t *p, size_t caplen, size_t len,
		  unsigned int port)
{
	uint8_t key[37] = { 0 };
	size_t off = 14, l3_len, hl;
	uint16_t type, sport, dport;
	const uint8_t *l4;
	uint8_t proto;

	c->frames++;
	c->bytes += (long long)len;
	if (caplen < 14)
		return;
	type = (uint16_t)(p[12] << 8 | p[13]);
	while ((type == ETH_P_8021Q || type == ETH_P_8021AD) && caplen >= off + 4) {
		type = (uint16_t)(p[off + 2] << 8 | p[off + 3]);
		off += 4;
	}
	if (type == ETH_P_IP && caplen >= off + 20) {
		hl = (size_t)(p[off] & 0xf) * 4;
		l3_len = (size_t)(p[off + 2] << 8 | p[off + 3]);
		proto = p[off + 9];
		if ((p[off + 6] & 0x3f) || p[off + 7]) /* a fragment */
			return;
		key[0] = 4;
		memcpy(key + 1, p + off + 12, 8);
	} else if (type == ETH_P_IPV6 && caplen >= off + 40) {
		hl = 40;
		l3_len = 40 + (size_t)(p[off + 4] << 8 | p[off + 5]);
		proto = p[off + 6];
		key[0] = 6;
		memcpy(key + 1, p + off + 8, 32);
	} else {
		return;
	}
	if (proto != IPPROTO_TCP || l3_len < hl || caplen < off + hl + 4)
		return;
	l4 = p + off + hl;
	sport = (uint16_t)(l4[0] << 8 | l4[1]);
	dport = (uint16_t)(l4[2] << 8 | l4[3]);
	if (sport != port && dport != port)
		return;
	memcpy(key + 33, l4, 4);
	tcp_segment(c, key, l4, caplen - off - hl, l3_len - hl);
}

static void report(int fd)
{
	struct tpacket_stats st;
	socklen_t stlen = sizeof(st);

	/* PACKET_STATISTICS resets the counts it returns: any drop since the
	 * last report means frames are missing from this one */
	if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &stlen))
		die("PACKET_STATISTICS");
	if (st.tp_drops) {
		fprintf(stderr, "tm_capture: the capture dropped %u frames\n", st.tp_drops);
		exit(1);
	}
	printf("pid=%d in_frames=%lld in_bytes=%lld out_frames=%lld out_bytes=%lld "
	       "in_payload=%lld in_dup=%lld in_dup_segs=%lld "
	       "out_payload=%lld out_dup=%lld out_dup_segs=%lld\n", getpid(), in.frames,
	       in.bytes, out.frames, out.bytes, in.payload, in.dup, in.dup_segs, out.payload,
	       out.dup, out.dup_segs);
	fflush(stdout);
}

static void drain(int fd, uint8_t *buf, size_t size, unsigned int port)
{
	for (;;) {
		struct sockaddr_ll from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, size, MSG_TRUNC | MSG_DONTWAIT,
				     (struct sockaddr *)&from, &flen);

		if (n < 0)
			return;
		frame(from.sll_pkttype == PACKET_OUTGOING ? &out : &in, buf,
		      (size_t)n < size ? (size_t)n : size, (size_t)n, port);
	}
}

int main(int argc, char **argv)
{
	static uint8_t buf[262144];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	struct tpacket_stats st;
	socklen_t stlen = sizeof(st);
	unsigned int port;
	int fd, size = 64 << 20;

	if (argc != 3) {
		fprintf(stderr, "usage: tm_capture IFNAME PORT\n");
		return 2;
	}
	setvbuf(stdin, NULL, _IONBF, 0); /* poll() sees what stdio has not read */
	port = (unsigned int)atoi(argv[2]);
	sll.sll_ifindex = (int)if_nametoindex(argv[1]);
	if (!sll.sll_ifindex)
		die(argv[1]);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		die("SO_RCVBUFFORCE");
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		die("bind");
	/* what was queued between socket() and bind() is another interface's */
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
	getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &stlen); /* resets them */
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		struct pollfd pf[2] = { { .fd = fd, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
		char line[64];

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (pf[0].revents & POLLIN) {
			drain(fd, buf, sizeof(buf), port);
			continue;
		}
		if (!pf[1].revents)
			continue;
		/* what arrived before the line or the end counts in it */
		drain(fd, buf, sizeof(buf), port);
		if (!fgets(line, sizeof(line), stdin))
			break;
		report(fd);
	}
	report(fd);
	return 0;
}
