// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Clocks, a growable array and strict UTF-8 (see util.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

uint64_t tm_now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * TM_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

void *tm_vec_push(struct tm_vec *v, size_t elem)
{
	char *p;

	if (v->len == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 8;

		p = realloc(v->data, cap * elem);
		if (!p) {
			errno = ENOMEM;
			return NULL;
		}
		v->data = p;
		v->cap = cap;
	}
	p = (char *)v->data + v->len++ * elem;
	memset(p, 0, elem);
	return p;
}

void tm_vec_free(struct tm_vec *v)
{
	free(v->data);
	memset(v, 0, sizeof(*v));
}

/*
 * Sequence length announced by lead byte b, with the range its second byte
 * must fall in: the narrowed ranges after E0, ED, F0 and F4 exclude overlong
 * forms, surrogates and code points above U+10FFFF. 0 for a byte that
 * cannot start a sequence.
 */
static int utf8_lead(uint8_t b, uint8_t *lo, uint8_t *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (b < 0x80)
		return 1;
	if (b < 0xc2)
		return 0;
	if (b < 0xe0)
		return 2;
	if (b < 0xf0) {
		*lo = b == 0xe0 ? 0xa0 : 0x80;
		*hi = b == 0xed ? 0x9f : 0xbf;
		return 3;
	}
	if (b < 0xf5) {
		*lo = b == 0xf0 ? 0x90 : 0x80;
		*hi = b == 0xf4 ? 0x8f : 0xbf;
		return 4;
	}
	return 0;
}

int tm_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t lo, hi;
	uint32_t c;
	int len;

	if (!n)
		return 0;
	len = utf8_lead(s[0], &lo, &hi);
	if (!len)
		return -1;
	c = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (int i = 1; i < len; i++) {
		if ((size_t)i == n || s[i] < lo || s[i] > hi)
			return -i;
		c = c << 6 | (s[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*cp = c;
	return len;
}

void tm_utf8_sanitize(char *s, size_t n)
{
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		int len = tm_utf8_decode((const uint8_t *)s + i, n - i, &cp);

		if (len > 0) {
			i += (size_t)len;
			continue;
		}
		memset(s + i, '?', (size_t)-len);
		i += (size_t)-len;
	}
}

bool tm_utf8_valid(const char *s, size_t n)
{
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		int len = tm_utf8_decode((const uint8_t *)s + i, n - i, &cp);

		if (len <= 0)
			return false;
		i += (size_t)len;
	}
	return true;
}
