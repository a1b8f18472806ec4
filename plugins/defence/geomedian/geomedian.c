/* SPDX-License-Identifier: MIT */
/*
 * geomedian.c: the geometric median of the updates, RFA (Pillutla, Kakade
 * & Harchaoui, "Robust Aggregation for Federated Learning", IEEE TSP 2022),
 * by the smoothed Weiszfeld algorithm, as RFA's reference code
 * (krishnap25/RFA, ServerModel.geometric_median_update) runs it:
 *
 *   alpha_i = num_examples_i / sum_j num_examples_j
 *   v = sum_i alpha_i x_i                       (the weighted mean)
 *   repeat at most `iters` times:
 *     beta_i = alpha_i / max(nu, ||v - x_i||), normalised to sum 1
 *     v = sum_i beta_i x_i
 *     stop when |obj_prev - obj| < ftol obj, obj = sum_i alpha_i ||v - x_i||
 *
 * Defaults: nu = 1e-5 and ftol = 1e-6 as in RFA's code; at most 10
 * iterations where RFA's code stops at 4: from the mean, the pull of a
 * far-away group holding a fraction p of the weight shrinks by a factor of
 * about p / (1 - p) per iteration (a quarter with p = 20%), so 4
 * iterations leave 0.4% of the mean's displacement and 10 about 1e-6 of
 * it. The tolerance stops benign rounds much earlier.
 *
 * Rows whose norm is not finite are left out (as RFA's code rejects NaN
 * and Inf updates); when all num_examples are 0 the weights are uniform.
 * The result replaces row 0, which passes alone with the round's total
 * num_examples. Each iteration reads the updates once: the weighted sum
 * and the distances to it are computed block by block while the block is
 * in cache; the coordinates are split across `threads`, and the distances
 * are summed block by block in a fixed order, so results do not depend on
 * the thread count.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../common/dfc.h"

#define GEOMED_LOG "FM-GEOMEDIAN"

enum { P_NU, P_ITERS, P_FTOL, P_THREADS, P_COUNT };

typedef struct geomed {
	dfc_base b;
	double nu, ftol;
	uint32_t iters;
	float *v;           /* [dim] the estimate */
	double *alpha;      /* [n] normalised weights of the rows used */
	double *beta;       /* [n] Weiszfeld weights */
	double *dist;       /* [n] distances (first: norms) */
	const float **rows; /* [n] the rows used (finite) */
	double *part;       /* [n][blocks] distance partial sums */
	size_t cap[6];
	uint32_t used;      /* iterations of the last round */
} geomed;

static int
geomed_init(void *st, const fm_instance *inst)
{
	geomed *g = st;
	int rv = dfc_init(&g->b, inst, "geomedian", GEOMED_LOG, P_COUNT);
	if (rv != FM_OK) {
		return rv;
	}
	g->nu = inst->params[P_NU].num;
	g->ftol = inst->params[P_FTOL].num;
	if (!(g->nu > 0) || !(g->ftol >= 0)) {
		dfc_error(&g->b,
		    "geomedian: 'nu' = %g must be > 0 and 'ftol' = %g >= 0",
		    g->nu, g->ftol);
		return FM_EINVAL;
	}
	rv = dfc_count(&g->b, "iters", inst->params[P_ITERS].num, 0, 100000,
	    &g->iters);
	return rv == FM_OK ? dfc_set_threads(&g->b,
	    inst->params[P_THREADS].num) : rv;
}

static void
geomed_fini(void *st)
{
	geomed *g = st;
	if (g->b.host != NULL) { /* NULL: init never ran */
		void *bufs[6] = { g->v, g->alpha, g->beta, g->dist,
			(void *)g->rows, g->part };
		for (int i = 0; i < 6; i++) {
			g->b.host->free(bufs[i]);
		}
		memset(g, 0, sizeof *g);
	}
}

static int
geomed_reserve(geomed *g, uint32_t n)
{
	const fm_host_api *h = g->b.host;
	size_t parts = n * dfc_blocks(g->b.dim);
	g->v = dfc_grow(h, g->v, &g->cap[0], g->b.dim * sizeof *g->v);
	g->alpha = dfc_grow(h, g->alpha, &g->cap[1], n * sizeof *g->alpha);
	g->beta = dfc_grow(h, g->beta, &g->cap[2], n * sizeof *g->beta);
	g->dist = dfc_grow(h, g->dist, &g->cap[3], n * sizeof *g->dist);
	g->rows = dfc_grow(h, (void *)g->rows, &g->cap[4],
	    n * sizeof *g->rows);
	g->part = dfc_grow(h, g->part, &g->cap[5], parts * sizeof *g->part);
	return g->v && g->alpha && g->beta && g->dist && g->rows && g->part ?
	    FM_OK : FM_ENOMEM;
}

/* The rows with a finite norm and their normalised weights (uniform when
 * they hold no examples); returns how many. */
static uint32_t
geomed_select_rows(geomed *g, const fm_rows *r)
{
	uint32_t k = 0;
	double total = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		g->rows[i] = dfc_row(r, i);
	}
	dfc_dists(&g->b, g->rows, r->n, NULL, r->dim, g->dist, g->b.threads);
	for (uint32_t i = 0; i < r->n; i++) {
		if (isfinite(g->dist[i])) {
			g->rows[k] = dfc_row(r, i);
			g->alpha[k] = (double)dfc_update(r, i)->num_examples;
			total += g->alpha[k++];
		}
	}
	for (uint32_t i = 0; i < k; i++) {
		g->alpha[i] = total > 0 ? g->alpha[i] / total : 1.0 / k;
	}
	return k;
}

/* v = sum_i w_i x_i over the k rows used, then the distances from v to
 * them (in the same pass); returns the objective sum_i alpha_i d_i. */
static double
geomed_step(geomed *g, const double *w, uint32_t k)
{
	double obj = 0;
	dfc_wsum_job job = { .rows = g->rows, .c = w, .k = k, .out = g->v,
		.part = g->part };
	dfc_wsum_dists(&g->b, &job, g->b.dim, g->dist, g->b.threads);
	for (uint32_t i = 0; i < k; i++) {
		obj += g->alpha[i] * g->dist[i];
	}
	return obj;
}

/* The smoothed Weiszfeld iterations from the weighted mean. */
static void
geomed_weiszfeld(geomed *g, uint32_t k)
{
	double obj = geomed_step(g, g->alpha, k);
	for (g->used = 0; g->used < g->iters;) {
		double s = 0;
		for (uint32_t i = 0; i < k; i++) {
			double d = g->dist[i] > g->nu ? g->dist[i] : g->nu;
			g->beta[i] = g->alpha[i] / d; /* d = inf: weight 0 */
			s += g->beta[i];
		}
		for (uint32_t i = 0; i < k; i++) {
			g->beta[i] /= s;
		}
		double prev = obj;
		obj = geomed_step(g, g->beta, k);
		g->used++;
		if (fabs(prev - obj) < g->ftol * obj) {
			break;
		}
	}
}

static int
geomed_apply(void *st, fm_rows *r)
{
	geomed *g = st;
	int rv = dfc_check(&g->b, r);
	r->nkeep = 0;
	if (rv != FM_OK || r->n == 0) {
		return rv;
	}
	rv = geomed_reserve(g, r->n);
	if (rv != FM_OK) {
		return rv;
	}
	uint32_t k = geomed_select_rows(g, r);
	if (k == 0) {
		dfc_error(&g->b, "geomedian: round %u: no update is finite",
		    r->round);
		return FM_ERANGE;
	}
	geomed_weiszfeld(g, k);
	memcpy(dfc_row(r, 0), g->v, r->dim * sizeof(float));
	dfc_keep_row0(r);
	g->b.host->log(FM_LOG_DEBUG, GEOMED_LOG,
	    "geomedian: round %u: %u of %u updates, %u iterations",
	    r->round, k, r->n, g->used);
	return FM_OK;
}

static const fm_defence_ops geomed_ops = {
	.base = FM_OPS(fm_defence_ops, FM_KIND_DEFENCE, geomed, geomed_init,
	    geomed_fini),
	.apply = geomed_apply,
};

static const fm_param_desc geomed_params[] = {
	{ "nu", FM_PARAM_REAL, 1e-5, 1e-30, 1e30, NULL,
	    "Smoothing: distances below nu count as nu (RFA's code: 1e-5)." },
	{ "iters", FM_PARAM_INT, 10, 0, 100000, NULL,
	    "Most Weiszfeld iterations after the weighted mean (RFA's code: "
	    "4)." },
	{ "ftol", FM_PARAM_REAL, 1e-6, 0, 1, NULL,
	    "Stop when the objective improves by less than ftol times "
	    "itself." },
	{ "threads", FM_PARAM_INT, 2, 0, DFC_MAX_THREADS, NULL,
	    "Chunks the passes over the updates are split into (run on the "
	    "node's worker threads); 0 means one per worker thread. Results "
	    "do not depend on it." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc geomed_components[] = {
	FM_COMPONENT(FM_KIND_DEFENCE, "geomedian",
	    "Geometric median by smoothed Weiszfeld (RFA, Pillutla et al., "
	    "2022)",
	    geomed_params, geomed_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("geomedian", "2.0.0", "MIT",
    "Geometric median aggregation (RFA, smoothed Weiszfeld)",
    geomed_components, NULL);
