// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Framing codec: varint edge cases and whole frames through a socketpair. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "tm_test.h"

static const struct {
	uint64_t v;
	size_t n;
	uint8_t bytes[TM_VARINT_MAX];
} varints[] = {
	{ 0, 1, { 0x00 } },
	{ 127, 1, { 0x7f } },
	{ 128, 2, { 0x80, 0x01 } },
	{ 300, 2, { 0xac, 0x02 } },
	{ UINT32_MAX, 5, { 0xff, 0xff, 0xff, 0xff, 0x0f } },
	{ UINT64_MAX, 10, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 } },
};

TM_TEST(varint_roundtrip)
{
	for (size_t i = 0; i < sizeof(varints) / sizeof(varints[0]); i++) {
		uint8_t out[TM_VARINT_MAX];
		uint64_t v;
		size_t n, used;

		n = tm_frame_varint_encode(varints[i].v, out);
		ASSERT_EQ(n, varints[i].n);
		ASSERT_TRUE(!memcmp(out, varints[i].bytes, n));
		ASSERT_EQ(tm_frame_varint_decode(out, n, &v, &used), 0);
		ASSERT_TRUE(v == varints[i].v);
		ASSERT_EQ(used, n);
		/* Every strict prefix asks for more bytes. */
		for (size_t k = 0; k < n; k++)
			ASSERT_EQ(tm_frame_varint_decode(out, k, &v, &used), -EAGAIN);
	}
	return true;
}

TM_TEST(varint_too_long)
{
	uint8_t eleven[11];
	uint8_t overflow[10];
	uint64_t v;
	size_t used;

	memset(eleven, 0x80, sizeof(eleven));
	eleven[10] = 0x01;
	ASSERT_EQ(tm_frame_varint_decode(eleven, sizeof(eleven), &v, &used), -EBADMSG);
	/* Ten bytes but the last carries bits above 63. */
	memset(overflow, 0xff, sizeof(overflow));
	overflow[9] = 0x02;
	ASSERT_EQ(tm_frame_varint_decode(overflow, sizeof(overflow), &v, &used), -EBADMSG);
	return true;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

/* Encodes f and writes it to fd; returns 0 or -errno. */
static int send_frame(int fd, const Taskmeter__Frame *f)
{
	size_t len;
	uint8_t *buf = tm_frame_encode(f, &len);
	int err;

	if (!buf)
		return -errno;
	err = write_all(fd, buf, len);
	free(buf);
	return err;
}

/* Two records, one with argv, counters and a traffic entry. */
struct sample {
	Taskmeter__Frame f;
	Taskmeter__ProcessRecord r[2];
	Taskmeter__ProcessRecord *rp[2];
	Taskmeter__Counters rx, tx;
	Taskmeter__Traffic t;
	Taskmeter__Traffic *tp[1];
	char *argv[2];
};

static void sample_init(struct sample *s, uint64_t seq)
{
	taskmeter__frame__init(&s->f);
	taskmeter__process_record__init(&s->r[0]);
	taskmeter__process_record__init(&s->r[1]);
	taskmeter__counters__init(&s->rx);
	taskmeter__counters__init(&s->tx);
	taskmeter__traffic__init(&s->t);
	s->f.has_seq = true;
	s->f.seq = seq;
	s->f.has_interval_ns = true;
	s->f.interval_ns = 1000000000ull;
	s->rx.has_bytes = true;
	s->rx.bytes = 1ull << 40;
	s->tx.has_packets = true;
	s->tx.packets = 7;
	s->t.has_direction = true;
	s->t.direction = TASKMETER__DIRECTION__EGRESS;
	s->t.delta = &s->tx;
	s->tp[0] = &s->t;
	s->argv[0] = "curl";
	s->argv[1] = "http://example.com/";
	s->r[0].has_kind = true;
	s->r[0].kind = TASKMETER__RECORD_KIND__PROCESS;
	s->r[0].has_pid = true;
	s->r[0].pid = 4242;
	s->r[0].comm = "curl";
	s->r[0].n_argv = 2;
	s->r[0].argv = s->argv;
	s->r[0].rx_total = &s->rx;
	s->r[0].n_traffic = 1;
	s->r[0].traffic = s->tp;
	s->r[1].has_kind = true;
	s->r[1].kind = TASKMETER__RECORD_KIND__UNATTRIBUTED;
	s->rp[0] = &s->r[0];
	s->rp[1] = &s->r[1];
	s->f.n_records = 2;
	s->f.records = s->rp;
}

static bool check_sample(const Taskmeter__Frame *f, uint64_t seq)
{
	const Taskmeter__ProcessRecord *r;

	ASSERT_TRUE(f->has_seq && f->seq == seq);
	ASSERT_TRUE(f->has_interval_ns && f->interval_ns == 1000000000ull);
	ASSERT_TRUE(!f->has_timestamp_ns && !f->stats && !f->has_metadata_mode);
	if (!ASSERT_EQ(f->n_records, 2))
		return false;
	r = f->records[0];
	ASSERT_TRUE(r->has_kind && r->kind == TASKMETER__RECORD_KIND__PROCESS);
	ASSERT_TRUE(r->has_pid && r->pid == 4242);
	ASSERT_STREQ(r->comm, "curl");
	if (ASSERT_EQ(r->n_argv, 2))
		ASSERT_STREQ(r->argv[1], "http://example.com/");
	if (ASSERT_TRUE(r->rx_total && r->rx_total->has_bytes && !r->rx_total->has_packets))
		ASSERT_TRUE(r->rx_total->bytes == 1ull << 40);
	ASSERT_TRUE(!r->tx_total);
	if (!ASSERT_EQ(r->n_traffic, 1))
		return false;
	ASSERT_EQ(r->traffic[0]->direction, TASKMETER__DIRECTION__EGRESS);
	ASSERT_TRUE(r->traffic[0]->delta && r->traffic[0]->delta->packets == 7);
	ASSERT_EQ(f->records[1]->kind, TASKMETER__RECORD_KIND__UNATTRIBUTED);
	ASSERT_TRUE(!f->records[1]->has_pid && !f->records[1]->comm);
	return true;
}

/* Reads one frame and checks it is the sample with that seq. */
static bool read_sample(struct tm_frame_reader *r, int fd, uint64_t seq)
{
	Taskmeter__Frame *f = NULL;
	bool ok;

	if (!ASSERT_EQ(tm_frame_read(r, fd, &f), 1))
		return false;
	ok = check_sample(f, seq);
	taskmeter__frame__free_unpacked(f, NULL);
	return ok;
}

TM_TEST(frame_roundtrip_back_to_back)
{
	struct tm_frame_reader r;
	struct sample s;
	Taskmeter__Frame *f = NULL;
	int sv[2];
	bool ok;

	if (!ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0))
		return false;
	sample_init(&s, 1);
	ASSERT_EQ(send_frame(sv[0], &s.f), 0);
	s.f.seq = 2;
	ASSERT_EQ(send_frame(sv[0], &s.f), 0);
	close(sv[0]);
	tm_frame_reader_init(&r);
	ok = read_sample(&r, sv[1], 1) && read_sample(&r, sv[1], 2);
	/* Clean EOF between frames. */
	ok = ok && tm_frame_read(&r, sv[1], &f) == 0 && !f;
	tm_frame_reader_free(&r);
	close(sv[1]);
	return ok;
}

/* Writes raw bytes, closes the writer, returns what one read gives. */
static int read_raw(const void *bytes, size_t len)
{
	struct tm_frame_reader r;
	Taskmeter__Frame *f = NULL;
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -errno;
	ret = write_all(sv[0], bytes, len);
	close(sv[0]);
	tm_frame_reader_init(&r);
	if (!ret)
		ret = tm_frame_read(&r, sv[1], &f);
	if (ret == 1)
		taskmeter__frame__free_unpacked(f, NULL);
	tm_frame_reader_free(&r);
	close(sv[1]);
	return ret;
}

TM_TEST(frame_eof_mid_frame)
{
	struct sample s;
	uint8_t *buf;
	size_t len;

	sample_init(&s, 3);
	buf = tm_frame_encode(&s.f, &len);
	if (!ASSERT_TRUE(buf))
		return false;
	ASSERT_EQ(read_raw(buf, len), 1);
	ASSERT_EQ(read_raw(buf, len - 1), -EPROTO);  /* inside the body */
	ASSERT_EQ(read_raw(buf, 1), -EPROTO);        /* right after the prefix */
	ASSERT_EQ(read_raw("\x80", 1), -EPROTO);     /* inside the prefix */
	ASSERT_EQ(read_raw("", 0), 0);
	free(buf);
	return true;
}

TM_TEST(frame_bad_prefix_and_body)
{
	uint8_t pfx[TM_VARINT_MAX + 1];
	size_t n;

	n = tm_frame_varint_encode(TM_FRAME_MAX + 1ull, pfx);
	ASSERT_EQ(read_raw(pfx, n), -EBADMSG);
	memset(pfx, 0xff, sizeof(pfx));
	ASSERT_EQ(read_raw(pfx, sizeof(pfx)), -EBADMSG);
	/* Field 1 as a varint that never ends inside the 2-byte body. */
	ASSERT_EQ(read_raw("\x02\x08\x80", 3), -EBADMSG);
	/* An empty frame is a valid (all-absent) Frame. */
	ASSERT_EQ(read_raw("\x00", 1), 1);
	return true;
}

TM_TEST(frame_large_grows_reader)
{
	struct tm_frame_reader r;
	struct sample s;
	Taskmeter__Frame *f = NULL;
	char *big = malloc(3u << 20);
	int sv[2] = { -1, -1 };
	pid_t pid;
	int ret;

	tm_frame_reader_init(&r);
	if (!ASSERT_TRUE(big) || !ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0))
		goto out;
	memset(big, 'x', (3u << 20) - 1);
	big[(3u << 20) - 1] = '\0';
	sample_init(&s, 9);
	s.f.hostname = big;
	/* A writer process: the frame is bigger than the socket buffer. */
	pid = fork();
	if (pid == 0) {
		close(sv[1]);
		_exit(send_frame(sv[0], &s.f) ? 1 : 0);
	}
	close(sv[0]);
	ret = tm_frame_read(&r, sv[1], &f);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	if (!ASSERT_TRUE(pid > 0) || !ASSERT_EQ(ret, 1))
		goto out;
	ASSERT_EQ(strlen(f->hostname), (3u << 20) - 1);
	ASSERT_TRUE(check_sample(f, 9));
	taskmeter__frame__free_unpacked(f, NULL);
	/* Idle after a big frame: the buffer was released. */
	ASSERT_TRUE(!r.buf);
out:
	if (sv[1] >= 0)
		close(sv[1]);
	tm_frame_reader_free(&r);
	free(big);
	return true;
}

/* An unpacked message (what the reader hands out): n process records with
 * pids from pid0, the last part of its frame unless more. */
static Taskmeter__Frame *part(uint64_t seq, bool more, uint32_t pid0, size_t n, char *host)
{
	Taskmeter__ProcessRecord r[8], *rp[8];
	Taskmeter__Frame f = TASKMETER__FRAME__INIT, *out;
	uint8_t buf[1024];
	size_t len;

	for (size_t i = 0; i < n; i++) {
		taskmeter__process_record__init(&r[i]);
		r[i].has_pid = true;
		r[i].pid = pid0 + (uint32_t)i;
		rp[i] = &r[i];
	}
	f.has_seq = true;
	f.seq = seq;
	f.has_more_parts = true;
	f.more_parts = more;
	f.n_records = n;
	f.records = rp;
	f.hostname = host;
	if (!more) {
		f.has_interval_ns = true;
		f.interval_ns = 7;
	}
	len = taskmeter__frame__pack(&f, buf);
	out = taskmeter__frame__unpack(NULL, len, buf);
	return out;
}

static bool pids_are(const Taskmeter__Frame *f, const uint32_t *want, size_t n)
{
	ASSERT_EQ(f->n_records, n);
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(f->records[i]->pid, want[i]);
	return true;
}

TM_TEST(frame_parts_join)
{
	static const uint32_t one[] = { 10, 11 }, three[] = { 20, 21, 22, 30, 40, 41 };
	struct tm_frame_parts p;
	Taskmeter__Frame *w = NULL;
	bool ok;

	tm_frame_parts_init(&p);
	/* A frame in one message passes as it is. */
	ASSERT_EQ(tm_frame_parts_add(&p, part(1, false, 10, 2, "h"), &w), 1);
	ASSERT_TRUE(pids_are(w, one, 2) && w->seq == 1);
	/* Three parts: the union of their records; the fields of the last,
	 * or of the first that has them (hostname only in the first here). */
	ASSERT_EQ(tm_frame_parts_add(&p, part(2, true, 20, 3, "host"), &w), 0);
	ASSERT_EQ(tm_frame_parts_add(&p, part(2, true, 30, 1, NULL), &w), 0);
	/* The previous whole frame stays valid while parts come in. */
	ASSERT_TRUE(pids_are(w, one, 2));
	ASSERT_EQ(tm_frame_parts_add(&p, part(2, false, 40, 2, NULL), &w), 1);
	ok = pids_are(w, three, 6) && w->seq == 2 && w->interval_ns == 7 &&
	     w->hostname && !strcmp(w->hostname, "host");
	ASSERT_EQ(p.discarded, 0);
	tm_frame_parts_free(&p);
	return ok;
}

TM_TEST(frame_parts_discard_unfinished)
{
	static const uint32_t want[] = { 50 };
	struct tm_frame_parts p;
	Taskmeter__Frame *w = NULL;
	bool ok;

	tm_frame_parts_init(&p);
	/* seq 3 never gets its last part: seq 4 replaces it. */
	ASSERT_EQ(tm_frame_parts_add(&p, part(3, true, 1, 2, NULL), &w), 0);
	ASSERT_EQ(tm_frame_parts_add(&p, part(4, false, 50, 1, NULL), &w), 1);
	ok = pids_are(w, want, 1);
	ASSERT_EQ(p.discarded, 1);
	/* A reset (new connection) drops pending parts, not the last frame. */
	ASSERT_EQ(tm_frame_parts_add(&p, part(5, true, 1, 2, NULL), &w), 0);
	tm_frame_parts_reset(&p);
	ok = ok && pids_are(w, want, 1);
	tm_frame_parts_free(&p);
	return ok;
}

TM_TEST(frame_parts_bounded)
{
	struct tm_frame_parts p;
	Taskmeter__Frame *w = NULL;
	int ret = 0;

	tm_frame_parts_init(&p);
	for (size_t i = 0; i <= TM_FRAME_PARTS_MAX && ret == 0; i++)
		ret = tm_frame_parts_add(&p, part(6, true, 1, 0, NULL), &w);
	ASSERT_EQ(ret, -EBADMSG);
	ASSERT_EQ(p.n, 0);
	tm_frame_parts_free(&p);
	return true;
}

TM_TEST(frame_read_nonblocking_resumes)
{
	struct tm_frame_reader r;
	Taskmeter__Frame *f = NULL;
	struct sample s;
	uint8_t *buf;
	size_t len;
	int sv[2];
	bool ok;

	sample_init(&s, 11);
	buf = tm_frame_encode(&s.f, &len);
	ASSERT_TRUE(buf);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	tm_frame_reader_init(&r);
	ASSERT_EQ(tm_frame_read(&r, sv[1], &f), -EAGAIN);
	/* Half a frame: -EAGAIN, and what came stays buffered. */
	ASSERT_EQ(write_all(sv[0], buf, len / 2), 0);
	ASSERT_EQ(tm_frame_read(&r, sv[1], &f), -EAGAIN);
	ASSERT_EQ(write_all(sv[0], buf + len / 2, len - len / 2), 0);
	ASSERT_EQ(tm_frame_read(&r, sv[1], &f), 1);
	ok = check_sample(f, 11);
	taskmeter__frame__free_unpacked(f, NULL);
	free(buf);
	tm_frame_reader_free(&r);
	close(sv[0]);
	close(sv[1]);
	return ok;
}
