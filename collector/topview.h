/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What `taskmeter top` shows, as text: the rows a frame gives under a view
 * (grouping, filter, exited processes, IP or payload bytes, sort order),
 * the interfaces panel, and every screen line fitted to a width. No curses
 * and no I/O here, so that the unit tests can check it on hand-made frames:
 * top.c prints these lines in batch mode, topui.c draws them with curses.
 */
#ifndef TM_TOPVIEW_H
#define TM_TOPVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taskmeter.pb-c.h"

#define TM_TOP_MIN_COLS 20
#define TM_TOP_MAX_COLS 1024
/* A column takes at most 4 bytes of UTF-8. */
#define TM_TOP_LINE_MAX (4 * TM_TOP_MAX_COLS + 1)
#define TM_TOP_FILTER_MAX 128

enum tm_top_dir { TM_TOP_RX, TM_TOP_TX, TM_TOP_BOTH };

enum tm_top_group {
	TM_GROUP_PROCESS,
	TM_GROUP_SERVICE,
	TM_GROUP_CONTAINER,
	TM_GROUP_CGROUP,
	TM_GROUP_USER,
	TM_GROUP_MAX,
};

struct tm_top_view {
	enum tm_top_dir sort_dir;
	bool cumulative;          /* sort by totals, not by rates */
	enum tm_top_group group;
	char filter[TM_TOP_FILTER_MAX];  /* "" shows everything */
	bool exited;              /* show processes that exited */
	bool payload;             /* L4 payload bytes instead of IP bytes */
	bool exact;               /* bytes as exact integers, not KiB, MiB, ... */
	bool interfaces;          /* the interfaces panel */
	bool ascii;               /* the terminal is not UTF-8 */
};

/* A line of the table: one process record, or one group of them. Byte
 * counts are in the view's unit (IP or payload). */
struct tm_top_row {
	const Taskmeter__ProcessRecord *rec;  /* process view; NULL for a group */
	const char *name;                     /* comm, or the group's name; */
	char buf[48];                         /* NULL: it is here */
	uint32_t procs;
	bool exited;
	uint64_t delta[2];                    /* [rx, tx] in the frame's interval */
	uint64_t total[2];                    /* cumulative */
	uint64_t key[2];                      /* sort keys, major first */
};

/* Per interface: what top saw since it connected (its baseline). */
struct tm_top_if {
	uint64_t netns;
	uint32_t ifindex;
	char name[32], xdp[16], tc[16];
	uint64_t base[4][2];   /* rx rec, tx rec, rx kernel, tx kernel: packets, bytes */
	uint64_t cur[4][2];
	uint64_t ts;           /* timestamp of the frame cur is from */
	uint64_t rate[2];      /* kernel bytes/s, rx and tx, once two frames are in */
	bool has_rate;
};

enum tm_top_layer { TM_LAYER_SOCKET, TM_LAYER_IFACE, TM_LAYER_DROP, TM_LAYER_MAX };

/* The record kinds that are buckets, in the panel's order. */
#define TM_TOP_BUCKETS 6

struct tm_top_bucket {
	bool present;
	uint64_t delta[2], total[2];
};

struct tm_top {
	struct tm_top_view view;
	/* Names uids (cached by the caller; valid for the life of t); NULL:
	 * numeric. */
	const char *(*user_name)(uint32_t uid, void *ctx);
	void *user_ctx;
	const Taskmeter__Frame *frame;  /* the caller's, see tm_top_set_frame */
	struct tm_top_row *rows;
	size_t n_rows, cap_rows;
	struct tm_top_row total;        /* sums of rows */
	size_t exited_hidden;           /* process records the view hides as exited */
	struct tm_top_if *ifs;
	size_t n_ifs;
	uint64_t base_ts;               /* timestamp of the interfaces' baseline */
	uint64_t counters_id;
	struct tm_top_bucket buckets[TM_TOP_BUCKETS][TM_LAYER_MAX];
};

void tm_top_init(struct tm_top *t);
void tm_top_free(struct tm_top *t);

/*
 * Takes a new whole frame; the caller keeps f valid until the next call,
 * tm_top_forget or tm_top_free. Updates the interface history (first
 * frame: baseline; new counters_id: new baseline). Rebuilds the rows.
 * Returns 0 or -ENOMEM.
 */
int tm_top_set_frame(struct tm_top *t, const Taskmeter__Frame *f);

/* A new connection: the interface history starts over (the last frame
 * stays shown until the next one). */
void tm_top_forget(struct tm_top *t);

/* Rebuilds the rows of the current frame after a change of t->view. */
void tm_top_build(struct tm_top *t);

/*
 * Applies a view key (the keys of tm_top_help). Returns true when the view
 * changed (the rows are rebuilt), false for a key that is not a view key.
 */
bool tm_top_key(struct tm_top *t, int key);

enum tm_top_line_kind {
	TM_LINE_TITLE,
	TM_LINE_ALERT,        /* title while something is wrong (reconnecting) */
	TM_LINE_STATUS,
	TM_LINE_HEADER,
	TM_LINE_TOTAL,
	TM_LINE_ROW,
	TM_LINE_ROW_EXITED,
	TM_LINE_PANEL_TITLE,
	TM_LINE_PANEL_HEADER,
	TM_LINE_PANEL_ROW,
	TM_LINE_PANEL_MISMATCH,  /* an interface whose records and kernel counters differ */
	TM_LINE_KEYS,
	TM_LINE_PROMPT,
	TM_LINE_TEXT,
};

struct tm_top_line {
	enum tm_top_line_kind kind;
	const char *text;    /* UTF-8, terminal-safe, at most the screen's columns */
	size_t cols;         /* its width in columns */
	size_t hl_col;       /* a header's sort column: its first column... */
	size_t hl_off, hl_len;  /* ...and its bytes in text (hl_len 0: none) */
};

typedef void (*tm_top_emit)(void *ctx, const struct tm_top_line *line);

struct tm_top_screen {
	size_t cols;         /* TM_TOP_MIN_COLS..TM_TOP_MAX_COLS (clamped) */
	size_t rows;         /* 0: batch: every row, no key line */
	size_t scroll;       /* first table row shown; clamped by tm_top_render */
	const char *alert;   /* leads the title, e.g. "RECONNECTING (9 s left)" */
	const char *prompt;  /* the filter being typed: replaces the key line */
};

/* Emits the screen's lines in order, top to bottom: at most s->rows. */
void tm_top_render(struct tm_top *t, struct tm_top_screen *s, tm_top_emit emit, void *ctx);

/* The help screen: keys and what the current view is. */
void tm_top_help(const struct tm_top *t, size_t cols, tm_top_emit emit, void *ctx);

/* --sort and --group arguments; 0 or -EINVAL. */
int tm_top_parse_sort(const char *arg, struct tm_top_view *v);
int tm_top_parse_group(const char *arg, struct tm_top_view *v);

#endif /* TM_TOPVIEW_H */
