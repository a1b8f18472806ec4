/* SPDX-License-Identifier: MIT */
/* dfc.c: shared helpers of the defence plugins (see dfc.h). */
#include "dfc.h"

#include <stdarg.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#define DFC_BLOCK 1024 /* floats per partial sum, per weighted-sum tile */
#define DFC_MIN_SPLIT 65536 /* floats of work below which threads cost more */
#define DFC_LANES 16

void
dfc_error(const dfc_base *b, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	b->host->log(FM_LOG_ERR, b->logid, "%s", buf);
	if (b->inst != NULL && FM_HOST_HAS(b->host, set_error)) {
		size_t n = strlen(b->name);
		const char *why = strncmp(buf, b->name, n) == 0 &&
		    buf[n] == ':' && buf[n + 1] == ' ' ? buf + n + 2 : buf;
		b->host->set_error(b->inst, "%s", why);
	}
}

int
dfc_init(dfc_base *b, const fm_instance *inst, const char *name,
    const char *logid, uint32_t nparams)
{
	b->host = inst->host;
	b->inst = inst;
	b->name = name;
	b->logid = logid;
	b->dim = inst->dim;
	b->threads = 1;
	if (b->dim == 0) {
		dfc_error(b, "%s: empty model", name);
		return FM_EINVAL;
	}
	if (inst->nparams != nparams || (nparams > 0 && inst->params == NULL)) {
		dfc_error(b, "%s: %u parameters, want %u", name, inst->nparams, nparams);
		return FM_EINVAL;
	}
	return FM_OK;
}

int
dfc_count(const dfc_base *b, const char *param, double v, uint32_t lo,
    uint32_t hi, uint32_t *out)
{
	if (!(v >= lo && v <= hi) || v != floor(v)) {
		dfc_error(b, "%s: parameter '%s' = %g must be an integer in [%u, %u]",
		    b->name, param, v, lo, hi);
		return FM_EINVAL;
	}
	*out = (uint32_t)v;
	return FM_OK;
}

int
dfc_set_threads(dfc_base *b, double v)
{
	uint32_t t;
	int rv = dfc_count(b, "threads", v, 0, DFC_MAX_THREADS, &t);
	if (rv == FM_OK && t == 0) {
		fm_limits lim;
		memset(&lim, 0, sizeof lim);
		lim.struct_size = (uint32_t)sizeof lim;
		if (b->inst != NULL && FM_HOST_HAS(b->host, limits)) {
			b->host->limits(b->inst, &lim);
		}
		t = lim.threads < 1 ? 1 : lim.threads > DFC_MAX_THREADS ?
		    DFC_MAX_THREADS : lim.threads;
	}
	b->threads = rv == FM_OK ? t : 1;
	return rv;
}

static int
dfc_bad(const dfc_base *b, const fm_rows *r, const char *what)
{
	dfc_error(b, "%s: round %u: %s", b->name, r != NULL ? r->round : 0, what);
	return FM_EINVAL;
}

int
dfc_check(const dfc_base *b, const fm_rows *r)
{
	if (r == NULL || r->struct_size < sizeof(fm_rows)) {
		return dfc_bad(b, r, "missing or truncated fm_rows");
	}
	if (r->dim != b->dim) {
		dfc_error(b, "%s: round %u: updates have %zu parameters, the model %zu",
		    b->name, r->round, r->dim, b->dim);
		return FM_EINVAL;
	}
	if (r->n > 0 && (r->deltas == NULL || r->updates == NULL ||
	    r->keep == NULL || r->keep_examples == NULL)) {
		return dfc_bad(b, r, "missing deltas, updates or keep arrays");
	}
	if (r->n > 0 && r->updates->struct_size < sizeof(fm_update)) {
		return dfc_bad(b, r, "truncated fm_update array");
	}
	if (r->n > 0 && r->stride < r->dim) {
		return dfc_bad(b, r, "row stride smaller than the model");
	}
	return FM_OK;
}

uint64_t
dfc_examples(const fm_rows *r)
{
	uint64_t s = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		s += dfc_update(r, i)->num_examples;
	}
	return s;
}

void
dfc_keep_row0(fm_rows *r)
{
	r->keep[0] = 0;
	r->keep_examples[0] = dfc_examples(r);
	r->nkeep = 1;
}

void *
dfc_grow(const fm_host_api *host, void *buf, size_t *cap, size_t n)
{
	if (buf != NULL && *cap >= n) {
		return buf;
	}
	host->free(buf);
	buf = host->alloc(n > 0 ? n : 1);
	*cap = buf != NULL ? n : 0;
	return buf;
}

/* ---- parallel for -------------------------------------------------------- */

typedef struct dfc_task {
	void (*fn)(void *ctx, uint32_t chunk, size_t lo, size_t hi);
	void *ctx;
	uint32_t chunk;
	size_t lo, hi;
} dfc_task;

static void
dfc_task_run(dfc_task *t)
{
	t->fn(t->ctx, t->chunk, t->lo, t->hi);
}

/* host->parallel_for's items are the chunks: item k runs chunk k. */
static void
dfc_tasks_run(void *ud, size_t begin, size_t end)
{
	dfc_task *task = ud;
	for (size_t k = begin; k < end; k++) {
		dfc_task_run(&task[k]);
	}
}

uint32_t
dfc_fit_threads(uint32_t threads, size_t floats)
{
	return floats < DFC_MIN_SPLIT ? 1 : threads;
}

void
dfc_parallel(const dfc_base *b, uint32_t threads, size_t count, size_t grain,
    void (*fn)(void *ctx, uint32_t chunk, size_t lo, size_t hi), void *ctx)
{
	dfc_task task[DFC_MAX_THREADS];
	size_t units = (count + grain - 1) / grain;
	uint32_t t = threads < 1 ? 1 : threads > DFC_MAX_THREADS ?
	    DFC_MAX_THREADS : threads;
	if (units < t) {
		t = units > 0 ? (uint32_t)units : 1;
	}
	for (uint32_t k = 0; k < t; k++) {
		size_t lo = units * k / t * grain;
		size_t hi = units * (k + 1) / t * grain;
		task[k] = (dfc_task){ fn, ctx, k, lo, hi < count ? hi : count };
	}
	if (t > 1 && b != NULL && b->inst != NULL &&
	    FM_HOST_HAS(b->host, parallel_for)) {
		b->host->parallel_for(b->inst, t, dfc_tasks_run, task);
		return;
	}
	dfc_tasks_run(task, 0, t);
}

/* ---- kernels ------------------------------------------------------------- */

/* The lanes of a 16-lane partial sum, in order, plus the tail s. */
static float
dfc_lanes(const float *lane, float s)
{
	for (size_t l = 0; l < DFC_LANES; l++) {
		s += lane[l];
	}
	return s;
}

/* sum over [0, m) of (x - y)^2, m <= DFC_BLOCK, in 16 float lanes
 * (vectorizable), then the lanes in order. */
static float
dfc_sqd_block(const float *x, const float *y, size_t m)
{
	float lane[DFC_LANES] = { 0 }, s = 0;
	size_t j = 0;
	for (; j + DFC_LANES <= m; j += DFC_LANES) {
		for (size_t l = 0; l < DFC_LANES; l++) {
			float d = x[j + l] - y[j + l];
			lane[l] += d * d;
		}
	}
	for (; j < m; j++) {
		s += (x[j] - y[j]) * (x[j] - y[j]);
	}
	return dfc_lanes(lane, s);
}

/* sum over [0, m) of x^2, as above. */
static float
dfc_sq_block(const float *x, size_t m)
{
	float lane[DFC_LANES] = { 0 }, s = 0;
	size_t j = 0;
	for (; j + DFC_LANES <= m; j += DFC_LANES) {
		for (size_t l = 0; l < DFC_LANES; l++) {
			lane[l] += x[j + l] * x[j + l];
		}
	}
	for (; j < m; j++) {
		s += x[j] * x[j];
	}
	return dfc_lanes(lane, s);
}

static double
dfc_sq(const float *x, const float *y, size_t n)
{
	double s = 0;
	for (size_t j = 0; j < n; j += DFC_BLOCK) {
		size_t m = n - j < DFC_BLOCK ? n - j : DFC_BLOCK;
		s += y != NULL ? dfc_sqd_block(x + j, y + j, m) :
		    dfc_sq_block(x + j, m);
	}
	return isfinite(s) ? s : INFINITY;
}

/* x . y over [0, m), m <= DFC_BLOCK, as dfc_sq_block. */
static float
dfc_dot_block(const float *x, const float *y, size_t m)
{
	float lane[DFC_LANES] = { 0 }, s = 0;
	size_t j = 0;
	for (; j + DFC_LANES <= m; j += DFC_LANES) {
		for (size_t l = 0; l < DFC_LANES; l++) {
			lane[l] += x[j + l] * y[j + l];
		}
	}
	for (; j < m; j++) {
		s += x[j] * y[j];
	}
	return dfc_lanes(lane, s);
}

double
dfc_dot(const float *x, const float *y, size_t n)
{
	double s = 0;
	for (size_t j = 0; j < n; j += DFC_BLOCK) {
		size_t m = n - j < DFC_BLOCK ? n - j : DFC_BLOCK;
		s += dfc_dot_block(x + j, y + j, m);
	}
	return s;
}

double
dfc_dist2(const float *x, const float *y, size_t n)
{
	return dfc_sq(x, y, n);
}

double
dfc_norm2(const float *x, size_t n)
{
	return dfc_sq(x, NULL, n);
}

/* out[0..m) = a * x[0..m) (first) or += a * x[0..m), in fixed runs of 16
 * so that -O2 vectorizes it (no alias check, no trip-count guess). */
static void
dfc_axpy_block(float *restrict out, float a, const float *restrict x,
    size_t m, int first)
{
	size_t j = 0;
	if (first) {
		memset(out, 0, m * sizeof *out);
	}
	for (; j + DFC_LANES <= m; j += DFC_LANES) {
		for (size_t l = 0; l < DFC_LANES; l++) {
			out[j + l] += a * x[j + l];
		}
	}
	for (; j < m; j++) {
		out[j] += a * x[j];
	}
}

static void
dfc_wsum_range(void *ctx, uint32_t chunk, size_t lo, size_t hi)
{
	(void)chunk;
	const dfc_wsum_job *job = ctx;
	for (size_t j = lo; j < hi; j += DFC_BLOCK) {
		size_t m = hi - j < DFC_BLOCK ? hi - j : DFC_BLOCK;
		float *out = job->out + j;
		int first = 1;
		if (job->base != NULL) {
			dfc_axpy_block(out, (float)job->a0, job->base + j, m,
			    1);
			first = 0;
		}
		for (uint32_t k = 0; k < job->k; k++) {
			dfc_axpy_block(out, (float)job->c[k],
			    job->rows[k] + j, m, first);
			first = 0;
		}
		if (first) {
			memset(out, 0, m * sizeof(float));
		}
		for (uint32_t k = 0; job->part != NULL && k < job->k; k++) {
			job->part[k * job->nblocks + j / DFC_BLOCK] =
			    dfc_sqd_block(job->rows[k] + j, out, m);
		}
	}
}

void
dfc_wsum(const dfc_base *b, const dfc_wsum_job *job, size_t p,
    uint32_t threads)
{
	dfc_parallel(b, dfc_fit_threads(threads, (size_t)job->k * p), p, DFC_BLOCK,
	    dfc_wsum_range, (void *)job);
}

size_t
dfc_blocks(size_t p)
{
	return (p + DFC_BLOCK - 1) / DFC_BLOCK;
}

void
dfc_wsum_dists(const dfc_base *b, const dfc_wsum_job *job, size_t p,
    double *dist, uint32_t threads)
{
	dfc_wsum_job with = *job;
	size_t nb = with.nblocks = dfc_blocks(p);
	dfc_wsum(b, &with, p, threads);
	for (uint32_t k = 0; k < job->k; k++) { /* blocks in order, as dfc_sq */
		double s = 0;
		for (size_t blk = 0; blk < nb; blk++) {
			s += job->part[k * nb + blk];
		}
		dist[k] = isfinite(s) ? sqrt(s) : INFINITY;
	}
}

typedef struct dfc_dists_job {
	const float *const *rows;
	const float *y;
	size_t p;
	double *dist;
} dfc_dists_job;

static void
dfc_dists_range(void *ctx, uint32_t chunk, size_t lo, size_t hi)
{
	(void)chunk;
	const dfc_dists_job *job = ctx;
	for (size_t i = lo; i < hi; i++) {
		job->dist[i] = sqrt(job->y != NULL ?
		    dfc_dist2(job->rows[i], job->y, job->p) :
		    dfc_norm2(job->rows[i], job->p));
	}
}

void
dfc_dists(const dfc_base *b, const float *const *rows, uint32_t n,
    const float *y, size_t p, double *dist, uint32_t threads)
{
	dfc_dists_job job = { rows, y, p, dist };
	dfc_parallel(b, dfc_fit_threads(threads, (size_t)n * p), n, 1,
	    dfc_dists_range, &job);
}

typedef struct dfc_dots_job {
	const float *const *rows;
	const float *y;
	size_t p;
	double *dot, *norm;
} dfc_dots_job;

static void
dfc_dots_range(void *ctx, uint32_t chunk, size_t lo, size_t hi)
{
	const dfc_dots_job *job = ctx;
	(void)chunk;
	for (size_t i = lo; i < hi; i++) {
		const float *x = job->rows[i];
		double d = 0, q = 0;
		for (size_t j = 0; j < job->p; j += DFC_BLOCK) { /* block hot */
			size_t m = job->p - j < DFC_BLOCK ? job->p - j :
			    DFC_BLOCK;
			d += dfc_dot_block(x + j, job->y + j, m);
			q += dfc_sq_block(x + j, m);
		}
		job->dot[i] = d;
		job->norm[i] = isfinite(q) ? sqrt(q) : INFINITY;
	}
}

void
dfc_dots(const dfc_base *b, const float *const *rows, uint32_t n,
    const float *y, size_t p, double *dot, double *norm, uint32_t threads)
{
	dfc_dots_job job = { rows, y, p, dot, norm };
	dfc_parallel(b, dfc_fit_threads(threads, (size_t)n * p), n, 1,
	    dfc_dots_range, &job);
}
