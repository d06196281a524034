// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* taskmeter prom's exposition: escaping, both formats, Accept negotiation. */
#include <stdlib.h>

#include "prom_series.h"
#include "prom_text.h"
#include "tm_test.h"

static bool value_is(const char *in, const char *want)
{
	struct tm_pt_buf b = { 0 };
	bool ok;

	tm_pt_label_value(&b, in);
	ok = b.p && !strcmp(b.p, want);
	if (!ok)
		fprintf(stderr, "  label value of \"%s\": got \"%s\", want \"%s\"\n", in,
			b.p ? b.p : "", want);
	tm_pt_buf_free(&b);
	return ok;
}

TM_TEST(prom_text_label_escapes)
{
	ASSERT_TRUE(value_is("plain", "plain"));
	ASSERT_TRUE(value_is("a\"b\\c\nd", "a\\\"b\\\\c\\nd"));
	/* Tabs and other controls are legal in a label value: kept. */
	ASSERT_TRUE(value_is("t\tx\x01", "t\tx\x01"));
	/* Valid UTF-8 passes, invalid becomes U+FFFD per maximal subpart. */
	ASSERT_TRUE(value_is("h\xc3\xa9 \xf0\x9f\x98\x80", "h\xc3\xa9 \xf0\x9f\x98\x80"));
	ASSERT_TRUE(value_is("\xff" "a\xe2\x82", "\xef\xbf\xbd" "a\xef\xbf\xbd"));
	return true;
}

TM_TEST(prom_text_negotiate)
{
	static const struct {
		const char *accept;
		enum tm_pt_format want;
	} cases[] = {
		{ NULL, TM_PT_TEXT },
		{ "", TM_PT_TEXT },
		{ "*/*", TM_PT_TEXT },
		{ "text/plain;version=0.0.4", TM_PT_TEXT },
		{ "application/openmetrics-text", TM_PT_OPENMETRICS },
		/* what Prometheus 2.42 sends */
		{ "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
		  "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
		  TM_PT_OPENMETRICS },
		{ "text/plain;version=0.0.4;q=1, application/openmetrics-text; version=1.0.0; q=0.5",
		  TM_PT_TEXT },
		{ "Application/OpenMetrics-Text; version=0.0.1", TM_PT_OPENMETRICS },
		{ "application/openmetrics-text;version=2.0.0", TM_PT_TEXT },
		{ "application/openmetrics-text;q=0", TM_PT_TEXT },
		{ "application/json", TM_PT_TEXT },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (tm_pt_negotiate(cases[i].accept) != cases[i].want) {
			fprintf(stderr, "  case %zu: %s\n", i, cases[i].accept ? cases[i].accept : "NULL");
			return false;
		}
	return true;
}

/* A small exposition: one process series, one interface series. */
static char *render(enum tm_pt_format fmt)
{
	struct tm_ps_config pc = { .n_labels = 2, .max_label_sets = 10 };
	struct tm_ps *ps = tm_ps_new(&pc);
	const char *labels[] = { "we\"b", "" }, *names[] = { "service", "comm" };
	struct tm_ps_entry e[2] = {
		{ .group = TM_PS_SOCKET, .dir = TM_PS_TRANSMIT, .transport = TM_PS_TCP,
		  .type = TM_PS_IPV6, .total = { 1000, 10, 800 } },
		{ .group = TM_PS_IFACE, .dir = TM_PS_RECEIVE, .layer = TM_PS_XDP, .ifindex = 2,
		  .netns = 4026531840ull, .ifname = "eth0", .total = { 1014, 10, 800 } },
	};
	struct tm_ps_record r = { .id = { 1, 2, 3 }, .labels = labels, .entries = e,
				  .n_entries = 2 };
	struct tm_pt_stats st = { .frames_read = 3, .connected = true,
				  .last_frame_seconds = 1700000000.25, .max_label_sets = 10 };
	struct tm_pt_buf b = { 0 };

	if (!ps)
		return NULL;
	tm_ps_frame_begin(ps, 1, 1);
	tm_ps_add(ps, &r);
	tm_ps_frame_end(ps, true);
	if (tm_pt_render(&b, fmt, ps, names, 2, &st))
		tm_pt_buf_free(&b);
	tm_ps_free(ps);
	return b.p;
}

TM_TEST(prom_text_format_0_0_4)
{
	char *t = render(TM_PT_TEXT);

	ASSERT_TRUE(t);
	ASSERT_TRUE(strstr(t, "# HELP taskmeter_process_network_io_bytes_total IP bytes"));
	ASSERT_TRUE(strstr(t, "# TYPE taskmeter_process_network_io_bytes_total counter\n"));
	/* the empty comm is left out; escaped value; OTel direction names */
	ASSERT_TRUE(strstr(t, "\ntaskmeter_process_network_io_bytes_total{service=\"we\\\"b\","
			      "network_io_direction=\"transmit\",network_transport=\"tcp\","
			      "network_type=\"ipv6\"} 1000\n"));
	ASSERT_TRUE(strstr(t, "\ntaskmeter_process_network_payload_bytes_total{service=\"we\\\"b\","
			      "network_io_direction=\"transmit\",network_transport=\"tcp\","
			      "network_type=\"ipv6\"} 800\n"));
	ASSERT_TRUE(strstr(t, "\ntaskmeter_interface_io_bytes_total{interface=\"eth0\","
			      "netns=\"4026531840\",network_io_direction=\"receive\",layer=\"xdp\","
			      "owner=\"process\"} 1014\n"));
	ASSERT_TRUE(strstr(t, "\ntaskmeter_exporter_stream_connected 1\n"));
	ASSERT_TRUE(strstr(t, "\ntaskmeter_exporter_last_frame_timestamp_seconds 1700000000.250\n"));
	/* no stats frame yet: no collector families */
	ASSERT_TRUE(!strstr(t, "taskmeter_collector_"));
	ASSERT_TRUE(!strstr(t, "# UNIT") && !strstr(t, "# EOF"));
	free(t);
	return true;
}

TM_TEST(prom_text_format_openmetrics)
{
	char *t = render(TM_PT_OPENMETRICS);
	size_t len;

	ASSERT_TRUE(t);
	/* families named without _total, samples with it; UNIT where the
	 * name ends in its unit */
	ASSERT_TRUE(strstr(t, "# TYPE taskmeter_process_network_io_bytes counter\n"
			      "# UNIT taskmeter_process_network_io_bytes bytes\n"));
	ASSERT_TRUE(strstr(t, "# TYPE taskmeter_process_network_packets counter\n"
			      "taskmeter_process_network_packets_total{"));
	ASSERT_TRUE(strstr(t, "# TYPE taskmeter_exporter_render_seconds gauge\n"
			      "# UNIT taskmeter_exporter_render_seconds seconds\n"));
	len = strlen(t);
	ASSERT_TRUE(len > 6 && !strcmp(t + len - 6, "# EOF\n"));
	free(t);
	return true;
}
