/* SPDX-License-Identifier: MIT */
/* report_test.c: the JSON parser, escaping, ticks and the SVG chart of
 * `fedmesh report`, including malformed input. */
#include "fm_test.h"

#include "cli/report.h"
#include "core/core.h"

/* Collects the members as "key=type:value;" text. */
static int
collect(void *ud, const fmi_jmember *m)
{
	fmi_sb *b = ud;
	fmi_sb_printf(b, "%s=", m->key);
	switch (m->type) {
	case FMI_J_NULL:
		fmi_sb_puts(b, "null");
		break;
	case FMI_J_BOOL:
		fmi_sb_printf(b, "bool:%g", m->num);
		break;
	case FMI_J_NUMBER:
		fmi_sb_printf(b, "num:%.17g", m->num);
		break;
	case FMI_J_STRING:
		fmi_sb_puts(b, "str:");
		fmi_sb_put(b, m->str, m->str_len);
		break;
	default:
		fmi_sb_printf(b, "%s:", m->type == FMI_J_ARRAY ? "arr" : "obj");
		fmi_sb_put(b, m->str, m->str_len);
	}
	fmi_sb_puts(b, ";");
	return FM_OK;
}

/* Parses s; returns the collected text (static) or the error text. */
static const char *
parse(const char *s)
{
	static char out[1024];
	fmi_sb b = { 0 };
	fmi_jerror err;
	int rv = fmi_json_object(s, strlen(s), collect, &b, &err);
	snprintf(out, sizeof out, "%s", rv == FM_OK ? (b.p ? b.p : "") :
	    rv == FM_EPROTO ? err.msg : "other error");
	fmi_sb_free(&b);
	return out;
}

static void
test_json_rows(void **state)
{
	(void)state;
	assert_string_equal(parse("{\"round\":1,\"accuracy\":0.5,\"loss\":null}"),
	    "round=num:1;accuracy=num:0.5;loss=null;");
	assert_string_equal(parse(" {} \r\n"), "");
	assert_string_equal(parse("{ \"a\" : -1.5e3 , \"b\":true,\"c\":false }"),
	    "a=num:-1500;b=bool:1;c=bool:0;");
	assert_string_equal(parse("{\"n\":0,\"m\":-0.25,\"e\":1E-2,\"p\":2e+2}"),
	    "n=num:0;m=num:-0.25;e=num:0.01;p=num:200;");
	/* nested values are handed over raw, whatever their contents */
	assert_string_equal(parse("{\"h\":[1,[2,{\"x\":\"]\"}]],\"o\":{\"k\":{}},"
	    "\"r\":2}"), "h=arr:[1,[2,{\"x\":\"]\"}]];o=obj:{\"k\":{}};r=num:2;");
	/* out of range: inf, not an error */
	assert_string_equal(parse("{\"big\":1e999}"), "big=num:inf;");
	/* a number long enough to need the growable buffer */
	char longnum[400] = "{\"x\":1";
	memset(longnum + 6, '0', 300);
	strcpy(longnum + 306, "}");
	assert_string_equal(parse(longnum), "x=num:1.0000000000000001e+300;");
}

static void
test_json_strings(void **state)
{
	(void)state;
	assert_string_equal(parse("{\"s\":\"a\\\"b\\\\c\\/d\\n\\t\"}"),
	    "s=str:a\"b\\c/d\n\t;");
	assert_string_equal(parse("{\"u\":\"\\u00e9\\u20AC\\ud83d\\ude00\"}"),
	    "u=str:\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80;");
	assert_string_equal(parse("{\"\xC3\xA9t\xC3\xA9\":\"caf\xC3\xA9\"}"),
	    "\xC3\xA9t\xC3\xA9=str:caf\xC3\xA9;");
	/* a key that appears twice is reported twice */
	assert_string_equal(parse("{\"a\":1,\"a\":2}"), "a=num:1;a=num:2;");
}

static void
test_json_malformed(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "", "expected '{' (each line must be one JSON object) at "
		  "column 1 (the end of the line)" },
		{ "[1]", "expected '{' (each line must be one JSON object) at "
		  "column 1" },
		{ "{\"round\":1 \"loss\":2}", "expected ',' or '}' at column 12" },
		{ "{\"round\":1,}", "expected a string key at column 12" },
		{ "{\"round\" 1}", "expected ':' at column 10" },
		{ "{round:1}", "expected a string key at column 2" },
		{ "{\"a\":1", "expected ',' or '}' at column 7 (the end of the "
		  "line)" },
		{ "{\"a\":01}", "invalid number (leading zero) at column 7" },
		{ "{\"a\":1.}", "invalid number (a digit expected after '.') at "
		  "column 8" },
		{ "{\"a\":1e}", "invalid number (a digit expected in the "
		  "exponent) at column 8" },
		{ "{\"a\":-}", "invalid number (a digit expected) at column 7" },
		{ "{\"a\":+1}", "expected a value (a number, string, true, false, "
		  "null, array or object) at column 6" },
		{ "{\"a\":.5}", "expected a value (a number, string, true, false, "
		  "null, array or object) at column 6" },
		{ "{\"a\":NaN}", "expected a value (a number, string, true, "
		  "false, null, array or object) at column 6" },
		{ "{\"a\":tru}", "expected a value (a number, string, true, "
		  "false, null, array or object) at column 6" },
		{ "{\"a\":0x10}", "expected ',' or '}' at column 7" },
		{ "{\"a\":\"x}", "unterminated string at column 9 (the end of the "
		  "line)" },
		{ "{\"a\":\"\\q\"}", "invalid escape in a string at column 8" },
		{ "{\"a\":\"\\u12G4\"}", "invalid \\u escape (4 hex digits "
		  "expected) at column 8" },
		{ "{\"a\":\"\\udc00\"}", "unpaired low surrogate in a \\u escape "
		  "at column 7" },
		{ "{\"a\":\"\\ud800x\"}", "unpaired high surrogate in a \\u "
		  "escape at column 7" },
		{ "{\"a\":\"\t\"}", "control character in a string (escape it) "
		  "at column 7" },
		{ "{\"a\":\"\xC3\"}", "invalid UTF-8 in a string at column 7" },
		{ "{\"a\":\"\xC0\xAF\"}", "invalid UTF-8 in a string at column 7" },
		{ "{\"a\":\"\xED\xA0\x80\"}", "invalid UTF-8 in a string at "
		  "column 7" },
		{ "{\"a\":[1,2}", "expected ',' or ']' at column 10" },
		{ "{\"a\":{\"b\" 1}}", "expected ':' at column 11" },
		{ "{\"a\":1}}", "unexpected text after the object at column 8" },
		{ "{\"a\":1} {\"b\":2}", "unexpected text after the object at "
		  "column 9" },
		/* columns count characters, not bytes */
		{ "{\"\xC3\xA9\xC3\xA9\":1 x}", "expected ',' or '}' at column 9" },
	};
	for (size_t i = 0; i < FMI_ARRAY_LEN(cases); i++) {
		const char *got = parse(cases[i][0]);
		if (strcmp(got, cases[i][1]) != 0) {
			print_error("case %zu: %s\n  got  %s\n  want %s\n", i,
			    cases[i][0], got, cases[i][1]);
			fail();
		}
	}
}

/* Without the terminator the parser must stop at len; NULs are errors. */
static void
test_json_bounds(void **state)
{
	(void)state;
	fmi_jerror err;
	fmi_sb b = { 0 };
	const char text[] = "{\"a\":12345}";
	for (size_t n = 0; n < sizeof text - 1; n++) {
		char *copy = malloc(n ? n : 1); /* exact size: ASan sees reads */
		memcpy(copy, text, n);
		assert_int_equal(fmi_json_object(copy, n, collect, &b, &err),
		    FM_EPROTO);
		free(copy);
	}
	assert_int_equal(fmi_json_object("{\"a\":1\0}", 8, collect, &b, &err),
	    FM_EPROTO);
	assert_string_equal(err.msg, "expected ',' or '}' at column 7");
	fmi_sb_free(&b);
	/* nesting: 64 levels inside the object parse, 65 do not */
	char deep[300];
	for (int depth = 64; depth <= 65; depth++) {
		int k = snprintf(deep, sizeof deep, "{\"a\":");
		for (int i = 0; i < depth; i++) {
			deep[k++] = '[';
		}
		for (int i = 0; i < depth; i++) {
			deep[k++] = ']';
		}
		deep[k++] = '}';
		int rv = fmi_json_object(deep, (size_t)k, collect, &b, &err);
		fmi_sb_free(&b);
		assert_int_equal(rv, depth == 64 ? FM_OK : FM_EPROTO);
	}
	assert_non_null(strstr(err.msg, "nesting deeper than 64 levels"));
	assert_true(fmi_json_blank(" \t\r\n", 4));
	assert_false(fmi_json_blank(" x", 2));
}

static int
stop_at_b(void *ud, const fmi_jmember *m)
{
	(void)ud;
	return strcmp(m->key, "b") == 0 ? FM_ENOMEM : FM_OK;
}

static void
test_json_callback_stops(void **state)
{
	(void)state;
	const char *s = "{\"a\":1,\"b\":2,\"c\":3}";
	assert_int_equal(fmi_json_object(s, strlen(s), stop_at_b, NULL, NULL),
	    FM_ENOMEM);
}

static const char *
escaped(const char *s, size_t n, size_t max)
{
	static char out[256];
	fmi_sb b = { 0 };
	fmi_sb_esc(&b, s, n, max);
	snprintf(out, sizeof out, "%s", b.p ? b.p : "");
	fmi_sb_free(&b);
	return out;
}

static void
test_escape(void **state)
{
	(void)state;
	assert_string_equal(escaped("<a href=\"x\">&'", 14, 0),
	    "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
	/* controls, a NUL, invalid UTF-8, U+FFFF and C1 become U+FFFD */
	assert_string_equal(escaped("a\x01" "b\0c\xFF\xEF\xBF\xBF\xC2\x85", 11,
	    0), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD"
	    "\xEF\xBF\xBD");
	assert_string_equal(escaped("tab\there\xC3\xA9", 10, 0),
	    "tab\there\xC3\xA9");
	/* cut to max characters with an ellipsis; entities count as one */
	assert_string_equal(escaped("abcdef", 6, 4), "abc\xE2\x80\xA6");
	assert_string_equal(escaped("abcd", 4, 4), "abcd");
	assert_string_equal(escaped("\xC3\xA9\xC3\xA9\xC3\xA9", 6, 2),
	    "\xC3\xA9\xE2\x80\xA6");
	assert_string_equal(escaped("<<<<", 4, 3), "&lt;&lt;\xE2\x80\xA6");
	assert_int_equal(fmi_utf8_chars("\xC3\xA9x\xE2\x82\xAC", 6), 3);
}

static void
check_ticks(double lo, double hi, int target, int integer, double want_lo,
    double want_hi, double want_step)
{
	fmi_ticks t;
	assert_int_equal(fmi_nice_ticks(lo, hi, target, integer, &t), FM_OK);
	if (fabs(t.lo - want_lo) > 1e-12 * fmax(1, fabs(want_lo)) ||
	    fabs(t.hi - want_hi) > 1e-12 * fmax(1, fabs(want_hi)) ||
	    fabs(t.step - want_step) > 1e-12 * want_step) {
		print_error("[%g, %g]/%d: got %g..%g step %g, want %g..%g "
		    "step %g\n", lo, hi, target, t.lo, t.hi, t.step, want_lo,
		    want_hi, want_step);
		fail();
	}
	assert_true(t.lo <= lo && t.hi >= hi);
	assert_int_equal(t.n, (int)llround((t.hi - t.lo) / t.step) + 1);
	assert_true(t.n >= 2 && t.n <= FMI_TICKS_MAX);
	/* 1, 2 or 5 times a power of ten */
	double m = t.step / pow(10, floor(log10(t.step) + 1e-12));
	assert_true(fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 ||
	    fabs(m - 5) < 1e-9);
}

static void
test_ticks(void **state)
{
	(void)state;
	check_ticks(0.3442, 0.6161, 5, 0, 0.3, 0.7, 0.1);
	check_ticks(0, 1, 5, 0, 0, 1, 0.2);
	check_ticks(0, 100, 5, 0, 0, 100, 20);
	check_ticks(1, 4, 6, 1, 1, 4, 1);       /* rounds: never 0.5 */
	check_ticks(1, 50, 6, 1, 0, 50, 10);
	check_ticks(25177, 25186, 5, 0, 25176, 25186, 2);
	check_ticks(-3.7, 12.2, 5, 0, -5, 15, 5);
	check_ticks(0.1, 0.3, 2, 0, 0.1, 0.3, 0.1); /* no float-noise tick */
	check_ticks(1e-7, 5e-7, 4, 0, 1e-7, 5e-7, 1e-7);
	/* one value: widened around it */
	check_ticks(10, 10, 5, 0, 9, 11, 0.5);
	check_ticks(0, 0, 5, 0, -1, 1, 0.5);
	check_ticks(1, 1, 6, 1, 0, 2, 1);
	/* extremes stay finite */
	fmi_ticks t;
	assert_int_equal(fmi_nice_ticks(-1e308, 1e308, 5, 0, &t), FM_OK);
	assert_true(isfinite(t.lo) && isfinite(t.hi) && t.n <= FMI_TICKS_MAX);
	assert_int_equal(fmi_nice_ticks(1e16, 1e16 + 2, 5, 0, &t), FM_OK);
	assert_true(t.hi > t.lo && t.n <= FMI_TICKS_MAX);
	assert_int_equal(fmi_nice_ticks(5e-324, 1e-323, 5, 0, &t), FM_OK);
	assert_true(t.hi > t.lo && t.n <= FMI_TICKS_MAX);
	FMT_FAIL(fmi_nice_ticks(NAN, 1, 5, 0, &t), FM_EINVAL);
	FMT_FAIL(fmi_nice_ticks(0, INFINITY, 5, 0, &t), FM_EINVAL);
	FMT_FAIL(fmi_nice_ticks(2, 1, 5, 0, &t), FM_EINVAL);
	FMT_FAIL(fmi_nice_ticks(0, 1, 0, 0, &t), FM_EINVAL);
}

static const char *
label(double lo, double hi, int target, double v)
{
	static char buf[64];
	fmi_ticks t;
	assert_int_equal(fmi_nice_ticks(lo, hi, target, 0, &t), FM_OK);
	fmi_tick_label(&t, v, buf, sizeof buf);
	return buf;
}

static void
test_tick_labels(void **state)
{
	(void)state;
	assert_string_equal(label(0.34, 0.62, 5, 0.4), "0.4");
	assert_string_equal(label(0, 0.25, 5, 0.15), "0.15");
	assert_string_equal(label(0, 1, 5, 0), "0");
	assert_string_equal(label(0, 1, 5, 1e-17), "0"); /* float noise */
	assert_string_equal(label(1, 50, 5, 30), "30");
	assert_string_equal(label(0, 30000, 6, 25000), "25k");
	assert_string_equal(label(25000, 26000, 4, 25500), "25.5k");
	assert_string_equal(label(0, 2.5e6, 5, 1.5e6), "1.5M");
	assert_string_equal(label(0, 4e9, 4, 3e9), "3G");
	assert_string_equal(label(-1, 1, 4, -0.5), "-0.5");
	assert_string_equal(label(0, 5e-5, 5, 2e-5), "20\xC2\xB5");
	assert_string_equal(label(1e-7, 9.9e-6, 5, 8e-6), "8\xC2\xB5");
	assert_string_equal(label(1e-7, 9.9e-6, 5, 1e-5), "10\xC2\xB5");
	assert_string_equal(label(0, 1e-6, 5, 2e-7), "0.2\xC2\xB5");
	assert_string_equal(label(0, 0.0012, 4, 0.0009), "0.0009");
	assert_string_equal(label(0, 1e-20, 5, 4e-21), "4e-21");
	assert_string_equal(label(0, 1e20, 5, 4e19), "4e+19");
}

static void
test_styles(void **state)
{
	(void)state;
	assert_string_equal(fmi_style_colour(0), "#0072B2");
	assert_string_equal(fmi_style_colour(7), "#0072B2");
	assert_string_equal(fmi_style_dash(0), "");
	assert_string_equal(fmi_style_dash(7), "7 4");
	assert_string_equal(fmi_style_css(14), "dotted");
}

static size_t
count(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p++) {
		n++;
	}
	return n;
}

static void
test_chart(void **state)
{
	(void)state;
	const double x[] = { 1, 2, 3, 4 }, y[] = { 0.3, NAN, 0.5, 0.6 };
	const double y2[] = { NAN, NAN, NAN, NAN }, y3[] = { 0.1, NAN, NAN, NAN };
	const fmi_series s[] = { { "run <a>", x, y, 4, 0 },
		{ "empty", x, y2, 4, 1 }, { "one & only", x, y3, 4, 8 } };
	fmi_chart c = { "acc & \"loss\"", "round", "acc<1>", 1, 560, 1, s, 3 };
	fmi_sb b = { 0 };
	FMT_PASS(fmi_svg_chart(&b, &c));
	assert_non_null(b.p);
	assert_true(strncmp(b.p, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\"", 77) == 0);
	assert_int_equal(count(b.p, "<svg"), 1);
	assert_int_equal(count(b.p, "</svg>\n"), 1);
	/* the NaN is skipped: three points in one polyline; the single
	 * point of the third series is a dot; the empty one is left out */
	assert_int_equal(count(b.p, "<polyline"), 1);
	assert_int_equal(count(b.p, "<circle"), 4);
	assert_non_null(strstr(b.p, "run &lt;a&gt;"));
	assert_non_null(strstr(b.p, "one &amp; only"));
	assert_null(strstr(b.p, ">empty<"));
	assert_non_null(strstr(b.p, "acc &amp; &quot;loss&quot;"));
	assert_non_null(strstr(b.p, "acc&lt;1&gt;"));
	assert_null(strstr(b.p, "<a>"));
	assert_null(strstr(b.p, "nan"));
	assert_non_null(strstr(b.p, "stroke-dasharray=\"7 4\""));
	fmi_sb_free(&b);
	/* nothing to draw: still a valid chart that says so */
	fmi_chart e = { "t", "round", "y", 1, 100, 0, s + 1, 1 };
	FMT_PASS(fmi_svg_chart(&b, &e));
	assert_non_null(strstr(b.p, "no values"));
	assert_null(strstr(b.p, "<?xml"));
	fmi_sb_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_rows),
		cmocka_unit_test(test_json_strings),
		cmocka_unit_test(test_json_malformed),
		cmocka_unit_test(test_json_bounds),
		cmocka_unit_test(test_json_callback_stops),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_ticks),
		cmocka_unit_test(test_tick_labels),
		cmocka_unit_test(test_styles),
		cmocka_unit_test(test_chart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
