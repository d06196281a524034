// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The client's renderers on decoded frames: the input is a Frame message
 * (unpacked as tm_frame_read() does), written as JSON (`taskmeter dump
 * --json`), and every string and counter in it is rendered as `taskmeter
 * top` does: terminal-safe text at several widths, human units for every
 * 64-bit number, as bytes and as a rate over the frame's interval.
 *
 * Promises checked: the JSON is one valid JSON object (RFC 8259) in valid
 * UTF-8; terminal text has no control characters, is valid UTF-8, fits
 * its buffer and its column count; human units fit TM_HUMAN_LEN; records
 * sort by the order render.h gives.
 */
#include <errno.h>
#include <inttypes.h>

#include "fuzz.h"
#include "log.h"
#include "render.h"

#define MAX_DEPTH 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tm_log_level = TM_LOG_ERROR;
	return 0;
}

/* ---- a strict JSON syntax check ---- */

struct json {
	const char *p, *end;
};

static bool json_value(struct json *j, int depth);

static void json_ws(struct json *j)
{
	while (j->p < j->end && strchr(" \t\n\r", *j->p))
		j->p++;
}

static bool json_lit(struct json *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
		return false;
	j->p += n;
	return true;
}

static bool json_digits(struct json *j)
{
	const char *start = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > start;
}

static bool json_number(struct json *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (!json_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.' && (j->p++, !json_digits(j)))
		return false;
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		return json_digits(j);
	}
	return true;
}

static bool json_string(struct json *j)
{
	const char *start;

	if (!json_lit(j, "\""))
		return false;
	start = j->p;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = *j->p++;

		if (c < 0x20)
			return false;
		if (c != '\\')
			continue;
		if (j->p == j->end)
			return false;
		c = *j->p++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++, j->p++)
				if (j->p == j->end || !strchr("0123456789abcdefABCDEF", *j->p) || !*j->p)
					return false;
		} else if (!strchr("\"\\/bfnrt", c) || !c) {
			return false;
		}
	}
	return fuzz_utf8_valid((const uint8_t *)start, j->p - start) && json_lit(j, "\"");
}

/* { "k": v, ... } or [ v, ... ] */
static bool json_container(struct json *j, char close, bool keys, int depth)
{
	json_ws(j);
	if (json_lit(j, (char[]){ close, 0 }))
		return true;
	do {
		json_ws(j);
		if (keys && !(json_string(j) && (json_ws(j), json_lit(j, ":"))))
			return false;
		if (!json_value(j, depth + 1))
			return false;
		json_ws(j);
	} while (json_lit(j, ","));
	return json_lit(j, (char[]){ close, 0 });
}

static bool json_value(struct json *j, int depth)
{
	if (depth > MAX_DEPTH)
		return false;
	json_ws(j);
	if (j->p == j->end)
		return false;
	switch (*j->p) {
	case '{': j->p++; return json_container(j, '}', true, depth);
	case '[': j->p++; return json_container(j, ']', false, depth);
	case '"': return json_string(j);
	case 't': return json_lit(j, "true");
	case 'f': return json_lit(j, "false");
	case 'n': return json_lit(j, "null");
	default: return json_number(j);
	}
}

/* One JSON object and nothing else. */
static void check_json(const char *s, size_t len)
{
	struct json j = { s, s + len };

	FUZZ_CHECK(len && s[0] == '{');
	FUZZ_CHECK(json_value(&j, 0));
	json_ws(&j);
	if (j.p != j.end)
		fprintf(stderr, "JSON: %.*s\n", (int)len, s);
	FUZZ_CHECK(j.p == j.end);
}

/* ---- terminal text and human units ---- */

/* Characters of s as tm_render_term_text() counts them: code points or invalid bytes. */
static size_t term_chars(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s), chars = 0;
	uint32_t cp;

	while (n) {
		int len = tm_utf8_decode(p, n, &cp);

		len = len < 0 ? -len : len;
		p += len;
		n -= len;
		chars++;
	}
	return chars;
}

static void check_term(const char *s, size_t size, size_t cols)
{
	char *dst = malloc(size ? size : 1);
	size_t got, len, want = term_chars(s);

	FUZZ_CHECK(dst);
	got = tm_render_term_text(dst, size, s, cols);
	want = want < cols ? want : cols;
	FUZZ_CHECK(got <= want);
	if (size) {
		len = strlen(dst);
		FUZZ_CHECK(len < size && fuzz_utf8_valid((const uint8_t *)dst, len));
		for (size_t i = 0; i < len; i++) {
			unsigned char c = dst[i];

			FUZZ_CHECK(c >= 0x20 && c != 0x7f);
			/* C1 controls as UTF-8: U+0080..U+009F */
			FUZZ_CHECK(!(c == 0xc2 && (unsigned char)dst[i + 1] < 0xa0));
		}
		/* Cut short only where the next character (<= 4 bytes) did not fit. */
		FUZZ_CHECK(got == want || len + 4 >= size);
	}
	free(dst);
}

static void check_string(const char *s)
{
	char *json = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&json, &len);
	struct json j;

	FUZZ_CHECK(f);
	tm_render_json_string(f, s);
	FUZZ_CHECK(!fclose(f));
	j = (struct json){ json, json + len };
	FUZZ_CHECK(json_string(&j) && j.p == j.end);
	free(json);
	check_term(s, 4096, 1024); /* the top CMDLINE column at its widest */
	check_term(s, 16 * 4 + 1, 16); /* COMM */
	check_term(s, 3, 80); /* a buffer smaller than one character */
	check_term(s, 1, 5);
	check_term(s, 0, 5);
}

static void check_human(uint64_t v, uint64_t interval_ns)
{
	char buf[64];

	/* With more room than TM_HUMAN_LEN: did the result need more? */
	FUZZ_CHECK(strlen(tm_render_human_bytes(v, buf, sizeof(buf))) < TM_HUMAN_LEN);
	FUZZ_CHECK(strlen(tm_render_human_rate(v, interval_ns, buf, sizeof(buf))) < TM_HUMAN_LEN);
	FUZZ_CHECK(strlen(tm_render_human_rate(v, 1, buf, sizeof(buf))) < TM_HUMAN_LEN);
}

/* Every string and 64-bit number of m and the messages in it. */
static void walk(const ProtobufCMessage *m, uint64_t interval_ns, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	FUZZ_CHECK(depth < MAX_DEPTH);
	for (unsigned int i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const char *base = (const char *)m + fd->offset;
		bool rep = fd->label == PROTOBUF_C_LABEL_REPEATED;
		size_t n = rep ? *(const size_t *)((const char *)m + fd->quantifier_offset) : 1;
		const void *const *arr = rep ? *(const void *const *)base : NULL;

		/* Members of a oneof share storage: the walk would misread them. */
		FUZZ_CHECK(!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF));
		for (size_t k = 0; k < n; k++) {
			const void *p = rep ? (const void *)((const char *)arr +
							   k * (fd->type == PROTOBUF_C_TYPE_UINT64 ? 8 : sizeof(void *)))
					    : (const void *)base;

			if (fd->type == PROTOBUF_C_TYPE_STRING && *(const char *const *)p)
				check_string(*(const char *const *)p);
			else if (fd->type == PROTOBUF_C_TYPE_MESSAGE && *(const void *const *)p)
				walk(*(const ProtobufCMessage *const *)p, interval_ns, depth + 1);
			else if (fd->type == PROTOBUF_C_TYPE_UINT64)
				check_human(*(const uint64_t *)p, interval_ns);
		}
	}
}

static void check_sorted(Taskmeter__Frame *f)
{
	tm_render_sort_records(f->records, f->n_records);
	for (size_t i = 1; i < f->n_records; i++) {
		const Taskmeter__ProcessRecord *a = f->records[i - 1], *b = f->records[i];
		uint64_t da = tm_render_counter_bytes(a->rx_delta) + tm_render_counter_bytes(a->tx_delta);
		uint64_t db = tm_render_counter_bytes(b->rx_delta) + tm_render_counter_bytes(b->tx_delta);
		uint64_t ta = tm_render_counter_bytes(a->rx_total) + tm_render_counter_bytes(a->tx_total);
		uint64_t tb = tm_render_counter_bytes(b->rx_total) + tm_render_counter_bytes(b->tx_total);

		FUZZ_CHECK(da > db || (da == db && (ta > tb || (ta == tb && a->pid <= b->pid))));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Taskmeter__Frame *f = taskmeter__frame__unpack(NULL, size, data);
	char *json = NULL;
	size_t len = 0;
	FILE *out;

	if (!f)
		return -1; /* tm_frame_read() drops what does not unpack */
	out = open_memstream(&json, &len);
	FUZZ_CHECK(out);
	tm_render_json_frame(out, f);
	for (size_t i = 0; i < f->n_records; i++) {
		fputc('\n', out);
		tm_render_json_message(out, &f->records[i]->base);
	}
	FUZZ_CHECK(!fclose(out));
	/* Line by line: the frame, then each record alone. */
	for (char *line = json, *nl; line; line = nl ? nl + 1 : NULL) {
		nl = memchr(line, '\n', len - (line - json));
		check_json(line, nl ? (size_t)(nl - line) : len - (line - json));
	}
	free(json);
	walk(&f->base, f->interval_ns, 0);
	check_sorted(f);
	taskmeter__frame__free_unpacked(f, NULL);
	return 0;
}
