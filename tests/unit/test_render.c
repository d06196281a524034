// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Client rendering: human units, JSON, terminal-safe text, row order. */
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>

#include "render.h"
#include "tm_test.h"

TM_TEST(human_bytes)
{
	static const struct {
		uint64_t v;
		const char *want;
	} cases[] = {
		{ 0, "0 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" },
		{ (1u << 20) - 1, "1.0 MiB" },  /* never "1024.0 KiB" */
		{ 3ull << 30, "3.0 GiB" },
		{ UINT64_MAX, "16.0 EiB" },
	};
	char buf[TM_HUMAN_LEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ASSERT_STREQ(tm_render_human_bytes(cases[i].v, buf, sizeof(buf)), cases[i].want);
	return true;
}

TM_TEST(human_rate)
{
	char buf[TM_HUMAN_LEN];

	ASSERT_STREQ(tm_render_human_rate(1536 * 1024, 1000000000ull, buf, sizeof(buf)), "1.5 MiB/s");
	ASSERT_STREQ(tm_render_human_rate(1000, 500000000ull, buf, sizeof(buf)), "2.0 KiB/s");
	ASSERT_STREQ(tm_render_human_rate(5, 2000000000ull, buf, sizeof(buf)), "2 B/s");
	ASSERT_STREQ(tm_render_human_rate(5, 0, buf, sizeof(buf)), "-");
	/* The longest result fits TM_HUMAN_LEN. */
	ASSERT_STREQ(tm_render_human_rate(1023ull << 10, 1000000000ull, buf, sizeof(buf)),
		     "1023.0 KiB/s");
	/* Regression (fuzz_render): huge rates over a tiny interval ran past
	 * EiB, longer than TM_HUMAN_LEN, and were cut. */
	ASSERT_STREQ(tm_render_human_rate(UINT64_MAX, 1, buf, sizeof(buf)), "15258.8 YiB/s");
	ASSERT_STREQ(tm_render_human_rate(1ull << 60, 1000, buf, sizeof(buf)), "976.6 ZiB/s");
	return true;
}

/* Runs call with out open on a memory stream; true if it wrote want. */
#define ASSERT_WRITES(want, call)                                            \
	({                                                                   \
		char *buf_ = NULL;                                           \
		size_t len_ = 0;                                             \
		FILE *out = open_memstream(&buf_, &len_);                    \
		bool eq_ = false;                                            \
		if (ASSERT_TRUE(out)) {                                      \
			call;                                                \
			fclose(out);                                         \
			eq_ = !strcmp(buf_, want);                           \
			if (!eq_)                                            \
				fprintf(stderr, "  got  %s\n  want %s\n", buf_, want); \
			ASSERT_TRUE(eq_);                                    \
		}                                                            \
		free(buf_);                                                  \
		eq_;                                                         \
	})

TM_TEST(json_string_escapes)
{
	ASSERT_WRITES("\"plain\"", tm_render_json_string(out, "plain"));
	ASSERT_WRITES("\"q\\\" b\\\\ n\\n t\\t\"", tm_render_json_string(out, "q\" b\\ n\n t\t"));
	/* JSON requires escaping C0 controls only; DEL passes. */
	ASSERT_WRITES("\"\\u0001\\u001b[31m\x7f\"", tm_render_json_string(out, "\x01\x1b[31m\x7f"));
	/* Valid UTF-8 passes through: 2, 3 and 4 byte forms. */
	ASSERT_WRITES("\"h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"",
		      tm_render_json_string(out, "h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"));
	/* Stray, truncated, overlong, surrogate: one U+FFFD per maximal
	 * invalid subpart, like Python's bytes.decode(errors="replace"). */
	ASSERT_WRITES("\"\\ufffd\\ufffd(\\ufffd\"", tm_render_json_string(out, "\xff\xc3(\x80"));
	ASSERT_WRITES("\"\\ufffdA\"", tm_render_json_string(out, "\xe2\x82" "A"));
	ASSERT_WRITES("\"\\ufffd\\ufffd\"", tm_render_json_string(out, "\xc0\xaf"));
	ASSERT_WRITES("\"\\ufffd\\ufffd\\ufffd\"", tm_render_json_string(out, "\xed\xa0\x80"));
	ASSERT_WRITES("\"\\ufffd\"", tm_render_json_string(out, "\xf0\x9f\x98"));
	return true;
}

TM_TEST(json_frame_fields)
{
	Taskmeter__Frame f = TASKMETER__FRAME__INIT;
	Taskmeter__ProcessRecord r = TASKMETER__PROCESS_RECORD__INIT;
	Taskmeter__ProcessRecord *rp = &r;
	Taskmeter__Counters c = TASKMETER__COUNTERS__INIT;
	char *argv[] = { "a", "b c" };

	f.has_seq = true;
	f.seq = UINT64_MAX;
	/* No records: the array is still there. */
	ASSERT_WRITES("{\"seq\":\"18446744073709551615\",\"records\":[]}", tm_render_json_frame(out, &f));
	f.has_metadata_mode = true;
	f.metadata_mode = TASKMETER__METADATA_MODE__MODE_PROCFS;
	r.has_kind = true;
	r.kind = TASKMETER__RECORD_KIND__PROCESS;
	r.has_exit_code = true;
	r.exit_code = -1;
	r.has_exited = true;
	r.exited = true;
	r.n_argv = 2;
	r.argv = argv;
	c.has_bytes = true;
	c.bytes = 0;
	r.rx_delta = &c;
	f.n_records = 1;
	f.records = &rp;
	ASSERT_WRITES("{\"seq\":\"18446744073709551615\",\"records\":[{\"kind\":\"PROCESS\","
		      "\"argv\":[\"a\",\"b c\"],\"exited\":true,\"exit_code\":-1,"
		      "\"rx_delta\":{\"bytes\":\"0\"}}],\"metadata_mode\":\"MODE_PROCFS\"}",
		      tm_render_json_frame(out, &f));
	/* 64-bit fields are strings, 32-bit ones numbers (proto3 JSON). */
	r.has_pid = r.has_start_time_ns = true;
	r.pid = UINT32_MAX;
	r.start_time_ns = (1ull << 53) + 1; /* a double would round it */
	ASSERT_WRITES("{\"kind\":\"PROCESS\",\"pid\":4294967295,"
		      "\"start_time_ns\":\"9007199254740993\",\"argv\":[\"a\",\"b c\"],"
		      "\"exited\":true,\"exit_code\":-1,\"rx_delta\":{\"bytes\":\"0\"}}",
		      tm_render_json_message(out, &r.base));
	/* A record line: its frame's seq, timestamp and host, then the record. */
	f.has_timestamp_ns = true;
	f.timestamp_ns = 7;
	f.hostname = "h\"1";
	ASSERT_WRITES("{\"seq\":\"18446744073709551615\",\"timestamp_ns\":\"7\","
		      "\"hostname\":\"h\\\"1\",\"kind\":\"PROCESS\",\"pid\":4294967295,"
		      "\"start_time_ns\":\"9007199254740993\",\"argv\":[\"a\",\"b c\"],"
		      "\"exited\":true,\"exit_code\":-1,\"rx_delta\":{\"bytes\":\"0\"}}",
		      tm_render_json_record_line(out, &f, &r));
	r.has_pid = r.has_start_time_ns = false;
	/* An enum value newer than the schema is written as its number. */
	r.kind = 99;
	ASSERT_WRITES("{\"kind\":99,\"argv\":[\"a\",\"b c\"],\"exited\":true,\"exit_code\":-1,"
		      "\"rx_delta\":{\"bytes\":\"0\"}}",
		      tm_render_json_message(out, &r.base));
	return true;
}

TM_TEST(term_text_sanitizes)
{
	char buf[64];

	ASSERT_EQ(tm_render_term_text(buf, sizeof(buf), "ls -l", 80), 5);
	ASSERT_STREQ(buf, "ls -l");
	/* Escape sequences, C1 controls (U+009B is CSI) and bad bytes. */
	ASSERT_EQ(tm_render_term_text(buf, sizeof(buf), "a\x1b[2Jb\xc2\x9b\xff", 80), 8);
	ASSERT_STREQ(buf, "a?[2Jb??");
	/* Columns count code points, not bytes. */
	ASSERT_EQ(tm_render_term_text(buf, sizeof(buf), "h\xc3\xa9llo", 3), 3);
	ASSERT_STREQ(buf, "h\xc3\xa9l");
	/* A small buffer cuts before a character, never inside one. */
	ASSERT_EQ(tm_render_term_text(buf, 3, "h\xc3\xa9", 80), 1);
	ASSERT_STREQ(buf, "h");
	return true;
}

TM_TEST(sort_by_rate_then_total)
{
	Taskmeter__ProcessRecord r[4], *p[4];
	Taskmeter__Counters d[4], t[4];
	static const uint64_t delta[] = { 10, 500, 10, 0 }, total[] = { 1, 2, 900, 5 };

	for (int i = 0; i < 4; i++) {
		taskmeter__process_record__init(&r[i]);
		taskmeter__counters__init(&d[i]);
		taskmeter__counters__init(&t[i]);
		d[i].has_bytes = t[i].has_bytes = true;
		d[i].bytes = delta[i];
		t[i].bytes = total[i];
		r[i].pid = i;
		r[i].tx_delta = &d[i];
		r[i].rx_total = &t[i];
		p[i] = &r[i];
	}
	tm_render_sort_records(p, 4);
	ASSERT_EQ(p[0]->pid, 1);
	ASSERT_EQ(p[1]->pid, 2);
	ASSERT_EQ(p[2]->pid, 0);
	ASSERT_EQ(p[3]->pid, 3);
	return true;
}

/* tm_render_term_fit counts columns as the terminal does: needs a UTF-8 locale. */
static bool utf8_locale(void)
{
	return setlocale(LC_CTYPE, "C.UTF-8") != NULL;
}

TM_TEST(term_fit_columns)
{
	char buf[64];

	ASSERT_TRUE(utf8_locale());
	/* Wide characters take two columns: one that would straddle the edge
	 * is left out. */
	ASSERT_EQ(tm_render_term_fit(buf, sizeof(buf), "\xe6\x97\xa5\xe6\x9c\xac", 3, false), 2);
	ASSERT_STREQ(buf, "\xe6\x97\xa5");
	ASSERT_EQ(tm_render_term_width("a\xe6\x97\xa5" "b", false), 4);
	/* Combining marks and format characters (U+202E, right-to-left
	 * override; U+200B, zero width space) have no width: replaced. */
	ASSERT_EQ(tm_render_term_fit(buf, sizeof(buf), "e\xcc\x81x\xe2\x80\xae" "y\xe2\x80\x8b", 80, false),
		  6);
	ASSERT_STREQ(buf, "e?x?y?");
	/* Controls and bad bytes, as tm_render_term_text. */
	ASSERT_EQ(tm_render_term_fit(buf, sizeof(buf), "\x1b[2J\xc2\x9b\xff", 80, false), 6);
	ASSERT_STREQ(buf, "?[2J??");
	/* A terminal that is not UTF-8 gets ASCII only. */
	ASSERT_EQ(tm_render_term_fit(buf, sizeof(buf), "h\xc3\xa9\xe6\x97\xa5", 80, true), 3);
	ASSERT_STREQ(buf, "h??");
	/* A small buffer cuts before a character. */
	ASSERT_EQ(tm_render_term_fit(buf, 4, "a\xe6\x97\xa5", 80, false), 1);
	ASSERT_STREQ(buf, "a");
	return true;
}

TM_TEST(term_tail_keeps_the_end)
{
	char buf[64];

	ASSERT_TRUE(utf8_locale());
	ASSERT_EQ(tm_render_term_tail(buf, sizeof(buf), "/a/b/web.service", 11, false), 11);
	ASSERT_STREQ(buf, "web.service");
	ASSERT_EQ(tm_render_term_tail(buf, sizeof(buf), "short", 11, false), 5);
	ASSERT_STREQ(buf, "short");
	/* A wide character that does not fit whole is dropped. */
	ASSERT_EQ(tm_render_term_tail(buf, sizeof(buf), "\xe6\x97\xa5x", 2, false), 1);
	ASSERT_STREQ(buf, "x");
	return true;
}

TM_TEST(record_kind_labels)
{
	ASSERT_STREQ(tm_render_kind_label(TASKMETER__RECORD_KIND__LOCAL_NO_OWNER),
		     "local without owner");
	ASSERT_STREQ(tm_render_kind_label(TASKMETER__RECORD_KIND__NON_IP), "non-IP");
	ASSERT_TRUE(!tm_render_kind_label(TASKMETER__RECORD_KIND__PROCESS));
	ASSERT_TRUE(!tm_render_kind_label(99));
	return true;
}
