/* SPDX-License-Identifier: MIT */
/*
 * clipping.c: norm clipping of the updates.
 *
 * clipping           every update is scaled in place to L2 norm at most
 *                    tau: x_i <- x_i min(1, tau / ||x_i||) (flat clipping
 *                    as in Sun et al., "Can You Really Backdoor Federated
 *                    Learning?", 2019, and Flower's fixed clipping). All
 *                    rows pass, each with its own num_examples; a row whose
 *                    norm is not finite is dropped (logged).
 * centered_clipping  Karimireddy, He & Jaggi, "Learning from History for
 *                    Byzantine Robust Optimization", ICML 2021: with the
 *                    center v kept from the previous round (0 at first),
 *                    `iters` times
 *                      v <- v + (1/n) sum_i clip(x_i - v, tau),
 *                    unweighted, as the paper's CC and its code (L = 1
 *                    iteration by default). The result replaces row 0,
 *                    which passes alone with the round's total examples,
 *                    and becomes the next round's center. An update at a
 *                    non-finite distance contributes nothing.
 *
 * tau defaults to 10 for both: a loose bound meant to pass honest deltas
 * unchanged (their norm is at most lr x local steps x gradient norm, a
 * few units for the shipped MLP setups: lr 0.05, about 100 steps) while
 * cutting back scaled ones (model replacement multiplies an update by
 * about the number of clients); the CC code has no default and sweeps 0.1
 * to 1000, 10 among them. Set it from the norms of honest updates.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../common/dfc.h"

#define CLIP_LOG "FM-CLIP"

enum { P_CLIP_TAU, P_CLIP_COUNT };
enum { P_CC_TAU, P_CC_ITERS, P_CC_THREADS, P_CC_COUNT };

typedef struct clip {
	dfc_base b;
	double tau;
	uint32_t iters;     /* centered: iterations per round */
	float *center;      /* [dim] centered: v, kept across rounds */
	float *next;        /* [dim] centered: the next v */
	double *dist;       /* [n] */
	double *c;          /* [n] */
	const float **rows; /* [n] */
	size_t cap[5];
} clip;

static int
clip_tau(clip *c, double tau)
{
	c->tau = tau;
	if (!(tau > 0) || !isfinite(tau)) {
		dfc_error(&c->b, "%s: parameter 'tau' = %g must be a positive norm bound",
		    c->b.name, tau);
		return FM_EINVAL;
	}
	return FM_OK;
}

static int
clipping_init(void *st, const fm_instance *inst)
{
	clip *c = st;
	int rv = dfc_init(&c->b, inst, "clipping", CLIP_LOG, P_CLIP_COUNT);
	return rv == FM_OK ? clip_tau(c, inst->params[P_CLIP_TAU].num) : rv;
}

static int
centered_init(void *st, const fm_instance *inst)
{
	clip *c = st;
	int rv = dfc_init(&c->b, inst, "centered_clipping", CLIP_LOG,
	    P_CC_COUNT);
	rv = rv ? rv : clip_tau(c, inst->params[P_CC_TAU].num);
	rv = rv ? rv : dfc_count(&c->b, "iters", inst->params[P_CC_ITERS].num,
	    1, 100000, &c->iters);
	return rv ? rv : dfc_set_threads(&c->b, inst->params[P_CC_THREADS].num);
}

static void
clip_fini(void *st)
{
	clip *c = st;
	if (c->b.host != NULL) { /* NULL: init never ran */
		void *bufs[5] = { c->center, c->next, c->dist, c->c,
			(void *)c->rows };
		for (int i = 0; i < 5; i++) {
			c->b.host->free(bufs[i]);
		}
		memset(c, 0, sizeof *c);
	}
}

/* ---- clipping ------------------------------------------------------------ */

static int
clipping_apply(void *st, fm_defence_round *r)
{
	clip *c = st;
	int rv = dfc_check(&c->b, r);
	r->nkeep = 0;
	for (uint32_t i = 0; rv == FM_OK && i < r->n; i++) {
		float *x = dfc_row(r, i);
		double norm = c->b.host->nrm2(r->dim, x);
		if (!isfinite(norm)) {
			c->b.host->log(FM_LOG_WARN, CLIP_LOG,
			    "clipping: round %u: update %u (client %d) is not "
			    "finite, dropped",
			    r->round, i, (int)r->updates[i].client);
			continue;
		}
		if (norm > c->tau) {
			c->b.host->scal(r->dim, (float)(c->tau / norm), x);
		}
		r->keep[r->nkeep] = i;
		r->keep_examples[r->nkeep++] = r->updates[i].num_examples;
	}
	return rv;
}

/* ---- centered_clipping --------------------------------------------------- */

static int
centered_reserve(clip *c, uint32_t n)
{
	const fm_host_api *h = c->b.host;
	if (c->center == NULL) { /* the first center is 0 */
		c->center = h->calloc(c->b.dim, sizeof *c->center);
		c->cap[0] = c->b.dim * sizeof *c->center;
	}
	c->next = dfc_grow(h, c->next, &c->cap[1], c->b.dim * sizeof *c->next);
	c->dist = dfc_grow(h, c->dist, &c->cap[2], n * sizeof *c->dist);
	c->c = dfc_grow(h, c->c, &c->cap[3], n * sizeof *c->c);
	c->rows = dfc_grow(h, (void *)c->rows, &c->cap[4],
	    n * sizeof *c->rows);
	return c->center && c->next && c->dist && c->c && c->rows ? FM_OK :
	    FM_ENOMEM;
}

/* One step v <- (1 - sum c_i) v + sum c_i x_i, c_i = min(1, tau/d_i)/n. */
static void
centered_step(clip *c, uint32_t n)
{
	double sum = 0;
	dfc_dists(c->rows, n, c->center, c->b.dim, c->dist, c->b.threads);
	for (uint32_t i = 0; i < n; i++) {
		double d = c->dist[i];
		double s = !isfinite(d) ? 0 : d > c->tau ? c->tau / d : 1;
		c->c[i] = s / n;
		sum += c->c[i];
	}
	dfc_wsum_job job = { .rows = c->rows, .c = c->c, .k = n,
		.base = c->center, .a0 = 1 - sum, .out = c->next };
	dfc_wsum(&job, c->b.dim, c->b.threads);
	float *t = c->center;
	c->center = c->next;
	c->next = t;
}

static int
centered_apply(void *st, fm_defence_round *r)
{
	clip *c = st;
	int rv = dfc_check(&c->b, r);
	r->nkeep = 0;
	if (rv != FM_OK || r->n == 0) {
		return rv; /* no updates: the center stays */
	}
	rv = centered_reserve(c, r->n);
	if (rv != FM_OK) {
		return rv;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		c->rows[i] = dfc_row(r, i);
	}
	for (uint32_t l = 0; l < c->iters; l++) {
		centered_step(c, r->n);
	}
	memcpy(dfc_row(r, 0), c->center, r->dim * sizeof(float));
	dfc_keep_row0(r);
	return FM_OK;
}

/* ---- registration -------------------------------------------------------- */

#define CLIP_OPS(nm, init, apply)                                           \
	{                                                                   \
		.d_struct_size = sizeof(fm_defence_ops),                    \
		.d_kind = FM_KIND_DEFENCE,                                  \
		.d_name = nm,                                               \
		.d_state_size = sizeof(clip),                               \
		.d_init = init,                                             \
		.d_fini = clip_fini,                                        \
		.d_apply = apply,                                           \
	}

static const fm_defence_ops clip_ops[] = {
	CLIP_OPS("clipping", clipping_init, clipping_apply),
	CLIP_OPS("centered_clipping", centered_init, centered_apply),
};

static const fm_param_desc clipping_params[] = {
	{ "tau", FM_PARAM_REAL, 10, 0, 1e30, NULL,
	    "L2 norm bound of every update (> 0)." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_param_desc centered_params[] = {
	{ "tau", FM_PARAM_REAL, 10, 0, 1e30, NULL,
	    "Clipping radius around the center (> 0)." },
	{ "iters", FM_PARAM_INT, 1, 1, 100000, NULL,
	    "Clipping iterations per round (the paper's L)." },
	{ "threads", FM_PARAM_INT, 2, 0, DFC_MAX_THREADS, NULL,
	    "Threads for the passes over the updates; 0 means one per online "
	    "CPU. Results do not depend on it." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc clip_components[] = {
	{ FM_KIND_DEFENCE, "clipping",
	    "Norm clipping: every update scaled to L2 norm at most tau",
	    clipping_params },
	{ FM_KIND_DEFENCE, "centered_clipping",
	    "Centered clipping around the previous aggregate (Karimireddy, He "
	    "& Jaggi, 2021)",
	    centered_params },
};

FM_PLUGIN_DEFINE("clipping", "1.0.0", "MIT",
    "Norm clipping and centered clipping", clip_components);

FM_PLUGIN_INIT(r, host)
{
	for (size_t i = 0; i < sizeof clip_ops / sizeof clip_ops[0]; i++) {
		int rv = host->register_component(r, &clip_ops[i],
		    sizeof clip_ops[i]);
		if (rv != FM_OK) {
			return rv;
		}
	}
	return FM_OK;
}
