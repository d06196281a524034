// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The subscriber side: whole frames, how a stream ends, reconnecting. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "tm_test.h"

struct server {
	char dir[64], path[96];
	int fd;
};

static bool server_open(struct server *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	strcpy(s->dir, "/tmp/tm-unit-client-XXXXXX");
	ASSERT_TRUE(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/sock", s->dir);
	strcpy(sa.sun_path, s->path);
	s->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_TRUE(s->fd >= 0);
	ASSERT_EQ(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ASSERT_EQ(listen(s->fd, 4), 0);
	return true;
}

static void server_close(struct server *s)
{
	close(s->fd);
	unlink(s->path);
	rmdir(s->dir);
}

/* Writes the messages (seq, more_parts) to the next subscriber, then
 * either closes (EOF) or writes half a message first. */
static void serve(struct server *s, const uint64_t *seq, const bool *more, size_t n,
		  bool torn)
{
	Taskmeter__Frame f = TASKMETER__FRAME__INIT;
	int fd = accept(s->fd, NULL, NULL);
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < n; i++) {
		f.has_seq = f.has_more_parts = true;
		f.seq = seq[i];
		f.more_parts = more[i];
		buf = tm_frame_encode(&f, &len);
		if (!buf || write(fd, buf, torn && i + 1 == n ? len / 2 : len) < 0)
			_exit(1);
		free(buf);
	}
	_exit(0);
}

static bool stream_case(bool torn, int want_ended)
{
	static const uint64_t seq[] = { 1, 2, 2, 3 };
	static const bool more[] = { false, true, false, false };
	Taskmeter__Frame *f;
	struct tm_client c;
	struct server s;
	pid_t pid;
	bool ok = true;

	ASSERT_TRUE(server_open(&s));
	pid = fork();
	if (pid == 0)
		serve(&s, seq, more, 4, torn);
	tm_client_init(&c, s.path, 0, false);
	ok = ok && tm_client_connect(&c) == 0;
	ok = ok && tm_client_next(&c, &f) == 1 && f->seq == 1;
	/* Two parts, one frame. */
	ok = ok && tm_client_next(&c, &f) == 1 && f->seq == 2 && !f->more_parts;
	if (!torn)
		ok = ok && tm_client_next(&c, &f) == 1 && f->seq == 3;
	ok = ok && tm_client_next(&c, &f) == 0 && c.ended == want_ended && c.fd < 0;
	waitpid(pid, NULL, 0);
	tm_client_free(&c);
	server_close(&s);
	return ok;
}

TM_TEST(client_stream_end)
{
	ASSERT_TRUE(stream_case(false, 0));
	/* The collector died in the middle of a frame. */
	ASSERT_TRUE(stream_case(true, -EPROTO));
	return true;
}

TM_TEST(client_reconnect)
{
	struct tm_client c;
	struct server s;

	ASSERT_TRUE(server_open(&s));
	server_close(&s);
	tm_client_init(&c, s.path, 0.2, true);
	/* Nobody listening: not yet, then the wait is over. */
	tm_client_reconnect_start(&c);
	ASSERT_EQ(tm_client_reconnect_try(&c), -EAGAIN);
	usleep(250000);
	ASSERT_EQ(tm_client_reconnect_try(&c), -ETIMEDOUT);
	ASSERT_TRUE(tm_client_wait_left(&c) == 0);
	tm_client_free(&c);
	/* A collector listening: connected, non-blocking, counted. */
	ASSERT_TRUE(server_open(&s));
	tm_client_init(&c, s.path, 5, true);
	tm_client_reconnect_start(&c);
	ASSERT_EQ(tm_client_reconnect_try(&c), 0);
	ASSERT_EQ(c.reconnects, 1);
	ASSERT_EQ(tm_client_next(&c, &(Taskmeter__Frame *){ NULL }), -EAGAIN);
	tm_client_free(&c);
	server_close(&s);
	return true;
}
