// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tm_container_parse() on arbitrary cgroup paths (the collector gets them
 * from the cgroup tree, whose names containers and users choose).
 *
 * Promises checked: every field is NUL-terminated in its array; an id is
 * 64 lowercase hex digits found in the path, a pod UID a lowercase UUID,
 * a service a component of the path ending in ".service"; the runtime is
 * one of the documented names, set whenever an id or pod is; empty
 * components ("//", a trailing '/') change nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <strings.h>

#include "cgroups.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tm_log_level = TM_LOG_ERROR;
	return 0;
}

static bool hex_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

static bool uuid_ok(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !hex_lower(s + i, 1))
			return false;
	}
	return true;
}

/* Is s one of the '/'-separated components of path? */
static bool is_component(const char *path, const char *s)
{
	size_t n = strlen(s);

	for (const char *p = path; (p = strstr(p, s)); p++)
		if ((p == path || p[-1] == '/') && (p[n] == '/' || !p[n]))
			return true;
	return false;
}

/* Does path hold id, case aside? */
static bool has_id(const char *path, const char *id)
{
	for (const char *p = path; *p; p++)
		if (!strncasecmp(p, id, 64))
			return true;
	return false;
}

static void check(const char *path, const struct tm_container *ct)
{
	static const char *const runtimes[] = { "", "docker", "containerd", "cri-o", "podman",
						"kubepods" };
	bool known = false;

	FUZZ_CHECK(strnlen(ct->id, sizeof(ct->id)) < sizeof(ct->id));
	FUZZ_CHECK(strnlen(ct->runtime, sizeof(ct->runtime)) < sizeof(ct->runtime));
	FUZZ_CHECK(strnlen(ct->pod_uid, sizeof(ct->pod_uid)) < sizeof(ct->pod_uid));
	FUZZ_CHECK(strnlen(ct->service, sizeof(ct->service)) < sizeof(ct->service));
	for (size_t i = 0; i < sizeof(runtimes) / sizeof(runtimes[0]); i++)
		known |= !strcmp(ct->runtime, runtimes[i]);
	FUZZ_CHECK(known);
	if (ct->id[0])
		FUZZ_CHECK(strlen(ct->id) == 64 && hex_lower(ct->id, 64) && has_id(path, ct->id) &&
			   ct->runtime[0] && strcmp(ct->runtime, "kubepods"));
	if (ct->pod_uid[0])
		FUZZ_CHECK(uuid_ok(ct->pod_uid) && ct->runtime[0]);
	if (ct->service[0]) {
		size_t n = strlen(ct->service);

		FUZZ_CHECK(n > 8 && !strcmp(ct->service + n - 8, ".service"));
		FUZZ_CHECK(is_component(path, ct->service));
	}
}

/* path with every '/' doubled and one more at the end. */
static char *doubled(const char *path)
{
	size_t n = strlen(path), k = 0;
	char *s = malloc(2 * n + 2);

	FUZZ_CHECK(s);
	for (size_t i = 0; i < n; i++) {
		s[k++] = path[i];
		if (path[i] == '/')
			s[k++] = '/';
	}
	s[k++] = '/';
	s[k] = '\0';
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_container a, b;
	char *path, *more;
	int err;

	if (memchr(data, '\0', size))
		return -1; /* a path is a C string */
	path = fuzz_cstr(data, size);
	err = tm_container_parse(path, &a);
	FUZZ_CHECK(err == (size ? 0 : -EINVAL));
	if (!err) {
		check(path, &a);
		more = doubled(path);
		FUZZ_CHECK(!tm_container_parse(more, &b) && !memcmp(&a, &b, sizeof(a)));
		free(more);
	}
	free(path);
	return 0;
}
