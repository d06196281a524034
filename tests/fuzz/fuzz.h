/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c): each defines
 * LLVMFuzzerTestOneInput() for one parser, feeds it the input the way the
 * collector or client does, and checks what the parser promises on top of
 * what ASan and UBSan see. A broken promise aborts: libFuzzer saves the
 * input as a crash.
 */
#ifndef TM_FUZZ_H
#define TM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

/* The input as a NUL-terminated string (malloc'd: ASan sees its end). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	FUZZ_CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* An exact copy of the input, so that a read one byte past it is caught. */
static inline void *fuzz_copy(const uint8_t *data, size_t size)
{
	void *p = malloc(size ? size : 1);

	FUZZ_CHECK(p);
	memcpy(p, data, size);
	return p;
}

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
static inline bool fuzz_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t b = s[i];
		size_t len = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3
			     : b >= 0xf0 && b < 0xf5 ? 4 : 0;
		uint8_t lo = b == 0xe0 ? 0xa0 : b == 0xf0 ? 0x90 : 0x80;
		uint8_t hi = b == 0xed ? 0x9f : b == 0xf4 ? 0x8f : 0xbf;

		if (!len || i + len > n)
			return false;
		for (size_t k = 1; k < len; k++, lo = 0x80, hi = 0xbf)
			if (s[i + k] < lo || s[i + k] > hi)
				return false;
		i += len;
	}
	return true;
}

#endif /* TM_FUZZ_H */
