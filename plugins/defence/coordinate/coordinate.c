/* SPDX-License-Identifier: MIT */
/*
 * coordinate.c: coordinate-wise robust aggregation, Yin, Chen, Ramchandran
 * & Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal
 * Statistical Rates", ICML 2018.
 *
 * median        per coordinate, the median of the n values (even n: the
 *               mean of the two middle values, as numpy and Flower's
 *               FedMedian). Unweighted.
 * trimmed_mean  per coordinate, drop the floor(beta n) smallest and the
 *               floor(beta n) largest values and average the rest,
 *               unweighted (scipy's trim_mean, Flower's FedTrimmedAvg);
 *               beta < 0.5, so at least one value is left. beta = 0 is
 *               the plain mean.
 *
 * The result replaces row 0, which passes alone weighted by the round's
 * total num_examples. Selection, tiling and threads: coordwise.h.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../common/coordwise.h"
#include "../common/dfc.h"

#define COORD_LOG "FM-COORD"

enum { P_MEDIAN_THREADS, P_MEDIAN_COUNT };
enum { P_TRIM_BETA, P_TRIM_THREADS, P_TRIM_COUNT };

typedef struct coord {
	dfc_base b;
	int rule;           /* CW_MEDIAN or CW_TRIMMED */
	double beta;        /* trimmed_mean */
	const float **rows; /* [cap] */
	size_t rows_cap;
	cw_scratch cw;
} coord;

static int
median_init(void *st, const fm_instance *inst)
{
	coord *c = st;
	c->rule = CW_MEDIAN;
	int rv = dfc_init(&c->b, inst, "median", COORD_LOG, P_MEDIAN_COUNT);
	return rv == FM_OK ? dfc_set_threads(&c->b,
	    inst->params[P_MEDIAN_THREADS].num) : rv;
}

static int
trimmed_init(void *st, const fm_instance *inst)
{
	coord *c = st;
	c->rule = CW_TRIMMED;
	int rv = dfc_init(&c->b, inst, "trimmed_mean", COORD_LOG,
	    P_TRIM_COUNT);
	if (rv != FM_OK) {
		return rv;
	}
	c->beta = inst->params[P_TRIM_BETA].num;
	if (!(c->beta >= 0 && c->beta < 0.5)) {
		dfc_error(&c->b,
		    "trimmed_mean: parameter 'beta' = %g must be in [0, 0.5): "
		    "floor(beta n) values are cut from each end and at least "
		    "one must remain", c->beta);
		return FM_EINVAL;
	}
	return dfc_set_threads(&c->b, inst->params[P_TRIM_THREADS].num);
}

static void
coord_fini(void *st)
{
	coord *c = st;
	if (c->b.host != NULL) { /* NULL: init never ran */
		c->b.host->free(c->rows);
		cw_free(c->b.host, &c->cw);
		memset(c, 0, sizeof *c);
	}
}

/* floor(beta n) values cut at each end (2 cut < n since beta < 0.5; the
 * guard covers rounding at the edge). */
static uint32_t
trimmed_cut(double beta, uint32_t n)
{
	uint32_t cut = (uint32_t)floor(beta * n);
	while (cut > 0 && 2 * (uint64_t)cut >= n) {
		cut--;
	}
	return cut;
}

static int
coord_apply(void *st, fm_rows *r)
{
	coord *c = st;
	int rv = dfc_check(&c->b, r);
	r->nkeep = 0;
	if (rv != FM_OK || r->n == 0) {
		return rv;
	}
	c->rows = dfc_grow(c->b.host, (void *)c->rows, &c->rows_cap,
	    r->n * sizeof *c->rows);
	if (c->rows == NULL) {
		return FM_ENOMEM;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		c->rows[i] = dfc_row(r, i);
	}
	cw_job job = { c->rule, r->n, c->rows,
		c->rule == CW_TRIMMED ? trimmed_cut(c->beta, r->n) : 0,
		dfc_row(r, 0), r->dim };
	rv = cw_run(&c->b, &c->cw, &job, c->b.threads);
	if (rv == FM_OK) {
		dfc_keep_row0(r);
	}
	return rv;
}

/* ---- registration -------------------------------------------------------- */

static const fm_defence_ops median_ops = {
	.base = FM_OPS(fm_defence_ops, FM_KIND_DEFENCE, coord, median_init,
	    coord_fini),
	.apply = coord_apply,
};

static const fm_defence_ops trimmed_ops = {
	.base = FM_OPS(fm_defence_ops, FM_KIND_DEFENCE, coord, trimmed_init,
	    coord_fini),
	.apply = coord_apply,
};

#define COORD_THREADS_PARAM                                                 \
	{ "threads", FM_PARAM_INT, 2, 0, DFC_MAX_THREADS, NULL,             \
	    "Chunks splitting the coordinates (run on the node's worker "   \
	    "threads); 0 means one per worker thread. Results do not "      \
	    "depend on it." }

static const fm_param_desc median_params[] = {
	COORD_THREADS_PARAM,
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_param_desc trimmed_params[] = {
	{ "beta", FM_PARAM_REAL, 0.1, 0, 0.5, NULL,
	    "Fraction cut from each end: floor(beta n) values per side; must "
	    "be below 0.5." },
	COORD_THREADS_PARAM,
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc coord_components[] = {
	FM_COMPONENT(FM_KIND_DEFENCE, "median",
	    "Coordinate-wise median of the updates (Yin et al., 2018)",
	    median_params, median_ops, FM_COMP_STATELESS),
	FM_COMPONENT(FM_KIND_DEFENCE, "trimmed_mean",
	    "Coordinate-wise trimmed mean of the updates (Yin et al., 2018)",
	    trimmed_params, trimmed_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("coordinate", "2.0.0", "MIT",
    "Coordinate-wise robust aggregation: median and trimmed mean",
    coord_components, NULL);
