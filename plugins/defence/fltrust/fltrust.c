/* SPDX-License-Identifier: MIT */
/*
 * fltrust.c: FLTrust (Cao, Fang, Liu & Gong, "FLTrust: Byzantine-robust
 * Federated Learning via Trust Bootstrapping", NDSS 2021).
 *
 * The server trains on its own small root dataset each round; its update
 * g_0 (fm_rows.server_delta) bootstraps trust:
 *
 *   TS_i   = ReLU(cos(g_i, g_0))             trust score
 *   g'_i   = g_i ||g_0|| / ||g_i||            rescaled to g_0's norm
 *   result = sum_i TS_i g'_i / sum_i TS_i
 *
 * An update pointing away from g_0 (cos <= 0), a zero update and a
 * non-finite one get TS = 0. The result replaces row 0 and passes alone,
 * weighted by the examples of the updates with TS > 0. If no update earns
 * trust (or g_0 is zero) nothing passes and the model stays. Without a
 * server_delta the round fails: FLTrust needs the server's root data.
 * Example counts do not weigh the scores, as in the paper.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../common/dfc.h"

#define FLTRUST_LOG "FM-FLTRUST"

enum { P_THREADS, P_COUNT };

typedef struct fltrust {
	dfc_base b;
	float *out;         /* [dim] the aggregate */
	double *dot;        /* [n] g_i . g_0 */
	double *norm;       /* [n] ||g_i|| */
	double *c;          /* [n] coefficients */
	const float **rows; /* [n] */
	size_t cap[5];
} fltrust;

static int
fltrust_init(void *st, const fm_instance *inst)
{
	fltrust *t = st;
	int rv = dfc_init(&t->b, inst, "fltrust", FLTRUST_LOG, P_COUNT);
	if (rv == FM_OK &&
	    !(inst->flags & FM_INST_ROOT_DATA)) {
		/* every round would fail: say so before round 1 */
		dfc_error(&t->b, "fltrust needs root data on the server, and "
		    "this one has none: give the experiment root_data (a small "
		    "clean Dataset the server trains on each round, e.g. "
		    "root_data = train:sample(100))");
		return FM_EINVAL;
	}
	return rv == FM_OK ? dfc_set_threads(&t->b,
	    inst->params[P_THREADS].num) : rv;
}

static void
fltrust_fini(void *st)
{
	fltrust *t = st;
	if (t->b.host != NULL) { /* NULL: init never ran */
		void *bufs[5] = { t->out, t->dot, t->norm, t->c,
			(void *)t->rows };
		for (int i = 0; i < 5; i++) {
			t->b.host->free(bufs[i]);
		}
		memset(t, 0, sizeof *t);
	}
}

static int
fltrust_reserve(fltrust *t, uint32_t n)
{
	const fm_host_api *h = t->b.host;
	t->out = dfc_grow(h, t->out, &t->cap[0], t->b.dim * sizeof *t->out);
	t->dot = dfc_grow(h, t->dot, &t->cap[1], n * sizeof *t->dot);
	t->norm = dfc_grow(h, t->norm, &t->cap[2], n * sizeof *t->norm);
	t->c = dfc_grow(h, t->c, &t->cap[3], n * sizeof *t->c);
	t->rows = dfc_grow(h, (void *)t->rows, &t->cap[4],
	    n * sizeof *t->rows);
	return t->out && t->dot && t->norm && t->c && t->rows ? FM_OK :
	    FM_ENOMEM;
}

/* ||g_0||, or a negative value (logged) when the round cannot run. */
static double
fltrust_root_norm(const fltrust *t, const fm_rows *r)
{
	if (r->server_delta == NULL) {
		dfc_error(&t->b,
		    "fltrust needs root data on the server: round %u has no "
		    "server update (server_delta); give the server a root "
		    "dataset to train on", r->round);
		return -1;
	}
	double n0 = sqrt(dfc_norm2(r->server_delta, r->dim));
	if (!isfinite(n0)) {
		dfc_error(&t->b,
		    "fltrust: round %u: the server's root-data update is not "
		    "finite", r->round);
		return -1;
	}
	return n0;
}

/* c_i = TS_i ||g_0|| / ||g_i|| / sum TS; returns sum TS (0: no trust) and
 * the examples of the trusted updates in *examples. */
static double
fltrust_weights(fltrust *t, const fm_rows *r, double n0,
    uint64_t *examples)
{
	double ts_sum = 0;
	*examples = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		double nr = t->norm[i], ts = 0;
		if (nr > 0 && isfinite(nr) && isfinite(t->dot[i])) {
			double cs = t->dot[i] / (nr * n0);
			ts = cs > 0 ? (cs < 1 ? cs : 1) : 0;
		}
		t->c[i] = ts > 0 ? ts * n0 / nr : 0;
		ts_sum += ts;
		*examples += ts > 0 ? dfc_update(r, i)->num_examples : 0;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		t->c[i] = ts_sum > 0 ? t->c[i] / ts_sum : 0;
	}
	return ts_sum;
}

static int
fltrust_apply(void *st, fm_rows *r)
{
	fltrust *t = st;
	int rv = dfc_check(&t->b, r);
	r->nkeep = 0;
	if (rv != FM_OK) {
		return rv;
	}
	double n0 = fltrust_root_norm(t, r);
	if (n0 < 0) {
		return FM_EINVAL;
	}
	rv = r->n > 0 ? fltrust_reserve(t, r->n) : FM_OK;
	if (rv != FM_OK || r->n == 0) {
		return rv;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		t->rows[i] = dfc_row(r, i);
	}
	dfc_dots(&t->b, t->rows, r->n, r->server_delta, r->dim, t->dot, t->norm,
	    t->b.threads);
	uint64_t examples;
	if (!(n0 > 0) || !(fltrust_weights(t, r, n0, &examples) > 0)) {
		t->b.host->log(FM_LOG_WARN, FLTRUST_LOG,
		    "fltrust: round %u: no update earns trust (all point away "
		    "from the server's), the model stays", r->round);
		return FM_OK;
	}
	dfc_wsum_job job = { .rows = t->rows, .c = t->c, .k = r->n,
		.out = t->out };
	dfc_wsum(&t->b, &job, r->dim, t->b.threads);
	memcpy(dfc_row(r, 0), t->out, r->dim * sizeof(float));
	r->keep[0] = 0;
	r->keep_examples[0] = examples;
	r->nkeep = 1;
	return FM_OK;
}

static const fm_defence_ops fltrust_ops = {
	.base = FM_OPS(fm_defence_ops, FM_KIND_DEFENCE, fltrust, fltrust_init,
	    fltrust_fini),
	.apply = fltrust_apply,
};

static const fm_param_desc fltrust_params[] = {
	{ "threads", FM_PARAM_INT, 2, 0, DFC_MAX_THREADS, NULL,
	    "Chunks the passes over the updates are split into (run on the "
	    "node's worker threads); 0 means one per worker thread. Results "
	    "do not depend on it." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc fltrust_components[] = {
	FM_COMPONENT(FM_KIND_DEFENCE, "fltrust",
	    "FLTrust: updates weighted by their cosine with the server's "
	    "root-data update, rescaled to its norm (Cao et al., 2021)",
	    fltrust_params, fltrust_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("fltrust", "2.0.0", "MIT",
    "FLTrust: trust bootstrapped from the server's root data",
    fltrust_components, NULL);
