/* SPDX-License-Identifier: MIT */
/*
 * robust.c: gossip that tolerates Byzantine neighbours.
 *
 * clipped_gossip  ClippedGossip (He, Karimireddy & Jaggi, "Byzantine-Robust
 *                 Decentralized Learning via ClippedGossip", 2022):
 *
 *                   x_i <- x_i + sum_{j received} W_ij clip(x_j - x_i, tau)
 *                   clip(v, tau) = v min(1, tau / ||v||)
 *
 *                 so one neighbour moves the peer by at most W_ij tau.
 *                 tau > 0 is a fixed radius; tau = 0 (default) is adaptive:
 *                 with d_(1) <= ... <= d_(n) the distances ||x_j - x_i|| of
 *                 the n received neighbours, tau = d_(n - f), so the f
 *                 farthest are always clipped to the (n - f)-th distance and
 *                 the others pass unchanged; with n <= f, tau = 0 and the
 *                 peer keeps its own model. (A count-based form of the
 *                 paper's adaptive rule, which clips the farthest neighbours
 *                 holding the expected Byzantine share of the weight.)
 *                 Absent neighbours' weight stays with the own model, as in
 *                 gossip.
 *
 * trimmed_gossip  coordinate-wise trimmed mean over the own model and the
 *                 received ones (BRIDGE-T: Fang, Yang & Bajwa, "BRIDGE:
 *                 Byzantine-Resilient Decentralized Gradient Descent", IEEE
 *                 TSIPN 2022): per coordinate, drop the b largest and the b
 *                 smallest of the n + 1 values and average the rest with
 *                 equal weights (W_ij is not used). If fewer than 2b + 1
 *                 values are present (too few neighbours arrived), the own
 *                 model is kept: averaging fewer values could let up to b
 *                 Byzantine ones through.
 *
 * Non-finite neighbour models: clipped_gossip ignores a neighbour whose
 * distance is not finite (its weight stays with the own model); trimmed
 * gossip sorts NaN as +inf, so up to b of them are trimmed, and keeps the
 * own coordinate if a non-finite value survives the trimming.
 *
 * Scratch: small per-neighbour arrays, allocated in init and grown only
 * when a round brings more neighbours than ever before. No model-sized
 * buffers: distances are accumulated in double straight from the inputs.
 * Nothing carries over from one round to the next (the model is the
 * host's): no save/load.
 */
#include <math.h>

#include "fedmesh/plugin.h"

/* Neighbour k of a mix (the array is stepped by its struct_size). */
#define NB(m, k) FM_AT(const fm_peer_model, (m)->neighbours, (k))

#define ROBUST_LOG "FM-ROBUST"
#define ROBUST_WEIGHT_SLACK 1e-9
#define ROBUST_CAP0 16 /* initial scratch capacity, in neighbours */

enum { ALGO_CLIPPED = 1, ALGO_TRIMMED };
enum { P_TAU, P_F, P_CLIPPED_COUNT };
enum { P_B, P_TRIMMED_COUNT };

typedef struct robust {
	const fm_host_api *host;
	size_t dim;
	int algo;
	double tau;   /* clipped: fixed radius, 0 = adaptive */
	uint32_t f;   /* clipped: neighbours always clipped when adaptive */
	uint32_t b;   /* trimmed: values dropped at each end */
	uint32_t cap; /* scratch capacity, in neighbours */
	double *dist; /* [cap+1] clipped: distances; trimmed: values */
	double *tmp;  /* [cap+1] clipped: finite distances, sorted */
	const float **src; /* [cap+1] trimmed: own, then neighbours */
} robust;

/* ---- common ------------------------------------------------------------ */

static int
robust_grow(robust *r, uint32_t n)
{
	if (n <= r->cap && r->dist != NULL) {
		return FM_OK;
	}
	uint32_t cap = r->cap > 0 ? r->cap : ROBUST_CAP0;
	while (cap < n) {
		cap *= 2;
	}
	r->host->free(r->dist);
	r->host->free(r->tmp);
	r->host->free(r->src);
	r->dist = r->host->alloc((cap + 1) * sizeof(double));
	r->tmp = r->host->alloc((cap + 1) * sizeof(double));
	r->src = r->host->alloc((cap + 1) * sizeof(const float *));
	r->cap = r->dist && r->tmp && r->src ? cap : 0;
	return r->cap > 0 ? FM_OK : FM_ENOMEM;
}

static int
robust_init_common(robust *r, const fm_instance *inst, int algo,
    uint32_t nparams)
{
	r->host = inst->host;
	r->dim = inst->dim;
	r->algo = algo;
	const char *comp = algo == ALGO_CLIPPED ? "clipped_gossip" :
	    "trimmed_gossip";
	if (r->dim == 0) {
		r->host->log(FM_LOG_ERR, ROBUST_LOG, "%s: empty model", comp);
		return FM_EINVAL;
	}
	if (inst->nparams != nparams || inst->params == NULL) {
		r->host->log(FM_LOG_ERR, ROBUST_LOG, "%s: %u parameters, want "
		    "%u", comp, inst->nparams, nparams);
		return FM_EINVAL;
	}
	return FM_OK;
}

/* A whole number in [0, 2^32), as the host's INT check guarantees. */
static int
robust_count(const robust *r, const char *comp, const char *name, double v,
    uint32_t *out)
{
	if (!(v >= 0 && v < 4294967296.0) || v != floor(v)) {
		r->host->log(FM_LOG_ERR, ROBUST_LOG, "%s: parameter '%s' = %g "
		    "must be a non-negative integer", comp, name, v);
		return FM_EINVAL;
	}
	*out = (uint32_t)v;
	return FM_OK;
}

static void
robust_fini(void *st)
{
	robust *r = st;
	if (r->host != NULL) { /* NULL: init never ran */
		r->host->free(r->dist);
		r->host->free(r->tmp);
		r->host->free(r->src);
		r->dist = r->tmp = NULL;
		r->src = NULL;
		r->cap = 0;
	}
}

/* Sorted by peer id without duplicates or self; models present. With
 * weights (clipped): finite, non-negative, summing to at most 1. */
static int
robust_check(robust *r, const fm_mix *m, int weights)
{
	double s = 0;
	if (m->nneighbours > 0 && m->neighbours == NULL) {
		return FM_EINVAL;
	}
	for (uint32_t k = 0; k < m->nneighbours; k++) {
		const fm_peer_model *nb = NB(m, k);
		double w = weights ? nb->weight : 0;
		if (nb->params == NULL || nb->peer == m->self ||
		    (k > 0 && nb->peer <= NB(m, k - 1)->peer) ||
		    !isfinite(w) || w < 0) {
			r->host->log(FM_LOG_WARN, ROBUST_LOG, "peer %d round "
			    "%u: bad neighbour entry %u (peer %d, weight %g)",
			    (int)m->self, m->round, k, (int)nb->peer, w);
			return FM_EINVAL;
		}
		s += w;
	}
	if (s > 1 + ROBUST_WEIGHT_SLACK) {
		r->host->log(FM_LOG_WARN, ROBUST_LOG, "peer %d round %u: "
		    "neighbour weights sum to %.17g > 1", (int)m->self,
		    m->round, s);
		return FM_EINVAL;
	}
	return robust_grow(r, m->nneighbours + 1);
}

/* ---- clipped_gossip ---------------------------------------------------- */

static int
clipped_init(void *st, const fm_instance *inst)
{
	robust *r = st;
	int rv = robust_init_common(r, inst, ALGO_CLIPPED, P_CLIPPED_COUNT);
	if (rv != FM_OK) {
		return rv;
	}
	r->tau = inst->params[P_TAU].num;
	if (!(r->tau >= 0) || !isfinite(r->tau)) {
		r->host->log(FM_LOG_ERR, ROBUST_LOG, "clipped_gossip: "
		    "parameter 'tau' = %g must be >= 0 (0: adaptive)", r->tau);
		return FM_EINVAL;
	}
	rv = robust_count(r, "clipped_gossip", "f", inst->params[P_F].num,
	    &r->f);
	return rv == FM_OK ? robust_grow(r, ROBUST_CAP0) : rv;
}

/* ||x - y|| in double; +inf when not finite (overflow, inf, NaN). */
static double
robust_dist(const float *x, const float *y, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)x[i] - (double)y[i];
		s += d * d;
	}
	s = sqrt(s);
	return isfinite(s) ? s : INFINITY;
}

/* The finite values of v[0..n) sorted ascending into out (insertion: n is
 * a node's degree); returns how many. */
static uint32_t
robust_sort_finite(const double *v, uint32_t n, double *out)
{
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (!isfinite(v[i])) {
			continue;
		}
		uint32_t j = m++;
		while (j > 0 && out[j - 1] > v[i]) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = v[i];
	}
	return m;
}

/* The clipping radius for this round: fixed, or adaptive d_(n - f) over
 * the neighbours with a finite distance (0 if there are at most f). */
static double
clipped_radius(robust *r, uint32_t n)
{
	if (r->tau > 0) {
		return r->tau;
	}
	uint32_t nf = robust_sort_finite(r->dist, n, r->tmp);
	return nf > r->f ? r->tmp[nf - r->f - 1] : 0.0;
}

/* W_ij clip factor: the coefficient of x_j - x_i; 0 for a neighbour at a
 * non-finite distance. */
static double
clipped_coef(double w, double d, double tau)
{
	if (!isfinite(d)) {
		return 0;
	}
	return d > tau ? w * (tau / d) : w;
}

static int
clipped_mix(void *st, const fm_mix *m, float *model, size_t dim)
{
	robust *r = st;
	if (m == NULL || model == NULL || dim != r->dim) {
		return FM_EINVAL;
	}
	int rv = robust_check(r, m, 1);
	if (rv != FM_OK) {
		return rv;
	}
	uint32_t n = m->nneighbours;
	for (uint32_t k = 0; k < n; k++) {
		r->dist[k] = robust_dist(NB(m, k)->params, model, dim);
	}
	double tau = clipped_radius(r, n), asum = 0;
	for (uint32_t k = 0; k < n; k++) {
		asum += clipped_coef(NB(m, k)->weight, r->dist[k], tau);
	}
	if (!(asum > 0)) {
		return FM_OK; /* everything clipped to nothing: own model */
	}
	/* x_i + sum_j a_j (x_j - x_i) = (1 - sum_j a_j) x_i + sum_j a_j x_j */
	r->host->scal(dim, (float)(1.0 - (asum > 1 ? 1 : asum)), model);
	for (uint32_t k = 0; k < n; k++) {
		double a = clipped_coef(NB(m, k)->weight, r->dist[k],
		    tau);
		if (a > 0) {
			r->host->axpy(dim, (float)a, NB(m, k)->params,
			    model);
		}
	}
	return FM_OK;
}

/* ---- trimmed_gossip ---------------------------------------------------- */

static int
trimmed_init(void *st, const fm_instance *inst)
{
	robust *r = st;
	int rv = robust_init_common(r, inst, ALGO_TRIMMED, P_TRIMMED_COUNT);
	if (rv == FM_OK) {
		rv = robust_count(r, "trimmed_gossip", "b",
		    inst->params[P_B].num, &r->b);
	}
	return rv == FM_OK ? robust_grow(r, ROBUST_CAP0) : rv;
}

static void
swap_d(double *a, double *b)
{
	double t = *a;
	*a = *b;
	*b = t;
}

/* Moves the b smallest of v[0..n) to the front and the b largest to the
 * back (n >= 2b + 1): O(n b), exact, no full sort. */
static void
trim_ends(double *v, uint32_t n, uint32_t b)
{
	for (uint32_t t = 0; t < b; t++) {
		uint32_t lo = t, hi = n - 1 - t, imin = lo, imax = lo;
		for (uint32_t i = lo + 1; i <= hi; i++) {
			imin = v[i] < v[imin] ? i : imin;
			imax = v[i] > v[imax] ? i : imax;
		}
		swap_d(&v[lo], &v[imin]);
		if (imax == lo) {
			imax = imin; /* the max was just moved there */
		}
		swap_d(&v[hi], &v[imax]);
	}
}

/* The trimmed mean of coordinate i over src[0..n); NAN if not finite. */
static double
trimmed_coord(robust *r, uint32_t n, size_t i)
{
	double *v = r->dist, s = 0;
	for (uint32_t k = 0; k < n; k++) {
		double x = r->src[k][i];
		v[k] = isnan(x) ? INFINITY : x;
	}
	trim_ends(v, n, r->b);
	for (uint32_t k = r->b; k < n - r->b; k++) {
		s += v[k];
	}
	s /= (double)(n - 2 * r->b);
	return isfinite(s) ? s : NAN;
}

static int
trimmed_mix(void *st, const fm_mix *m, float *model, size_t dim)
{
	robust *r = st;
	if (m == NULL || model == NULL || dim != r->dim) {
		return FM_EINVAL;
	}
	int rv = robust_check(r, m, 0);
	uint32_t n = m->nneighbours + 1;
	if (rv != FM_OK || n < 2 * (uint64_t)r->b + 1) {
		return rv; /* too few values to trim: the own model stays */
	}
	r->src[0] = model;
	for (uint32_t k = 1; k < n; k++) {
		r->src[k] = NB(m, k - 1)->params;
	}
	for (size_t i = 0; i < dim; i++) {
		double s = trimmed_coord(r, n, i);
		if (!isnan(s)) {
			model[i] = (float)s;
		}
	}
	return FM_OK;
}

/* ---- registration ------------------------------------------------------ */

static const fm_consensus_ops clipped_ops = {
	.base = FM_OPS(fm_consensus_ops, FM_KIND_CONSENSUS, robust,
	    clipped_init, robust_fini),
	.mix = clipped_mix,
};

static const fm_consensus_ops trimmed_ops = {
	.base = FM_OPS(fm_consensus_ops, FM_KIND_CONSENSUS, robust,
	    trimmed_init, robust_fini),
	.mix = trimmed_mix,
};

static const fm_param_desc clipped_params[] = {
	{ "tau", FM_PARAM_REAL, 0.0, 0.0, 1e30, NULL,
	    "Clipping radius; 0 picks it each round as the (n-f)-th smallest "
	    "neighbour distance." },
	{ "f", FM_PARAM_INT, 1, 0, 1e6, NULL,
	    "Byzantine neighbours to tolerate: with adaptive tau the f "
	    "farthest are always clipped." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_param_desc trimmed_params[] = {
	{ "b", FM_PARAM_INT, 1, 0, 1e6, NULL,
	    "Values dropped at each end of every coordinate (Byzantine "
	    "neighbours to tolerate)." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc robust_components[] = {
	FM_COMPONENT(FM_KIND_CONSENSUS, "clipped_gossip",
	    "ClippedGossip: gossip on clipped model differences "
	    "(He, Karimireddy & Jaggi, 2022)",
	    clipped_params, clipped_ops, FM_COMP_STATELESS),
	FM_COMPONENT(FM_KIND_CONSENSUS, "trimmed_gossip",
	    "Coordinate-wise trimmed mean over the own and the neighbours' "
	    "models (BRIDGE-T, Fang, Yang & Bajwa, 2022)",
	    trimmed_params, trimmed_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("robust", "2.0.0", "MIT",
    "Byzantine-robust gossip: ClippedGossip and trimmed-mean gossip",
    robust_components, NULL);
