/* SPDX-License-Identifier: MIT */
/* csv.c: CSV dataset loader (label, then features; optional header). */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "data/data.h"

#define CSV_MAX_LABEL 100000

typedef struct csv_state {
	const char *path;
	size_t line;      /* current line, from 1 */
	size_t nonblank;  /* non-blank lines so far */
	size_t first;     /* line of the first data row, 0 before it */
	size_t ncols;     /* columns per row, from the first data row */
	double *vals;     /* scratch: the current row */
	size_t vcap;
	float *x;         /* accumulated features [n x (ncols - 1)] */
	int32_t *y;
	size_t n, cap;
	int32_t maxl;
	char sep;         /* ',', ';' or '\t'; 0: from the first line */
} csv_state;

/* Parses one numeric field starting at p; *end is the next sep or NUL. */
static int
csv_number(const char *p, char sep, double *v, const char **end)
{
	while ((*p == ' ' || *p == '\t') && *p != sep) {
		p++;
	}
	char *e;
	errno = 0;
	*v = strtod(p, &e);
	if (e == p || errno == ERANGE || !isfinite(*v)) {
		return -1;
	}
	while ((*e == ' ' || *e == '\t') && *e != sep) {
		e++;
	}
	*end = e;
	return (*e == sep || *e == '\0') ? 0 : -1;
}

static int
csv_push_val(csv_state *s, size_t i, double v)
{
	if (i == s->vcap) {
		size_t cap = s->vcap ? 2 * s->vcap : 64;
		double *nv = realloc(s->vals, cap * sizeof *nv);
		if (nv == NULL) {
			return FM_ENOMEM;
		}
		s->vals = nv;
		s->vcap = cap;
	}
	s->vals[i] = v;
	return FM_OK;
}

/* Splits line into s->vals; on a bad field returns FM_EPROTO with *col
 * (1-based) at its start. */
static int
csv_split(csv_state *s, const char *line, size_t *ncols, size_t *col)
{
	const char *p = line;
	size_t i = 0;
	for (;;) {
		double v;
		const char *e;
		if (csv_number(p, s->sep, &v, &e) != 0) {
			*col = (size_t)(p - line) + 1;
			return FM_EPROTO;
		}
		if (csv_push_val(s, i++, v) != FM_OK) {
			return FM_ENOMEM;
		}
		if (*e == '\0') {
			break;
		}
		p = e + 1;
	}
	*ncols = i;
	return FM_OK;
}

static int
csv_bad_field(const csv_state *s, const char *line, size_t col,
    fm_error *err)
{
	const char *f = line + col - 1;
	char seps[2] = { s->sep, '\0' };
	int len = (int)strcspn(f, seps);
	const char *name = s->sep == ';' ? "';'" : s->sep == '\t' ? "tab"
	                                                         : "','";
	return fm_error_set(err, FM_EPROTO, "%s:%zu:%zu: expected a finite "
	    "number, found \"%.*s\"; rows must be label%sfeature%s... with "
	    "numeric values separated by %s (numbers take '.' as the decimal "
	    "point)", s->path, s->line, col, len > 40 ? 40 : len, f, seps, seps,
	    name);
}

static int
csv_grow_rows(csv_state *s, size_t dim)
{
	if (s->n < s->cap) {
		return FM_OK;
	}
	size_t cap = s->cap ? 2 * s->cap : 256;
	if (cap > SIZE_MAX / sizeof(float) / dim) {
		return FM_ENOMEM;
	}
	float *x = realloc(s->x, cap * dim * sizeof *x);
	if (x != NULL) {
		s->x = x;
	}
	int32_t *y = realloc(s->y, cap * sizeof *y);
	if (y != NULL) {
		s->y = y;
	}
	if (x == NULL || y == NULL) {
		return FM_ENOMEM;
	}
	s->cap = cap;
	return FM_OK;
}

/* Appends the parsed row in s->vals as one sample. */
static int
csv_add_row(csv_state *s, size_t ncols, fm_error *err)
{
	if (s->first == 0) {
		s->first = s->line;
		s->ncols = ncols;
		if (ncols < 2) {
			return fm_error_set(err, FM_EPROTO, "%s:%zu: a row needs a "
			    "label and at least one feature, found %zu column",
			    s->path, s->line, ncols);
		}
	}
	if (ncols != s->ncols) {
		return fm_error_set(err, FM_EPROTO, "%s:%zu: row has %zu columns "
		    "but line %zu has %zu; every row needs the label and the "
		    "same number of features", s->path, s->line, ncols,
		    s->first, s->ncols);
	}
	double l = s->vals[0];
	if (l < 0 || l > CSV_MAX_LABEL || l != floor(l)) {
		return fm_error_set(err, FM_EPROTO, "%s:%zu:1: label must be an "
		    "integer in [0, %d], found %g", s->path, s->line,
		    CSV_MAX_LABEL, l);
	}
	size_t dim = ncols - 1;
	if (csv_grow_rows(s, dim) != FM_OK) {
		return fm_error_set(err, FM_ENOMEM, "%s:%zu: out of memory",
		    s->path, s->line);
	}
	for (size_t j = 0; j < dim; j++) {
		double v = s->vals[j + 1];
		if (fabs(v) > FLT_MAX) {
			return fm_error_set(err, FM_ERANGE, "%s:%zu: column %zu "
			    "value %g is outside the float32 range", s->path,
			    s->line, j + 2, v);
		}
		s->x[s->n * dim + j] = (float)v;
	}
	s->y[s->n++] = (int32_t)l;
	s->maxl = FMI_MAX(s->maxl, (int32_t)l);
	return FM_OK;
}

/* Handles one line (newline stripped). */
static int
csv_line(csv_state *s, char *line, fm_error *err)
{
	if (line[strspn(line, " \t")] == '\0') {
		return FM_OK; /* blank */
	}
	size_t ncols, col = 0;
	s->nonblank++;
	if (s->sep == 0) { /* ';' never occurs in a number; tabs alone */
		s->sep = strchr(line, ';') != NULL ? ';'
		    : strchr(line, ',') == NULL && strchr(line, '\t') != NULL
		    ? '\t' : ',';
	}
	int rv = csv_split(s, line, &ncols, &col);
	if (rv == FM_ENOMEM) {
		return fm_error_set(err, rv, "%s:%zu: out of memory", s->path,
		    s->line);
	}
	if (rv != FM_OK) {
		if (s->nonblank == 1) {
			return FM_OK; /* header */
		}
		return csv_bad_field(s, line, col, err);
	}
	return csv_add_row(s, ncols, err);
}

static int
csv_read(csv_state *s, FILE *f, fm_error *err)
{
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	int rv = FM_OK;
	while (rv == FM_OK && (len = getline(&line, &lcap, f)) >= 0) {
		s->line++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
			line[--len] = '\0';
		}
		rv = csv_line(s, line, err);
	}
	if (rv == FM_OK && ferror(f)) {
		rv = fm_error_set(err, FM_EIO, "cannot read %s: %s", s->path,
		    strerror(errno));
	}
	free(line);
	return rv;
}

static int
csv_finish(fmi_dataset **out, csv_state *s, fm_error *err)
{
	if (s->n == 0) {
		return fm_error_set(err, FM_EPROTO, "%s: no data rows; expected "
		    "lines of label,feature,...", s->path);
	}
	size_t dim = s->ncols - 1;
	fmi_dataset *d;
	if (fmi_dataset_new(&d, s->n, dim, (uint32_t)s->maxl + 1) != FM_OK) {
		return fm_error_set(err, FM_ENOMEM, "%s: out of memory for %zu "
		    "rows", s->path, s->n);
	}
	memcpy(d->x, s->x, s->n * dim * sizeof(float));
	memcpy(d->y, s->y, s->n * sizeof(int32_t));
	const char *base = strrchr(s->path, '/');
	snprintf(d->name, sizeof d->name, "%s", base ? base + 1 : s->path);
	*out = d;
	return FM_OK;
}

int
fmi_csv_load(fmi_dataset **out, const char *path, fm_error *err)
{
	return fmi_csv_load_sep(out, path, 0, err);
}

int
fmi_csv_load_sep(fmi_dataset **out, const char *path, char sep,
    fm_error *err)
{
	if (out == NULL || path == NULL) {
		return fm_error_set(err, FM_EINVAL, "fmi_csv_load: out and path "
		    "must not be NULL");
	}
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		int e = errno;
		return fm_error_set(err, e == ENOENT ? FM_ENOENT : FM_EIO,
		    "cannot open %s: %s", path, strerror(e));
	}
	if (sep != 0 && sep != ',' && sep != ';' && sep != '\t') {
		return fm_error_set(err, FM_EINVAL, "the separator must be ',', "
		    "';' or a tab");
	}
	csv_state s = { .path = path, .sep = sep };
	int rv = csv_read(&s, f, err);
	fclose(f);
	if (rv == FM_OK) {
		rv = csv_finish(out, &s, err);
	}
	free(s.vals);
	free(s.x);
	free(s.y);
	return rv;
}
