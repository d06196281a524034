// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Frames as JSON lines, human units and terminal-safe text (see render.h). */
#define _GNU_SOURCE /* wcwidth */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "render.h"

/* ---- JSON ------------------------------------------------------------ */

/* Writes the character at p; returns how many bytes it took. */
static size_t json_char(FILE *out, const uint8_t *p, size_t n)
{
	uint32_t cp;
	int len;

	switch (*p) {
	case '"': fputs("\\\"", out); return 1;
	case '\\': fputs("\\\\", out); return 1;
	case '\n': fputs("\\n", out); return 1;
	case '\r': fputs("\\r", out); return 1;
	case '\t': fputs("\\t", out); return 1;
	}
	if (*p < 0x20) {
		fprintf(out, "\\u%04x", *p);
		return 1;
	}
	len = tm_utf8_decode(p, n, &cp);
	if (len < 0) {
		/* argv and env are whatever bytes the process had. One U+FFFD
		 * per maximal invalid subpart, as Python's "replace" does. */
		fputs("\\ufffd", out);
		return -len;
	}
	fwrite(p, 1, len, out);
	return len;
}

void tm_render_json_string(FILE *out, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s);

	putc('"', out);
	while (n) {
		size_t used = json_char(out, p, n);

		p += used;
		n -= used;
	}
	putc('"', out);
}

static void json_base64(FILE *out, const ProtobufCBinaryData *b)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	putc('"', out);
	for (size_t i = 0; i < b->len; i += 3) {
		uint32_t v = (uint32_t)b->data[i] << 16;
		size_t left = b->len - i;

		if (left > 1)
			v |= (uint32_t)b->data[i + 1] << 8;
		if (left > 2)
			v |= b->data[i + 2];
		putc(tbl[v >> 18 & 63], out);
		putc(tbl[v >> 12 & 63], out);
		putc(left > 1 ? tbl[v >> 6 & 63] : '=', out);
		putc(left > 2 ? tbl[v & 63] : '=', out);
	}
	putc('"', out);
}

static void json_message_ex(FILE *out, const ProtobufCMessage *m,
			    const ProtobufCFieldDescriptor *always);

static void json_double(FILE *out, double d, int digits)
{
	/* JSON has no NaN or infinity; proto's JSON mapping quotes them. */
	if (isnan(d))
		fputs("\"NaN\"", out);
	else if (isinf(d))
		fputs(d > 0 ? "\"Infinity\"" : "\"-Infinity\"", out);
	else
		fprintf(out, "%.*g", digits, d);
}

static void json_enum(FILE *out, const ProtobufCFieldDescriptor *fd, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);

	/* A value newer than this client's schema: the number is all we have. */
	if (ev)
		tm_render_json_string(out, ev->name);
	else
		fprintf(out, "%d", v);
}

/* Writes the single value of type fd->type stored at p. */
static void json_value(FILE *out, const ProtobufCFieldDescriptor *fd, const void *p)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(out, "%" PRIu32, *(const uint32_t *)p);
		break;
	/* Quoted, as proto3's canonical JSON mapping writes them: common JSON
	 * tools (jq 1.6) hold numbers as doubles and would round them above
	 * 2^53. */
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "\"%" PRId64 "\"", *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(out, "\"%" PRIu64 "\"", *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		json_double(out, *(const float *)p, 9);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		json_double(out, *(const double *)p, 17);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		json_enum(out, fd, *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING:
		tm_render_json_string(out, *(char *const *)p);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		json_base64(out, p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		json_message_ex(out, *(ProtobufCMessage *const *)p, NULL);
		break;
	}
}

/* Size of one element of a repeated field, as protobuf-c lays them out. */
static size_t elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
	const char *base = (const char *)m;

	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)(base + fd->quantifier_offset) > 0;
	if (fd->label == PROTOBUF_C_LABEL_REQUIRED || fd->label == PROTOBUF_C_LABEL_NONE)
		return true;
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + fd->quantifier_offset) == fd->id;
	/* Optional strings and messages have no has_ flag: NULL is absent. */
	if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)(base + fd->offset) != NULL;
	return *(const protobuf_c_boolean *)(base + fd->quantifier_offset);
}

static void json_field(FILE *out, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
	const char *base = (const char *)m;
	size_t n, size;
	const char *arr;

	tm_render_json_string(out, fd->name);
	putc(':', out);
	if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
		json_value(out, fd, base + fd->offset);
		return;
	}
	n = *(const size_t *)(base + fd->quantifier_offset);
	arr = *(const char *const *)(base + fd->offset);
	size = elem_size(fd->type);
	putc('[', out);
	for (size_t i = 0; i < n; i++) {
		if (i)
			putc(',', out);
		json_value(out, fd, arr + i * size);
	}
	putc(']', out);
}

/* Writes the present fields of m (and always) as members of an object
 * already opened; *first says whether a member came before. */
static void json_members(FILE *out, const ProtobufCMessage *m,
			 const ProtobufCFieldDescriptor *always, bool *first)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];

		if (fd != always && !field_present(m, fd))
			continue;
		if (!*first)
			putc(',', out);
		*first = false;
		json_field(out, m, fd);
	}
}

/* Fields in number order, as protoc's JSON printers write them. */
static void json_message_ex(FILE *out, const ProtobufCMessage *m,
			    const ProtobufCFieldDescriptor *always)
{
	bool first = true;

	putc('{', out);
	json_members(out, m, always, &first);
	putc('}', out);
}

void tm_render_json_message(FILE *out, const ProtobufCMessage *m)
{
	json_message_ex(out, m, NULL);
}

void tm_render_json_frame(FILE *out, const Taskmeter__Frame *f)
{
	/* Consumers index frame["records"] without checking for it. */
	const ProtobufCFieldDescriptor *records =
		protobuf_c_message_descriptor_get_field(&taskmeter__frame__descriptor, 4);

	json_message_ex(out, &f->base, records);
}

void tm_render_json_record_line(FILE *out, const Taskmeter__Frame *f, const Taskmeter__ProcessRecord *r)
{
	/* Frame fields that place the record; ProcessRecord has none of these
	 * names, so the line stays one flat object. */
	static const unsigned frame_fields[] = { 1 /* seq */, 2 /* timestamp_ns */,
						 7 /* hostname */ };
	bool first = true;

	putc('{', out);
	for (size_t i = 0; i < sizeof(frame_fields) / sizeof(frame_fields[0]); i++) {
		const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(
			&taskmeter__frame__descriptor, frame_fields[i]);

		if (!fd || !field_present(&f->base, fd))
			continue;
		if (!first)
			putc(',', out);
		first = false;
		json_field(out, &f->base, fd);
	}
	json_members(out, &r->base, NULL, &first);
	putc('}', out);
}

/* ---- Human units ------------------------------------------------------- */

static char *human(double v, const char *suffix, char *buf, size_t len)
{
	/* Up to YiB: a rate of 2^64 bytes over 1 ns is 15258.8 YiB/s and still
	 * fits TM_HUMAN_LEN; it ran to 17 digits of EiB before. */
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB",
					     "YiB" };
	unsigned u = 0;

	/* Thresholds just under 1024 so rounding never prints "1024.0". */
	if (v < 1023.5) {
		snprintf(buf, len, "%.0f B%s", v, suffix);
		return buf;
	}
	v /= 1024;
	while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s%s", v, units[u], suffix);
	return buf;
}

char *tm_render_human_bytes(uint64_t bytes, char *buf, size_t len)
{
	return human((double)bytes, "", buf, len);
}

char *tm_render_human_rate(uint64_t bytes, uint64_t interval_ns, char *buf, size_t len)
{
	if (!interval_ns) {
		snprintf(buf, len, "-");
		return buf;
	}
	return human((double)bytes * 1e9 / (double)interval_ns, "/s", buf, len);
}

/* ---- Terminal text ----------------------------------------------------- */

static bool term_printable(uint32_t cp)
{
	/* C0, DEL and C1: escape sequences start here. */
	return cp >= 0x20 && cp != 0x7f && (cp < 0x80 || cp >= 0xa0);
}

size_t tm_render_term_text(char *dst, size_t size, const char *src, size_t max_cols)
{
	const uint8_t *p = (const uint8_t *)src;
	size_t n = strlen(src), at = 0, cols = 0;

	if (!size)
		return 0;
	while (n && cols < max_cols) {
		uint32_t cp = 0;
		int len = tm_utf8_decode(p, n, &cp);

		if (len < 0 || !term_printable(cp)) {
			len = len < 0 ? -len : len;
			if (at + 1 >= size)
				break;
			dst[at++] = '?';
		} else {
			if (at + len >= size)
				break;
			memcpy(dst + at, p, len);
			at += len;
		}
		p += len;
		n -= len;
		cols++;
	}
	dst[at] = '\0';
	return cols;
}

/* Columns of cp on the terminal, or -1 for what must be replaced. */
static int char_cols(uint32_t cp, bool ascii)
{
	int w;

	if (!term_printable(cp))
		return -1;
	if (cp < 0x80)
		return 1;
	if (ascii)
		return -1;
	w = wcwidth((wchar_t)cp);
	return w > 0 ? w : -1;
}

/* Walks src as tm_render_term_fit writes it; dst may be NULL (measure only). */
static size_t term_fit(char *dst, size_t size, const char *src, size_t max_cols, bool ascii)
{
	const uint8_t *p = (const uint8_t *)src;
	size_t n = strlen(src), at = 0, cols = 0;

	while (n) {
		uint32_t cp = 0;
		int len = tm_utf8_decode(p, n, &cp);
		int w = len > 0 ? char_cols(cp, ascii) : -1;
		bool bad = w < 0;
		size_t out = bad ? 1 : (size_t)len;

		len = len < 0 ? -len : len;
		w = bad ? 1 : w;
		if (cols + w > max_cols || (dst && at + out >= size))
			break;
		if (dst)
			memcpy(dst + at, bad ? "?" : (const char *)p, out);
		at += out;
		cols += w;
		p += len;
		n -= len;
	}
	if (dst)
		dst[at] = '\0';
	return cols;
}

size_t tm_render_term_fit(char *dst, size_t size, const char *src, size_t max_cols, bool ascii)
{
	if (!size)
		return 0;
	return term_fit(dst, size, src, max_cols, ascii);
}

size_t tm_render_term_tail(char *dst, size_t size, const char *src, size_t max_cols, bool ascii)
{
	const uint8_t *p = (const uint8_t *)src;
	size_t n = strlen(src), cols = tm_render_term_width(src, ascii);

	while (n && cols > max_cols) {
		uint32_t cp = 0;
		int len = tm_utf8_decode(p, n, &cp);
		int w = len > 0 ? char_cols(cp, ascii) : -1;

		len = len < 0 ? -len : len;
		cols -= w < 0 ? 1 : (size_t)w;
		p += len;
		n -= len;
	}
	return tm_render_term_fit(dst, size, (const char *)p, max_cols, ascii);
}

size_t tm_render_term_width(const char *s, bool ascii)
{
	return term_fit(NULL, 0, s, SIZE_MAX, ascii);
}

const char *tm_render_kind_label(int kind)
{
	switch (kind) {
	case TASKMETER__RECORD_KIND__UNATTRIBUTED: return "unattributed";
	case TASKMETER__RECORD_KIND__OVERFLOW: return "overflow";
	case TASKMETER__RECORD_KIND__FORWARDED: return "forwarded";
	case TASKMETER__RECORD_KIND__LOCAL_NO_OWNER: return "local without owner";
	case TASKMETER__RECORD_KIND__NON_IP: return "non-IP";
	case TASKMETER__RECORD_KIND__MALFORMED: return "malformed";
	default: return NULL;
	}
}

/* ---- Sorting ------------------------------------------------------------- */

uint64_t tm_render_counter_bytes(const Taskmeter__Counters *c)
{
	return c && c->has_bytes ? c->bytes : 0;
}

static int cmp_u64_desc(uint64_t a, uint64_t b)
{
	return a < b ? 1 : a > b ? -1 : 0;
}

static int record_cmp(const void *pa, const void *pb)
{
	const Taskmeter__ProcessRecord *a = *(Taskmeter__ProcessRecord *const *)pa;
	const Taskmeter__ProcessRecord *b = *(Taskmeter__ProcessRecord *const *)pb;
	int c;

	/* One interval per frame, so delta bytes order the same as rates. */
	c = cmp_u64_desc(tm_render_counter_bytes(a->rx_delta) + tm_render_counter_bytes(a->tx_delta),
			 tm_render_counter_bytes(b->rx_delta) + tm_render_counter_bytes(b->tx_delta));
	if (!c)
		c = cmp_u64_desc(tm_render_counter_bytes(a->rx_total) + tm_render_counter_bytes(a->tx_total),
				 tm_render_counter_bytes(b->rx_total) + tm_render_counter_bytes(b->tx_total));
	if (!c)
		c = a->pid < b->pid ? -1 : a->pid > b->pid;
	return c;
}

void tm_render_sort_records(Taskmeter__ProcessRecord **recs, size_t n)
{
	if (n > 1)
		qsort(recs, n, sizeof(*recs), record_cmp);
}
