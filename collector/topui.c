// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The curses screen of `taskmeter top`: one poll loop over the terminal and
 * the collector's socket. Every line comes from topview.c already fitted to
 * the width and terminal-safe; here they only get drawn and coloured.
 */
#define _GNU_SOURCE
#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "top.h"

/* How often a reconnect is tried, and its countdown redrawn. */
#define RECONNECT_POLL_MS 100
/* Esc alone must not wait a second to be told from an arrow key. */
#define ESC_DELAY_MS 25
#define KEY_ESC 27
#define KEY_CTRL(c) ((c) & 0x1f)

enum ui_end { END_NONE, END_QUIT, END_COUNT, END_STREAM, END_GAVE_UP, END_BROKEN, END_NOMEM };

struct ui {
	struct tm_top *t;
	struct tm_client *c;
	const struct tm_top_opts *o;
	struct tm_top_screen scr;
	bool color, help, prompting, reconnecting;
	char edit[TM_TOP_FILTER_MAX], saved[TM_TOP_FILTER_MAX];
	char alert[96];
	int y;                 /* next line to draw */
	int cursor;            /* prompt cursor column */
	unsigned long long frames;
	enum ui_end end;
	int err;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

enum { PAIR_TITLE = 1, PAIR_ALERT, PAIR_HEADER, PAIR_MISMATCH, PAIR_PANEL };

static void colors_init(struct ui *u)
{
	u->color = u->o->color && has_colors() && start_color() == OK;
	if (!u->color)
		return;
	use_default_colors();
	init_pair(PAIR_TITLE, COLOR_WHITE, COLOR_BLUE);
	init_pair(PAIR_ALERT, COLOR_WHITE, COLOR_RED);
	init_pair(PAIR_HEADER, COLOR_BLACK, COLOR_CYAN);
	init_pair(PAIR_MISMATCH, COLOR_RED, -1);
	init_pair(PAIR_PANEL, COLOR_CYAN, -1);
}

/* Colour where wanted, else attributes alone (--no-color, NO_COLOR). */
static attr_t line_attr(const struct ui *u, enum tm_top_line_kind kind)
{
	switch (kind) {
	case TM_LINE_TITLE:
		return u->color ? COLOR_PAIR(PAIR_TITLE) | A_BOLD : A_REVERSE;
	case TM_LINE_ALERT:
		return u->color ? COLOR_PAIR(PAIR_ALERT) | A_BOLD : A_REVERSE | A_BOLD;
	case TM_LINE_HEADER:
	case TM_LINE_PANEL_HEADER:
		return u->color ? COLOR_PAIR(PAIR_HEADER) : A_REVERSE;
	case TM_LINE_TOTAL:
	case TM_LINE_PROMPT:
		return A_BOLD;
	case TM_LINE_ROW_EXITED:
		return A_DIM;
	case TM_LINE_PANEL_TITLE:
		return u->color ? COLOR_PAIR(PAIR_PANEL) | A_BOLD : A_BOLD;
	case TM_LINE_PANEL_MISMATCH:
		return u->color ? COLOR_PAIR(PAIR_MISMATCH) | A_BOLD : A_BOLD | A_UNDERLINE;
	default:
		return A_NORMAL;
	}
}

static bool full_width(enum tm_top_line_kind kind)
{
	return kind == TM_LINE_TITLE || kind == TM_LINE_ALERT || kind == TM_LINE_HEADER ||
	       kind == TM_LINE_PANEL_HEADER;
}

static void draw_line(void *ctx, const struct tm_top_line *line)
{
	struct ui *u = ctx;
	int y = u->y++;

	if (y >= LINES)
		return;
	attrset(line_attr(u, line->kind));
	mvaddstr(y, 0, line->text);
	/* Bars span the screen; the bottom-right cell is never written, so the
	 * screen cannot scroll. */
	if (full_width(line->kind) && y + 1 < LINES)
		for (int x = (int)line->cols; x < COLS; x++)
			addch(' ');
	if (line->hl_len) {
		attron(A_BOLD | A_UNDERLINE);
		mvaddnstr(y, (int)line->hl_col, line->text + line->hl_off, (int)line->hl_len);
	}
	if (line->kind == TM_LINE_PROMPT)
		u->cursor = (int)line->cols;
	attrset(A_NORMAL);
}

static void draw(struct ui *u)
{
	erase();
	u->y = 0;
	if (COLS < TM_TOP_MIN_COLS) {
		/* Lines are fitted to TM_TOP_MIN_COLS at the least: they would wrap. */
		mvaddnstr(0, 0, "terminal too narrow", COLS);
	} else if (u->help) {
		tm_top_help(u->t, (size_t)COLS, draw_line, u);
	} else {
		u->scr.cols = (size_t)COLS;
		u->scr.rows = (size_t)LINES;
		u->scr.alert = u->reconnecting ? u->alert : NULL;
		u->scr.prompt = u->prompting ? u->edit : NULL;
		tm_top_render(u->t, &u->scr, draw_line, u);
	}
	if (u->prompting && !u->help) {
		curs_set(1);
		move(LINES - 1, u->cursor < COLS ? u->cursor : COLS - 1);
	} else {
		curs_set(0);
	}
	refresh();
}

/* ---- Keys -------------------------------------------------------------- */

/* Appends the UTF-8 of wc to the filter being typed, if it fits. */
static void edit_append(struct ui *u, wint_t wc)
{
	size_t n = strlen(u->edit);
	char b[4];
	size_t k;

	if (wc < 0x80) {
		b[0] = (char)wc, k = 1;
	} else if (wc < 0x800) {
		b[0] = (char)(0xc0 | wc >> 6), b[1] = (char)(0x80 | (wc & 0x3f)), k = 2;
	} else if (wc < 0x10000) {
		b[0] = (char)(0xe0 | wc >> 12), b[1] = (char)(0x80 | (wc >> 6 & 0x3f));
		b[2] = (char)(0x80 | (wc & 0x3f)), k = 3;
	} else {
		b[0] = (char)(0xf0 | wc >> 18), b[1] = (char)(0x80 | (wc >> 12 & 0x3f));
		b[2] = (char)(0x80 | (wc >> 6 & 0x3f)), b[3] = (char)(0x80 | (wc & 0x3f)), k = 4;
	}
	if (n + k < sizeof(u->edit)) {
		memcpy(u->edit + n, b, k);
		u->edit[n + k] = '\0';
	}
}

static void edit_backspace(struct ui *u)
{
	size_t n = strlen(u->edit);

	/* Back over continuation bytes to the start of the character. */
	while (n && ((unsigned char)u->edit[n - 1] & 0xc0) == 0x80)
		n--;
	if (n)
		n--;
	u->edit[n] = '\0';
}

/* The filter applies while it is typed; Esc puts the old one back. */
static void apply_filter(struct ui *u, const char *text)
{
	snprintf(u->t->view.filter, sizeof(u->t->view.filter), "%s", text);
	u->scr.scroll = 0;
	tm_top_build(u->t);
}

static void prompt_key(struct ui *u, wint_t ch, bool fkey)
{
	if ((!fkey && (ch == '\n' || ch == '\r')) || (fkey && ch == KEY_ENTER)) {
		u->prompting = false;
		return;
	}
	if (!fkey && ch == KEY_ESC) {
		u->prompting = false;
		apply_filter(u, u->saved);
		return;
	}
	if ((fkey && ch == KEY_BACKSPACE) || (!fkey && (ch == 127 || ch == '\b')))
		edit_backspace(u);
	else if (!fkey && ch == KEY_CTRL('u'))
		u->edit[0] = '\0';
	else if (!fkey && ch >= 0x20 && ch != 0x7f)
		edit_append(u, ch);
	else
		return;
	apply_filter(u, u->edit);
}

static void scroll_by(struct ui *u, long n)
{
	if (n < 0 && (size_t)-n > u->scr.scroll)
		u->scr.scroll = 0;
	else
		u->scr.scroll += n;  /* tm_top_render clamps it */
}

static void fkey(struct ui *u, wint_t ch)
{
	long page = LINES > 6 ? LINES - 6 : 1;

	switch (ch) {
	case KEY_UP: scroll_by(u, -1); break;
	case KEY_DOWN: scroll_by(u, 1); break;
	case KEY_PPAGE: scroll_by(u, -page); break;
	case KEY_NPAGE: scroll_by(u, page); break;
	case KEY_HOME: u->scr.scroll = 0; break;
	case KEY_END: u->scr.scroll = u->t->n_rows; break;
	default: break;  /* KEY_RESIZE: the redraw is all it needs */
	}
}

static void key(struct ui *u, wint_t ch, bool is_fkey)
{
	if (u->help && !(is_fkey && ch == KEY_RESIZE)) {
		u->help = false;
		return;
	}
	if (u->prompting) {
		prompt_key(u, ch, is_fkey);
		return;
	}
	if (is_fkey) {
		fkey(u, ch);
		return;
	}
	switch (ch) {
	case 'q': case 'Q': u->end = END_QUIT; break;
	case 'h': case '?': u->help = true; break;
	case '/':
		u->prompting = true;
		snprintf(u->saved, sizeof(u->saved), "%s", u->t->view.filter);
		snprintf(u->edit, sizeof(u->edit), "%s", u->t->view.filter);
		break;
	default:
		if (ch < 0x80 && tm_top_key(u->t, (int)ch))
			u->scr.scroll = 0;
		break;
	}
}

static void read_keys(struct ui *u)
{
	wint_t ch;
	int r;

	while (u->end == END_NONE && (r = get_wch(&ch)) != ERR)
		key(u, ch, r == KEY_CODE_YES);
}

/* ---- The stream ------------------------------------------------------------ */

static void stream_ended(struct ui *u)
{
	if (u->o->wait_s <= 0) {
		u->end = END_STREAM;
		return;
	}
	u->reconnecting = true;
	tm_client_reconnect_start(u->c);
}

static void read_frames(struct ui *u)
{
	Taskmeter__Frame *f;
	int err = -EAGAIN;

	while (u->end == END_NONE && (err = tm_client_next(u->c, &f)) == 1) {
		if (tm_top_set_frame(u->t, f)) {
			u->end = END_NOMEM;
			return;
		}
		if (u->o->count && ++u->frames >= u->o->count)
			u->end = END_COUNT;
	}
	if (u->end != END_NONE || err == -EAGAIN)
		return;
	if (err == 0) {
		stream_ended(u);
	} else {
		u->end = END_BROKEN;
		u->err = err;
	}
}

static void reconnect(struct ui *u)
{
	int err = tm_client_reconnect_try(u->c);

	if (!err) {
		u->reconnecting = false;
		tm_top_forget(u->t);
		return;
	}
	if (err != -EAGAIN) {
		u->end = END_GAVE_UP;
		u->err = err;
		return;
	}
	snprintf(u->alert, sizeof(u->alert), "RECONNECTING to taskmeterd (%.0f s left)",
		 tm_client_wait_left(u->c) + 0.49);
}

/* ---- The loop ------------------------------------------------------------ */

static int wait_events(struct ui *u)
{
	struct pollfd p[2] = {
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = u->c->fd, .events = POLLIN },
	};
	int n = poll(p, u->c->fd >= 0 ? 2 : 1, u->reconnecting ? RECONNECT_POLL_MS : -1);

	/* A signal (SIGWINCH among them) is an event like the others. */
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	/* The terminal is gone (a hangup without SIGHUP): nobody to show. */
	if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
		u->end = END_QUIT;
	return 0;
}

static void ui_loop(struct ui *u)
{
	draw(u);
	while (u->end == END_NONE) {
		u->err = wait_events(u);
		if (u->err) {
			u->end = END_BROKEN;
			break;
		}
		if (got_signal)
			u->end = END_QUIT;
		if (u->end != END_NONE)
			break;
		read_keys(u);
		if (u->end == END_NONE && u->c->fd >= 0)
			read_frames(u);
		if (u->end == END_NONE && u->reconnecting)
			reconnect(u);
		if (u->end == END_NONE)
			draw(u);
	}
}

/* After endwin: what ended the screen, and the exit status it means. */
static int report(const struct ui *u)
{
	switch (u->end) {
	case END_QUIT:
		return got_signal && got_signal != SIGINT ? 128 + got_signal : TM_EXIT_OK;
	case END_COUNT:
		return TM_EXIT_OK;
	case END_STREAM:
		tm_client_warn_ended(u->c, false);
		return u->c->refused ? TM_EXIT_FAIL : TM_EXIT_ENDED;
	case END_GAVE_UP:
		if (u->err != -ETIMEDOUT)
			tm_client_warn_connect(u->c, u->err);
		tm_client_warn_ended(u->c, true);
		return u->c->refused ? TM_EXIT_FAIL : TM_EXIT_ENDED;
	case END_NOMEM:
		tm_err("out of memory\n");
		return TM_EXIT_FAIL;
	default:
		tm_client_warn_broken(u->c, u->err);
		return TM_EXIT_FAIL;
	}
}

static void signals(void (*handler)(int))
{
	struct sigaction sa = { .sa_handler = handler };

	/* No SA_RESTART: poll returns and the loop sees the flag. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int tm_topui_run(struct tm_top *t, struct tm_client *c, const struct tm_top_opts *o)
{
	struct ui u = { .t = t, .c = c, .o = o };
	SCREEN *scr = newterm(NULL, stdout, stdin);

	if (!scr)
		return -1;
	set_term(scr);
	signals(on_signal);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(ESC_DELAY_MS);
	colors_init(&u);
	ui_loop(&u);
	endwin();
	delscreen(scr);
	signals(SIG_DFL);
	return report(&u);
}
