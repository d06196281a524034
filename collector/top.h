/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * `taskmeter top`: the command (top.c: options, batch mode, exit status)
 * and its curses screen (topui.c).
 */
#ifndef TM_TOP_H
#define TM_TOP_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "topview.h"

struct tm_top_opts {
	const char *socket;
	double wait_s;
	unsigned long long count;  /* 0: until the stream ends */
	bool once;                 /* one plain-text snapshot */
	bool batch;                /* a plain-text snapshot per frame */
	bool color;
	size_t width;              /* of batch output; 0: the terminal's */
	struct tm_top_view view;   /* the view to start with */
};

extern const char tm_top_usage[];

/* `taskmeter top ARGS...` (argv[0] is "top"); returns the exit status. */
int tm_top_main(int argc, char **argv);

/*
 * The interactive screen, on the terminal of stdin/stdout, until q, a
 * signal, --count frames, or the stream's end (after --wait). c is
 * connected and non-blocking. Returns the exit status, or -1 when curses
 * cannot run on this terminal (nothing was drawn).
 */
int tm_topui_run(struct tm_top *t, struct tm_client *c, const struct tm_top_opts *o);

#endif /* TM_TOP_H */
