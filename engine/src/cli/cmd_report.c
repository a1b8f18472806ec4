/* SPDX-License-Identifier: MIT */
/*
 * cmd_report.c: `fedmesh report FILE.jsonl... -o OUT.html|OUT.svg`: reads
 * --metrics files and writes one self-contained HTML page (a table of the
 * runs and their settings, and for every numeric metric a chart against
 * the round and one against time, all runs overlaid) or one SVG chart.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/report.h"
#include "core/core.h"

const char fmi_report_usage[] =
    "usage: fedmesh report FILE.jsonl [FILE.jsonl ...] -o OUT.html|OUT.svg\n"
    "                      [--metric NAME]... [--x round|seconds]\n"
    "\n"
    "Draws the JSON Lines files that `fedmesh run --metrics FILE` writes (one\n"
    "object per round), one run per file, every run overlaid in each chart.\n"
    "\n"
    "  -o, --output OUT   OUT.html: one self-contained page (inline SVG, no\n"
    "                     scripts, nothing fetched): a table of the runs\n"
    "                     (rounds, final and best accuracy, time, bytes,\n"
    "                     keys), a table of their settings, and for every\n"
    "                     numeric metric a chart against the round and one\n"
    "                     against time (the running sum of the rows' seconds).\n"
    "                     OUT.svg: one standalone SVG chart.\n"
    "  --metric NAME      the metric to draw (an SVG: default accuracy); on a\n"
    "                     page, repeat it to draw only those metrics\n"
    "  --x round|seconds  the x axis (an SVG: default round; a page draws\n"
    "                     both unless --x is given)\n"
    "\n"
    "A run is named after its file without .jsonl (its path, when two files\n"
    "share a name). A row without a value for a metric (null, absent, not a\n"
    "number: accuracy between evaluations) is skipped for that metric. A line\n"
    "without a numeric \"round\" is a settings line: its fields, and the\n"
    "fields that have one value in every row, fill the settings table.\n"
    "\n"
    "Exit status: 0 written; 1 data error (a file missing, unreadable,\n"
    "malformed or without rows; the output not writable); 2 usage error\n"
    "(bad options, no -o, an unknown --metric).\n";

#define PFX "fedmesh report: "
#define LINE_MAX_BYTES ((size_t)16 << 20)
#define SETTING_MAX_DEPTH 4

/* ---- growable tables ---------------------------------------------------- */

/* A key of a run's rows (its values, sparse), or a setting (text). */
typedef struct rkey {
	char *name;
	size_t count;     /* rows with a value other than null */
	int kind;         /* 0 unset, 1 number, 2 text, 3 array/object */
	int constant;     /* every value so far equals the first */
	double first_num;
	char *text;       /* first text value, or a setting's value */
	size_t *rows;     /* numeric values: row index and value */
	double *vals;
	size_t nv, cap;
} rkey;

/* Keys in first-seen order, with an open-addressing index by name. */
typedef struct ktab {
	rkey *v;
	size_t n, cap;
	size_t *slot; /* index + 1; 0 is empty */
	size_t nslot;
} ktab;

typedef struct run {
	const char *path;
	char *label;
	size_t nrows, caprows;
	double *round, *cum; /* per row; cum: seconds so far, NaN without */
	int has_seconds;
	int is_path;   /* labelled by its path: another file has its name */
	ktab keys;     /* every key of the rows */
	ktab settings; /* settings lines, then the constant fields */
} run;

typedef struct ropts {
	const char *out;
	const char **files;
	int nfiles;
	const char **metrics;
	int nmetrics;
	const char *x; /* NULL, "round" or "seconds" */
	int svg;
} ropts;

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	}
	return h;
}

static rkey *
kt_find(const ktab *t, const char *name)
{
	if (t->nslot == 0) {
		return NULL;
	}
	for (size_t i = hash_str(name) & (t->nslot - 1);; i = (i + 1) &
	    (t->nslot - 1)) {
		if (t->slot[i] == 0) {
			return NULL;
		}
		if (strcmp(t->v[t->slot[i] - 1].name, name) == 0) {
			return &t->v[t->slot[i] - 1];
		}
	}
}

static void
kt_place(ktab *t, size_t idx)
{
	size_t i = hash_str(t->v[idx].name) & (t->nslot - 1);
	while (t->slot[i] != 0) {
		i = (i + 1) & (t->nslot - 1);
	}
	t->slot[i] = idx + 1;
}

static int
kt_grow(ktab *t)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		rkey *v = realloc(t->v, cap * sizeof *v);
		if (v == NULL) {
			return FM_ENOMEM;
		}
		t->v = v;
		t->cap = cap;
	}
	if ((t->n + 1) * 2 > t->nslot) {
		size_t ns = t->nslot ? t->nslot * 2 : 32;
		size_t *s = calloc(ns, sizeof *s);
		if (s == NULL) {
			return FM_ENOMEM;
		}
		free(t->slot);
		t->slot = s;
		t->nslot = ns;
		for (size_t i = 0; i < t->n; i++) {
			kt_place(t, i);
		}
	}
	return FM_OK;
}

static char *
dup_str(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* The key named name, added (empty) when missing; NULL without memory. */
static rkey *
kt_get(ktab *t, const char *name)
{
	rkey *k = kt_find(t, name);
	if (k != NULL) {
		return k;
	}
	if (kt_grow(t) != FM_OK) {
		return NULL;
	}
	k = &t->v[t->n];
	memset(k, 0, sizeof *k);
	if ((k->name = dup_str(name, strlen(name))) == NULL) {
		return NULL;
	}
	kt_place(t, t->n++);
	return k;
}

static void
kt_free(ktab *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].text);
		free(t->v[i].rows);
		free(t->v[i].vals);
	}
	free(t->v);
	free(t->slot);
	memset(t, 0, sizeof *t);
}

static int
key_add_value(rkey *k, size_t row, double v)
{
	if (k->nv > 0 && k->rows[k->nv - 1] == row) {
		k->vals[k->nv - 1] = v; /* a key twice in one row: the last */
		return FM_OK;
	}
	if (k->nv == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		size_t *r = realloc(k->rows, cap * sizeof *r);
		if (r == NULL) {
			return FM_ENOMEM;
		}
		k->rows = r;
		double *d = realloc(k->vals, cap * sizeof *d);
		if (d == NULL) {
			return FM_ENOMEM;
		}
		k->vals = d;
		k->cap = cap;
	}
	k->rows[k->nv] = row;
	k->vals[k->nv++] = v;
	return FM_OK;
}

/* ---- reading lines -------------------------------------------------------- */

typedef struct lreader {
	FILE *f;
	char buf[1 << 16];
	size_t pos, end;
	fmi_sb line;
} lreader;

/* The next line (without its newline) in r->line: 1, 0 at the end, or
 * -1 when it is longer than LINE_MAX_BYTES, -2 on a read error. */
static int
next_line(lreader *r)
{
	int any = 0;
	r->line.len = 0;
	fmi_sb_put(&r->line, "", 0);
	for (;;) {
		if (r->pos == r->end) {
			r->end = fread(r->buf, 1, sizeof r->buf, r->f);
			r->pos = 0;
			if (r->end == 0) {
				return ferror(r->f) ? -2 : any;
			}
		}
		any = 1;
		char *nl = memchr(r->buf + r->pos, '\n', r->end - r->pos);
		size_t n = (nl ? (size_t)(nl - r->buf) : r->end) - r->pos;
		if (r->line.len + n > LINE_MAX_BYTES) {
			return -1;
		}
		fmi_sb_put(&r->line, r->buf + r->pos, n);
		r->pos += n + (nl != NULL);
		if (r->line.oom) {
			return -2;
		}
		if (nl != NULL) {
			return 1;
		}
	}
}

/* ---- rows and settings ---------------------------------------------------- */

typedef struct rowctx {
	run *r;
	size_t row;
	int has_round;
	double round;
	const char *prefix; /* settings: the enclosing keys, "a.b." */
	int depth;
} rowctx;

static int
find_round(void *ud, const fmi_jmember *m)
{
	rowctx *c = ud;
	if (strcmp(m->key, "round") == 0) {
		c->has_round = m->type == FMI_J_NUMBER && isfinite(m->num);
		c->round = m->num;
	}
	return FM_OK;
}

static int
same_value(const rkey *k, int kind, double num, const char *text)
{
	if (k->kind != kind) {
		return 0;
	}
	return kind == 1 ? k->first_num == num :
	    kind == 2 ? strcmp(k->text, text) == 0 : 0;
}

static int
on_row_member(void *ud, const fmi_jmember *m)
{
	rowctx *c = ud;
	rkey *k = kt_get(&c->r->keys, m->key);
	if (k == NULL) {
		return FM_ENOMEM;
	}
	if (m->type == FMI_J_NULL) {
		return FM_OK; /* absent in this row */
	}
	int kind = m->type == FMI_J_NUMBER ? 1 : m->type == FMI_J_STRING ||
	    m->type == FMI_J_BOOL ? 2 : 3;
	const char *text = m->type == FMI_J_STRING ? m->str :
	    m->type == FMI_J_BOOL ? (m->num != 0 ? "true" : "false") : "";
	if (k->count++ == 0) {
		k->kind = kind;
		k->constant = kind != 3;
		k->first_num = m->num;
		if (kind == 2 && (k->text = dup_str(text, strlen(text))) == NULL) {
			return FM_ENOMEM;
		}
	} else if (k->constant && !same_value(k, kind, m->num, text)) {
		k->constant = 0;
	}
	if (kind == 1 && isfinite(m->num)) {
		return key_add_value(k, c->row, m->num);
	}
	return FM_OK;
}

static int
set_text(ktab *t, const char *key, const char *val, size_t n)
{
	rkey *k = kt_get(t, key);
	if (k == NULL) {
		return FM_ENOMEM;
	}
	free(k->text);
	return (k->text = dup_str(val, n)) == NULL ? FM_ENOMEM : FM_OK;
}

/* A member of a settings line; objects are flattened as "a.b". */
static int
on_setting(void *ud, const fmi_jmember *m)
{
	rowctx *c = ud;
	fmi_sb key = { 0 };
	fmi_sb_printf(&key, "%s%s", c->prefix, m->key);
	char num[32];
	const char *val = m->str;
	size_t n = m->str_len;
	int rv = FM_OK;
	if (m->type == FMI_J_OBJECT && c->depth < SETTING_MAX_DEPTH &&
	    m->str_len > 2 && !key.oom) {
		fmi_sb_put(&key, ".", 1);
		rowctx sub = { c->r, 0, 0, 0, key.p, c->depth + 1 };
		rv = fmi_json_object(m->str, m->str_len, on_setting, &sub, NULL);
		fmi_sb_free(&key);
		return rv;
	}
	if (m->type == FMI_J_NUMBER || m->type == FMI_J_BOOL ||
	    m->type == FMI_J_NULL) {
		snprintf(num, sizeof num, m->type == FMI_J_NULL ? "null" :
		    m->type == FMI_J_BOOL ? (m->num != 0 ? "true" : "false") :
		    "%.10g", m->num);
		val = num;
		n = strlen(num);
	}
	rv = key.oom ? FM_ENOMEM : set_text(&c->r->settings, key.p, val, n);
	fmi_sb_free(&key);
	return rv;
}

static int
add_row(run *r, double round)
{
	if (r->nrows == r->caprows) {
		size_t cap = r->caprows ? r->caprows * 2 : 64;
		double *p = realloc(r->round, cap * sizeof *p);
		if (p == NULL) {
			return FM_ENOMEM;
		}
		r->round = p;
		r->caprows = cap;
	}
	r->round[r->nrows++] = round;
	return FM_OK;
}

/* One non-blank line: a row when it has a numeric round, else settings. */
static int
load_line(run *r, const char *s, size_t n, fmi_jerror *err)
{
	rowctx c = { r, r->nrows, 0, 0, "", 0 };
	int rv = fmi_json_object(s, n, find_round, &c, err);
	if (rv != FM_OK) {
		return rv;
	}
	if (!c.has_round) {
		return fmi_json_object(s, n, on_setting, &c, err);
	}
	if ((rv = add_row(r, c.round)) != FM_OK) {
		return rv;
	}
	return fmi_json_object(s, n, on_row_member, &c, err);
}

static int
load_error(const char *path, size_t line, const char *what)
{
	fprintf(stderr, PFX "%s:%zu: %s\n", path, line, what);
	return 1;
}

/* Reads every line of the run's file; returns 0 or the exit status. */
static int
load_run(run *r, lreader *lr)
{
	size_t line = 0;
	int got;
	while ((got = next_line(lr)) == 1) {
		const char *s = lr->line.p;
		size_t n = lr->line.len;
		if (++line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3; /* a byte order mark */
			n -= 3;
		}
		if (fmi_json_blank(s, n)) {
			continue;
		}
		fmi_jerror err;
		int rv = load_line(r, s, n, &err);
		if (rv == FM_EPROTO) {
			return load_error(r->path, line, err.msg);
		} else if (rv != FM_OK) {
			return load_error(r->path, line, "out of memory");
		}
	}
	if (got == -1) {
		return load_error(r->path, line + 1, "line longer than 16 MiB");
	}
	if (got == -2) {
		fprintf(stderr, PFX "%s: read error: %s\n", r->path,
		    strerror(errno));
		return 1;
	}
	if (r->nrows == 0) {
		fprintf(stderr, PFX "%s: no rows (a row is a JSON object with a "
		    "numeric \"round\", as `fedmesh run --metrics FILE` writes "
		    "them)\n", r->path);
		return 1;
	}
	return 0;
}

/* The seconds so far at each row, and the fields constant in all rows. */
static int
finish_run(run *r)
{
	rkey *sec = kt_find(&r->keys, "seconds");
	r->cum = malloc(r->nrows * sizeof *r->cum);
	if (r->cum == NULL) {
		return FM_ENOMEM;
	}
	r->has_seconds = sec != NULL && sec->nv > 0;
	double t = 0;
	for (size_t i = 0, j = 0; i < r->nrows; i++) {
		if (sec != NULL && j < sec->nv && sec->rows[j] == i) {
			t += sec->vals[j++];
		}
		r->cum[i] = r->has_seconds ? t : NAN;
	}
	for (size_t i = 0; r->nrows >= 2 && i < r->keys.n; i++) {
		const rkey *k = &r->keys.v[i];
		char num[32];
		if (!k->constant || k->count != r->nrows || strcmp(k->name,
		    "round") == 0 || kt_find(&r->settings, k->name) != NULL) {
			continue;
		}
		snprintf(num, sizeof num, "%.10g", k->first_num);
		const char *v = k->kind == 1 ? num : k->text;
		if (set_text(&r->settings, k->name, v, strlen(v)) != FM_OK) {
			return FM_ENOMEM;
		}
	}
	return FM_OK;
}

static int
read_run(run *r)
{
	lreader *lr = calloc(1, sizeof *lr);
	if (lr == NULL) {
		fprintf(stderr, PFX "out of memory\n");
		return 1;
	}
	if ((lr->f = fopen(r->path, "rb")) == NULL) {
		fprintf(stderr, PFX "cannot open '%s': %s\n", r->path,
		    strerror(errno));
		free(lr);
		return 1;
	}
	int rv = load_run(r, lr);
	fclose(lr->f);
	fmi_sb_free(&lr->line);
	free(lr);
	if (rv == 0 && finish_run(r) != FM_OK) {
		fprintf(stderr, PFX "out of memory\n");
		rv = 1;
	}
	return rv;
}

static void
run_free(run *r)
{
	free(r->label);
	free(r->round);
	free(r->cum);
	kt_free(&r->keys);
	kt_free(&r->settings);
}

/* ---- labels and the metric list ----------------------------------------- */

static char *
base_label(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	size_t n = strlen(b);
	if (n > 6 && strcmp(b + n - 6, ".jsonl") == 0) {
		n -= 6;
	}
	return dup_str(b, n);
}

/* Labels: the base name, the path where base names clash, then "#2". */
static int
make_labels(run *runs, int n)
{
	for (int i = 0; i < n; i++) {
		if ((runs[i].label = base_label(runs[i].path)) == NULL) {
			return FM_ENOMEM;
		}
	}
	for (int i = 0; i < n; i++) {
		char *base = base_label(runs[i].path);
		int clash = 0;
		for (int j = 0; base != NULL && j < n; j++) {
			clash |= j != i && strcmp(base, runs[j].label) == 0;
		}
		free(base);
		runs[i].is_path = clash;
	}
	for (int i = 0; i < n; i++) {
		if (runs[i].is_path) {
			free(runs[i].label);
			runs[i].label = dup_str(runs[i].path, strlen(runs[i].path));
		}
		for (int j = 0; runs[i].label != NULL && j < i; j++) {
			if (strcmp(runs[i].label, runs[j].label) == 0) {
				fmi_sb b = { 0 };
				fmi_sb_printf(&b, "%s #%d", runs[i].label, i + 1);
				free(runs[i].label);
				runs[i].label = b.p;
				break;
			}
		}
		if (runs[i].label == NULL) {
			return FM_ENOMEM;
		}
	}
	return FM_OK;
}

static const char *const first_metrics[] = { "accuracy", "loss",
	"train_loss", "bytes_sent", "bytes_received", "seconds", "clients",
	"updates", "dropped", NULL };

static int
has_values(const run *runs, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		const rkey *k = kt_find(&runs[i].keys, name);
		if (k != NULL && k->nv > 0) {
			return 1;
		}
	}
	return 0;
}

static int
is_first_metric(const char *name)
{
	for (int f = 0; first_metrics[f] != NULL; f++) {
		if (strcmp(name, first_metrics[f]) == 0) {
			return 1;
		}
	}
	return strcmp(name, "round") == 0;
}

/* Metrics with a number in any run: the usual ones first, in their
 * order, then the others in the order they appear. */
static int
list_metrics(const run *runs, int n, ktab *out)
{
	for (int f = 0; first_metrics[f] != NULL; f++) {
		if (has_values(runs, n, first_metrics[f]) &&
		    kt_get(out, first_metrics[f]) == NULL) {
			return FM_ENOMEM;
		}
	}
	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k < runs[i].keys.n; k++) {
			const rkey *key = &runs[i].keys.v[k];
			if (key->nv > 0 && !is_first_metric(key->name) &&
			    kt_get(out, key->name) == NULL) {
				return FM_ENOMEM;
			}
		}
	}
	return FM_OK;
}

/* ---- charts ----------------------------------------------------------------- */

/* One series per run: metric against the round or the seconds so far. */
static int
build_series(const run *runs, int n, const char *metric, int by_time,
    fmi_series *ser, double **bufs)
{
	for (int i = 0; i < n; i++) {
		const rkey *k = kt_find(&runs[i].keys, metric);
		size_t nv = k != NULL ? k->nv : 0;
		bufs[i] = malloc((nv ? nv : 1) * 2 * sizeof(double));
		if (bufs[i] == NULL) {
			return FM_ENOMEM;
		}
		double *x = bufs[i], *y = bufs[i] + nv;
		for (size_t j = 0; j < nv; j++) {
			size_t row = k->rows[j];
			x[j] = by_time ? runs[i].cum[row] : runs[i].round[row];
			y[j] = k->vals[j];
		}
		ser[i] = (fmi_series){ runs[i].label, x, y, nv, (unsigned)i };
	}
	return FM_OK;
}

static int
chart(fmi_sb *b, const run *runs, int n, const char *metric, int by_time,
    int width, int standalone)
{
	fmi_series *ser = calloc((size_t)n, sizeof *ser);
	double **bufs = calloc((size_t)n, sizeof *bufs);
	int rv = ser && bufs ? build_series(runs, n, metric, by_time, ser, bufs)
	    : FM_ENOMEM;
	if (rv == FM_OK) {
		fmi_sb title = { 0 };
		fmi_sb_printf(&title, "%s vs %s", metric, by_time ? "time" :
		    "round");
		fmi_chart c = { title.oom ? metric : title.p, by_time ?
			"time (s, cumulative)" : "round", metric, !by_time,
			width, standalone, ser, (size_t)n };
		rv = fmi_svg_chart(b, &c);
		fmi_sb_free(&title);
	}
	for (int i = 0; bufs != NULL && i < n; i++) {
		free(bufs[i]);
	}
	free(bufs);
	free(ser);
	return rv;
}

/* ---- the page -------------------------------------------------------------- */

static const char page_css[] =
    "body{font-family:sans-serif;color:#222;background:#fff;"
    "max-width:1180px;margin:16px auto;padding:0 10px}\n"
    "h1{font-size:22px;margin:0 0 4px}\n"
    "h2{font-size:17px;margin:26px 0 8px;padding-bottom:3px;"
    "border-bottom:1px solid #ddd}\n"
    "h3{font-size:14px;margin:18px 0 6px}\n"
    ".wrap{overflow-x:auto}\n"
    "table{border-collapse:collapse;font-size:13px}\n"
    "th,td{border:1px solid #d5d5d5;padding:3px 8px;text-align:left;"
    "vertical-align:top}\n"
    "th{background:#f3f3f3}\n"
    "td.n{text-align:right;white-space:nowrap}\n"
    "tr.diff td{background:#fff4d6}\n"
    ".sw{display:inline-block;width:22px;height:0;border-top-width:3px;"
    "vertical-align:middle;margin-right:6px}\n"
    ".keys{font-size:11px;color:#555;min-width:180px;max-width:320px}\n"
    ".name,.settings td,.settings th{max-width:260px;overflow-wrap:break-word}\n"
    ".file{font-size:11px;color:#666}\n"
    ".pair{display:flex;flex-wrap:wrap;gap:8px}\n"
    "svg.chart{max-width:100%;height:auto;border:1px solid #e6e6e6}\n"
    "nav a{margin-right:10px;font-size:13px;white-space:nowrap}\n"
    ".note{color:#666;font-size:12px}\n";

static void
esc(fmi_sb *b, const char *s)
{
	fmi_sb_esc(b, s, strlen(s), 0);
}

static void
swatch(fmi_sb *b, const run *r, int i)
{
	fmi_sb_printf(b, "<span class=\"sw\" style=\"border-top-color:%s;"
	    "border-top-style:%s\"></span>", fmi_style_colour((unsigned)i),
	    fmi_style_css((unsigned)i));
	esc(b, r->label);
}

static void
human_bytes(char *buf, size_t size, double v)
{
	static const char *const unit[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	int u = 0;
	while (fabs(v) >= 1000 && u < 5) {
		v /= 1000;
		u++;
	}
	snprintf(buf, size, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
}

/* The sum of a key's values as bytes, or a dash when no row has it. */
static void
bytes_cell(fmi_sb *b, const run *r, const char *name)
{
	const rkey *k = kt_find(&r->keys, name);
	char buf[32];
	double s = 0;
	for (size_t i = 0; k != NULL && i < k->nv; i++) {
		s += k->vals[i];
	}
	human_bytes(buf, sizeof buf, s);
	fmi_sb_printf(b, "<td class=\"n\">%s</td>", k != NULL && k->nv ? buf :
	    "&#8211;");
}

static void
accuracy_cells(fmi_sb *b, const run *r)
{
	const rkey *k = kt_find(&r->keys, "accuracy");
	if (k == NULL || k->nv == 0) {
		fmi_sb_puts(b, "<td class=\"n\">&#8211;</td><td class=\"n\">"
		    "&#8211;</td>");
		return;
	}
	size_t best = 0, last = k->nv - 1;
	for (size_t i = 1; i < k->nv; i++) {
		best = k->vals[i] > k->vals[best] ? i : best;
	}
	fmi_sb_printf(b, "<td class=\"n\">%.4f (round %.10g)</td>"
	    "<td class=\"n\">%.4f (round %.10g)</td>", k->vals[last],
	    r->round[k->rows[last]], k->vals[best], r->round[k->rows[best]]);
}

static void
run_row(fmi_sb *b, const run *r, int i)
{
	fmi_sb_puts(b, "<tr><td class=\"name\">");
	swatch(b, r, i);
	if (!r->is_path) {
		fmi_sb_puts(b, "<br><span class=\"file\">");
		esc(b, r->path);
		fmi_sb_puts(b, "</span>");
	}
	fmi_sb_printf(b, "</td><td class=\"n\">%zu</td><td class=\"n\">%.10g"
	    "&#8211;%.10g</td>", r->nrows, r->round[0], r->round[r->nrows - 1]);
	accuracy_cells(b, r);
	if (r->has_seconds) {
		fmi_sb_printf(b, "<td class=\"n\">%.2f s</td>",
		    r->cum[r->nrows - 1]);
	} else {
		fmi_sb_puts(b, "<td class=\"n\">&#8211;</td>");
	}
	bytes_cell(b, r, "bytes_sent");
	bytes_cell(b, r, "bytes_received");
	fmi_sb_puts(b, "<td class=\"keys\">");
	for (size_t k = 0; k < r->keys.n; k++) {
		fmi_sb_puts(b, k ? ", " : "");
		esc(b, r->keys.v[k].name);
	}
	fmi_sb_puts(b, "</td></tr>\n");
}

static void
runs_table(fmi_sb *b, const run *runs, int n)
{
	fmi_sb_puts(b, "<h2 id=\"runs\">Runs</h2>\n<div class=\"wrap\">"
	    "<table class=\"runs\">\n<tr><th>run and file</th><th>rows</th>"
	    "<th>rounds</th><th>final accuracy</th><th>best accuracy</th>"
	    "<th>time</th><th>bytes sent</th><th>bytes received</th>"
	    "<th>keys</th></tr>\n");
	for (int i = 0; i < n; i++) {
		run_row(b, &runs[i], i);
	}
	fmi_sb_puts(b, "</table></div>\n");
}

/* Settings as rows, runs as columns; rows whose values differ marked. */
static int
settings_table(fmi_sb *b, const run *runs, int n)
{
	ktab all = { 0 };
	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k < runs[i].settings.n; k++) {
			if (kt_get(&all, runs[i].settings.v[k].name) == NULL) {
				kt_free(&all);
				return FM_ENOMEM;
			}
		}
	}
	fmi_sb_puts(b, "<h2 id=\"settings\">Settings</h2>\n");
	if (all.n == 0) {
		fmi_sb_puts(b, "<p class=\"note\">No settings lines, and no "
		    "field has the same value in every row.</p>\n");
	} else {
		fmi_sb_puts(b, "<p class=\"note\">From settings lines (without "
		    "a numeric \"round\") and the fields with one value in every "
		    "row; highlighted where the runs differ.</p>\n<div "
		    "class=\"wrap\"><table class=\"settings\">\n<tr><th>"
		    "setting</th>");
		for (int i = 0; i < n; i++) {
			fmi_sb_puts(b, "<th>");
			swatch(b, &runs[i], i);
			fmi_sb_puts(b, "</th>");
		}
		fmi_sb_puts(b, "</tr>\n");
	}
	for (size_t k = 0; k < all.n; k++) {
		const char *name = all.v[k].name, *first = NULL;
		int differ = 0;
		for (int i = 0; i < n; i++) {
			const rkey *s = kt_find(&runs[i].settings, name);
			const char *v = s != NULL ? s->text : "";
			differ |= first != NULL && strcmp(first, v) != 0;
			first = first ? first : v;
		}
		fmi_sb_printf(b, "<tr%s><td>", differ ? " class=\"diff\"" : "");
		esc(b, name);
		fmi_sb_puts(b, "</td>");
		for (int i = 0; i < n; i++) {
			const rkey *s = kt_find(&runs[i].settings, name);
			fmi_sb_puts(b, "<td>");
			if (s != NULL) {
				fmi_sb_esc(b, s->text, strlen(s->text), 200);
			} else {
				fmi_sb_puts(b, "&#8211;");
			}
			fmi_sb_puts(b, "</td>");
		}
		fmi_sb_puts(b, "</tr>\n");
	}
	fmi_sb_puts(b, all.n ? "</table></div>\n" : "");
	kt_free(&all);
	return FM_OK;
}

static void
page_head(fmi_sb *b, const run *runs, int n)
{
	fmi_sb_printf(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\""
	    "width=device-width, initial-scale=1\">\n<meta name=\"generator\" "
	    "content=\"fedmesh %s\">\n<title>fedmesh report: ", fm_version());
	for (int i = 0; i < n; i++) {
		fmi_sb_puts(b, i ? ", " : "");
		fmi_sb_esc(b, runs[i].label, strlen(runs[i].label), 60);
	}
	fmi_sb_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n"
	    "<h1>fedmesh report</h1>\n<p class=\"note\">%d run%s, written by "
	    "fedmesh %s. Time is the running sum of each row's "
	    "<code>seconds</code>.</p>\n", page_css, n, n == 1 ? "" : "s",
	    fm_version());
}

static void
metric_nav(fmi_sb *b, const ktab *metrics, const ropts *o)
{
	fmi_sb_puts(b, "<h2 id=\"metrics\">Metrics</h2>\n<nav>");
	for (size_t m = 0, shown = 0; m < metrics->n; m++) {
		int want = o->nmetrics == 0;
		for (int k = 0; k < o->nmetrics; k++) {
			want |= strcmp(o->metrics[k], metrics->v[m].name) == 0;
		}
		if (want) {
			fmi_sb_printf(b, "%s<a href=\"#m%zu\">", shown++ ? " " : "",
			    m);
			esc(b, metrics->v[m].name);
			fmi_sb_puts(b, "</a>");
		}
	}
	fmi_sb_puts(b, "</nav>\n");
}

static int
page(fmi_sb *b, const run *runs, int n, const ktab *metrics, const ropts *o)
{
	int xr = o->x == NULL || strcmp(o->x, "round") == 0;
	int xs = o->x == NULL || strcmp(o->x, "seconds") == 0;
	int width = xr && xs ? 580 : 760, rv = FM_OK;
	page_head(b, runs, n);
	runs_table(b, runs, n);
	if (settings_table(b, runs, n) != FM_OK) {
		return FM_ENOMEM;
	}
	metric_nav(b, metrics, o);
	if (metrics->n == 0) {
		fmi_sb_puts(b, "<p class=\"note\">No numeric metric.</p>\n");
	}
	for (size_t m = 0; rv == FM_OK && m < metrics->n; m++) {
		const char *name = metrics->v[m].name;
		int want = o->nmetrics == 0;
		for (int k = 0; k < o->nmetrics; k++) {
			want |= strcmp(o->metrics[k], name) == 0;
		}
		if (!want) {
			continue;
		}
		fmi_sb_printf(b, "<section class=\"metric\" id=\"m%zu\">\n<h3>",
		    m);
		esc(b, name);
		fmi_sb_puts(b, "</h3>\n<div class=\"pair\">\n");
		rv = xr ? chart(b, runs, n, name, 0, width, 0) : FM_OK;
		rv = rv == FM_OK && xs ? chart(b, runs, n, name, 1, width, 0) : rv;
		fmi_sb_puts(b, "</div>\n</section>\n");
	}
	fmi_sb_puts(b, "</body>\n</html>\n");
	return rv != FM_OK || b->oom ? FM_ENOMEM : FM_OK;
}

/* ---- options and the command ---------------------------------------------- */

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && strcmp(s + n - k, suffix) == 0;
}

static int
usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, PFX "%s%s%s%s\n(see `fedmesh report --help`)\n", msg,
	    arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
	return 2;
}

static int
option_value(int argc, char **argv, int *i, const char **out)
{
	if (*i + 1 >= argc) {
		return usage_error("this option needs a value:", argv[*i]);
	}
	*out = argv[++*i];
	return 0;
}

/* Returns -1 to go on, or the exit status (help, usage error). */
static int
parse_opts(int argc, char **argv, ropts *o)
{
	int dashdash = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		int rv = 0;
		if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
			o->files[o->nfiles++] = a;
		} else if (strcmp(a, "--") == 0) {
			dashdash = 1;
		} else if (fmi_cli_is_help(a)) {
			fputs(fmi_report_usage, stdout);
			return 0;
		} else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
			rv = option_value(argc, argv, &i, &o->out);
		} else if (strcmp(a, "--metric") == 0) {
			rv = option_value(argc, argv, &i, &v);
			o->metrics[o->nmetrics] = v;
			o->nmetrics += v != NULL;
		} else if (strcmp(a, "--x") == 0) {
			rv = option_value(argc, argv, &i, &o->x);
		} else {
			return usage_error("unknown option", a);
		}
		if (rv != 0) {
			return rv;
		}
	}
	return -1;
}

static int
check_opts(ropts *o)
{
	if (o->nfiles == 0) {
		return usage_error("no input: give one or more .jsonl files "
		    "(from `fedmesh run --metrics FILE.jsonl SCRIPT`)", NULL);
	}
	if (o->out == NULL) {
		return usage_error("no output: add -o report.html for a page, "
		    "or -o chart.svg for one chart", NULL);
	}
	o->svg = ends_with(o->out, ".svg");
	if (!o->svg && !ends_with(o->out, ".html") &&
	    !ends_with(o->out, ".htm")) {
		return usage_error("the output must end in .html (a page) or "
		    ".svg (one chart), not", o->out);
	}
	if (o->x != NULL && strcmp(o->x, "round") != 0 &&
	    strcmp(o->x, "seconds") != 0) {
		return usage_error("--x takes round or seconds, not", o->x);
	}
	if (o->svg && o->nmetrics > 1) {
		return usage_error("an SVG holds one chart: give one --metric, "
		    "or write an .html page for several", NULL);
	}
	return -1;
}

/* Every name must be a metric the runs have; else says which there are
 * and returns 2 (a usage error), with a suggestion for a typo. */
static int
check_metrics(const char *const *want, int nwant, const ktab *metrics)
{
	for (int k = 0; k < nwant; k++) {
		if (kt_find(metrics, want[k]) != NULL) {
			continue;
		}
		const char **names = calloc(metrics->n + 1, sizeof *names);
		if (names == NULL) {
			fprintf(stderr, PFX "out of memory\n");
			return 1;
		}
		for (size_t m = 0; m < metrics->n; m++) {
			names[m] = metrics->v[m].name;
		}
		const char *near = fmi_closest(want[k], names);
		fprintf(stderr, PFX "no metric '%s' in these runs", want[k]);
		if (near != NULL) {
			fprintf(stderr, " (did you mean '%s'?)", near);
		}
		fprintf(stderr, "; choose one with --metric NAME:");
		for (size_t m = 0; m < metrics->n; m++) {
			fprintf(stderr, "%s %s", m ? "," : "", names[m]);
		}
		fprintf(stderr, "%s\n", metrics->n ? "" : " (none has values)");
		free(names);
		return 2;
	}
	return 0;
}

static int
write_out(const char *path, const fmi_sb *b)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, PFX "cannot write '%s': %s\n", path,
		    strerror(errno));
		return 1;
	}
	size_t n = fwrite(b->p, 1, b->len, f);
	if ((n != b->len) | (fclose(f) != 0)) {
		fprintf(stderr, PFX "cannot write '%s': %s\n", path,
		    strerror(errno));
		remove(path);
		return 1;
	}
	return 0;
}

static int
svg_only(fmi_sb *b, const run *runs, int n, const ropts *o)
{
	const char *metric = o->nmetrics ? o->metrics[0] : "accuracy";
	int by_time = o->x != NULL && strcmp(o->x, "seconds") == 0;
	int any = 0;
	for (int i = 0; i < n; i++) {
		any |= runs[i].has_seconds;
	}
	if (by_time && !any) {
		fprintf(stderr, PFX "--x seconds: no run has a \"seconds\" "
		    "field\n");
		return 1;
	}
	return chart(b, runs, n, metric, by_time, 720, 1) == FM_OK ? 0 : 1;
}

static int
report(const ropts *o, run *runs)
{
	static const char *const dflt[] = { "accuracy" };
	ktab metrics = { 0 };
	fmi_sb b = { 0 };
	int rv = 0;
	for (int i = 0; rv == 0 && i < o->nfiles; i++) {
		runs[i].path = o->files[i];
		rv = read_run(&runs[i]);
	}
	if (rv == 0 && (make_labels(runs, o->nfiles) != FM_OK ||
	    list_metrics(runs, o->nfiles, &metrics) != FM_OK)) {
		fprintf(stderr, PFX "out of memory\n");
		rv = 1;
	}
	if (rv == 0) {
		int dfl = o->svg && o->nmetrics == 0;
		rv = check_metrics(dfl ? dflt : o->metrics, dfl ? 1 :
		    o->nmetrics, &metrics);
	}
	if (rv == 0) {
		rv = o->svg ? svg_only(&b, runs, o->nfiles, o) :
		    page(&b, runs, o->nfiles, &metrics, o) == FM_OK ? 0 : 1;
		if (rv == 0 && b.oom) {
			fprintf(stderr, PFX "out of memory\n");
			rv = 1;
		}
		rv = rv == 0 ? write_out(o->out, &b) : rv;
	}
	fmi_sb_free(&b);
	kt_free(&metrics);
	return rv;
}

int
fmi_cmd_report(int argc, char **argv)
{
	ropts o = { 0 };
	o.files = calloc((size_t)argc, sizeof *o.files);
	o.metrics = calloc((size_t)argc, sizeof *o.metrics);
	run *runs = calloc((size_t)argc, sizeof *runs);
	int rv = 1;
	if (o.files == NULL || o.metrics == NULL || runs == NULL) {
		fprintf(stderr, PFX "out of memory\n");
	} else if (argc < 2) {
		fputs(fmi_report_usage, stderr);
		rv = 2;
	} else if ((rv = parse_opts(argc, argv, &o)) == -1 &&
	    (rv = check_opts(&o)) == -1) {
		rv = report(&o, runs);
	}
	for (int i = 0; runs != NULL && i < argc; i++) {
		run_free(&runs[i]);
	}
	free(runs);
	free(o.files);
	free(o.metrics);
	return rv;
}
