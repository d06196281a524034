// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Traffic with known ground truth for the integration tests. Every mode
 * prints one line "pid=<pid> sent=<payload bytes> received=<payload bytes>
 * retrans=<bytes> retrans_pkts=<segments>" so the test can compare
 * taskmeter's records with what really went over the sockets (retrans:
 * what this process's TCP sockets sent again, from tcp_info once
 * everything is acknowledged).
 *
 *   tm_traffic tcp-serve ADDR PORT REPLY_BYTES     accept one, read to EOF, reply
 *   tm_traffic tcp-send ADDR PORT BYTES            connect, send, read reply to EOF
 *   tm_traffic udp-recv ADDR PORT COUNT            receive COUNT datagrams, echo each
 *   tm_traffic udp-send ADDR PORT COUNT SIZE       send COUNT datagrams, await echoes
 *   tm_traffic udp-once ADDR PORT SIZE             one datagram, exit at once
 *   tm_traffic udp-sink ADDR PORT COUNT            receive COUNT datagrams, no reply
 *   tm_traffic exec-send ADDR PORT BYTES NEWARGV... tcp-send, then execve NEWARGV
 *   tm_traffic exec-keep ADDR PORT BYTES NEWARGV... connect, send BYTES, execve NEWARGV
 *                                                  keeping the socket (TM_KEEP_FD)
 *   tm_traffic fd-finish BYTES                     on the TM_KEEP_FD socket: send BYTES,
 *                                                  shut down, read the reply to EOF
 *   tm_traffic tcp-send-wait ADDR PORT BYTES       connect, print "connected", wait
 *                                                  for a line on stdin, then tcp-send
 *   tm_traffic prefork ADDR PORT WORKERS CONNS REPLY  master listens, forks workers
 *                                                  that each serve CONNS connections
 *   tm_traffic fork-send ADDR PORT B1 B2           send B1, fork: the child sends B2 on
 *                                                  the same socket; the parent reads
 *   tm_traffic scm-send ADDR PORT B1 B2            send B1, pass the socket to a child
 *                                                  over SCM_RIGHTS: it sends B2, reads
 *   tm_traffic threads ADDR PORT NTHREADS BYTES    each thread sends BYTES of UDP
 *   tm_traffic udp-multi ADDR PORT0 NPEERS COUNT SIZE  one unconnected socket, COUNT
 *                                                  datagrams to each of NPEERS echo peers
 *   tm_traffic ping ADDR COUNT SIZE                ICMP echo over a ping socket
 *   tm_traffic raw-ping ADDR COUNT SIZE            ICMP echo over a raw socket (IPv4)
 *   tm_traffic fork-storm ADDR PORT N SIZE         N children, one datagram each
 *   tm_traffic udp-blast ADDR PORT COUNT SIZE      COUNT datagrams, no reply expected
 *   tm_traffic udp-bind ADDR PORT MS               bind, wait MS, count what arrived
 *   tm_traffic udp-drain ADDR PORT                 receive until killed (benchmarks)
 *   tm_traffic name-storm ADDR PORT N SIZE PREFIX  N children one after the other, each
 *                                                  named PREFIX<i> (prctl PR_SET_NAME, so
 *                                                  its comm) and sending one datagram
 *   tm_traffic udp-reader ADDR PORT RCVBUF READS FORK  bind (SO_REUSEPORT), wait for a
 *                                                  line on stdin, read at most READS
 *                                                  datagrams (FORK=1: a child of the
 *                                                  binder reads), close (see below)
 *   tm_traffic udp-send-wait ADDR PORT COUNT SIZE  COUNT datagrams, "sent", a line on
 *                                                  stdin, COUNT more on the same socket
 *   tm_traffic swarm ADDR PORT N INTERVAL_MS       N processes, each sending a 64-byte
 *                                                  datagram every INTERVAL_MS, until
 *                                                  stdin closes (benchmarks)
 *   tm_traffic hold-send ADDR PORT N SIZE          N children at once, each sending one
 *                                                  datagram; prints "ready", then a report
 *                                                  line per child; they exit when stdin
 *                                                  closes. TM_ARGV_BYTES=K makes the
 *                                                  argument region K bytes, TM_REGION_BYTES=K
 *                                                  argument and environment regions K
 *                                                  together (one re-exec with a padding
 *                                                  argument)
 *   tm_traffic proctitle ADDR PORT COUNT           setproctitle style: the argument NULs
 *                                                  become blanks (so /proc/PID/cmdline runs
 *                                                  on into the environment; TM_ENV_FIRST=NAME
 *                                                  puts NAME first there), then udp-sink
 *   tm_traffic pid-reuse ADDR PORT SIZE1 SIZE2     a child sends SIZE1 (udp-once) and is
 *                                                  reaped; a second child, given the same
 *                                                  pid (clone3 set_tid), sends SIZE2
 *
 * ADDR is numeric IPv4 or IPv6. Extra arguments after the mode's own are
 * ignored, so tests can tag processes with distinctive argv. TM_LINGER_MS in
 * the environment delays the exit (for the /proc metadata mode's tests);
 * TM_PACE_MS / TM_PACE_BYTES make every send paced (see pace());
 * TM_SERVE_DELAY_MS makes tcp-serve wait before reading, so that the peer's
 * data goes out from softirq as the window reopens. Modes with several
 * processes print one report line per process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <linux/sched.h> /* struct clone_args */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
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

/* TM_PACE_MS=N sends TM_PACE_BYTES (default 1000) every N ms instead of
 * all at once: a transfer that spans seconds (collector restarts). */
static void pace(size_t *chunk)
{
	static long ms = -1, bytes;
	struct timespec ts;

	if (ms < 0) {
		const char *m = getenv("TM_PACE_MS"), *b = getenv("TM_PACE_BYTES");

		ms = m ? atol(m) : 0;
		bytes = b ? atol(b) : 1000;
	}
	if (ms <= 0)
		return;
	if (*chunk > (size_t)bytes)
		*chunk = (size_t)bytes;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

static long long send_all(int fd, long long n)
{
	static char buf[65536];
	long long sent = 0;

	memset(buf, 'x', sizeof(buf));
	while (sent < n) {
		size_t chunk = n - sent > (long long)sizeof(buf) ? sizeof(buf) : (size_t)(n - sent);

		pace(&chunk);
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

/*
 * What this process's TCP sockets sent again (retransmissions): payload
 * bytes and segments, on the wire on top of what the application sent.
 * Read only once the socket's send queue is empty (SIOCOUTQ 0: everything
 * sent is acknowledged, so no retransmission is still to come), and only
 * for this process's own period with the socket: tcp_info counts over the
 * socket's life, so a period starts with retrans_mark() and
 * note_retrans() adds what happened since.
 */
static long long retrans, retrans_pkts;

struct retrans_mark {
	long long bytes, pkts;
};

static struct retrans_mark retrans_now(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		die("TCP_INFO");
	return (struct retrans_mark){ (long long)ti.tcpi_bytes_retrans, ti.tcpi_total_retrans };
}

/* Wait (up to 30 s) until the peer has acknowledged all we sent. */
static void wait_acked(int fd)
{
	int outq = 0;

	for (int i = 0; i < 30000; i++) {
		if (ioctl(fd, SIOCOUTQ, &outq))
			die("SIOCOUTQ");
		if (!outq)
			return;
		usleep(1000);
	}
	fprintf(stderr, "tm_traffic: %d bytes never acknowledged\n", outq);
	exit(1);
}

static void note_retrans_since(int fd, struct retrans_mark since)
{
	struct retrans_mark now;

	wait_acked(fd);
	now = retrans_now(fd);
	retrans += now.bytes - since.bytes;
	retrans_pkts += now.pkts - since.pkts;
}

static void note_retrans(int fd)
{
	note_retrans_since(fd, (struct retrans_mark){ 0, 0 });
}

static void report(long long sent, long long received)
{
	const char *linger = getenv("TM_LINGER_MS");

	printf("pid=%d sent=%lld received=%lld retrans=%lld retrans_pkts=%lld\n", getpid(), sent,
	       received, retrans, retrans_pkts);
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
	if (getenv("TM_SERVE_DELAY_MS"))
		usleep((useconds_t)atoi(getenv("TM_SERVE_DELAY_MS")) * 1000);
	got = recv_all(fd);
	sent = send_all(fd, atoll(a[2]));
	shutdown(fd, SHUT_WR);
	recv_all(fd); /* wait for the peer's close: the FIN exchange ends */
	note_retrans(fd);
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
	note_retrans(fd);
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

static int exec_keep(char **a, char **envp)
{
	int fd = tcp_connect(a);
	char var[32];
	size_t n = 0;

	report(send_all(fd, atoll(a[2])), 0);
	snprintf(var, sizeof(var), "TM_KEEP_FD=%d", fd); /* fd is not close-on-exec */
	while (envp[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		die("calloc");
	memcpy(env, envp, n * sizeof(*env));
	env[n] = var;
	execve(a[3], a + 3, env);
	die("execve");
	return 1;
}

static int fd_finish(char **a)
{
	const char *fdvar = getenv("TM_KEEP_FD");
	int fd = fdvar ? atoi(fdvar) : -1;
	struct retrans_mark mark;
	long long sent, got;

	if (fd < 0)
		die("TM_KEEP_FD");
	mark = retrans_now(fd); /* this image's period: the one before exec is not ours */
	sent = send_all(fd, atoll(a[0]));
	shutdown(fd, SHUT_WR);
	got = recv_all(fd);
	note_retrans_since(fd, mark);
	close(fd);
	report(sent, got);
	return 0;
}

static int tcp_send_wait(char **a)
{
	int fd = tcp_connect(a);
	long long sent, got;
	char line[16];

	printf("connected\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		die("stdin");
	sent = send_all(fd, atoll(a[2]));
	shutdown(fd, SHUT_WR);
	got = recv_all(fd);
	note_retrans(fd);
	close(fd);
	report(sent, got);
	return 0;
}

static int tcp_listener(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(a[0], a[1], &ss);
	int one = 1, lfd = socket(ss.ss_family, SOCK_STREAM, 0);

	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 64))
		die("bind/listen");
	return lfd;
}

/* One served connection: read to EOF, reply, wait for the peer's close. */
static void serve_one(int fd, long long reply, long long *sent, long long *got)
{
	*got += recv_all(fd);
	*sent += send_all(fd, reply);
	shutdown(fd, SHUT_WR);
	recv_all(fd);
	note_retrans(fd);
	close(fd);
}

static int prefork(char **a)
{
	int lfd = tcp_listener(a), workers = atoi(a[2]), conns = atoi(a[3]);

	printf("listening\n");
	fflush(stdout);
	for (int w = 0; w < workers; w++) {
		if (fork() == 0) {
			long long sent = 0, got = 0;

			for (int c = 0; c < conns; c++) {
				int fd = accept(lfd, NULL, NULL);

				if (fd < 0)
					die("accept");
				serve_one(fd, atoll(a[4]), &sent, &got);
			}
			report(sent, got);
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	report(0, 0);
	return 0;
}

static int fork_send(char **a)
{
	int fd = tcp_connect(a), status;
	long long sent = send_all(fd, atoll(a[2])), got;
	struct retrans_mark mark;
	pid_t child;

	note_retrans(fd); /* the parent's period: its data acknowledged */
	mark = retrans_now(fd);
	child = fork();
	if (child == 0) {
		retrans = retrans_pkts = 0;
		sent = send_all(fd, atoll(a[3]));
		note_retrans_since(fd, mark);
		report(sent, 0);
		_exit(0);
	}
	waitpid(child, &status, 0);
	shutdown(fd, SHUT_WR);
	got = recv_all(fd);
	report(sent, got);
	return 0;
}

static void send_fd(int via, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, byte = 'f';
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(via, &msg, 0) != 1)
		die("sendmsg SCM_RIGHTS");
}

static int recv_fd(int via)
{
	char cbuf[CMSG_SPACE(sizeof(int))], byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(via, &msg, 0) != 1)
		die("recvmsg SCM_RIGHTS");
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		die("no SCM_RIGHTS");
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The child exists before the TCP socket does: it gets it only by SCM_RIGHTS. */
static int scm_send(char **a)
{
	int sp[2], status, fd;
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
		die("socketpair");
	child = fork();
	if (child == 0) {
		long long sent, got;

		struct retrans_mark mark;

		close(sp[0]);
		fd = recv_fd(sp[1]);
		mark = retrans_now(fd);
		sent = send_all(fd, atoll(a[3]));
		shutdown(fd, SHUT_WR);
		got = recv_all(fd);
		note_retrans_since(fd, mark);
		report(sent, got);
		_exit(0);
	}
	close(sp[1]);
	fd = tcp_connect(a);
	long long sent = send_all(fd, atoll(a[2]));
	note_retrans(fd); /* before the hand-off: the child's period starts there */
	send_fd(sp[0], fd);
	close(fd);
	waitpid(child, &status, 0);
	report(sent, 0);
	return 0;
}

struct thread_arg {
	char **a;
	long long sent;
};

static void *thread_send(void *p)
{
	struct thread_arg *t = p;
	struct sockaddr_storage ss;
	socklen_t len;
	static char buf[1000];
	int fd = udp_socket(t->a, &ss, &len);
	long long want = atoll(t->a[3]);

	while (t->sent < want) {
		size_t n = want - t->sent > 1000 ? 1000 : (size_t)(want - t->sent);

		if (sendto(fd, buf, n, 0, (struct sockaddr *)&ss, len) != (ssize_t)n)
			die("sendto");
		t->sent += (long long)n;
		usleep(200); /* stay under the sink's receive buffer */
	}
	close(fd);
	return NULL;
}

static int threads(char **a)
{
	int n = atoi(a[2]);
	pthread_t tid[64];
	struct thread_arg args[64];
	long long sent = 0;

	if (n < 1 || n > 64)
		n = 1;
	for (int i = 0; i < n; i++) {
		args[i] = (struct thread_arg){ .a = a };
		pthread_create(&tid[i], NULL, thread_send, &args[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		sent += args[i].sent;
	}
	report(sent, 0);
	return 0;
}

static int udp_multi(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(a, &ss, &len), peers = atoi(a[2]), count = atoi(a[3]);
	int port0 = atoi(a[1]);
	size_t size = (size_t)atol(a[4]);
	static char buf[65536];
	long long sent = 0, got = 0;

	for (int i = 0; i < count; i++) {
		for (int p = 0; p < peers; p++) {
			char port[16];
			ssize_t r;

			snprintf(port, sizeof(port), "%d", port0 + p);
			len = make_addr(a[0], port, &ss);
			if (sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len) != (ssize_t)size)
				die("sendto");
			sent += (long long)size;
			r = recvfrom(fd, buf, sizeof(buf), 0, NULL, NULL);
			if (r < 0)
				die("recvfrom");
			got += r;
		}
	}
	report(sent, got);
	return 0;
}

static unsigned short csum(const void *data, size_t len)
{
	const unsigned short *p = data;
	unsigned long sum = 0;

	for (; len > 1; len -= 2)
		sum += *p++;
	if (len)
		sum += *(const unsigned char *)p;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (unsigned short)~sum;
}

/* ICMP echo: over a ping socket (kind SOCK_DGRAM) or a raw one (SOCK_RAW,
 * which also sees our own requests arrive on lo and includes IP headers). */
static int echo(char **a, int kind)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(a[0], "0", &ss);
	int v6 = ss.ss_family == AF_INET6, count = atoi(a[1]), replies = 0;
	int fd = socket(ss.ss_family, kind, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	size_t size = (size_t)atol(a[2]);
	static unsigned char pkt[65536], in[65536];
	long long sent = 0, got = 0;

	if (fd < 0)
		die("socket(icmp)");
	for (int i = 0; i < count; i++) {
		struct icmphdr *h = (struct icmphdr *)pkt;

		memset(pkt, 'p', 8 + size);
		h->type = v6 ? 128 : ICMP_ECHO;
		h->code = 0;
		h->un.echo.id = htons((unsigned short)getpid());
		h->un.echo.sequence = htons((unsigned short)i);
		h->checksum = 0;
		h->checksum = csum(pkt, 8 + size);
		if (sendto(fd, pkt, 8 + size, 0, (struct sockaddr *)&ss, len) != (ssize_t)(8 + size))
			die("sendto(icmp)");
		sent += (long long)size;
		while (replies <= i) {
			ssize_t r = recv(fd, in, sizeof(in), 0);
			size_t hdr = kind == SOCK_RAW ? (size_t)(in[0] & 0xf) * 4 : 0;
			struct icmphdr *rh = (struct icmphdr *)(in + hdr);

			if (r < 0)
				die("recv(icmp)");
			got += r - (long long)hdr - 8;
			replies += rh->type == (v6 ? 129 : ICMP_ECHOREPLY);
		}
	}
	report(sent, got);
	return 0;
}

static int ping(char **a)
{
	return echo(a, SOCK_DGRAM);
}

static int raw_ping(char **a)
{
	return echo(a, SOCK_RAW);
}

static int udp_blast(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(a, &ss, &len), count = atoi(a[2]);
	size_t size = (size_t)atol(a[3]);
	static char buf[65536];

	for (int i = 0; i < count; i++) {
		if (sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len) != (ssize_t)size)
			die("sendto");
		usleep(1000); /* no burst: nothing dropped on the way */
	}
	report((long long)count * (long long)size, 0);
	return 0;
}

/* A socket that may never get its datagrams (a firewall drops them). */
static int udp_bind(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(a, &ss, &len);
	static char buf[65536];
	long long got = 0;
	ssize_t r;

	if (bind(fd, (struct sockaddr *)&ss, len))
		die("bind");
	printf("listening\n");
	fflush(stdout);
	usleep((useconds_t)atoi(a[2]) * 1000);
	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		got += r;
	report(0, got);
	return 0;
}

static int udp_drain(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(a, &ss, &len), big = 8 << 20;
	static char buf[65536];

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&ss, len))
		die("bind");
	printf("listening\n");
	fflush(stdout);
	for (;;)
		if (recv(fd, buf, sizeof(buf), 0) < 0 && errno != EINTR)
			die("recv");
	return 0;
}

/* One member of a swarm: a datagram every interval, until its parent dies. */
static void swarm_member(char **a, int interval_ms, int i)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;
	static char buf[64];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = udp_socket(a, &ss, &len);
	usleep((useconds_t)(i % interval_ms) * 1000); /* spread over the interval */
	for (;;) {
		sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, len);
		usleep((useconds_t)interval_ms * 1000);
	}
}

static int swarm(char **a)
{
	int n = atoi(a[2]), interval_ms = atoi(a[3]);
	char line[16];

	if (interval_ms < 1)
		interval_ms = 1000;
	for (int i = 0; i < n; i++) {
		pid_t c = fork();

		if (c < 0)
			die("fork");
		if (c == 0)
			swarm_member(a, interval_ms, i);
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0; /* the members die with us (PR_SET_PDEATHSIG) */
}

static int fork_storm(char **a)
{
	int n = atoi(a[2]);
	long long sent = 0;

	for (int i = 0; i < n; i++) {
		int status;
		pid_t c = fork();

		if (c == 0) {
			struct sockaddr_storage ss;
			socklen_t len;
			int fd = udp_socket(a, &ss, &len);
			static char buf[65536];
			size_t size = (size_t)atol(a[3]);

			_exit(sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len) != (ssize_t)size);
		}
		if (c < 0 || waitpid(c, &status, 0) < 0 || status)
			die("fork-storm child");
		sent += atol(a[3]);
	}
	report(sent, 0);
	return 0;
}

/* Children with distinct comms: a process name per child, set before the
 * socket exists, so the metadata read at its first packet has it. */
static int name_storm(char **a)
{
	int n = atoi(a[2]);
	size_t size = (size_t)atol(a[3]);

	for (int i = 0; i < n; i++) {
		int status;
		pid_t c = fork();

		if (c == 0) {
			struct sockaddr_storage ss;
			socklen_t len;
			static char buf[65536];
			char name[16];
			int fd;

			snprintf(name, sizeof(name), "%s%d", a[4], i);
			prctl(PR_SET_NAME, name);
			fd = udp_socket(a, &ss, &len);
			if (sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len) != (ssize_t)size)
				_exit(1);
			report((long long)size, 0);
			_exit(0);
		}
		if (c < 0 || waitpid(c, &status, 0) < 0 || status)
			die("name-storm child");
	}
	report(0, 0);
	return 0;
}

extern char **environ;

/* The path of this program, for a re-exec that keeps its comm. */
static const char *self_exe(void)
{
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	if (n < 0)
		die("readlink /proc/self/exe");
	path[n] = '\0';
	return path;
}

/* Fields 48..51 of /proc/self/stat: arg_start, arg_end, env_start, env_end. */
static void regions(unsigned long long v[4])
{
	char buf[4096], *p;
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	for (int field = 2; p && field < 48; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) != 4)
		die("/proc/self/stat");
}

/* TM_ARGV_BYTES / TM_REGION_BYTES: re-exec once with a padding argument. */
static void pad_regions(char **argv)
{
	const char *want_argv = getenv("TM_ARGV_BYTES"), *want_both = getenv("TM_REGION_BYTES");
	unsigned long long v[4];
	long long have, target;
	char **nargv, *pad;
	int argc = 0;

	if (!want_argv && !want_both)
		return;
	regions(v);
	have = (long long)(v[1] - v[0]);
	target = want_argv ? atoll(want_argv) : atoll(want_both) - (long long)(v[3] - v[2]);
	if (have == target)
		return;
	if (target < have + 2) {
		fprintf(stderr, "cannot pad the argument region from %lld to %lld bytes\n", have,
			target);
		exit(2);
	}
	while (argv[argc])
		argc++;
	nargv = calloc((size_t)argc + 2, sizeof(*nargv));
	pad = malloc((size_t)(target - have));
	if (!nargv || !pad)
		die("malloc");
	memcpy(nargv, argv, (size_t)argc * sizeof(*nargv));
	memset(pad, 'p', (size_t)(target - have - 1));
	pad[target - have - 1] = '\0';
	nargv[argc] = pad;
	execve(self_exe(), nargv, environ);
	die("execve");
}

static void hold_child(char **a, size_t size, int sent_fd, int hold_fd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	static char buf[65536];
	char c;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = udp_socket(a, &ss, &len);
	c = sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len) == (ssize_t)size ? 'y' : 'n';
	if (write(sent_fd, &c, 1) != 1)
		_exit(1);
	while (read(hold_fd, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

static int hold_send(char **a)
{
	int n = atoi(a[2]), sent[2], hold[2], status;
	size_t size = (size_t)atol(a[3]);
	pid_t *kids = calloc((size_t)(n > 0 ? n : 1), sizeof(*kids));
	char c, line[64];

	pad_regions(a - 2);
	if (!kids || pipe(sent) || pipe(hold))
		die("pipe");
	for (int i = 0; i < n; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			close(sent[0]);
			close(hold[1]);
			hold_child(a, size, sent[1], hold[0]);
		}
	}
	close(sent[1]);
	close(hold[0]);
	for (int i = 0; i < n; i++)
		if (read(sent[0], &c, 1) != 1 || c != 'y')
			die("hold-send child");
	printf("ready\n");
	for (int i = 0; i < n; i++)
		printf("pid=%d sent=%zu received=0 retrans=0\n", kids[i], size);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	close(hold[1]); /* the children's read returns 0: they exit */
	for (int i = 0; i < n; i++)
		if (waitpid(kids[i], &status, 0) < 0 || status)
			die("hold-send child exit");
	report(0, 0);
	return 0;
}

/* TM_ENV_FIRST=NAME: re-exec once with NAME first in the environment. */
static void env_first(char **argv)
{
	const char *name = getenv("TM_ENV_FIRST");
	size_t n = 0, k = 1, len;
	char **nenv;

	if (!name)
		return;
	len = strlen(name);
	if (!strncmp(environ[0], name, len) && environ[0][len] == '=')
		return;
	while (environ[n])
		n++;
	nenv = calloc(n + 1, sizeof(*nenv));
	if (!nenv)
		die("calloc");
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(environ[i], name, len) && environ[i][len] == '=')
			nenv[0] = environ[i];
		else if (k < n)
			nenv[k++] = environ[i];
	}
	if (!nenv[0])
		return; /* not set: nothing to move */
	execve(self_exe(), argv, nenv);
	die("execve");
}

static int proctitle(char **a)
{
	char **argv = a - 2, addr[256], port[32], count[32], *end;
	char *args[] = { addr, port, count };
	int argc = 0;

	env_first(argv);
	snprintf(addr, sizeof(addr), "%s", a[0]);
	snprintf(port, sizeof(port), "%s", a[1]);
	snprintf(count, sizeof(count), "%s", a[2]);
	while (argv[argc])
		argc++;
	end = argv[argc - 1] + strlen(argv[argc - 1]); /* the region's last NUL */
	for (char *p = argv[0]; p <= end; p++)
		if (!*p)
			*p = ' ';
	return udp_sink(args);
}

/*
 * udp-reader ADDR PORT RCVBUF READS FORK: bind (SO_REUSEPORT, so that
 * several can share the port; SO_RCVBUF = RCVBUF when > 0), print
 * "listening", wait for a line on stdin, then read what is queued, at most
 * READS datagrams, and close. FORK=1: the binder forks before the line
 * and the child reads, the binder never does (it reports nothing read).
 * Reports one line per process, the reader's first; received= is bytes.
 */
static int udp_reader(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(a, &ss, &len), one = 1, rcvbuf = atoi(a[2]), reads = atoi(a[3]);
	bool fork_reader = atoi(a[4]) == 1;
	static char buf[65536];
	long long got = 0;
	char line[16];
	pid_t child = 0;

	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)))
		die("SO_RCVBUF");
	if (bind(fd, (struct sockaddr *)&ss, len))
		die("bind");
	printf("listening\n");
	fflush(stdout);
	if (fork_reader) {
		child = fork();
		if (child < 0)
			die("fork");
	}
	if (child > 0) { /* the binder: waits, never reads */
		waitpid(child, NULL, 0);
		close(fd);
		report(0, 0);
		return 0;
	}
	if (!fgets(line, sizeof(line), stdin))
		die("stdin");
	for (int i = 0; i < reads; i++) {
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r < 0 && errno == EAGAIN)
			break;
		if (r < 0)
			die("recv");
		got += r;
	}
	close(fd);
	report(0, got);
	return 0;
}

/* udp-send-wait ADDR PORT COUNT SIZE: COUNT datagrams, "sent", then after
 * a line on stdin COUNT more from the same socket (one flow throughout). */
static int udp_send_wait(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = udp_socket(a, &ss, &len), count = atoi(a[2]);
	size_t size = (size_t)atol(a[3]);
	static char buf[65536];
	char line[16];

	for (int round = 0; round < 2; round++) {
		if (round) {
			printf("sent\n");
			fflush(stdout);
			if (!fgets(line, sizeof(line), stdin))
				die("stdin");
		}
		for (int i = 0; i < count; i++) {
			if (sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len) != (ssize_t)size)
				die("sendto");
			usleep(1000);
		}
	}
	report(2LL * count * (long long)size, 0);
	return 0;
}

/* A child with the given pid, if it is free: clone3's set_tid, which needs
 * CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) and writes no sysctl, unlike
 * kernel.ns_last_pid, which would steer every fork on the host. */
static pid_t fork_as(pid_t pid)
{
	struct clone_args ca = { .exit_signal = SIGCHLD, .set_tid = (uintptr_t)&pid,
				 .set_tid_size = 1 };

	return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

static int pid_reuse(char **a)
{
	char *second_args[] = { a[0], a[1], a[3], NULL };
	pid_t first, second;
	int status;

	first = fork();
	if (first == 0)
		_exit(udp_once(a));
	if (first < 0 || waitpid(first, &status, 0) != first || status)
		die("first child");
	/* reaped: its pid is free again, and the host's pid cursor is past it */
	second = fork_as(first);
	if (second == 0)
		_exit(udp_once(second_args));
	if (second < 0)
		die("clone3 with set_tid (the first child's pid)");
	if (waitpid(second, &status, 0) != second || status)
		die("second child");
	return 0;
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
		{ "tcp-send-wait", 3, tcp_send_wait }, { "prefork", 5, prefork },
		{ "fork-send", 4, fork_send }, { "scm-send", 4, scm_send },
		{ "threads", 4, threads },     { "udp-multi", 5, udp_multi },
		{ "ping", 3, ping },           { "raw-ping", 3, raw_ping },
		{ "fork-storm", 4, fork_storm }, { "udp-blast", 4, udp_blast },
		{ "udp-bind", 3, udp_bind },   { "udp-drain", 2, udp_drain },
		{ "swarm", 4, swarm },         { "fd-finish", 1, fd_finish },
		{ "name-storm", 5, name_storm }, { "udp-reader", 5, udp_reader },
		{ "udp-send-wait", 4, udp_send_wait },
		{ "hold-send", 4, hold_send }, { "proctitle", 3, proctitle },
		{ "name-storm", 5, name_storm },
		{ "pid-reuse", 4, pid_reuse },
	};

	if (argc >= 6 && strcmp(argv[1], "exec-send") == 0)
		return exec_send(argv + 2, envp);
	if (argc >= 6 && strcmp(argv[1], "exec-keep") == 0)
		return exec_keep(argv + 2, envp);
	for (size_t i = 0; argc > 1 && i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(argv[1], modes[i].name) == 0 && argc >= 2 + modes[i].nargs)
			return modes[i].fn(argv + 2);
	fprintf(stderr, "usage: see the comment at the top of tests/tools/tm_traffic.c\n");
	return 2;
}
