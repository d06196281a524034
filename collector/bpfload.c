// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loading and attaching, with the state pinned (see bpfload.h).
 *
 * Lifecycle of an instance's state directory:
 *   no stamp            -> fresh: maps created and pinned, links attached
 *                          and pinned, a stamp with a new counters_id;
 *   a compatible stamp  -> adopted: libbpf reuses the pinned maps (so the
 *                          counts go on), cgroup links get our programs
 *                          atomically (bpf_link_update), tracepoint links
 *                          are kept when their program is the same, else
 *                          replaced (new attached before old detached);
 *   another build/size  -> everything of the old state detached and
 *                          unpinned first, then fresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "bpfload.h"
#include "log.h"
#include "procfs.h"
#include "sockdiag.h"
#include "taskmeter.h"
#include "taskmeter.skel.h"
#include "tm_build.h"
#include "util.h"

#define TM_STATE_MAGIC 0x74616b736d657472ull /* "taskmetr" */
#define TM_PIN_STATE "state"
#define TM_PIN_RETIRED "retired"
#define TM_PIN_RETIRING "retiring"

const char *tm_bpf_detect_kfunc(void)
{
	static const char *const names[] = {
		"bpf_task_work_schedule_signal",      /* Linux 7.0+ */
		"bpf_task_work_schedule_signal_impl", /* Linux 6.18 */
	};
	const char *found = NULL;
	struct btf *btf;

	btf = btf__load_vmlinux_btf();
	if (!btf)
		return NULL;
	for (size_t i = 0; i < TM_ARRAY_SIZE(names) && !found; i++)
		if (btf__find_by_name_kind(btf, names[i], BTF_KIND_FUNC) > 0)
			found = names[i];
	btf__free(btf);
	return found;
}

/* ---- map sizes: one table for the config, the loader and --print-memory ---- */

struct tm_map_size {
	const char *map;        /* in the object */
	const char *key;        /* the config key that sizes it */
	size_t off;             /* its unsigned int in struct tm_config */
	unsigned int unit;      /* max_entries per config unit */
};

#define CFG(field) offsetof(struct tm_config, field)

static const struct tm_map_size map_sizes[] = {
	{ "tm_counters", "counter_entries", CFG(max_owner_records), 1 },
	{ "tm_class_gen", "counter_entries", CFG(max_owner_records), 1 },
	{ "tm_classes", "counter_entries", CFG(max_owner_records), 1 },
	{ "tm_free", "counter_entries", CFG(max_owner_records), 1 },
	{ "tm_meta", "meta_entries", CFG(meta_entries), 1 },
	{ "tm_events", "ringbuf_kib", CFG(ringbuf_kib), 1024 },
	{ "tm_flows", "flow_entries", CFG(flow_entries), 1 },
};

static const struct tm_map_size *size_of(const char *map)
{
	for (size_t i = 0; i < TM_ARRAY_SIZE(map_sizes); i++)
		if (!strcmp(map_sizes[i].map, map))
			return &map_sizes[i];
	return NULL;
}

static unsigned int configured(const struct tm_config *c, const struct tm_map_size *ms)
{
	return *(const unsigned int *)((const char *)c + ms->off) * ms->unit;
}

static int set_sizes(struct taskmeter_bpf *skel, const struct tm_config *c)
{
	struct bpf_map *m;
	int err;

	for (size_t i = 0; i < TM_ARRAY_SIZE(map_sizes); i++) {
		m = bpf_object__find_map_by_name(skel->obj, map_sizes[i].map);
		err = m ? bpf_map__set_max_entries(m, configured(c, &map_sizes[i])) : -ENOENT;
		if (err)
			return err;
	}
	return 0;
}

/* Load-time settings (.rodata): programs with other settings behave
 * otherwise even when their code is the same. */
static uint64_t settings_hash(const struct tm_bpf *b, const struct tm_config *c)
{
	return tm_hash64(tm_hash64((uint64_t)b->task_work << 32 | c->argv_max) ^ c->env_max);
}

/* ---- the stamp ---- */

static int pin_path(const struct tm_bpf *b, const char *name, char *buf, size_t len)
{
	return tm_pin_path(&b->pin, name, buf, len);
}

static int obj_get(const struct tm_bpf *b, const char *name)
{
	char path[PATH_MAX];

	if (pin_path(b, name, path, sizeof(path)))
		return -ENAMETOOLONG;
	return bpf_obj_get(path);
}

/* A map of ours the collector itself makes (the BPF programs never see
 * it), pinned: found again or created. */
static int own_map(struct tm_bpf *b, const char *name, enum bpf_map_type type, __u32 key,
		   __u32 value, __u32 entries)
{
	char path[PATH_MAX];
	int fd = obj_get(b, name);

	if (fd >= 0)
		return fd;
	fd = bpf_map_create(type, name, key, value, entries, NULL);
	if (fd < 0)
		return -errno;
	if (pin_path(b, name, path, sizeof(path)) || bpf_obj_pin(fd, path)) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Why the pinned maps cannot serve this config, in why; 0 if they can. */
static int sizes_differ(struct tm_bpf *b, const struct tm_config *c, char *why, size_t len)
{
	for (size_t i = 0; i < TM_ARRAY_SIZE(map_sizes); i++) {
		struct bpf_map_info info = { 0 };
		__u32 ilen = sizeof(info);
		int fd = obj_get(b, map_sizes[i].map);

		if (fd < 0) {
			snprintf(why, len, "map %s is not pinned", map_sizes[i].map);
			return 1;
		}
		if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
			info.max_entries = 0;
		close(fd);
		if (info.max_entries != configured(c, &map_sizes[i])) {
			snprintf(why, len, "%s was %u, the configuration says %u", map_sizes[i].key,
				 info.max_entries / map_sizes[i].unit, configured(c, &map_sizes[i]) /
				 map_sizes[i].unit);
			return 1;
		}
	}
	return 0;
}

static bool read_stamp(struct tm_bpf *b)
{
	__u32 zero = 0;

	b->state_fd = obj_get(b, TM_PIN_STATE);
	if (b->state_fd < 0)
		return false;
	return !bpf_map_lookup_elem(b->state_fd, &zero, &b->state) &&
	       b->state.magic == TM_STATE_MAGIC;
}

static int new_stamp(struct tm_bpf *b)
{
	__u32 zero = 0;

	memset(&b->state, 0, sizeof(b->state));
	b->state.magic = TM_STATE_MAGIC;
	b->state.abi = TM_ABI_HASH;
	if (getrandom(&b->state.counters_id, sizeof(b->state.counters_id), 0) !=
	    sizeof(b->state.counters_id))
		b->state.counters_id = tm_hash64(tm_now_ns(CLOCK_REALTIME) ^ (uint64_t)getpid());
	b->state.created_ns = tm_now_ns(CLOCK_REALTIME);
	b->state.settings = b->settings;
	b->state_fd = own_map(b, TM_PIN_STATE, BPF_MAP_TYPE_ARRAY, sizeof(__u32),
			      sizeof(b->state), 1);
	if (b->state_fd < 0)
		return b->state_fd;
	return bpf_map_update_elem(b->state_fd, &zero, &b->state, BPF_ANY) ? -errno : 0;
}

/* What the pinned state is to us: adoptable, or in the way. */
static enum tm_start judge(struct tm_bpf *b, const struct tm_config *c)
{
	char why[256];

	if (!read_stamp(b)) {
		if (b->state_fd >= 0)
			tm_warn("%s: unreadable state stamp: starting clean\n", b->pin.dir);
		return TM_START_FRESH;
	}
	if (b->state.abi != TM_ABI_HASH) {
		tm_warn("%s: pinned state is from an incompatible build (map layout %016llx, "
			"this build %016llx): detaching it and starting clean; counts restart\n",
			b->pin.dir, (unsigned long long)b->state.abi,
			(unsigned long long)TM_ABI_HASH);
		return TM_START_INCOMPATIBLE;
	}
	if (sizes_differ(b, c, why, sizeof(why))) {
		tm_warn("%s: pinned state does not fit this configuration (%s): detaching it "
			"and starting clean; counts restart\n", b->pin.dir, why);
		return TM_START_INCOMPATIBLE;
	}
	return TM_START_ADOPTED;
}

int tm_bpf_open_state(struct tm_bpf *b, const struct tm_config *c)
{
	int err;

	b->state_fd = b->retired_fd = b->retiring_fd = -1;
	err = tm_pin_open(&b->pin, c->pin_root, c->instance);
	if (err == -EBUSY) {
		tm_err("instance '%s' is run by another taskmeterd (its state %s/taskmeter/%s "
		       "is locked); give this one another instance name\n", c->instance,
		       b->pin.root, c->instance);
		return err;
	}
	if (err) {
		tm_err("state directory for instance '%s' under %s: %s%s\n", c->instance,
		       b->pin.root[0] ? b->pin.root : "bpffs", strerror(-err),
		       err == -EINVAL ? " (pin_root must be a bpffs mount)" : "");
		return err;
	}
	b->kfunc = tm_bpf_detect_kfunc();
	b->task_work = b->kfunc && !c->metadata_procfs;
	b->settings = settings_hash(b, c);
	b->start = judge(b, c);
	if (b->start != TM_START_ADOPTED) {
		if (b->state_fd >= 0)
			close(b->state_fd);
		b->state_fd = -1;
		err = tm_pin_clear(&b->pin); /* detaches what the old links held */
		if (!err)
			err = new_stamp(b);
	}
	if (!err) {
		b->retired_fd = own_map(b, TM_PIN_RETIRED, BPF_MAP_TYPE_HASH,
					sizeof(struct tm_iface_key) + sizeof(__u32),
					sizeof(struct tm_counter_val), TM_IFACES_MAX * TM_DIR_MAX);
		err = b->retired_fd < 0 ? b->retired_fd : 0;
	}
	if (!err) {
		b->retiring_fd = own_map(b, TM_PIN_RETIRING, BPF_MAP_TYPE_HASH, sizeof(__u32),
					 sizeof(__u32), c->max_owner_records);
		err = b->retiring_fd < 0 ? b->retiring_fd : 0;
	}
	if (err)
		tm_err("%s: %s\n", b->pin.dir, strerror(-err));
	return err;
}

/* ---- loading ---- */

/* Every map of the object but its own sections (.rodata, .kconfig) lives
 * in the state directory: reused when there, created and pinned if not. */
static int pin_maps(struct tm_bpf *b)
{
	char path[PATH_MAX];
	struct bpf_map *m;
	int err;

	bpf_object__for_each_map(m, b->skel->obj) {
		if (bpf_map__is_internal(m))
			continue;
		err = pin_path(b, bpf_map__name(m), path, sizeof(path));
		if (!err)
			err = bpf_map__set_pin_path(m, path);
		if (err)
			return err;
	}
	return 0;
}

int tm_bpf_load(struct tm_bpf *b, const struct tm_config *c)
{
	int err;

	if (b->kfunc)
		tm_info("kernel has task_work kfunc %s\n", b->kfunc);
	else
		tm_warn("kernel has no task_work kfunc: metadata comes from /proc\n");
	if (!b->task_work && b->kfunc)
		tm_info("metadata = procfs forced by configuration\n");

	b->skel = taskmeter_bpf__open();
	if (!b->skel) {
		err = -errno;
		tm_err("opening BPF object: %s\n", strerror(-err));
		return err;
	}
	b->skel->rodata->tm_cfg_task_work = b->task_work;
	b->skel->rodata->tm_cfg_argv_max = c->argv_max;
	b->skel->rodata->tm_cfg_env_max = c->env_max;
	err = set_sizes(b->skel, c);
	if (!err)
		err = pin_maps(b);
	if (err) {
		tm_err("sizing BPF maps: %s\n", strerror(-err));
		return err;
	}
	err = taskmeter_bpf__load(b->skel);
	if (err) {
		tm_err("loading BPF programs: %s%s\n", strerror(-err),
		       err == -EPERM ? " (taskmeterd needs root, or CAP_BPF, CAP_PERFMON, "
				       "CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_SYS_RESOURCE)"
				     : " (run with -v for the verifier log)");
		return err;
	}
	tm_info("%s state in %s (counters_id %016llx)\n",
		b->start == TM_START_ADOPTED ? "adopted the pinned" : "new",
		b->pin.dir, (unsigned long long)b->state.counters_id);
	return 0;
}

/* ---- attaching: one table, in order (lifecycle first: no exec or exit
 * of an owner is missed) ---- */

enum tm_hook_kind { TM_HOOK_TRACE, TM_HOOK_CGROUP };

struct tm_hook {
	const char *prog;       /* program name: also names the pin (link_<prog>) */
	const char *what;       /* for messages */
	enum tm_hook_kind kind;
};

static const struct tm_hook hooks[] = {
	{ "tm_exec", "tp_btf/sched_process_exec", TM_HOOK_TRACE },
	{ "tm_exit", "tp_btf/sched_process_exit", TM_HOOK_TRACE },
	{ "tm_sock_create", "cgroup/sock_create", TM_HOOK_CGROUP },
	{ "tm_cgskb_egress", "cgroup_skb/egress", TM_HOOK_CGROUP },
	{ "tm_cgskb_ingress", "cgroup_skb/ingress", TM_HOOK_CGROUP },
	{ "tm_post_bind4", "cgroup/post_bind4", TM_HOOK_CGROUP },
	{ "tm_post_bind6", "cgroup/post_bind6", TM_HOOK_CGROUP },
	{ "tm_drop", "tp_btf/kfree_skb", TM_HOOK_TRACE },
	{ "tm_tcp_probe", "tp_btf/tcp_probe", TM_HOOK_TRACE },
	{ "tm_sock_release", "cgroup/sock_release", TM_HOOK_CGROUP },
	{ "tm_recv_length", "tp_btf/sock_recv_length", TM_HOOK_TRACE },
};

_Static_assert(TM_ARRAY_SIZE(hooks) <= TM_HOOKS_MAX, "tm_bpf.links holds every hook's link");

static int prog_info(int fd, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

/* Is the program behind an old link ours as it is now (same code, same
 * settings)? Then keeping it loses nothing and double-counts nothing. */
static bool same_program(struct tm_bpf *b, struct bpf_link *old, struct bpf_program *prog)
{
	struct bpf_link_info li = { 0 };
	struct bpf_prog_info a, n;
	__u32 len = sizeof(li);
	int fd;
	bool same;

	if (b->state.settings != b->settings)
		return false;
	if (bpf_obj_get_info_by_fd(bpf_link__fd(old), &li, &len))
		return false;
	fd = bpf_prog_get_fd_by_id(li.prog_id);
	if (fd < 0)
		return false;
	same = !prog_info(fd, &a) && !prog_info(bpf_program__fd(prog), &n) &&
	       !memcmp(a.tag, n.tag, sizeof(a.tag));
	close(fd);
	return same;
}

static uint64_t cgroup_id_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : (uint64_t)st.st_ino; /* kernfs id = inode number */
}

/* The old link still serves: its cgroup is ours (a tracepoint link always). */
static bool link_target_ok(struct tm_bpf *b, struct bpf_link *old, const struct tm_hook *h)
{
	struct bpf_link_info li = { 0 };
	__u32 len = sizeof(li);

	if (h->kind != TM_HOOK_CGROUP)
		return true;
	return !bpf_obj_get_info_by_fd(bpf_link__fd(old), &li, &len) &&
	       li.cgroup.cgroup_id == cgroup_id_of(b->cgroup_fd);
}

static struct bpf_link *attach_new(struct tm_bpf *b, const struct tm_hook *h,
				   struct bpf_program *prog)
{
	if (h->kind == TM_HOOK_CGROUP)
		return bpf_program__attach_cgroup(prog, b->cgroup_fd);
	return bpf_program__attach(prog);
}

/*
 * Adopt the pinned link of a hook: a cgroup link switches to our program in
 * one step; a tracepoint link whose program equals ours is kept, else ours
 * is attached before the old one goes. NULL (errno set) to attach anew.
 */
static struct bpf_link *adopt(struct tm_bpf *b, const struct tm_hook *h, struct bpf_program *prog,
			      const char *path, bool *keep_old)
{
	struct bpf_link *old = bpf_link__open(path);

	*keep_old = false;
	if (!old)
		return NULL;
	if (!link_target_ok(b, old, h)) {
		tm_info("%s: pinned link is for another cgroup: replaced\n", h->what);
		bpf_link__unpin(old);
		bpf_link__destroy(old);
		errno = ENOENT;
		return NULL;
	}
	if (h->kind == TM_HOOK_CGROUP && !bpf_link__update_program(old, prog))
		return old;
	if (h->kind == TM_HOOK_TRACE && same_program(b, old, prog))
		return old;
	*keep_old = true; /* replaced once ours is attached */
	return old;
}

static int attach_hook(struct tm_bpf *b, const struct tm_hook *h)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(b->skel->obj, h->prog);
	struct bpf_link *old = NULL, *link = NULL;
	char path[PATH_MAX], name[64];
	bool replace = false;
	int err;

	snprintf(name, sizeof(name), "link_%s", h->prog);
	if (!prog || pin_path(b, name, path, sizeof(path)))
		return -ENOENT;
	if (b->start == TM_START_ADOPTED)
		old = adopt(b, h, prog, path, &replace);
	if (old && !replace) {
		link = old;
	} else {
		link = attach_new(b, h, prog);
		if (!link) {
			err = -errno;
			tm_err("attaching %s: %s\n", h->what, strerror(-err));
			bpf_link__destroy(old); /* a replaced old link stays pinned: still counts */
			return err;
		}
		if (old) {
			bpf_link__unpin(old);
			bpf_link__destroy(old);
		}
		err = bpf_link__pin(link, path);
		if (err) {
			tm_err("pinning %s: %s\n", h->what, strerror(-err));
			bpf_link__destroy(link);
			return err;
		}
	}
	b->links[b->n_links++] = link;
	return 0;
}

/* cgroup: a path under the cgroup2 mount, or one relative to it. */
int tm_bpf_open_cgroup(struct tm_bpf *b, const struct tm_config *c)
{
	const char *rel = c->cgroup;
	char mnt[2048];
	size_t n;
	int err;

	err = tm_cgroup2_mount(mnt, sizeof(mnt));
	if (err) {
		tm_err("no cgroup v2 mount found in /proc/self/mountinfo\n");
		return err;
	}
	n = strlen(mnt);
	if (strncmp(rel, mnt, n) == 0 && (rel[n] == '/' || rel[n] == '\0'))
		rel += n;
	while (*rel == '/')
		rel++;
	if ((size_t)snprintf(b->cgroup_path, sizeof(b->cgroup_path), "%s%s%s", mnt,
			     *rel ? "/" : "", rel) >= sizeof(b->cgroup_path)) {
		tm_err("cgroup path too long: %s\n", c->cgroup);
		return -ENAMETOOLONG;
	}
	b->cgroup_fd = open(b->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->cgroup_fd < 0) {
		char where[128];

		err = -errno;
		tm_err("%s: opening cgroup %s: %s\n",
		       tm_config_where(c, "cgroup", where, sizeof(where)), b->cgroup_path,
		       strerror(-err));
		return err;
	}
	return 0;
}

int tm_bpf_attach(struct tm_bpf *b, const struct tm_config *c)
{
	int err = 0;

	(void)c;
	__u32 zero = 0;

	for (size_t i = 0; !err && i < TM_ARRAY_SIZE(hooks); i++)
		err = attach_hook(b, &hooks[i]);
	if (err)
		return err;
	/* the programs attached now run with our settings */
	b->state.settings = b->settings;
	if (bpf_map_update_elem(b->state_fd, &zero, &b->state, BPF_ANY))
		tm_warn("%s: writing the state stamp: %s\n", b->pin.dir, strerror(errno));
	tm_info("attached to cgroup %s\n", b->cgroup_path);
	return 0;
}

void tm_bpf_destroy(struct tm_bpf *b, bool keep)
{
	if (!keep && b->pin.dir_fd >= 0)
		tm_pin_remove(&b->pin); /* the links now detach as we close them */
	/* Reverse order: packet hooks go before what they feed. */
	while (b->n_links > 0)
		bpf_link__destroy(b->links[--b->n_links]);
	if (b->cgroup_fd >= 0)
		close(b->cgroup_fd);
	b->cgroup_fd = -1;
	taskmeter_bpf__destroy(b->skel);
	b->skel = NULL;
	if (b->state_fd >= 0)
		close(b->state_fd);
	if (b->retired_fd >= 0)
		close(b->retired_fd);
	if (b->retiring_fd >= 0)
		close(b->retiring_fd);
	b->state_fd = b->retired_fd = b->retiring_fd = -1;
	if (keep && b->pin.dir_fd >= 0)
		tm_info("state kept in %s: the programs go on counting\n", b->pin.dir);
	tm_pin_close(&b->pin);
}

int tm_bpf_remove_state(const struct tm_config *c)
{
	struct tm_bpf b = { .cgroup_fd = -1, .state_fd = -1, .retired_fd = -1, .retiring_fd = -1 };
	int err;

	err = tm_pin_open(&b.pin, c->pin_root, c->instance);
	if (err == -EBUSY) {
		tm_err("instance '%s' is running: stop it first\n", c->instance);
		return err;
	}
	if (err) {
		tm_err("state of instance '%s' under %s: %s%s\n", c->instance,
		       b.pin.root[0] ? b.pin.root : "bpffs", strerror(-err),
		       err == -EINVAL ? " (pin_root must be a bpffs mount)" : "");
		return err;
	}
	err = tm_pin_remove(&b.pin);
	if (err)
		tm_err("removing %s: %s\n", b.pin.dir, strerror(-err));
	else
		tm_info("removed the state of instance '%s' (everything it had attached)\n",
			c->instance);
	return err;
}

/* ---- sizes ---- */

/* Upper bound of a map's kernel memory: key, value (per CPU where it is),
 * and about 64 bytes of bookkeeping per hash element. */
static unsigned long long map_bytes(const struct bpf_map *m, int ncpus)
{
	unsigned long long n = bpf_map__max_entries(m), v = bpf_map__value_size(m);
	enum bpf_map_type t = bpf_map__type(m);

	if (t == BPF_MAP_TYPE_RINGBUF)
		return n;
	if (t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_ARRAY ||
	    t == BPF_MAP_TYPE_LRU_PERCPU_HASH)
		v = ((v + 7) & ~7ull) * (unsigned long long)ncpus;
	if (t == BPF_MAP_TYPE_ARRAY || t == BPF_MAP_TYPE_PERCPU_ARRAY)
		return n * v;
	if (t == BPF_MAP_TYPE_SK_STORAGE)
		return 0; /* grows with the sockets: shown per socket */
	if (t == BPF_MAP_TYPE_STACK || t == BPF_MAP_TYPE_QUEUE)
		return n * v;
	return n * (bpf_map__key_size(m) + v + 64);
}

unsigned long long tm_bpf_map_memory(const struct tm_config *c, int ncpus, FILE *f)
{
	struct taskmeter_bpf *skel = taskmeter_bpf__open();
	unsigned long long total = 0;
	struct bpf_map *m;

	if (!skel || set_sizes(skel, c)) {
		taskmeter_bpf__destroy(skel);
		return 0;
	}
	bpf_object__for_each_map(m, skel->obj) {
		unsigned long long n = map_bytes(m, ncpus);
		const struct tm_map_size *ms = size_of(bpf_map__name(m));

		if (bpf_map__is_internal(m))
			continue;
		total += n;
		if (f)
			fprintf(f, "  %-16s %12llu bytes  %u entries%s%s%s\n", bpf_map__name(m), n,
				bpf_map__max_entries(m), ms ? " (" : "", ms ? ms->key : "",
				ms ? ")" : "");
	}
	if (f)
		fprintf(f, "  tm_sk_owner      %12u bytes per socket, as sockets come\n",
			bpf_map__value_size(skel->maps.tm_sk_owner) + 64);
	taskmeter_bpf__destroy(skel);
	return total;
}

unsigned long long tm_bpf_ringbuf_events(const struct tm_config *c, size_t size)
{
	/* each record in the ring carries an 8-byte header, 8-byte aligned */
	return (unsigned long long)c->ringbuf_kib * 1024 / ((size + 15) & ~7ull);
}

/* ---- sockets from before start-up ---- */

static int seed_one(const struct tm_sock_seed *s, void *ctx)
{
	int fd = *(int *)ctx;
	__u32 tgid = s->tgid;

	if (bpf_map_update_elem(fd, &s->cookie, &tgid, BPF_NOEXIST) && errno != EEXIST)
		return errno == E2BIG ? 0 : -errno; /* full: the rest stays unattributed */
	return 0;
}

int tm_bpf_seed_sockets(struct tm_bpf *b)
{
	int fd = bpf_map__fd(b->skel->maps.tm_seed), n;

	n = tm_sockdiag_scan(seed_one, &fd);
	if (n < 0) {
		tm_warn("enumerating existing sockets: %s: their traffic stays unattributed "
			"until a process uses them\n", strerror(-n));
		return n;
	}
	tm_info("seeded the owners of %d sockets that existed before start-up\n", n);
	return 0;
}
