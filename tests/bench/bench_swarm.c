// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * N live processes for the collector benchmark: each holds a UDP socket,
 * sends one 64-byte datagram to ADDR:PORT, then sleeps until told to send
 * another. So the collector has N live records whose counters move only
 * when the benchmark says: "rate PCT" on stdin makes PCT% of the members
 * send one datagram every second (0 = none: nothing changes), until the
 * next line; stdin closing ends them all.
 *
 *   bench_swarm ADDR PORT N
 *
 * Prints "ready" once every member sent its first datagram.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "bench_swarm: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A member: one datagram now, one per SIGUSR1 after; gone with the parent. */
static void member(const struct sockaddr_in *to, int ready_fd, const sigset_t *usr1)
{
	static const char buf[64];
	int fd, sig;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(0);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)to, sizeof(*to)))
		_exit(1);
	send(fd, buf, sizeof(buf), 0);
	if (write(ready_fd, "", 1) != 1)
		_exit(1);
	close(ready_fd);
	for (;;)
		if (!sigwait(usr1, &sig))
			send(fd, buf, sizeof(buf), 0);
}

static int spawn(pid_t *pids, int n, const struct sockaddr_in *to)
{
	int p[2], got = 0;
	sigset_t usr1;
	char c;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL); /* members take it with sigwait */
	if (pipe(p))
		die("pipe");
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (pids[i] == 0) {
			close(p[0]);
			member(to, p[1], &usr1);
		}
	}
	close(p[1]);
	while (got < n && read(p[0], &c, 1) == 1)
		got++;
	close(p[0]);
	return got == n ? 0 : -1;
}

/* Every second, rate% of the members (the next ones in turn) send. */
static void poke(const pid_t *pids, int n, int rate, int *cursor)
{
	int m = (int)((long)n * rate / 100);

	for (int j = 0; j < m; j++) {
		kill(pids[*cursor], SIGUSR1);
		*cursor = (*cursor + 1) % n;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	int n = argc == 4 ? atoi(argv[3]) : 0, rate = 0, cursor = 0;
	struct pollfd pfd = { .fd = 0, .events = POLLIN };
	char line[64];
	pid_t *pids;

	if (n < 1 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
		fprintf(stderr, "usage: bench_swarm ADDR PORT N\n");
		return 2;
	}
	to.sin_port = htons((unsigned short)atoi(argv[2]));
	pids = calloc((size_t)n, sizeof(*pids));
	if (!pids || spawn(pids, n, &to))
		die("spawn");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int r = poll(&pfd, 1, 1000);

		if (r < 0 && errno != EINTR)
			die("poll");
		if (r > 0) {
			if (!fgets(line, sizeof(line), stdin))
				break;
			if (sscanf(line, "rate %d", &rate) != 1 || rate < 0 || rate > 100)
				rate = 0;
			continue;
		}
		poke(pids, n, rate, &cursor);
	}
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return 0;
}
