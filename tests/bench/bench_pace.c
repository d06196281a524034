// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * 64-byte UDP at a fixed rate, for the fixed-rate arm of `make bench`: a
 * lean sender and receiver, so that the CPU a datagram costs is mostly the
 * kernel's path (and an agent's), not the load generator's own work.
 *
 *   bench_pace send ADDR PORT PPS SECONDS   every millisecond, the datagrams
 *                                           due by then (sendmmsg); prints
 *                                           "sent=N seconds=S"
 *   bench_pace sink ADDR PORT               receive (recvmmsg) until killed;
 *                                           prints "listening" once bound
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SIZE 64
#define BATCH 64
#define TICK_NS 1000000ll

static void die(const char *what)
{
	fprintf(stderr, "bench_pace: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int udp_socket(const char *addr, const char *port, struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	if (fd < 0 || inet_pton(AF_INET, addr, &sa->sin_addr) != 1)
		die("socket");
	return fd;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static int do_send(char **a)
{
	static char buf[SIZE];
	struct iovec iov = { .iov_base = buf, .iov_len = SIZE };
	struct mmsghdr msgs[BATCH];
	struct sockaddr_in sa;
	int fd = udp_socket(a[0], a[1], &sa);
	long long pps = atoll(a[2]), start, end, sent = 0;
	struct timespec next;

	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect");
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	start = now_ns();
	end = start + atoll(a[3]) * 1000000000ll;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (long long t = start; t < end; t = now_ns()) {
		long long due = (t - start) * pps / 1000000000ll - sent;

		while (due > 0) {
			int n = sendmmsg(fd, msgs, due < BATCH ? (unsigned int)due : BATCH, 0);

			if (n < 0 && errno != ENOBUFS && errno != EAGAIN)
				die("sendmmsg");
			if (n <= 0)
				break; /* the rest is due next tick */
			sent += n;
			due -= n;
		}
		next.tv_nsec += TICK_NS;
		if (next.tv_nsec >= 1000000000l) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000l;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	printf("sent=%lld seconds=%.6f\n", sent, (now_ns() - start) / 1e9);
	return 0;
}

static int do_sink(char **a)
{
	static char bufs[BATCH][SIZE * 4];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	struct sockaddr_in sa;
	int fd = udp_socket(a[0], a[1], &sa), big = 4 << 20;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind");
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;)
		if (recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL) < 0 && errno != EINTR)
			die("recvmmsg");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "send"))
		return do_send(argv + 2);
	if (argc == 4 && !strcmp(argv[1], "sink"))
		return do_sink(argv + 2);
	fprintf(stderr, "usage: bench_pace send ADDR PORT PPS SECONDS | sink ADDR PORT\n");
	return 2;
}
