// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Traffic with known ground truth for the integration tests. Every mode
 * prints one line "pid=<pid> sent=<payload bytes> received=<payload bytes>"
 * so the test can compare taskmeter's records with what really went over
 * the sockets.
 *
 *   tm_traffic tcp-serve ADDR PORT REPLY_BYTES     accept one, read to EOF, reply
 *   tm_traffic tcp-send ADDR PORT BYTES            connect, send, read reply to EOF
 *   tm_traffic udp-recv ADDR PORT COUNT            receive COUNT datagrams, echo each
 *   tm_traffic udp-send ADDR PORT COUNT SIZE       send COUNT datagrams, await echoes
 *   tm_traffic udp-once ADDR PORT SIZE             one datagram, exit at once
 *   tm_traffic udp-sink ADDR PORT COUNT            receive COUNT datagrams, no reply
 *   tm_traffic exec-send ADDR PORT BYTES NEWARGV... tcp-send, then execve NEWARGV
 *
 * ADDR is numeric IPv4 or IPv6. Extra arguments after the mode's own are
 * ignored, so tests can tag processes with distinctive argv. TM_LINGER_MS in
 * the environment delays the exit (for the /proc metadata mode's tests).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "tm_traffic: %s: %s\n", what, strerror(errno));
	exit(1);
}

static socklen_t make_addr(const char *host, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((unsigned short)atoi(port));
		return sizeof(*in4);
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)atoi(port));
		return sizeof(*in6);
	}
	fprintf(stderr, "tm_traffic: bad address %s\n", host);
	exit(2);
}

static long long send_all(int fd, long long n)
{
	static char buf[65536];
	long long sent = 0;

	memset(buf, 'x', sizeof(buf));
	while (sent < n) {
		size_t chunk = n - sent > (long long)sizeof(buf) ? sizeof(buf) : (size_t)(n - sent);
		ssize_t w = send(fd, buf, chunk, 0);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("send");
		sent += w;
	}
	return sent;
}

static long long recv_all(int fd)
{
	static char buf[65536];
	long long got = 0;

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("recv");
		if (r == 0)
			return got;
		got += r;
	}
}

static void report(long long sent, long long received)
{
	const char *linger = getenv("TM_LINGER_MS");

	printf("pid=%d sent=%lld received=%lld\n", getpid(), sent, received);
	fflush(stdout);
	if (linger)
		usleep((useconds_t)atoi(linger) * 1000);
}

static int tcp_serve(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(a[0], a[1], &ss);
	int one = 1, lfd, fd;
	long long got, sent;

	lfd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 8))
		die("bind/listen");
	printf("listening\n");
	fflush(stdout);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	got = recv_all(fd);
	sent = send_all(fd, atoll(a[2]));
	shutdown(fd, SHUT_WR);
	recv_all(fd); /* wait for the peer's close: the FIN exchange ends */
	close(fd);
	close(lfd);
	report(sent, got);
	return 0;
}

static int tcp_connect(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(a[0], a[1], &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket");
	for (int i = 0; connect(fd, (struct sockaddr *)&ss, len); i++) {
		if (i == 100)
			die("connect");
		usleep(20000);
	}
	return fd;
}

static void tcp_exchange(char **a, long long *sent, long long *got)
{
	int fd = tcp_connect(a);

	*sent = send_all(fd, atoll(a[2]));
	shutdown(fd, SHUT_WR);
	*got = recv_all(fd);
	close(fd);
}

static int tcp_send(char **a)
{
	long long sent, got;

	tcp_exchange(a, &sent, &got);
	report(sent, got);
	return 0;
}

static int udp_socket(char **a, struct sockaddr_storage *ss, socklen_t *len)
{
	int fd;

	*len = make_addr(a[0], a[1], ss);
	fd = socket(ss->ss_family, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	return fd;
}

static int udp_recv(char **a)
{
	struct sockaddr_storage ss, peer;
	socklen_t len, plen;
	int fd = udp_socket(a, &ss, &len), count = atoi(a[2]);
	long long got = 0, sent = 0;
	static char buf[65536];

	if (bind(fd, (struct sockaddr *)&ss, len))
		die("bind");
	printf("listening\n");
	fflush(stdout);
	for (int i = 0; i < count; i++) {
		ssize_t r;

		plen = sizeof(peer);
		r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
		if (r < 0)
			die("recvfrom");
		got += r;
		if (sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&peer, plen) != r)
			die("sendto");
		sent += r;
	}
	report(sent, got);
	return 0;
}

static int udp_sink(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(a, &ss, &len), count = atoi(a[2]);
	static char buf[65536];
	long long got = 0;

	if (bind(fd, (struct sockaddr *)&ss, len))
		die("bind");
	printf("listening\n");
	fflush(stdout);
	for (int i = 0; i < count; i++) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r < 0)
			die("recv");
		got += r;
	}
	report(0, got);
	return 0;
}

static int udp_send(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(a, &ss, &len), count = atoi(a[2]);
	size_t size = (size_t)atol(a[3]);
	static char buf[65536];
	long long sent = 0, got = 0;

	memset(buf, 'u', sizeof(buf));
	for (int i = 0; i < count; i++) {
		ssize_t r;

		if (sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len) != (ssize_t)size)
			die("sendto");
		sent += (long long)size;
		r = recv(fd, buf, sizeof(buf), 0); /* echo: one in flight, no loss */
		if (r < 0)
			die("recv");
		got += r;
	}
	report(sent, got);
	return 0;
}

static int udp_once(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(a, &ss, &len);
	size_t size = (size_t)atol(a[2]);
	static char buf[65536];

	if (sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len) != (ssize_t)size)
		die("sendto");
	report((long long)size, 0);
	return 0;
}

static int exec_send(char **a, char **envp)
{
	long long sent, got;

	tcp_exchange(a, &sent, &got);
	report(sent, got);
	execve(a[3], a + 3, envp);
	die("execve");
	return 1;
}

int main(int argc, char **argv, char **envp)
{
	static const struct {
		const char *name;
		int nargs;
		int (*fn)(char **);
	} modes[] = {
		{ "tcp-serve", 3, tcp_serve }, { "tcp-send", 3, tcp_send },
		{ "udp-recv", 3, udp_recv },   { "udp-send", 4, udp_send },
		{ "udp-once", 3, udp_once },   { "udp-sink", 3, udp_sink },
	};

	if (argc >= 6 && strcmp(argv[1], "exec-send") == 0)
		return exec_send(argv + 2, envp);
	for (size_t i = 0; argc > 1 && i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(argv[1], modes[i].name) == 0 && argc >= 2 + modes[i].nargs)
			return modes[i].fn(argv + 2);
	fprintf(stderr, "usage: see the comment at the top of tests/tools/tm_traffic.c\n");
	return 2;
}
