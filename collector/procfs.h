/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the collector reads from /proc: process metadata in the procfs
 * fallback mode, mount points, and the argv / environment splitting that
 * both metadata modes share.
 */
#ifndef TM_PROCFS_H
#define TM_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/types.h>

#include "taskmeter.h"
#include "config.h"

struct tm_proc_status {
	char comm[TM_COMM_LEN]; /* Name:, unescaped, NUL-terminated */
	int tgid;
	int ppid;
	uint32_t uid;           /* real */
	uint32_t gid;           /* real */
};

struct tm_env_pair {
	const char *name;       /* points into the buffer given to tm_proc_env_filter */
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * Read /proc/<pid>/<name> (cmdline, environ, ...) up to cap bytes. *len is
 * what was read; *truncated says the file had more. -ESRCH when the process
 * is gone; a zombie reads as 0 bytes.
 */
int tm_proc_read_file(int pid, const char *name, char *buf, size_t cap, size_t *len,
		      bool *truncated);

/* Name, Tgid, PPid, real Uid and Gid from /proc/<pid>/status. */
int tm_proc_status(int pid, struct tm_proc_status *st);
/* The same from status text already read; -EPROTO if a field is missing. */
int tm_proc_status_parse(const char *text, struct tm_proc_status *st);

/*
 * Start time of pid in ns since boot, from field 22 of /proc/<pid>/stat. It
 * has clock-tick resolution: compare it with the kernel's start_boottime
 * through tm_proc_start_matches(), never with ==.
 */
int tm_proc_start_ns(int pid, uint64_t *start_ns);
/* Field 22 (starttime, in ticks) of stat text, comm may hold ')' and ' '. */
int tm_proc_stat_start_ticks(const char *text, uint64_t *ticks);
/* Numeric field number field (>= 3, as proc(5) counts) of stat text. */
int tm_proc_stat_field(const char *text, int field, uint64_t *value);

struct tm_proc_stat {
	uint64_t start_ns;      /* as tm_proc_start_ns() */
	uint64_t arg_start;     /* the argv region (fields 48, 49); both 0 if */
	uint64_t arg_end;       /* hidden (no ptrace access) or too old a kernel */
};

/* start time and argv region from one read of /proc/<pid>/stat. */
int tm_proc_stat(int pid, struct tm_proc_stat *st);
/* Do boottime_ns (exact, from BPF) and proc_start_ns fall in the same tick? */
bool tm_proc_start_matches(uint64_t boottime_ns, uint64_t proc_start_ns);
/* Nanoseconds per clock tick (sysconf(_SC_CLK_TCK)). */
uint64_t tm_proc_tick_ns(void);

/* cgroup v2 id (inode of <cgroup2_mount>/<path>) of pid's "0::<path>". */
int tm_proc_cgroup_id(int pid, const char *cgroup2_mount, uint64_t *id);

/*
 * Mount point of the first mount of type fstype in a mountinfo file,
 * unescaped (\040 etc.). -ENOENT if none, -ENAMETOOLONG if it does not fit.
 */
int tm_proc_mountinfo_find(FILE *f, const char *fstype, char *buf, size_t len);
/* Where cgroup2 / a bpf filesystem is mounted, from /proc/self/mountinfo. */
int tm_proc_cgroup2_mount(char *buf, size_t len);
int tm_proc_bpffs_mount(char *buf, size_t len);

/*
 * The allowlisted NAME=value entries of env (NUL-separated, as in
 * /proc/<pid>/environ or a BPF copy of the environment region). Returns how
 * many were stored in out. Entries without '=' and an unterminated last entry
 * (its value may be cut short) are skipped; of a name that occurs twice only
 * the first counts, as for getenv(). Nothing of env is copied: the values of
 * other names must not leave the collector.
 */
size_t tm_proc_env_filter(const struct tm_config *c, const char *env, size_t len,
		     struct tm_env_pair *out, size_t max_out);

/*
 * Split NUL-separated argv into out[i] / out_len[i] (pointers into buf, not
 * NUL-terminated when the last argument was cut). A trailing NUL does not
 * start another argument. Returns how many were stored (at most max_out).
 */
size_t tm_proc_argv_split(const char *buf, size_t len, const char **out, size_t *out_len,
		     size_t max_out);

#endif /* TM_PROCFS_H */
