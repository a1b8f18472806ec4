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
 *
 * centered_clipping saves its center (base.save/load, for checkpoints):
 * version byte 1, dim (u64), a byte that says whether a center is held
 * (0 before the first round: the center is 0), then center[dim] float32.
 * plain clipping keeps nothing across rounds.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../common/dfc.h"
#include "../../state.h"

#define CLIP_LOG "FM-CLIP"
#define CC_STATE_VERSION 1

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
		dfc_error(&c->b,
		    "%s: parameter 'tau' = %g must be a positive norm bound",
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
clipping_apply(void *st, fm_rows *r)
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
			    r->round, i, (int)dfc_update(r, i)->client);
			continue;
		}
		if (norm > c->tau) {
			c->b.host->scal(r->dim, (float)(c->tau / norm), x);
		}
		r->keep[r->nkeep] = i;
		r->keep_examples[r->nkeep++] = dfc_update(r, i)->num_examples;
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
	dfc_dists(&c->b, c->rows, n, c->center, c->b.dim, c->dist,
	    c->b.threads);
	for (uint32_t i = 0; i < n; i++) {
		double d = c->dist[i];
		double s = !isfinite(d) ? 0 : d > c->tau ? c->tau / d : 1;
		c->c[i] = s / n;
		sum += c->c[i];
	}
	dfc_wsum_job job = { .rows = c->rows, .c = c->c, .k = n,
		.base = c->center, .a0 = 1 - sum, .out = c->next };
	dfc_wsum(&c->b, &job, c->b.dim, c->b.threads);
	float *t = c->center;
	c->center = c->next;
	c->next = t;
}

static int
centered_apply(void *st, fm_rows *r)
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

static int
centered_save(void *st, void *buf, size_t cap, size_t *len)
{
	const clip *c = st;
	fm_sw w = FM_SW_INIT(buf, cap);
	fm_sw_u8(&w, CC_STATE_VERSION);
	fm_sw_u64(&w, c->b.dim);
	fm_sw_u8(&w, c->center != NULL);
	if (c->center != NULL) {
		fm_sw_put(&w, c->center, c->b.dim * sizeof *c->center);
	}
	return fm_sw_done(&w, len);
}

static int
centered_load(void *st, const void *buf, size_t len)
{
	clip *c = st;
	fm_sr r = FM_SR_INIT(buf, len);
	if (fm_sr_version(&r, c->b.inst, CC_STATE_VERSION,
	    "centered_clipping") != FM_OK) {
		return FM_EVERSION;
	}
	uint64_t dim = fm_sr_u64(&r);
	uint8_t has = fm_sr_u8(&r);
	size_t bytes = c->b.dim * sizeof *c->center;
	if (r.bad || dim != c->b.dim || has > 1 ||
	    fm_sr_left(&r) != (has ? bytes : 0)) {
		dfc_error(&c->b,
		    "centered_clipping: saved state (%zu bytes) is "
		    "not a center of %zu parameters", len, c->b.dim);
		return FM_EINVAL;
	}
	if (has && c->center == NULL) {
		c->center = c->b.host->alloc(bytes);
		c->cap[0] = c->center != NULL ? bytes : 0;
		if (c->center == NULL) {
			return FM_ENOMEM;
		}
	}
	if (has) {
		fm_sr_get(&r, c->center, bytes);
	}
	return fm_sr_done(&r) ? FM_OK : FM_EINVAL;
}

/* ---- components ---------------------------------------------------------- */

static const fm_defence_ops clipping_ops = {
	.base = FM_OPS(fm_defence_ops, FM_KIND_DEFENCE, clip, clipping_init,
	    clip_fini),
	.apply = clipping_apply,
};

static const fm_defence_ops centered_ops = {
	.base = { sizeof(fm_defence_ops), FM_KIND_DEFENCE, sizeof(clip),
		centered_init, clip_fini, NULL, NULL, centered_save,
		centered_load },
	.apply = centered_apply,
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
	    "Chunks the passes over the updates are split into (run on the "
	    "node's worker threads); 0 means one per worker thread. Results "
	    "do not depend on it." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc clip_components[] = {
	FM_COMPONENT(FM_KIND_DEFENCE, "clipping",
	    "Norm clipping: every update scaled to L2 norm at most tau",
	    clipping_params, clipping_ops, FM_COMP_STATELESS),
	FM_COMPONENT(FM_KIND_DEFENCE, "centered_clipping",
	    "Centered clipping around the previous aggregate (Karimireddy, He "
	    "& Jaggi, 2021)",
	    centered_params, centered_ops, 0),
};

FM_PLUGIN("clipping", "2.0.0", "MIT", "Norm clipping and centered clipping",
    clip_components, NULL);
