// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

/* First allocation of a reader: one read(2) takes a typical frame whole. */
#define READER_INITIAL_CAP (64u << 10)
/* After a big frame, a reader keeps at most this much memory while idle. */
#define READER_KEEP_CAP (1u << 20)

size_t tm_varint_encode(uint64_t v, uint8_t out[TM_VARINT_MAX])
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int tm_varint_decode(const uint8_t *buf, size_t len, uint64_t *v, size_t *used)
{
	uint64_t acc = 0;

	for (size_t i = 0; i < TM_VARINT_MAX; i++) {
		if (i == len)
			return -EAGAIN;
		/* The tenth byte holds bit 63 only; more would not fit a uint64. */
		if (i == TM_VARINT_MAX - 1 && buf[i] > 1)
			return -EBADMSG;
		acc |= (uint64_t)(buf[i] & 0x7f) << (7 * i);
		if (!(buf[i] & 0x80)) {
			*v = acc;
			*used = i + 1;
			return 0;
		}
	}
	return -EBADMSG;
}

uint8_t *tm_frame_encode(const Taskmeter__Frame *f, size_t *len)
{
	size_t body = taskmeter__frame__get_packed_size(f);
	size_t hdr;
	uint8_t *buf;

	if (body > TM_FRAME_MAX) {
		errno = EMSGSIZE;
		return NULL;
	}
	buf = malloc(TM_VARINT_MAX + body);
	if (!buf)
		return NULL;
	hdr = tm_varint_encode(body, buf);
	taskmeter__frame__pack(f, buf + hdr);
	*len = hdr + body;
	return buf;
}

void tm_frame_reader_init(struct tm_frame_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void tm_frame_reader_free(struct tm_frame_reader *r)
{
	free(r->buf);
	tm_frame_reader_init(r);
}

static int reader_reserve(struct tm_frame_reader *r, size_t need)
{
	size_t cap = r->cap ? r->cap : READER_INITIAL_CAP;
	uint8_t *buf;

	if (need <= r->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	buf = realloc(r->buf, cap);
	if (!buf)
		return -ENOMEM;
	r->buf = buf;
	r->cap = cap;
	return 0;
}

/* Makes room for need buffered bytes in total, then reads once whatever the
 * socket has, possibly the start of the next frame. Returns bytes read, 0 on
 * EOF or -errno. */
static ssize_t reader_fill(struct tm_frame_reader *r, int fd, size_t need)
{
	ssize_t n;
	int err;

	err = reader_reserve(r, need);
	if (err)
		return err;
	do
		n = read(fd, r->buf + r->len, r->cap - r->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	r->len += n;
	return n;
}

/* Drops the first n bytes: the frame just decoded. */
static void reader_consume(struct tm_frame_reader *r, size_t n)
{
	r->len -= n;
	memmove(r->buf, r->buf + n, r->len);
	if (!r->len && r->cap > READER_KEEP_CAP)
		tm_frame_reader_free(r);
}

/* Returns 1 with the frame length and prefix size once the prefix is
 * buffered, 0 on EOF before any byte of a frame, or -errno. */
static int read_prefix(struct tm_frame_reader *r, int fd, uint64_t *flen, size_t *hdr)
{
	ssize_t n;
	int err;

	while ((err = tm_varint_decode(r->buf, r->len, flen, hdr)) == -EAGAIN) {
		n = reader_fill(r, fd, r->len + 1);
		if (n < 0)
			return n;
		if (n == 0)
			return r->len ? -EPROTO : 0;
	}
	if (err)
		return err;
	return *flen > TM_FRAME_MAX ? -EBADMSG : 1;
}

int tm_frame_read(struct tm_frame_reader *r, int fd, Taskmeter__Frame **out)
{
	Taskmeter__Frame *f;
	uint64_t flen;
	size_t hdr;
	ssize_t n;
	int err;

	err = read_prefix(r, fd, &flen, &hdr);
	if (err <= 0)
		return err;
	while (r->len < hdr + flen) {
		n = reader_fill(r, fd, hdr + flen);
		if (n <= 0)
			return n ? n : -EPROTO;
	}
	f = taskmeter__frame__unpack(NULL, flen, r->buf + hdr);
	reader_consume(r, hdr + flen);
	if (!f)
		return -EBADMSG;
	*out = f;
	return 1;
}
