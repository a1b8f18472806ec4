/* SPDX-License-Identifier: MIT */
/*
 * report_svg.c: a string builder, HTML/XML escaping, nice axis ticks and
 * an SVG line chart (axes, grid, one polyline per series, legend), with
 * text widths estimated so that labels do not overlap or get cut off.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/report.h"

/* ---- string builder -------------------------------------------------- */

static int
sb_reserve(fmi_sb *b, size_t n)
{
	if (b->oom) {
		return 0;
	}
	if (b->cap - b->len > n) {
		return 1;
	}
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len <= n) {
		if (cap > ((size_t)-1) / 2) {
			b->oom = 1;
			return 0;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = 1;
		return 0;
	}
	b->p = p;
	b->cap = cap;
	return 1;
}

void
fmi_sb_put(fmi_sb *b, const char *s, size_t n)
{
	if (sb_reserve(b, n)) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
		b->p[b->len] = '\0';
	}
}

void
fmi_sb_puts(fmi_sb *b, const char *s)
{
	fmi_sb_put(b, s, strlen(s));
}

void
fmi_sb_printf(fmi_sb *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return;
	}
	if ((size_t)n < sizeof small) {
		fmi_sb_put(b, small, (size_t)n);
		return;
	}
	if (sb_reserve(b, (size_t)n)) {
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
		b->len += (size_t)n;
	}
}

void
fmi_sb_free(fmi_sb *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}

size_t
fmi_utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++) {
		c += ((unsigned char)s[i] & 0xC0) != 0x80;
	}
	return c;
}

/* ---- escaping ---------------------------------------------------------- */

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* The bytes to write for the character at s[0, n) and its length. */
static const char *
esc_one(const unsigned char *s, size_t n, size_t *in, size_t *out)
{
	static const char *const ent[] = { "&amp;", "&lt;", "&gt;", "&quot;",
		"&#39;" };
	const char *hit = strchr("&<>\"'", s[0]);
	size_t len = fmi_utf8_seq(s, n);
	*in = len ? len : 1;
	if (s[0] != 0 && hit != NULL) {
		*out = strlen(ent[hit - "&<>\"'"]);
		return ent[hit - "&<>\"'"];
	}
	if (len == 0 || (s[0] < 0x20 && s[0] != '\t' && s[0] != '\n') ||
	    s[0] == 0x7F || (s[0] == 0xC2 && s[1] < 0xA0) ||
	    (s[0] == 0xEF && s[1] == 0xBF && s[2] >= 0xBE)) {
		*out = 3; /* forbidden in XML, C1 controls, invalid UTF-8 */
		return replacement;
	}
	*out = len;
	return (const char *)s;
}

void
fmi_sb_esc(fmi_sb *b, const char *str, size_t n, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t total = 0, in, out;
	if (max > 0) { /* count characters as written */
		for (size_t i = 0; i < n && total <= max; i += in, total++) {
			(void)esc_one(s + i, n - i, &in, &out);
		}
	}
	size_t keep = max > 0 && total > max ? max - 1 : (size_t)-1;
	for (size_t i = 0, c = 0; i < n && c < keep; i += in, c++) {
		const char *o = esc_one(s + i, n - i, &in, &out);
		fmi_sb_put(b, o, out);
	}
	if (keep != (size_t)-1) {
		fmi_sb_puts(b, "\xE2\x80\xA6"); /* ellipsis */
	}
}

/* ---- ticks ------------------------------------------------------------- */

static double
clamp_abs(double v, double lim)
{
	return v > lim ? lim : v < -lim ? -lim : v;
}

int
fmi_nice_ticks(double lo, double hi, int target, int integer, fmi_ticks *t)
{
	if (!isfinite(lo) || !isfinite(hi) || lo > hi || target < 1) {
		return FM_EINVAL;
	}
	lo = clamp_abs(lo, 1e300);
	hi = clamp_abs(hi, 1e300);
	double mag = fmax(fabs(lo), fabs(hi));
	if (mag < 1e-290) { /* denormal noise: 0 */
		lo = hi = mag = 0;
	}
	if (hi - lo <= mag * 1e-9) { /* one value (or float noise) */
		double c = lo / 2 + hi / 2, w = mag > 0 ? mag * 0.1 : 1;
		w = integer ? fmax(w, 1) : w;
		lo = c - w;
		hi = c + w;
	}
	double raw = hi / target - lo / target;
	double p10 = pow(10, floor(log10(raw)));
	double f = raw / p10;
	double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p10;
	if (integer && step < 1) {
		step = 1;
	}
	/* the tolerance keeps 0.30000000000000004 / 0.1 from adding a tick */
	double a = floor(lo / step + 1e-9), b = ceil(hi / step - 1e-9);
	t->lo = a * step;
	t->hi = b * step;
	t->step = step;
	t->n = (int)llround(b - a) + 1;
	if (t->n < 2) { /* cannot happen for a finite step; be safe */
		t->hi = t->lo + step;
		t->n = 2;
	}
	return t->n <= FMI_TICKS_MAX ? FM_OK : FM_ERANGE;
}

/* Decimals that show a multiple of step exactly (step of a 1-2-5 axis). */
static int
decimals(double step)
{
	if (step >= 1) {
		return 0;
	}
	int d = (int)ceil(-log10(step) - 1e-9);
	return d > 15 ? 15 : d;
}

void
fmi_tick_label(const fmi_ticks *t, double v, char *buf, size_t size)
{
	static const char big[] = "kMGT";
	static const char *const small[] = { "m", "\xC2\xB5", "n", "p", "f" };
	double m = fmax(fabs(t->lo), fabs(t->hi));
	/* SI prefixes, as D3's "s" format: 25k, 1.5M, 20u (micro) */
	int k = m > 0 ? (int)floor((log10(m) + 1e-9) / 3) : 0;
	k = k > 4 ? 4 : k < -5 ? -5 : k;
	if (fabs(v) < t->step * 1e-6) {
		snprintf(buf, size, "0");
	} else if (m >= 1e4 && m < 1e15 && k >= 1) {
		double d = pow(1000, k);
		snprintf(buf, size, "%.*f%c", decimals(t->step / d), v / d,
		    big[k - 1]);
	} else if (m < 1e-3 && m >= 1e-15 && k <= -1) {
		double d = pow(1000, k);
		snprintf(buf, size, "%.*f%s", decimals(t->step / d), v / d,
		    small[-k - 1]);
	} else if (m >= 1e15 || m < 1e-3) {
		int dig = (int)(floor(log10(fabs(v)) + 1e-9) -
		    floor(log10(t->step) + 1e-9));
		dig = dig < 0 ? 0 : dig > 6 ? 6 : dig;
		snprintf(buf, size, "%.*e", dig, v);
	} else {
		snprintf(buf, size, "%.*f", decimals(t->step), v);
	}
}

/* ---- styles ------------------------------------------------------------ */

/* Okabe & Ito (2008), without the yellow that is unreadable on white. */
static const char *const palette[] = { "#0072B2", "#E69F00", "#009E73",
	"#D55E00", "#CC79A7", "#56B4E9", "#000000" };
#define NPALETTE (sizeof palette / sizeof palette[0])

const char *
fmi_style_colour(unsigned style)
{
	return palette[style % NPALETTE];
}

const char *
fmi_style_dash(unsigned style)
{
	static const char *const dash[] = { "", "7 4", "2 3" };
	return dash[(style / NPALETTE) % 3];
}

const char *
fmi_style_css(unsigned style)
{
	static const char *const css[] = { "solid", "dashed", "dotted" };
	return css[(style / NPALETTE) % 3];
}

/* ---- chart ------------------------------------------------------------- */

#define SZ_MAX(a, b) ((a) > (b) ? (a) : (b))
#define CH_PLOT_H 240     /* plot area height */
#define CH_TOP 30         /* above the plot: the title */
#define CH_CHAR_W 6.6     /* estimated width of an 11 px sans-serif char */
#define CH_LEGEND_CHAR_W 7.0
#define CH_LEGEND_ROW 18
#define CH_LEGEND_MAX 40  /* characters of a legend label */
#define CH_MARKERS_MAX 40 /* points per series up to which dots are drawn */

typedef struct layout {
	fmi_ticks xt, yt;
	double left, right, top, pw, ph;
	int width, height, nleg_rows, empty;
} layout;

static int
finite_point(const fmi_series *s, size_t i)
{
	return isfinite(s->x[i]) && isfinite(s->y[i]);
}

static size_t
count_points(const fmi_series *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++) {
		n += (size_t)finite_point(s, i);
	}
	return n;
}

/* The data range of every finite point; returns 0 when there is none. */
static int
data_range(const fmi_chart *c, double *x0, double *x1, double *y0,
    double *y1)
{
	int any = 0;
	for (size_t k = 0; k < c->nseries; k++) {
		const fmi_series *s = &c->series[k];
		for (size_t i = 0; i < s->n; i++) {
			if (!finite_point(s, i)) {
				continue;
			}
			if (!any) {
				*x0 = *x1 = s->x[i];
				*y0 = *y1 = s->y[i];
				any = 1;
			}
			*x0 = fmin(*x0, s->x[i]);
			*x1 = fmax(*x1, s->x[i]);
			*y0 = fmin(*y0, s->y[i]);
			*y1 = fmax(*y1, s->y[i]);
		}
	}
	return any;
}

static size_t
label_chars(const fmi_ticks *t, double v)
{
	char buf[64];
	fmi_tick_label(t, v, buf, sizeof buf);
	return strlen(buf);
}

static double
legend_entry_w(const char *label)
{
	size_t n = fmi_utf8_chars(label, strlen(label));
	n = n > CH_LEGEND_MAX ? CH_LEGEND_MAX : n;
	return 28 + (double)n * CH_LEGEND_CHAR_W + 16;
}

/* Rows of legend entries that flow in the width from the left margin. */
static int
legend_rows(const fmi_chart *c, const layout *l)
{
	double x = 0, avail = l->width - l->left - 8;
	int rows = 0;
	for (size_t k = 0; k < c->nseries; k++) {
		if (count_points(&c->series[k]) == 0) {
			continue;
		}
		double w = fmin(legend_entry_w(c->series[k].label), avail);
		if (rows == 0 || x + w > avail) {
			rows++;
			x = 0;
		}
		x += w;
	}
	return rows;
}

static void
make_layout(const fmi_chart *c, layout *l)
{
	double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
	l->empty = !data_range(c, &x0, &x1, &y0, &y1);
	l->width = c->width < 240 ? 240 : c->width;
	(void)fmi_nice_ticks(y0, y1, 5, 0, &l->yt);
	size_t yw = 1;
	for (int i = 0; i < l->yt.n; i++) {
		yw = SZ_MAX(yw, label_chars(&l->yt, l->yt.lo + i *
		    l->yt.step));
	}
	l->left = 24 + (double)yw * CH_CHAR_W + 8;
	/* about one x tick per 90 px; widen the step until labels fit */
	int target = (int)((l->width - l->left - 20) / 90);
	target = target < 2 ? 2 : target;
	for (;;) {
		(void)fmi_nice_ticks(x0, x1, target, c->x_integer, &l->xt);
		size_t xw = label_chars(&l->xt, l->xt.hi);
		xw = SZ_MAX(xw, label_chars(&l->xt, l->xt.lo));
		l->right = fmax(16, (double)xw * CH_CHAR_W / 2 + 6);
		l->pw = l->width - l->left - l->right;
		double per = l->pw / (l->xt.n > 1 ? l->xt.n - 1 : 1);
		if (per >= (double)xw * CH_CHAR_W + 10 || target <= 2) {
			break;
		}
		target--;
	}
	l->top = CH_TOP;
	l->ph = CH_PLOT_H;
	l->nleg_rows = legend_rows(c, l);
	l->height = (int)(l->top + l->ph + 44 + l->nleg_rows * CH_LEGEND_ROW +
	    (l->nleg_rows ? 6 : 0));
}

/* Pixel coordinates; halves keep extreme values from overflowing. */
static double
map_x(const layout *l, double x)
{
	double f = (x / 2 - l->xt.lo / 2) / (l->xt.hi / 2 - l->xt.lo / 2);
	return l->left + clamp_abs(f, 1e4) * l->pw;
}

static double
map_y(const layout *l, double y)
{
	double f = (y / 2 - l->yt.lo / 2) / (l->yt.hi / 2 - l->yt.lo / 2);
	return l->top + l->ph - clamp_abs(f, 1e4) * l->ph;
}

static void
put_text(fmi_sb *b, double x, double y, const char *anchor, const char *s,
    size_t max)
{
	fmi_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">", x,
	    y, anchor);
	fmi_sb_esc(b, s, strlen(s), max);
	fmi_sb_puts(b, "</text>\n");
}

static void
draw_axes(fmi_sb *b, const fmi_chart *c, const layout *l)
{
	double bottom = l->top + l->ph, right = l->left + l->pw;
	char lab[64];
	fmi_sb_puts(b, "<g class=\"grid\" stroke=\"#e3e3e3\" "
	    "stroke-width=\"1\">\n");
	for (int i = 0; i < l->yt.n; i++) {
		double y = map_y(l, l->yt.lo + i * l->yt.step);
		fmi_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
		    "y2=\"%.1f\"/>\n", l->left, y, right, y);
	}
	for (int i = 0; i < l->xt.n; i++) {
		double x = map_x(l, l->xt.lo + i * l->xt.step);
		fmi_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
		    "y2=\"%.1f\"/>\n", x, l->top, x, bottom);
	}
	fmi_sb_printf(b, "</g>\n<g class=\"axes\" stroke=\"#555\" "
	    "stroke-width=\"1\" fill=\"none\"><path d=\"M%.1f %.1fV%.1fH%.1f\"/>"
	    "</g>\n<g class=\"ticks\" fill=\"#333\">\n", l->left, l->top,
	    bottom, right);
	for (int i = 0; i < l->yt.n; i++) {
		double v = l->yt.lo + i * l->yt.step;
		fmi_tick_label(&l->yt, v, lab, sizeof lab);
		put_text(b, l->left - 5, map_y(l, v) + 4, "end", lab, 0);
	}
	for (int i = 0; i < l->xt.n; i++) {
		double v = l->xt.lo + i * l->xt.step;
		fmi_tick_label(&l->xt, v, lab, sizeof lab);
		put_text(b, map_x(l, v), bottom + 15, "middle", lab, 0);
	}
	fmi_sb_puts(b, "</g>\n<g class=\"labels\" fill=\"#222\" "
	    "font-size=\"12\">\n");
	put_text(b, l->left + l->pw / 2, bottom + 32, "middle", c->xlabel,
	    (size_t)(l->pw / CH_LEGEND_CHAR_W));
	fmi_sb_printf(b, "<g transform=\"translate(14 %.1f) rotate(-90)\">",
	    l->top + l->ph / 2);
	put_text(b, 0, 0, "middle", c->ylabel, (size_t)(l->ph /
	    CH_LEGEND_CHAR_W));
	fmi_sb_puts(b, "</g>\n</g>\n");
}

/* One series: a group with its name as tooltip, a polyline and, when
 * there are few points, a dot per point (a lone point is only a dot). */
static void
draw_series(fmi_sb *b, const layout *l, const fmi_series *s)
{
	size_t n = count_points(s);
	const char *dash = fmi_style_dash(s->style);
	fmi_sb_printf(b, "<g class=\"series\" stroke=\"%s\" fill=\"%s\">"
	    "<title>", fmi_style_colour(s->style), fmi_style_colour(s->style));
	fmi_sb_esc(b, s->label, strlen(s->label), 0);
	fmi_sb_puts(b, "</title>\n");
	if (n >= 2) {
		fmi_sb_printf(b, "<polyline fill=\"none\" stroke-width=\"1.8\" "
		    "stroke-linejoin=\"round\"%s%s%s points=\"",
		    *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
		for (size_t i = 0, k = 0; i < s->n; i++) {
			if (finite_point(s, i)) {
				fmi_sb_printf(b, "%s%.1f,%.1f", k++ ? " " : "",
				    map_x(l, s->x[i]), map_y(l, s->y[i]));
			}
		}
		fmi_sb_puts(b, "\"/>\n");
	}
	for (size_t i = 0; n <= CH_MARKERS_MAX && i < s->n; i++) {
		if (finite_point(s, i)) {
			fmi_sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" "
			    "r=\"2.6\" stroke=\"none\"/>\n", map_x(l, s->x[i]),
			    map_y(l, s->y[i]));
		}
	}
	fmi_sb_puts(b, "</g>\n");
}

static void
draw_legend(fmi_sb *b, const fmi_chart *c, const layout *l)
{
	double avail = l->width - l->left - 8, x = 0;
	double y = l->top + l->ph + 44 + 8;
	int row = 0;
	fmi_sb_puts(b, "<g class=\"legend\" font-size=\"12\" fill=\"#222\">\n");
	for (size_t k = 0; k < c->nseries; k++) {
		const fmi_series *s = &c->series[k];
		if (count_points(s) == 0) {
			continue;
		}
		double w = fmin(legend_entry_w(s->label), avail);
		if (row == 0 || x + w > avail) {
			y += row++ ? CH_LEGEND_ROW : 0;
			x = 0;
		}
		const char *dash = fmi_style_dash(s->style);
		double lx = l->left + x;
		fmi_sb_printf(b, "<g class=\"entry\"><title>");
		fmi_sb_esc(b, s->label, strlen(s->label), 0);
		fmi_sb_printf(b, "</title><line x1=\"%.1f\" y1=\"%.1f\" "
		    "x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"%s%s%s/>",
		    lx, y - 4, lx + 22, y - 4, fmi_style_colour(s->style),
		    *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
		fmi_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", lx + 28, y);
		size_t max = (size_t)((w - 44) / CH_LEGEND_CHAR_W);
		fmi_sb_esc(b, s->label, strlen(s->label), max < 4 ? 4 : max);
		fmi_sb_puts(b, "</text></g>\n");
		x += w;
	}
	fmi_sb_puts(b, "</g>\n");
}

int
fmi_svg_chart(fmi_sb *b, const fmi_chart *c)
{
	layout l;
	make_layout(c, &l);
	if (c->standalone) {
		fmi_sb_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	}
	fmi_sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	    "font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\n"
	    "<title>", l.width, l.height, l.width, l.height);
	fmi_sb_esc(b, c->title, strlen(c->title), 0);
	fmi_sb_printf(b, "</title>\n<rect width=\"%d\" height=\"%d\" "
	    "fill=\"#ffffff\"/>\n<g class=\"heading\" font-size=\"13\" "
	    "font-weight=\"bold\" fill=\"#111\">\n", l.width, l.height);
	put_text(b, l.left, 19, "start", c->title,
	    (size_t)((l.width - l.left - 8) / 7.6));
	fmi_sb_puts(b, "</g>\n");
	draw_axes(b, c, &l);
	if (l.empty) {
		fmi_sb_puts(b, "<g fill=\"#777\" font-size=\"12\">\n");
		put_text(b, l.left + l.pw / 2, l.top + l.ph / 2, "middle",
		    "no values", 0);
		fmi_sb_puts(b, "</g>\n");
	}
	for (size_t k = 0; k < c->nseries; k++) {
		if (count_points(&c->series[k]) > 0) {
			draw_series(b, &l, &c->series[k]);
		}
	}
	draw_legend(b, c, &l);
	fmi_sb_puts(b, "</svg>\n");
	return b->oom ? FM_ENOMEM : FM_OK;
}
