// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config file parser, tm_config_parse(), on arbitrary file text.
 * Promises checked: a rejected file changes nothing and names its origin
 * and line; an accepted one holds only values in the documented ranges; a
 * small message buffer truncates the message without changing the
 * verdict; an accepted config written back out parses to itself.
 */
#include <errno.h>

#include "config_check.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tm_log_level = TM_LOG_ERROR;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_config def, c, c2;
	char err[512], small[13], *text;
	int ret, ret2;

	/* tm_config_load() refuses files with NUL bytes before parsing. */
	if (memchr(data, '\0', size))
		return -1;
	text = fuzz_cstr(data, size);
	tm_config_defaults(&def);
	c = def;
	ret = tm_config_parse(&c, text, "f.conf", err, sizeof(err));
	if (ret) {
		FUZZ_CHECK(ret == -EINVAL);
		FUZZ_CHECK(!memcmp(&c, &def, sizeof(c)));
		FUZZ_CHECK(!strncmp(err, "f.conf:", 7) && strlen(err) > 9);
	} else {
		fuzz_config_check(&c);
		fuzz_config_roundtrip(&c);
	}
	c2 = def;
	ret2 = tm_config_parse(&c2, text, "f.conf", small, sizeof(small));
	FUZZ_CHECK(ret2 == ret && !memcmp(&c2, &c, sizeof(c)));
	if (ret)
		FUZZ_CHECK(strlen(small) == sizeof(small) - 1 && !strncmp(err, small, strlen(small)));
	c2 = def;
	FUZZ_CHECK(tm_config_parse(&c2, text, "f.conf", NULL, 0) == ret);
	free(text);
	return 0;
}
