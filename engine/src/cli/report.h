/* SPDX-License-Identifier: MIT */
/*
 * report.h: the pieces of `fedmesh report` that are tested on their own: a
 * strict parser for one JSON object per line, a string builder, escaping
 * for HTML and SVG, nice axis ticks, and an SVG line chart.
 */
#ifndef FMI_REPORT_H
#define FMI_REPORT_H

#include <stddef.h>

#include "fedmesh/fedmesh.h"

/* ---- JSON (report_json.c) ------------------------------------------ */

typedef enum fmi_jtype {
	FMI_J_NULL,
	FMI_J_BOOL,
	FMI_J_NUMBER,
	FMI_J_STRING,
	FMI_J_ARRAY,
	FMI_J_OBJECT
} fmi_jtype;

/* One member of the top-level object. Pointers are valid only during the
 * callback. */
typedef struct fmi_jmember {
	const char *key; /* decoded UTF-8, NUL-terminated */
	size_t key_len;
	fmi_jtype type;
	double num;      /* NUMBER (+-inf when out of range); BOOL: 0 or 1 */
	const char *str; /* STRING: decoded, NUL-terminated; ARRAY and
			  * OBJECT: the member's raw JSON text (not
			  * terminated) */
	size_t str_len;
} fmi_jmember;

/* Called for each member, in order; a non-zero return stops the parse
 * and is returned. */
typedef int (*fmi_jmember_fn)(void *ud, const fmi_jmember *m);

typedef struct fmi_jerror {
	size_t column; /* 1-based, in characters */
	char msg[112]; /* e.g. "expected ',' or '}' at column 17" */
} fmi_jerror;

/* Maximum nesting of arrays and objects inside the top-level object. */
#define FMI_JSON_MAX_DEPTH 64

/* Parses text[0, len) as exactly one JSON object (RFC 8259: strict
 * numbers, escapes and UTF-8; whitespace around it allowed) and calls fn
 * for each of its members. Nested arrays and objects are parsed and
 * handed over as raw text. Returns FM_OK, FM_EPROTO with err filled in
 * for malformed text, FM_ENOMEM, or fn's non-zero result. */
int fmi_json_object(const char *text, size_t len, fmi_jmember_fn fn,
    void *ud, fmi_jerror *err);

/* Length of the valid UTF-8 sequence that starts s[0, n) (shortest form,
 * no surrogates, at most U+10FFFF), or 0 when it is not valid. */
size_t fmi_utf8_seq(const unsigned char *s, size_t n);

/* True when text[0, len) holds only JSON whitespace. */
int fmi_json_blank(const char *text, size_t len);

/* ---- string builder and escaping (report_svg.c) -------------------- */

typedef struct fmi_sb {
	char *p; /* NUL-terminated when len > 0 */
	size_t len, cap;
	int oom; /* set once an allocation failed; later writes do nothing */
} fmi_sb;

void fmi_sb_put(fmi_sb *b, const char *s, size_t n);
void fmi_sb_puts(fmi_sb *b, const char *s);
void fmi_sb_printf(fmi_sb *b, const char *fmt, ...) FM_PRINTF(2, 3);
/* Appends s[0, n) escaped for HTML and XML text and attribute values
 * (& < > " ' as entities). Characters XML 1.0 forbids (controls other
 * than tab and newline, U+FFFE, U+FFFF) and invalid UTF-8 become U+FFFD.
 * With max > 0, keeps at most max characters, the last one an ellipsis
 * when the text was cut. */
void fmi_sb_esc(fmi_sb *b, const char *s, size_t n, size_t max);
void fmi_sb_free(fmi_sb *b);
/* Number of UTF-8 characters in s[0, n) (bytes that start one). */
size_t fmi_utf8_chars(const char *s, size_t n);

/* ---- axes and charts (report_svg.c) -------------------------------- */

/* At most this many ticks on an axis. */
#define FMI_TICKS_MAX 64

typedef struct fmi_ticks {
	double lo, hi, step; /* the axis runs from lo to hi; ticks at
			      * lo + i * step */
	int n;               /* number of ticks, lo and hi included */
} fmi_ticks;

/* Chooses an axis covering [lo, hi] with about target intervals whose
 * step is 1, 2 or 5 times a power of ten (at least 1 with integer set).
 * lo == hi widens the range around the value. Returns FM_OK, or
 * FM_EINVAL for non-finite input, lo > hi or target < 1. */
int fmi_nice_ticks(double lo, double hi, int target, int integer,
    fmi_ticks *t);

/* Writes the label of tick value v on axis t: as few decimals as the
 * step needs, k/M/G/T from 10^4 on, exponent notation for tiny values. */
void fmi_tick_label(const fmi_ticks *t, double v, char *buf, size_t size);

/* One line of a chart: y[i] against x[i]; points with a non-finite
 * coordinate are skipped. style picks the colour and dash. */
typedef struct fmi_series {
	const char *label;
	const double *x, *y;
	size_t n;
	unsigned style;
} fmi_series;

typedef struct fmi_chart {
	const char *title, *xlabel, *ylabel;
	int x_integer;  /* integer x ticks (rounds) */
	int width;      /* total width in pixels; the height follows */
	int standalone; /* an SVG file: XML declaration, background */
	const fmi_series *series;
	size_t nseries;
} fmi_chart;

/* Colour (#rrggbb) and SVG dash array ("" for solid) of a style: the
 * Okabe-Ito colour-blind-safe palette, then dashed, then dotted. */
const char *fmi_style_colour(unsigned style);
const char *fmi_style_dash(unsigned style);
/* CSS border-style matching fmi_style_dash: solid, dashed, dotted. */
const char *fmi_style_css(unsigned style);

/* Appends the chart as one <svg> element with class "chart": axes with
 * nice ticks and labels, grid lines, a polyline per series (and a circle
 * per point when there are few), and a legend under the plot. Series with
 * no finite point are left out of the legend. Returns FM_OK or
 * FM_ENOMEM. */
int fmi_svg_chart(fmi_sb *b, const fmi_chart *c);

#endif /* FMI_REPORT_H */
