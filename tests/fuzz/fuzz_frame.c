// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The client's frame decoder on an arbitrary byte stream: the input, but
 * for its first byte, is what the export socket delivers, read through
 * tm_frame_read() until it ends or fails, as `taskmeter dump` does; it also
 * goes to tm_frame_varint_decode() on its own. The first byte is how many bytes
 * one read(2) returns at most (0: all it can), as a socket splits a stream
 * where it likes: frame.o is linked with --wrap=read for this.
 *
 * Promises checked: the varint decoder reads at most 10 bytes and its
 * value encodes back to the same value; tm_frame_read() returns only what
 * frame.h lists, never more frames than the stream can hold, and every
 * frame it returns re-encodes (tm_frame_encode) to a prefix that is the
 * body's size and a body that decodes and packs to the same bytes.
 *
 * Not checked for frames with fields unknown to the schema: libprotobuf-c
 * 1.4 takes a non-canonical tag 0 (0x80 0x80 0x00) as an unknown field and
 * packs it back canonically (0x00), which it then refuses. Nothing but a
 * hostile stream has it, and the client drops such a frame as malformed.
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frame.h"
#include "fuzz.h"
#include "log.h"

static int stream_fd = -1;
static size_t read_max; /* 0: no limit */

ssize_t __real_read(int fd, void *buf, size_t len);
ssize_t __wrap_read(int fd, void *buf, size_t len);

/* What frame.o calls for read(2): at most read_max bytes at a time. */
ssize_t __wrap_read(int fd, void *buf, size_t len)
{
	return __real_read(fd, buf, read_max && len > read_max ? read_max : len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tm_log_level = TM_LOG_ERROR;
	stream_fd = memfd_create("tm-fuzz-stream", MFD_CLOEXEC);
	FUZZ_CHECK(stream_fd >= 0);
	return 0;
}

static void check_varint(const uint8_t *data, size_t size)
{
	uint8_t out[TM_VARINT_MAX];
	uint64_t v, v2;
	size_t used, used2, n;
	int err = tm_frame_varint_decode(data, size, &v, &used);

	FUZZ_CHECK(!err || err == -EAGAIN || err == -EBADMSG);
	if (err == -EAGAIN)
		FUZZ_CHECK(size < TM_VARINT_MAX);
	if (err)
		return;
	FUZZ_CHECK(used >= 1 && used <= TM_VARINT_MAX && used <= size);
	n = tm_frame_varint_encode(v, out);
	FUZZ_CHECK(n <= used);
	FUZZ_CHECK(!tm_frame_varint_decode(out, n, &v2, &used2) && v2 == v && used2 == n);
}

/* Does m, or a message in it, carry fields unknown to the schema? */
static bool has_unknown(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (m->n_unknown_fields)
		return true;
	for (unsigned int i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const void *p = (const char *)m + fd->offset;
		size_t n = 1;

		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)((const char *)m + fd->quantifier_offset);
			p = *(const void *const *)p;
		}
		for (size_t k = 0; k < n; k++) {
			const ProtobufCMessage *sub = ((const ProtobufCMessage *const *)p)[k];

			if (sub && has_unknown(sub))
				return true;
		}
	}
	return false;
}

/* f, encoded and decoded again, packs to the same bytes. */
static void check_reencode(const Taskmeter__Frame *f)
{
	size_t len, hdr, body = taskmeter__frame__get_packed_size(f);
	uint8_t *buf = tm_frame_encode(f, &len), *again;
	Taskmeter__Frame *g;
	uint64_t flen;

	FUZZ_CHECK(buf);
	FUZZ_CHECK(!tm_frame_varint_decode(buf, len, &flen, &hdr) && flen == body && hdr + body == len);
	g = taskmeter__frame__unpack(NULL, body, buf + hdr);
	if (!g && has_unknown(&f->base)) {
		free(buf);
		return;
	}
	FUZZ_CHECK(g);
	FUZZ_CHECK(taskmeter__frame__get_packed_size(g) == body);
	again = malloc(body ? body : 1);
	FUZZ_CHECK(again);
	taskmeter__frame__pack(g, again);
	FUZZ_CHECK(!memcmp(again, buf + hdr, body));
	free(again);
	taskmeter__frame__free_unpacked(g, NULL);
	free(buf);
}

static void load_stream(const uint8_t *data, size_t size)
{
	FUZZ_CHECK(!ftruncate(stream_fd, 0));
	FUZZ_CHECK(pwrite(stream_fd, data, size, 0) == (ssize_t)size);
	FUZZ_CHECK(lseek(stream_fd, 0, SEEK_SET) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_frame_reader r;
	Taskmeter__Frame *f;
	size_t frames = 0;
	int ret;

	if (!size)
		return -1;
	read_max = data[0];
	data++;
	size--;
	check_varint(data, size);
	load_stream(data, size);
	tm_frame_reader_init(&r);
	while ((ret = tm_frame_read(&r, stream_fd, &f)) == 1) {
		/* Each frame takes at least its one-byte prefix. */
		FUZZ_CHECK(++frames <= size);
		check_reencode(f);
		taskmeter__frame__free_unpacked(f, NULL);
	}
	FUZZ_CHECK(ret == 0 || ret == -EPROTO || ret == -EBADMSG || ret == -ENOMEM);
	FUZZ_CHECK(ret != 0 || r.len == 0);
	tm_frame_reader_free(&r);
	return 0;
}
