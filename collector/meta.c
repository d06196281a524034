// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Metadata resolution (see meta.h): ring-buffer events, the /proc fallback,
 * cgroup paths, and the check that finds owners gone without an exit event.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "meta.h"
#include "procfs.h"
#include "store.h"
#include "util.h"

#define TM_ENV_PAIRS_MAX TM_ENV_ALLOW_MAX

/* ---- one record's metadata ---- */

void tm_meta_clear(struct tm_meta *m)
{
	free(m->argv);
	free(m->env);
	free(m->cgroup_path);
	memset(m, 0, sizeof(*m));
}

int tm_meta_set_argv(struct tm_meta *m, const char *buf, size_t len, bool truncated)
{
	char *a = malloc(len + 1);

	if (!a)
		return -ENOMEM;
	memcpy(a, buf, len);
	if (len && a[len - 1] != '\0')
		a[len++] = '\0'; /* cut inside the last argument */
	tm_utf8_sanitize(a, len);
	free(m->argv);
	m->argv = a;
	m->argv_len = len;
	m->argv_truncated = truncated;
	return 0;
}

int tm_meta_set_env(struct tm_meta *m, const struct tm_config *c, const char *buf, size_t len)
{
	struct tm_env_pair pairs[TM_ENV_PAIRS_MAX];
	size_t n = tm_proc_env_filter(c, buf, len, pairs, TM_ENV_PAIRS_MAX), size = 0, off = 0;
	char *e;

	for (size_t i = 0; i < n; i++)
		size += pairs[i].name_len + pairs[i].value_len + 2;
	e = size ? malloc(size) : NULL;
	if (size && !e)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memcpy(e + off, pairs[i].name, pairs[i].name_len);
		off += pairs[i].name_len;
		e[off++] = '\0';
		memcpy(e + off, pairs[i].value, pairs[i].value_len);
		tm_utf8_sanitize(e + off, pairs[i].value_len);
		off += pairs[i].value_len;
		e[off++] = '\0';
	}
	free(m->env);
	m->env = e;
	m->env_len = size;
	return 0;
}

void tm_meta_set_comm(struct tm_meta *m, const char *comm)
{
	memcpy(m->comm, comm, TM_COMM_LEN);
	m->comm[TM_COMM_LEN - 1] = '\0';
	tm_utf8_sanitize(m->comm, strlen(m->comm));
}

/* ---- the resolver ---- */

int tm_resolver_init(struct tm_resolver *r, const struct tm_config *c, struct tm_store *s)
{
	memset(r, 0, sizeof(*r));
	r->cfg = c;
	r->store = s;
	if (tm_proc_cgroup2_mount(r->cgroup2_mount, sizeof(r->cgroup2_mount)))
		r->cgroup2_mount[0] = '\0';
	else
		r->cgroups = tm_cgroups_new(r->cgroup2_mount);
	return 0;
}

void tm_resolver_free(struct tm_resolver *r)
{
	if (r->cgroups)
		tm_cgroups_free(r->cgroups);
	memset(r, 0, sizeof(*r));
}

/* A metadata event is exactly as long as its fixed part and the argv and
 * environment bytes it says it carries: anything else is not read. */
static void on_meta(struct tm_resolver *r, const struct tm_meta_event *ev, size_t len)
{
	struct tm_record *rec;
	struct tm_meta *m;

	if (ev->argv_len > TM_ARGV_CAP || ev->env_len > TM_ENV_CAP ||
	    len < sizeof(*ev) + ev->argv_len + ev->env_len)
		return;
	rec = tm_store_process(r->store, &ev->hdr.owner, ev->hdr.exec_seq);
	if (!rec)
		return;
	m = &rec->meta;
	tm_meta_set_comm(m, ev->hdr.comm);
	m->ids = ev->ids;
	m->has_ids = true;
	tm_meta_set_argv(m, ev->data, ev->argv_len, ev->flags & TM_META_ARGV_TRUNCATED);
	tm_meta_set_env(m, r->cfg, ev->data + ev->argv_len, ev->env_len);
	m->source = ev->flags & TM_META_NO_TASK_WORK ? TM_SOURCE_IN_PROCESS : TM_SOURCE_TASK_WORK;
	tm_store_changed(r->store, rec);
}

static uint64_t ns_inode(int pid, const char *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns);
	return stat(path, &st) ? 0 : (uint64_t)st.st_ino;
}

/*
 * argv and environment from /proc. cmdline is cut at the end of the argv
 * region: a process that overwrote its argv NULs (setproctitle) makes the
 * kernel run on into the environment, whose values must not leave here.
 * Where that region is not known (stat hides it from a reader that may not
 * ptrace the process: no CAP_SYS_PTRACE, another user's process), nothing
 * of cmdline is taken, as nothing of it can be shown to be argv; environ
 * is then unreadable too, and the rest of the metadata stands without it.
 */
static int procfs_strings(struct tm_resolver *r, struct tm_meta *m, int pid,
			  const struct tm_proc_stat *ps)
{
	static char buf[TM_ARGV_CAP > TM_ENV_CAP ? TM_ARGV_CAP : TM_ENV_CAP];
	uint64_t region = ps->arg_end > ps->arg_start ? ps->arg_end - ps->arg_start : 0;
	size_t len;
	bool trunc;
	int err;

	err = tm_proc_read_file(pid, "cmdline", buf, r->cfg->argv_max, &len, &trunc);
	if (!err && len > region) {
		trunc = !region; /* none taken: flagged as cut */
		len = region;
	}
	if (!err)
		err = tm_meta_set_argv(m, buf, len, trunc);
	if (!err && r->cfg->env_max) {
		err = tm_proc_read_file(pid, "environ", buf, r->cfg->env_max, &len, &trunc);
		if (err == -EACCES || err == -EPERM) {
			err = 0;
			len = 0;
		}
	}
	if (!err && r->cfg->env_max)
		err = tm_meta_set_env(m, r->cfg, buf, len);
	return err;
}

/* Fallback metadata: read /proc/<pid>, if pid is still the same process. */
static int read_procfs(struct tm_resolver *r, struct tm_record *rec)
{
	struct tm_meta *m = &rec->meta;
	int pid = (int)rec->key.owner.tgid, err;
	struct tm_proc_status st;
	struct tm_proc_stat ps;
	uint64_t cgroup_id;

	m->procfs_tried = true;
	err = tm_proc_stat(pid, &ps);
	if (!err && !tm_proc_start_matches(rec->key.owner.start_ns, ps.start_ns))
		err = -ESRCH; /* pid reused */
	if (!err)
		err = tm_proc_status(pid, &st);
	if (!err)
		err = procfs_strings(r, m, pid, &ps);
	if (err) {
		r->procfs_failures++;
		tm_dbg("metadata of pid %d from /proc: %s\n", pid, strerror(-err));
		return err;
	}
	r->procfs_reads++;
	tm_meta_set_comm(m, st.comm);
	m->ids.uid = st.uid;
	m->ids.gid = st.gid;
	m->ids.ppid = (uint32_t)st.ppid;
	if (r->cgroup2_mount[0] && !tm_proc_cgroup_id(pid, r->cgroup2_mount, &cgroup_id))
		m->ids.cgroup_id = cgroup_id;
	m->ids.netns = ns_inode(pid, "net");
	m->ids.mntns = ns_inode(pid, "mnt");
	m->ids.pidns = ns_inode(pid, "pid");
	m->has_ids = true;
	m->source = TM_SOURCE_PROCFS;
	tm_store_changed(r->store, rec);
	return 0;
}

static void on_owner(struct tm_resolver *r, const struct tm_owner_event *ev)
{
	struct tm_record *rec = tm_store_process(r->store, &ev->hdr.owner, ev->hdr.exec_seq);

	if (ev->reason)
		tm_dbg("task_work for pid %u failed (%d): reading /proc\n", ev->hdr.owner.tgid,
		       ev->reason);
	if (rec && rec->meta.source == TM_SOURCE_NONE)
		read_procfs(r, rec);
}

static uint64_t ttl_ns(const struct tm_resolver *r)
{
	return (uint64_t)r->cfg->exited_ttl_s * TM_NSEC_PER_SEC;
}

static void on_exit_ev(struct tm_resolver *r, const struct tm_exit_event *ev)
{
	struct tm_rec_key k = { .owner = ev->hdr.owner, .exec_seq = ev->hdr.exec_seq,
				.kind = TM_KIND_PROCESS };
	struct tm_record *rec;

	k.owner.pad = 0;
	tm_store_exit(r->store, &ev->hdr.owner, true, ev->exit_code,
		      tm_now_ns(CLOCK_MONOTONIC), ttl_ns(r));
	rec = tm_store_find(r->store, &k);
	if (!rec)
		return;
	if (!rec->meta.comm[0])
		tm_meta_set_comm(&rec->meta, ev->hdr.comm);
	/* its metadata never came (gone before /proc could be read): what the
	 * kernel still had at the exit, cgroup and namespaces among it */
	if (!rec->meta.has_ids && ev->has_ids) {
		rec->meta.ids = ev->ids;
		rec->meta.has_ids = true;
		if (rec->meta.source == TM_SOURCE_NONE)
			rec->meta.source = TM_SOURCE_AT_EXIT;
	}
	/* the exit marked it, unless an inferred exit had already */
	tm_store_changed(r->store, rec);
}

int tm_resolver_on_event(void *ctx, void *data, size_t len)
{
	const struct tm_event_hdr *hdr = data;
	struct tm_resolver *r = ctx;

	if (len < sizeof(*hdr))
		return 0;
	switch (hdr->type) {
	case TM_EV_META:
		if (len >= sizeof(struct tm_meta_event))
			on_meta(r, data, len);
		break;
	case TM_EV_OWNER:
		if (len >= sizeof(struct tm_owner_event))
			on_owner(r, data);
		break;
	case TM_EV_EXIT:
		if (len >= sizeof(struct tm_exit_event))
			on_exit_ev(r, data);
		break;
	}
	return 0;
}

/* cgroup path and what it says about containers; a miss retries next frame. */
static void resolve_cgroup(struct tm_resolver *r, struct tm_record *rec)
{
	struct tm_meta *m = &rec->meta;
	const char *path;

	if (m->cgroup_path || !m->has_ids || !m->ids.cgroup_id || !r->cgroups)
		return;
	path = tm_cgroups_path(r->cgroups, m->ids.cgroup_id);
	if (!path)
		return;
	m->cgroup_path = strdup(path);
	if (!m->cgroup_path)
		return;
	tm_utf8_sanitize(m->cgroup_path, strlen(m->cgroup_path));
	tm_container_parse(m->cgroup_path, &m->container);
	tm_store_changed(r->store, rec);
}

/* Nothing more to resolve: its metadata came (or /proc was tried), and
 * its cgroup path is known. */
static bool resolved(const struct tm_meta *m)
{
	return (m->procfs_tried || m->source != TM_SOURCE_NONE) && m->cgroup_path;
}

/* The process records not resolved yet only (s->unresolved): a record
 * that never gets a cgroup path stays on the list, as it is tried again
 * every frame. */
void tm_resolver_run(struct tm_resolver *r)
{
	struct tm_store *s = r->store;
	struct tm_list *x, *next;

	for (x = s->unresolved.next; x != &s->unresolved; x = next) {
		struct tm_record *rec = tm_store_rec_on(x, unresolved);

		next = x->next;
		/* a frame after it appeared without metadata: one /proc read */
		if (!rec->meta.procfs_tried && rec->meta.source == TM_SOURCE_NONE &&
		    s->frames > rec->first_frame + 1)
			read_procfs(r, rec);
		resolve_cgroup(r, rec);
		if (resolved(&rec->meta))
			tm_list_del(x);
	}
}

void tm_resolver_last_frame(struct tm_resolver *r)
{
	tm_cgroups_unthrottle(r->cgroups);
}

/* Is the owner's process still there? Only a definite "no" counts. */
static bool owner_gone(const struct tm_owner *o)
{
	uint64_t start;
	int err = tm_proc_start_ns((int)o->tgid, &start);

	if (err == -ESRCH)
		return true;
	return !err && !tm_proc_start_matches(o->start_ns, start);
}

/* Candidates for an inferred exit found by one call, at most. */
#define TM_REAP_GONE_MAX 64

void tm_resolver_reap(struct tm_resolver *r, size_t max, uint64_t now,
		      void (*drain_events)(void *ctx), void *ctx)
{
	struct tm_store *s = r->store;
	size_t mask = s->records.n_b - 1, b = r->scan_cursor & mask, checked = 0, n_gone = 0;
	struct tm_rec_key gone[TM_REAP_GONE_MAX];
	bool full = false;

	for (size_t n = 0; n <= mask && checked < max; n++, b = (b + 1) & mask) {
		for (struct tm_record *rec = tm_store_rec(s->records.b[b]); rec && !full;
		     rec = tm_store_rec(rec->node.next)) {
			if (rec->key.kind != TM_KIND_PROCESS || rec->exited)
				continue;
			checked++;
			if (!owner_gone(&rec->key.owner))
				continue;
			if (n_gone == TM_REAP_GONE_MAX)
				full = true; /* this bucket again next call: its rest unseen */
			else
				gone[n_gone++] = rec->key;
		}
		if (full)
			break;
	}
	r->scan_cursor = b;
	if (!n_gone)
		return;
	/*
	 * A process is gone from /proc only once reaped, after its exit
	 * tracepoint ran: its exit event, unless it was lost, is in the ring
	 * buffer by now. Read it first, or its exit code is lost to a race.
	 */
	drain_events(ctx);
	for (size_t i = 0; i < n_gone; i++) {
		struct tm_record *rec = tm_store_find(s, &gone[i]);

		if (!rec || rec->exited)
			continue;
		r->exits_inferred++;
		tm_dbg("pid %u is gone without an exit event: final record\n",
		       rec->key.owner.tgid);
		tm_store_exit(s, &rec->key.owner, false, 0, now, ttl_ns(r));
	}
}
