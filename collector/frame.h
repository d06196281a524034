/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Framing of the export stream, shared by the collector and its clients:
 * varint(len) || Frame, protobuf's varint-delimited convention (see
 * proto/taskmeter.proto).
 */
#ifndef TM_FRAME_H
#define TM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "taskmeter.pb-c.h"

/* Largest frame either side accepts; the collector never writes more. */
#define TM_FRAME_MAX (64u << 20)
/* A uint64 needs at most ceil(64 / 7) varint bytes. */
#define TM_VARINT_MAX 10

/* Returns the number of bytes written to out (1..10). */
size_t tm_frame_varint_encode(uint64_t v, uint8_t out[TM_VARINT_MAX]);

/*
 * Decodes one varint from the start of buf. Returns 0 with *v and *used set,
 * -EAGAIN when buf ends inside the varint, -EBADMSG when it is longer than
 * 10 bytes or does not fit in 64 bits.
 */
int tm_frame_varint_decode(const uint8_t *buf, size_t len, uint64_t *v, size_t *used);

/*
 * Returns a malloc'd buffer holding varint(len) || packed f and its size in
 * *len, or NULL with errno set (EMSGSIZE above TM_FRAME_MAX, ENOMEM).
 */
uint8_t *tm_frame_encode(const Taskmeter__Frame *f, size_t *len);

/*
 * Buffered reader of a frame stream. It may read past the end of a frame;
 * those bytes stay in the buffer for the next call, so one reader must be
 * used for the whole life of the stream.
 */
struct tm_frame_reader {
	uint8_t *buf;
	size_t len;  /* bytes of buf holding unread stream data */
	size_t cap;
};

void tm_frame_reader_init(struct tm_frame_reader *r);
void tm_frame_reader_free(struct tm_frame_reader *r);

/*
 * Blocks until one whole frame is read from fd. Returns 1 with *out set
 * (free it with taskmeter__frame__free_unpacked(*out, NULL)), 0 on EOF
 * between frames, -EPROTO on EOF inside a frame, -EBADMSG on a bad length
 * prefix, a frame over TM_FRAME_MAX or one that does not unpack, -ENOMEM,
 * or the -errno of read(2). EINTR is retried. On a non-blocking fd,
 * -EAGAIN loses nothing: what was read stays buffered, call again when fd is
 * readable. After any other error the stream position is lost: close fd.
 */
int tm_frame_read(struct tm_frame_reader *r, int fd, Taskmeter__Frame **out);

/* More messages than this in one frame is a broken stream. */
#define TM_FRAME_PARTS_MAX 4096

/*
 * Reassembles frames sent as several messages (Frame.more_parts): the parts
 * share a seq, all but the last have more_parts set, the records of the
 * frame are the union of theirs, and the other fields come from the last
 * part (or, where it lacks one, from the first part that has it).
 */
struct tm_frame_parts {
	Taskmeter__Frame **parts;  /* of the frame being received */
	size_t n, cap;
	Taskmeter__Frame **done;   /* of the last whole frame handed out */
	size_t n_done, done_cap;
	Taskmeter__ProcessRecord **records;  /* its records, when it had several parts */
	Taskmeter__Frame whole;
	uint64_t discarded;        /* frames whose last part never came */
};

void tm_frame_parts_init(struct tm_frame_parts *p);
void tm_frame_parts_free(struct tm_frame_parts *p);

/*
 * Takes ownership of part (an unpacked message). Returns 1 when it completes
 * a frame, with *whole pointing at it: valid until the next call that
 * returns 1, or tm_frame_parts_free. Returns 0 when more parts are needed,
 * -ENOMEM, or -EBADMSG past TM_FRAME_PARTS_MAX parts. A part with another
 * seq than the pending ones discards them (counted in discarded).
 */
int tm_frame_parts_add(struct tm_frame_parts *p, Taskmeter__Frame *part,
		       Taskmeter__Frame **whole);

/* Drops the parts of an unfinished frame (the stream they came on is gone);
 * the last whole frame stays valid. */
void tm_frame_parts_reset(struct tm_frame_parts *p);

#endif /* TM_FRAME_H */
