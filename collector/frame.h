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
size_t tm_varint_encode(uint64_t v, uint8_t out[TM_VARINT_MAX]);

/*
 * Decodes one varint from the start of buf. Returns 0 with *v and *used set,
 * -EAGAIN when buf ends inside the varint, -EBADMSG when it is longer than
 * 10 bytes or does not fit in 64 bits.
 */
int tm_varint_decode(const uint8_t *buf, size_t len, uint64_t *v, size_t *used);

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
 * or the -errno of read(2). EINTR is retried. After an error the stream
 * position is lost: close fd. The one exception is -EAGAIN from a
 * non-blocking fd: what was read stays buffered, call again when fd is
 * readable.
 */
int tm_frame_read(struct tm_frame_reader *r, int fd, Taskmeter__Frame **out);

#endif /* TM_FRAME_H */
