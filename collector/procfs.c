// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * /proc readers. A process may exit between any two reads: every "it is
 * gone" errno is folded into -ESRCH so that callers handle one case.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procfs.h"

#define STATUS_MAX 8192
#define STAT_MAX 2048

static int gone(int err)
{
	return err == -ENOENT ? -ESRCH : err;
}

static int proc_path(char *path, size_t size, int pid, const char *name)
{
	int n = snprintf(path, size, "/proc/%d/%s", pid, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static ssize_t read_full(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			break;
		len += n;
	}
	return len;
}

/* One more byte tells a file of exactly cap bytes from a longer one. */
static int has_more(int fd, bool *more)
{
	char ch;
	ssize_t n;

	do
		n = read(fd, &ch, 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	*more = n > 0;
	return 0;
}

int tm_proc_read_file(int pid, const char *name, char *buf, size_t cap, size_t *len,
		      bool *truncated)
{
	char path[64];
	ssize_t n;
	int fd, err;

	err = proc_path(path, sizeof(path), pid, name);
	if (err)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gone(-errno);
	*truncated = false;
	n = read_full(fd, buf, cap);
	err = n < 0 ? n : 0;
	if (!err && (size_t)n == cap)
		err = has_more(fd, truncated);
	close(fd);
	if (err)
		return gone(err);
	*len = n;
	return 0;
}

/* Read a small /proc file as a string. */
static int read_text(int pid, const char *name, char *buf, size_t size)
{
	size_t len;
	bool truncated;
	int err;

	err = tm_proc_read_file(pid, name, buf, size - 1, &len, &truncated);
	if (err)
		return err;
	buf[len] = '\0';
	return 0;
}

/* Value of "<key>\t..." in status text, or NULL. */
static const char *status_field(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');

		if (!strncmp(l, key, klen) && l[klen] == ':')
			return l + klen + 1 + strspn(l + klen + 1, " \t");
		if (!nl)
			break;
		l = nl + 1;
	}
	return NULL;
}

static int status_num(const char *text, const char *key, long long min, long long max,
		      long long *out)
{
	const char *v = status_field(text, key);
	char *end;

	if (!v || !isdigit((unsigned char)*v))
		return -EPROTO;
	errno = 0;
	*out = strtoll(v, &end, 10);
	if (errno || *out < min || *out > max || (*end && !isspace((unsigned char)*end)))
		return -EPROTO;
	return 0;
}

static int octal_digit(char ch)
{
	return ch >= '0' && ch <= '7' ? ch - '0' : -1;
}

/*
 * Length of the escape at s (after the '\\'), its byte in *out; 0 if none.
 * Octal escapes stop at \377, and \000 is none: a NUL would end the string
 * there and cut a path short without saying so.
 */
static size_t unescape_one(const char *s, char *out)
{
	static const char from[] = "ntrvfae\\\"", to[] = "\n\t\r\v\f\a\033\\\"";
	const char *hit;
	int o = octal_digit(s[0]) >= 0 && octal_digit(s[1]) >= 0 && octal_digit(s[2]) >= 0
			? octal_digit(s[0]) << 6 | octal_digit(s[1]) << 3 | octal_digit(s[2])
			: -1;

	if (o > 0 && o <= 0377) {
		*out = o;
		return 3;
	}
	hit = s[0] ? strchr(from, s[0]) : NULL;
	if (!hit)
		return 0;
	*out = to[hit - from];
	return 1;
}

/*
 * Copy s up to the first char in stop, undoing the kernel's seq_escape
 * escapes (octal in mountinfo, C style in status). -ENAMETOOLONG if it does
 * not fit in size bytes with its NUL.
 */
static int unescape(const char *s, const char *stop, char *buf, size_t size)
{
	size_t n = 0, k;
	char ch;

	for (; *s && !strchr(stop, *s); s++) {
		ch = *s;
		if (ch == '\\' && (k = unescape_one(s + 1, &ch)))
			s += k;
		if (n + 1 >= size)
			return -ENAMETOOLONG;
		buf[n++] = ch;
	}
	if (!size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

int tm_proc_status_parse(const char *text, struct tm_proc_status *st)
{
	const char *name = status_field(text, "Name");
	long long tgid, ppid, uid, gid;

	if (!name || status_num(text, "Tgid", 0, INT_MAX, &tgid) ||
	    status_num(text, "PPid", 0, INT_MAX, &ppid) ||
	    status_num(text, "Uid", 0, UINT32_MAX, &uid) ||
	    status_num(text, "Gid", 0, UINT32_MAX, &gid))
		return -EPROTO;
	/* comm is at most 15 bytes; a longer Name is malformed, not cut. */
	if (unescape(name, "\n", st->comm, sizeof(st->comm)))
		return -EPROTO;
	st->tgid = tgid;
	st->ppid = ppid;
	st->uid = uid;
	st->gid = gid;
	return 0;
}

int tm_proc_status(int pid, struct tm_proc_status *st)
{
	char buf[STATUS_MAX];
	int err;

	/* The fields we need are at the top: a cut-off tail does not matter. */
	err = read_text(pid, "status", buf, sizeof(buf));
	if (err)
		return err;
	return tm_proc_status_parse(buf, st);
}

int tm_proc_stat_field(const char *text, int field, uint64_t *value)
{
	/* comm (field 2) may contain anything but is followed by the last ')'. */
	const char *p = strrchr(text, ')');
	char *end;

	if (!p || field < 3)
		return -EPROTO;
	p++;
	for (int f = 3; f < field; f++) {
		p += strspn(p, " ");
		p += strcspn(p, " ");
	}
	p += strspn(p, " ");
	if (!isdigit((unsigned char)*p))
		return -EPROTO;
	errno = 0;
	*value = strtoull(p, &end, 10);
	if (errno || (*end && *end != ' ' && *end != '\n'))
		return -EPROTO;
	return 0;
}

int tm_proc_stat_start_ticks(const char *text, uint64_t *ticks)
{
	return tm_proc_stat_field(text, 22, ticks);
}

uint64_t tm_proc_tick_ns(void)
{
	static uint64_t tick_ns;

	if (!tick_ns) {
		long hz = sysconf(_SC_CLK_TCK);

		tick_ns = 1000000000ull / (hz > 0 ? (uint64_t)hz : 100);
	}
	return tick_ns;
}

int tm_proc_stat(int pid, struct tm_proc_stat *st)
{
	char buf[STAT_MAX];
	uint64_t ticks;
	int err;

	err = read_text(pid, "stat", buf, sizeof(buf));
	if (!err)
		err = tm_proc_stat_start_ticks(buf, &ticks);
	if (err)
		return err;
	st->start_ns = ticks * tm_proc_tick_ns();
	/* 0 when the reader may not ptrace the process (the kernel hides them) */
	if (tm_proc_stat_field(buf, 48, &st->arg_start) || tm_proc_stat_field(buf, 49, &st->arg_end))
		st->arg_start = st->arg_end = 0;
	return 0;
}

int tm_proc_start_ns(int pid, uint64_t *start_ns)
{
	struct tm_proc_stat st;
	int err = tm_proc_stat(pid, &st);

	if (!err)
		*start_ns = st.start_ns;
	return err;
}

bool tm_proc_start_matches(uint64_t boottime_ns, uint64_t proc_start_ns)
{
	/* /proc truncates start_boottime to ticks (nsec_to_clock_t). */
	return boottime_ns / tm_proc_tick_ns() == proc_start_ns / tm_proc_tick_ns();
}

/* The path of the "0::<path>" line of a /proc/<pid>/cgroup file. */
static int cgroup_v2_path(FILE *f, char *path, size_t size)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int err = -ENOENT;

	while (err == -ENOENT && (n = getline(&line, &cap, f)) > 0) {
		if (strncmp(line, "0::", 3))
			continue;
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		/* A removed cgroup still shows up, marked so; its dir is gone. */
		if (n > 10 && !strcmp(line + n - 10, " (deleted)"))
			break;
		err = (size_t)n - 3 < size ? 0 : -ENAMETOOLONG;
		if (!err)
			strcpy(path, line + 3);
	}
	free(line);
	return err;
}

int tm_proc_cgroup_id(int pid, const char *cgroup2_mount, uint64_t *id)
{
	char path[PATH_MAX], full[PATH_MAX];
	struct stat st;
	FILE *f;
	int err, n;

	err = proc_path(path, sizeof(path), pid, "cgroup");
	if (err)
		return err;
	f = fopen(path, "re");
	if (!f)
		return gone(-errno);
	err = cgroup_v2_path(f, path, sizeof(path));
	fclose(f);
	if (err)
		return err;
	n = snprintf(full, sizeof(full), "%s%s", cgroup2_mount, path);
	if (n < 0 || (size_t)n >= sizeof(full))
		return -ENAMETOOLONG;
	if (stat(full, &st))
		return -errno;
	/* On cgroup2 the directory's inode number is the cgroup id. */
	*id = st.st_ino;
	return 0;
}

/*
 * Fields: id parent maj:min root mountpoint opts [optional...] - fstype ...
 * Does the line (split in place) mount fstype? Sets *mnt to field 5.
 */
static bool mountinfo_match(char *line, const char *fstype, char **mnt)
{
	char *save = NULL, *tok;
	int i = 0;

	*mnt = NULL;
	for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save), i++) {
		if (i == 4)
			*mnt = tok;
		if (i > 5 && !strcmp(tok, "-")) {
			tok = strtok_r(NULL, " \n", &save);
			return *mnt && tok && !strcmp(tok, fstype);
		}
	}
	return false;
}

int tm_proc_mountinfo_find(FILE *f, const char *fstype, char *buf, size_t len)
{
	char *line = NULL, *mnt;
	size_t cap = 0;
	int err = -ENOENT;

	while (err == -ENOENT && getline(&line, &cap, f) > 0)
		if (mountinfo_match(line, fstype, &mnt))
			err = unescape(mnt, "", buf, len);
	if (err == -ENOENT && ferror(f))
		err = -EIO;
	free(line);
	return err;
}

static int self_mount(const char *fstype, char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int err;

	if (!f)
		return -errno;
	err = tm_proc_mountinfo_find(f, fstype, buf, len);
	fclose(f);
	return err;
}

int tm_proc_cgroup2_mount(char *buf, size_t len)
{
	return self_mount("cgroup2", buf, len);
}

int tm_proc_bpffs_mount(char *buf, size_t len)
{
	return self_mount("bpf", buf, len);
}

static bool env_seen(const struct tm_env_pair *out, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (out[i].name_len == len && !memcmp(out[i].name, name, len))
			return true;
	return false;
}

size_t tm_proc_env_filter(const struct tm_config *c, const char *env, size_t len,
		     struct tm_env_pair *out, size_t max_out)
{
	const char *p = env, *end = env + len;
	size_t n = 0;

	while (p < end && n < max_out) {
		const char *nul = memchr(p, '\0', end - p), *eq;

		/* Unterminated: the copy was cut, and a cut value is a wrong label. */
		if (!nul)
			break;
		eq = memchr(p, '=', nul - p);
		if (eq && tm_config_env_allowed(c, p, eq - p) && !env_seen(out, n, p, eq - p)) {
			out[n].name = p;
			out[n].name_len = eq - p;
			out[n].value = eq + 1;
			out[n].value_len = nul - eq - 1;
			n++;
		}
		p = nul + 1;
	}
	return n;
}

size_t tm_proc_argv_split(const char *buf, size_t len, const char **out, size_t *out_len,
		     size_t max_out)
{
	const char *p = buf, *end = buf + len;
	size_t n = 0;

	while (p < end && n < max_out) {
		const char *nul = memchr(p, '\0', end - p);
		size_t arg_len = nul ? (size_t)(nul - p) : (size_t)(end - p);

		out[n] = p;
		out_len[n++] = arg_len;
		p += arg_len + 1;
	}
	return n;
}
