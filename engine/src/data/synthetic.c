/* SPDX-License-Identifier: MIT */
/* synthetic.c: Synthetic(alpha, beta) of Li et al. 2020 (FedProx). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "data/data.h"

/* Upper bound on all generated features, in floats (4 GiB). */
#define SYN_MAX_FLOATS ((uint64_t)1 << 30)

/* RNG streams; device k draws from SYN_DEVICE + k. */
enum { SYN_COUNTS = 1, SYN_PRIOR = 2, SYN_GLOBAL = 3 };
#define SYN_DEVICE ((uint64_t)1 << 32)

typedef struct syn_gen {
	const fmi_synthetic_cfg *cfg;
	double *sd;       /* [dim] sqrt(Sigma_jj) = (j+1)^-0.6 */
	double *u, *bk;   /* [devices] u_k ~ N(0, alpha), B_k ~ N(0, beta) */
	double *v;        /* [dim] mean of x on the current device */
	double *w, *b;    /* [dim x nclasses], [nclasses] */
	uint32_t *count;  /* [devices] samples per device */
	uint32_t maxcount;
	float *xs;        /* [maxcount x dim] the current device's samples */
	int32_t *ys;      /* [maxcount] */
	uint32_t *perm;   /* [maxcount] */
} syn_gen;

static int
syn_check(const fmi_synthetic_cfg *c, fm_error *err)
{
	if (c->devices == 0 || c->dim == 0 || c->nclasses < 2 ||
	    c->nclasses > 65536 || c->dim > 65536) {
		return fm_error_set(err, FM_EINVAL, "Synthetic: need devices >= "
		    "1, 1 <= dim <= 65536 and 2 <= classes <= 65536, got "
		    "devices %u, dim %u, classes %u", c->devices, c->dim,
		    c->nclasses);
	}
	if (!(c->alpha >= 0 && c->beta >= 0) || !isfinite(c->alpha) ||
	    !isfinite(c->beta)) {
		return fm_error_set(err, FM_EINVAL, "Synthetic: alpha and beta "
		    "are standard deviations and must be finite and >= 0, got "
		    "alpha %g, beta %g", c->alpha, c->beta);
	}
	return FM_OK;
}

/* Samples per device: int(lognormal(4, 2)) + 50, capped. */
static int
syn_counts(syn_gen *g, size_t *total, fm_error *err)
{
	const fmi_synthetic_cfg *c = g->cfg;
	fm_rng r;
	fmi_rng_seed(&r, c->seed, SYN_COUNTS);
	*total = 0;
	for (uint32_t k = 0; k < c->devices; k++) {
		double e = floor(exp(4.0 + 2.0 * fmi_rng_normal(&r))) + 50.0;
		if (c->max_per_device != 0 && e > c->max_per_device) {
			e = c->max_per_device;
		}
		g->count[k] = (uint32_t)FMI_MIN(e, (double)SYN_MAX_FLOATS);
		g->maxcount = FMI_MAX(g->maxcount, g->count[k]);
		*total += g->count[k];
	}
	if ((uint64_t)*total * c->dim > SYN_MAX_FLOATS) {
		return fm_error_set(err, FM_ERANGE, "Synthetic: the lognormal "
		    "sample counts add up to %zu samples of %u features (one "
		    "device has %u), more than the %llu-float limit; set "
		    "max_per_device to cap them", *total, c->dim, g->maxcount,
		    (unsigned long long)SYN_MAX_FLOATS);
	}
	return FM_OK;
}

static int
syn_alloc(syn_gen *g)
{
	const fmi_synthetic_cfg *c = g->cfg;
	size_t dc = (size_t)c->dim * c->nclasses;
	g->sd = malloc(c->dim * sizeof(double));
	g->u = malloc(c->devices * sizeof(double));
	g->bk = malloc(c->devices * sizeof(double));
	g->v = malloc(c->dim * sizeof(double));
	g->w = malloc(dc * sizeof(double));
	g->b = malloc(c->nclasses * sizeof(double));
	g->count = malloc(c->devices * sizeof(uint32_t));
	return g->sd && g->u && g->bk && g->v && g->w && g->b && g->count
	    ? FM_OK : FM_ENOMEM;
}

static int
syn_alloc_samples(syn_gen *g)
{
	size_t m = (size_t)g->maxcount + 1;
	g->xs = malloc(m * g->cfg->dim * sizeof(float));
	g->ys = malloc(m * sizeof(int32_t));
	g->perm = malloc(m * sizeof(uint32_t));
	return g->xs && g->ys && g->perm ? FM_OK : FM_ENOMEM;
}

static void
syn_free(syn_gen *g)
{
	free(g->sd);
	free(g->u);
	free(g->bk);
	free(g->v);
	free(g->w);
	free(g->b);
	free(g->count);
	free(g->xs);
	free(g->ys);
	free(g->perm);
}

/* Covariance diagonal and the priors u_k, B_k. */
static void
syn_priors(syn_gen *g)
{
	const fmi_synthetic_cfg *c = g->cfg;
	for (uint32_t j = 0; j < c->dim; j++) {
		g->sd[j] = sqrt(pow((double)(j + 1), -1.2));
	}
	fm_rng r;
	fmi_rng_seed(&r, c->seed, SYN_PRIOR);
	for (uint32_t k = 0; k < c->devices; k++) {
		g->u[k] = c->alpha * fmi_rng_normal(&r);
	}
	for (uint32_t k = 0; k < c->devices; k++) {
		g->bk[k] = c->beta * fmi_rng_normal(&r);
	}
}

/* Fills w, b with N(mean, 1). */
static void
syn_model(syn_gen *g, double mean, fm_rng *r)
{
	size_t dc = (size_t)g->cfg->dim * g->cfg->nclasses;
	for (size_t i = 0; i < dc; i++) {
		g->w[i] = mean + fmi_rng_normal(r);
	}
	for (uint32_t i = 0; i < g->cfg->nclasses; i++) {
		g->b[i] = mean + fmi_rng_normal(r);
	}
}

/* y = argmax(x W + b), first maximum on ties (numpy's argmax). */
static int32_t
syn_label(const syn_gen *g, const float *x)
{
	uint32_t dim = g->cfg->dim, nc = g->cfg->nclasses;
	int32_t best = 0;
	double bestz = -INFINITY;
	for (uint32_t c = 0; c < nc; c++) {
		double z = g->b[c];
		for (uint32_t j = 0; j < dim; j++) {
			z += (double)x[j] * g->w[(size_t)j * nc + c];
		}
		if (z > bestz) {
			bestz = z;
			best = (int32_t)c;
		}
	}
	return best;
}

/* Draws device k's model (unless IID), mean and samples, then a shuffle. */
static void
syn_device(syn_gen *g, uint32_t k)
{
	const fmi_synthetic_cfg *c = g->cfg;
	fm_rng r;
	fmi_rng_seed(&r, c->seed, SYN_DEVICE + k);
	for (uint32_t j = 0; j < c->dim; j++) {
		g->v[j] = c->iid ? 0.0 : g->bk[k] + fmi_rng_normal(&r);
	}
	if (!c->iid) {
		syn_model(g, g->u[k], &r);
	}
	for (uint32_t i = 0; i < g->count[k]; i++) {
		float *x = g->xs + (size_t)i * c->dim;
		for (uint32_t j = 0; j < c->dim; j++) {
			x[j] = (float)(g->v[j] + g->sd[j] * fmi_rng_normal(&r));
		}
		g->ys[i] = syn_label(g, x);
		g->perm[i] = i;
	}
	fmi_rng_shuffle_u32(&r, g->perm, g->count[k]);
}

/* Copies samples perm[from..to) of the current device to d at *at. */
static void
syn_emit(const syn_gen *g, fmi_dataset *d, size_t *at, uint32_t from,
    uint32_t to, uint32_t k)
{
	size_t dim = g->cfg->dim;
	for (uint32_t i = from; i < to; i++, (*at)++) {
		uint32_t s = g->perm[i];
		memcpy(d->x + *at * dim, g->xs + (size_t)s * dim,
		    dim * sizeof(float));
		d->y[*at] = g->ys[s];
		d->owner[*at] = k;
	}
}

static uint32_t
syn_ntrain(uint32_t n)
{
	return (uint32_t)(0.9 * (double)n); /* Python's int(0.9 * n) */
}

static int
syn_new_split(fmi_dataset **d, const syn_gen *g, size_t n, const char *split)
{
	const fmi_synthetic_cfg *c = g->cfg;
	if (fmi_dataset_new(d, n, c->dim, c->nclasses) != FM_OK) {
		return FM_ENOMEM;
	}
	(*d)->owner = malloc((n + 1) * sizeof(uint32_t));
	if ((*d)->owner == NULL) {
		return FM_ENOMEM;
	}
	(*d)->nowners = c->devices;
	if (c->iid) {
		snprintf((*d)->name, sizeof (*d)->name, "synthetic-iid-%s",
		    split);
	} else {
		snprintf((*d)->name, sizeof (*d)->name, "synthetic(%g,%g)-%s",
		    c->alpha, c->beta, split);
	}
	return FM_OK;
}

static int
syn_generate(syn_gen *g, fmi_dataset **tr, fmi_dataset **te, size_t total)
{
	size_t ntr = 0;
	for (uint32_t k = 0; k < g->cfg->devices; k++) {
		ntr += syn_ntrain(g->count[k]);
	}
	if (syn_alloc_samples(g) != FM_OK ||
	    syn_new_split(tr, g, ntr, "train") != FM_OK ||
	    syn_new_split(te, g, total - ntr, "test") != FM_OK) {
		return FM_ENOMEM;
	}
	if (g->cfg->iid) {
		fm_rng r;
		fmi_rng_seed(&r, g->cfg->seed, SYN_GLOBAL);
		syn_model(g, 0.0, &r);
	}
	size_t at_tr = 0, at_te = 0;
	for (uint32_t k = 0; k < g->cfg->devices; k++) {
		uint32_t n = g->count[k], cut = syn_ntrain(n);
		syn_device(g, k);
		syn_emit(g, *tr, &at_tr, 0, cut, k);
		syn_emit(g, *te, &at_te, cut, n, k);
	}
	return FM_OK;
}

int
fmi_synthetic(fmi_dataset **train, fmi_dataset **test,
    const fmi_synthetic_cfg *cfg, fm_error *err)
{
	int rv = syn_check(cfg, err);
	if (rv != FM_OK) {
		return rv;
	}
	syn_gen g = { .cfg = cfg };
	fmi_dataset *tr = NULL, *te = NULL;
	size_t total = 0;
	rv = syn_alloc(&g);
	if (rv == FM_OK) {
		rv = syn_counts(&g, &total, err);
	} else {
		fm_error_set(err, rv, "Synthetic: out of memory");
	}
	if (rv == FM_OK) {
		syn_priors(&g);
		rv = syn_generate(&g, &tr, &te, total);
		if (rv != FM_OK) {
			fm_error_set(err, rv, "Synthetic: out of memory for %zu "
			    "samples of %u features", total, cfg->dim);
		}
	}
	syn_free(&g);
	if (rv != FM_OK) {
		fmi_dataset_unref(tr);
		fmi_dataset_unref(te);
		return rv;
	}
	*train = tr;
	*test = te;
	return FM_OK;
}
