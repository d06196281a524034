/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Small helpers every collector module uses: clocks, a growable array, a
 * 64-bit hash mix, strict UTF-8. One copy each.
 */
#ifndef TM_UTIL_H
#define TM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TM_NSEC_PER_SEC 1000000000ull
#define TM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The clock in nanoseconds (CLOCK_MONOTONIC, CLOCK_REALTIME, ...). */
uint64_t tm_now_ns(clockid_t clock);

/* A growable array of elements of one size. Zero-initialise to start. */
struct tm_vec {
	void *data;
	size_t len, cap;
};

/* Room for one more element of size elem at the end (zeroed); NULL with
 * errno = ENOMEM. */
void *tm_vec_push(struct tm_vec *v, size_t elem);
void tm_vec_free(struct tm_vec *v);

/* A 64-bit mix (splitmix64's finaliser) for hash tables. */
static inline uint64_t tm_hash64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * Decodes the UTF-8 sequence at s (n > 0 bytes available), strictly as the
 * Unicode standard defines well-formed UTF-8 (table 3-7): no overlong
 * forms, no surrogates, nothing above U+10FFFF. Returns its length with *cp
 * set, or minus the length of the maximal invalid subpart: the bytes that
 * one U+FFFD replaces.
 */
int tm_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Replace every byte of s[0..n) that is not part of well-formed UTF-8 with
 * '?', in place (protobuf string fields must be valid UTF-8). NUL bytes are
 * kept: callers use them as separators. */
void tm_utf8_sanitize(char *s, size_t n);

/* Is s[0..n) well-formed UTF-8? */
bool tm_utf8_valid(const char *s, size_t n);

#endif /* TM_UTIL_H */
