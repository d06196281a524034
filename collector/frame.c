// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Framing of the export stream: varints, the buffered frame reader and
 * frames in parts (see frame.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "util.h"

/* First allocation of a reader: one read(2) takes a typical frame whole. */
#define READER_INITIAL_CAP (64u << 10)
/* After a big frame, a reader keeps at most this much memory while idle. */
#define READER_KEEP_CAP (1u << 20)

size_t tm_frame_varint_encode(uint64_t v, uint8_t out[TM_VARINT_MAX])
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int tm_frame_varint_decode(const uint8_t *buf, size_t len, uint64_t *v, size_t *used)
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
	hdr = tm_frame_varint_encode(body, buf);
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
	return tm_array_reserve(&r->buf, &r->cap, 1, need, READER_INITIAL_CAP);
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

	while ((err = tm_frame_varint_decode(r->buf, r->len, flen, hdr)) == -EAGAIN) {
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

/* ---- Frames in several parts ------------------------------------------- */

void tm_frame_parts_init(struct tm_frame_parts *p)
{
	memset(p, 0, sizeof(*p));
}

static void free_frames(Taskmeter__Frame **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		taskmeter__frame__free_unpacked(v[i], NULL);
}

void tm_frame_parts_reset(struct tm_frame_parts *p)
{
	free_frames(p->parts, p->n);
	p->n = 0;
}

void tm_frame_parts_free(struct tm_frame_parts *p)
{
	tm_frame_parts_reset(p);
	free_frames(p->done, p->n_done);
	free(p->parts);
	free(p->done);
	free(p->records);
	tm_frame_parts_init(p);
}

static int parts_push(struct tm_frame_parts *p, Taskmeter__Frame *part)
{
	if (tm_array_reserve(&p->parts, &p->cap, sizeof(*p->parts), p->n + 1, 4))
		return -ENOMEM;
	p->parts[p->n++] = part;
	return 0;
}

#define INHERIT(w, f, field)                            \
	do {                                            \
		if (!(w)->has_##field && (f)->has_##field) { \
			(w)->has_##field = 1;           \
			(w)->field = (f)->field;        \
		}                                       \
	} while (0)

/* What the last part lacks, from an earlier one. */
static void inherit(Taskmeter__Frame *w, const Taskmeter__Frame *f)
{
	INHERIT(w, f, timestamp_ns);
	INHERIT(w, f, interval_ns);
	INHERIT(w, f, frames_dropped);
	INHERIT(w, f, metadata_mode);
	INHERIT(w, f, counters_id);
	if (!w->hostname)
		w->hostname = f->hostname;
	if (!w->stats)
		w->stats = f->stats;
	if (!w->n_interfaces) {
		w->n_interfaces = f->n_interfaces;
		w->interfaces = f->interfaces;
	}
}

/* The union of the pending parts' records, or NULL with *n = 0 for a frame
 * of one part (its own array serves). */
static int join_records(const struct tm_frame_parts *p, Taskmeter__ProcessRecord ***out,
			size_t *n)
{
	Taskmeter__ProcessRecord **recs;

	*out = NULL;
	*n = 0;
	if (p->n < 2)
		return 0;
	for (size_t i = 0; i < p->n; i++)
		*n += p->parts[i]->n_records;
	recs = malloc((*n + 1) * sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	*n = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (!p->parts[i]->n_records)
			continue;  /* records may be NULL then */
		memcpy(recs + *n, p->parts[i]->records,
		       p->parts[i]->n_records * sizeof(*recs));
		*n += p->parts[i]->n_records;
	}
	*out = recs;
	return 0;
}

/* Makes the pending parts the whole frame, releasing the previous one. */
static int parts_join(struct tm_frame_parts *p)
{
	Taskmeter__ProcessRecord **recs;
	Taskmeter__Frame **spare = p->done;
	size_t n, spare_cap = p->done_cap;
	int err;

	err = join_records(p, &recs, &n);
	if (err)
		return err;
	free_frames(p->done, p->n_done);
	free(p->records);
	p->records = recs;
	/* The arrays trade places: no allocation per frame. */
	p->done = p->parts;
	p->done_cap = p->cap;
	p->n_done = p->n;
	p->parts = spare;
	p->cap = spare_cap;
	p->n = 0;
	p->whole = *p->done[p->n_done - 1];
	if (recs) {
		p->whole.records = recs;
		p->whole.n_records = n;
	}
	for (size_t i = 0; i + 1 < p->n_done; i++)
		inherit(&p->whole, p->done[i]);
	return 0;
}

int tm_frame_parts_add(struct tm_frame_parts *p, Taskmeter__Frame *part,
		       Taskmeter__Frame **whole)
{
	int err;

	if (p->n && p->parts[0]->seq != part->seq) {
		tm_frame_parts_reset(p);
		p->discarded++;
	}
	if (p->n == TM_FRAME_PARTS_MAX) {
		taskmeter__frame__free_unpacked(part, NULL);
		tm_frame_parts_reset(p);
		return -EBADMSG;
	}
	err = parts_push(p, part);
	if (err) {
		taskmeter__frame__free_unpacked(part, NULL);
		return err;
	}
	if (part->has_more_parts && part->more_parts)
		return 0;
	err = parts_join(p);
	if (err) {
		tm_frame_parts_reset(p);
		return err;
	}
	*whole = &p->whole;
	return 1;
}
