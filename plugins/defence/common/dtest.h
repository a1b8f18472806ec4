/* SPDX-License-Identifier: MIT */
/*
 * dtest.h: what the defence conformance tests share: loading a built
 * plugin through the registry, opening instances with fmi_def_open, and
 * building an fm_rows by hand with 64-byte aligned rows (as the
 * host lays them out), plus references and random data. Test-only;
 * include after fm_test.h.
 */
#ifndef FM_DEFENCE_DTEST_H
#define FM_DEFENCE_DTEST_H

#include <limits.h>

#include "core/core.h"
#include "plugin/registry.h"

#include "fm_plugin_test.h"

#include "../../ptest.h"

#define DT_POISON_KEEP 0xdeadbeefu

/* A hand-built round: n rows of dim floats, row stride rounded up to 16
 * floats (64 bytes), updates[i] describing row i. */
typedef struct dt_round {
	fm_rows r;
	fm_update *up;
	uint32_t *keep;
	uint64_t *ke;
	float *buf;
} dt_round;

/* Opens c (params in[nin] over the defaults); returns the code, *out set
 * on success. */
static inline int
dt_try_open(const fmi_component *c, const fmi_param_in *in, size_t nin,
    size_t dim, fmi_def **out)
{
	fm_value v[16];
	fm_error e;
	int rv = fmi_params_resolve(c, in, nin, v, &e);
	*out = NULL;
	return rv != FM_OK ? rv : fmi_def_open(out, c,
	    &(fmi_open_args){ .params = v, .dim = dim, .role = FM_ROLE_SERVER,
	    .node_id = FM_NODE_SERVER, .seed = 42, .flags = FM_INST_ROOT_DATA },
	    &e);
}

static inline fmi_def *
dt_open(const fmi_component *c, const fmi_param_in *in, size_t nin,
    size_t dim)
{
	fmi_def *d = NULL;
	FMT_PASS(dt_try_open(c, in, nin, dim, &d));
	return d;
}

/* Opens c with at most one numeric parameter (name NULL: defaults). */
static inline fmi_def *
dt_open1(const fmi_component *c, const char *name, double v, size_t dim)
{
	const fmi_param_in in = { name, 0, v, NULL };
	return dt_open(c, &in, name != NULL ? 1 : 0, dim);
}

static inline size_t
dt_stride(size_t dim)
{
	return (dim + 15) / 16 * 16;
}

static inline float *
dt_row(dt_round *t, uint32_t i)
{
	return t->buf + (size_t)i * t->r.stride;
}

/* n rows of dim zeros, num_examples 1 each, round 1. */
static inline dt_round *
dt_new(uint32_t n, size_t dim)
{
	dt_round *t = calloc(1, sizeof *t);
	size_t stride = dt_stride(dim), cap = n > 0 ? n : 1;
	assert_non_null(t);
	t->buf = aligned_alloc(64, cap * stride * sizeof(float));
	t->up = calloc(cap, sizeof *t->up);
	t->keep = calloc(cap, sizeof *t->keep);
	t->ke = calloc(cap, sizeof *t->ke);
	assert_true(t->buf && t->up && t->keep && t->ke);
	memset(t->buf, 0, cap * stride * sizeof(float));
	for (uint32_t i = 0; i < n; i++) {
		t->up[i] = (fm_update){ .struct_size = sizeof(fm_update),
			.client = (int32_t)i + 1, .round = 1,
			.delta = t->buf + (size_t)i * stride, .dim = dim,
			.num_examples = 1, .loss = 0.5 };
	}
	t->r = (fm_rows){ .struct_size = sizeof(fm_rows),
		.round = 1, .n = n, .dim = dim, .deltas = t->buf,
		.stride = stride, .updates = t->up, .keep = t->keep,
		.keep_examples = t->ke };
	return t;
}

static inline void
dt_free(dt_round *t)
{
	if (t != NULL) {
		free(t->buf);
		free(t->up);
		free(t->keep);
		free(t->ke);
		free(t);
	}
}

/* Rows from x[n][dim] (row-major, packed). */
static inline void
dt_set(dt_round *t, const float *x)
{
	for (uint32_t i = 0; i < t->r.n; i++) {
		memcpy(dt_row(t, i), x + (size_t)i * t->r.dim,
		    t->r.dim * sizeof(float));
	}
}

static inline void
dt_examples(dt_round *t, const uint64_t *ex)
{
	for (uint32_t i = 0; i < t->r.n; i++) {
		t->up[i].num_examples = ex[i];
	}
}

/* A copy of t (same rows, examples, round fields). */
static inline dt_round *
dt_clone(const dt_round *t)
{
	dt_round *c = dt_new(t->r.n, t->r.dim);
	memcpy(c->buf, t->buf, (t->r.n > 0 ? t->r.n : 1) * t->r.stride *
	    sizeof(float));
	for (uint32_t i = 0; i < t->r.n; i++) {
		c->up[i].num_examples = t->up[i].num_examples;
	}
	c->r.round = t->r.round;
	c->r.global = t->r.global;
	c->r.server_delta = t->r.server_delta;
	return c;
}

/* d_apply with the outputs poisoned first. */
static inline int
dt_apply(fmi_def *d, dt_round *t)
{
	t->r.nkeep = DT_POISON_KEEP;
	for (uint32_t i = 0; i < t->r.n; i++) {
		t->keep[i] = DT_POISON_KEEP;
		t->ke[i] = DT_POISON_KEEP;
	}
	return fmi_def_apply(d, &t->r);
}

/* Asserts keep = { 0 } with the round's total examples. */
static inline void
dt_assert_row0(const dt_round *t)
{
	uint64_t s = 0;
	for (uint32_t i = 0; i < t->r.n; i++) {
		s += t->up[i].num_examples;
	}
	assert_int_equal(t->r.nkeep, 1);
	assert_int_equal(t->keep[0], 0);
	assert_int_equal(t->ke[0], s);
}

/* Uniform in [lo, hi) from a seeded stream. */
static inline void
dt_random(dt_round *t, uint64_t seed, float lo, float hi)
{
	fm_rng g;
	fmi_rng_seed(&g, seed, 7);
	for (uint32_t i = 0; i < t->r.n; i++) {
		float *x = dt_row(t, i);
		for (size_t j = 0; j < t->r.dim; j++) {
			x[j] = lo + (hi - lo) * (float)fmi_rng_uniform(&g);
		}
	}
}

/*
 * The Byzantine setting every robust rule is checked in: rows 0..n-f-1
 * honest, 1 + 0.01 N(0, 1) per coordinate; the f last rows 1e6 in every
 * coordinate. honest_lo/hi/mean get the honest per-coordinate range and
 * mean (dim floats each).
 */
static inline void
dt_byzantine(dt_round *t, uint32_t f, uint64_t seed, float *honest_lo,
    float *honest_hi, float *honest_mean)
{
	fm_rng g;
	uint32_t h = t->r.n - f;
	fmi_rng_seed(&g, seed, 11);
	for (size_t j = 0; j < t->r.dim; j++) {
		double s = 0;
		honest_lo[j] = INFINITY;
		honest_hi[j] = -INFINITY;
		for (uint32_t i = 0; i < t->r.n; i++) {
			float x = i >= h ? 1e6f :
			    1.0f + 0.01f * (float)fmi_rng_normal(&g);
			dt_row(t, i)[j] = x;
			if (i < h) {
				s += x;
				honest_lo[j] = fminf(x, honest_lo[j]);
				honest_hi[j] = fmaxf(x, honest_hi[j]);
			}
		}
		honest_mean[j] = (float)(s / h);
	}
}

/* The first coordinate of x outside [lo, hi] (per coordinate), or dim. */
static inline size_t
dt_outside(const float *x, const float *lo, const float *hi, size_t dim)
{
	size_t j = 0;
	while (j < dim && x[j] >= lo[j] && x[j] <= hi[j]) {
		j++;
	}
	return j;
}

/* Every coordinate of x within [lo, hi]; prints the first one outside. */
static inline int
dt_within(const float *x, const float *lo, const float *hi, size_t dim)
{
	size_t j = dt_outside(x, lo, hi, dim);
	if (j < dim) {
		print_error("coordinate %zu: %g not in [%g, %g]\n", j,
		    (double)x[j], (double)lo[j], (double)hi[j]);
	}
	return j == dim;
}

/* ||x - y|| in double. */
static inline double
dt_dist(const float *x, const float *y, size_t dim)
{
	double s = 0;
	for (size_t j = 0; j < dim; j++) {
		double d = (double)x[j] - (double)y[j];
		s += d * d;
	}
	return sqrt(s);
}

/* ||x||^2 in double. */
static inline double
dt_norm2(const float *x, size_t dim)
{
	double s = 0;
	for (size_t j = 0; j < dim; j++) {
		s += (double)x[j] * x[j];
	}
	return s;
}

/* The unweighted mean of the rows, per coordinate, into out[dim]. */
static inline void
dt_mean(const dt_round *t, float *out)
{
	for (size_t j = 0; j < t->r.dim; j++) {
		double s = 0;
		for (uint32_t i = 0; i < t->r.n; i++) {
			s += t->buf[(size_t)i * t->r.stride + j];
		}
		out[j] = (float)(s / t->r.n);
	}
}

/* Captures (and so silences) the log while a test provokes errors. */
static inline void
dt_quiet(fmt_logcap *cap)
{
	cap->n = 0;
	fm_log_set_sink(fmt_logcap_sink, cap);
}

static inline void
dt_loud(void)
{
	fm_log_set_sink(NULL, NULL);
}

/* True if a captured line contains s. */
static inline int
dt_logged(const fmt_logcap *cap, const char *s)
{
	for (int i = 0; i < cap->n; i++) {
		if (strstr(cap->lines[i], s) != NULL) {
			return 1;
		}
	}
	return 0;
}

/* Seconds on the monotonic clock. */
static inline double
dt_now(void)
{
	return fmi_now();
}

#endif /* FM_DEFENCE_DTEST_H */
