/* SPDX-License-Identifier: MIT */
/* tp_privacy.c: "clip_offset", a test privacy mechanism that exercises
 * every call of the privacy kind: begin records the round; client clips
 * the update to L2 norm `clip` and halves its example count; server adds
 * an offset drawn from the round's seed (uniform in [0, 1) per
 * coordinate, seeded by fm_rows.seed) to row 0 and passes every row. */
#include <math.h>

#include "fedmesh/plugin.h"

typedef struct tp_priv {
	const fm_host_api *host;
	size_t dim;
	double clip;
	uint32_t round; /* of the last begin */
} tp_priv;

static int
tpp_init(void *st, const fm_instance *inst)
{
	tp_priv *p = st;
	p->host = inst->host;
	p->dim = inst->dim;
	if (p->dim == 0 || inst->nparams != 1 || inst->params == NULL) {
		return FM_EINVAL;
	}
	p->clip = inst->params[0].num;
	return FM_OK;
}

static void
tpp_fini(void *st)
{
	(void)st;
}

static int
tpp_begin(void *st, const fm_round *r)
{
	tp_priv *p = st;
	if (r->dim != p->dim) {
		return FM_EINVAL;
	}
	p->round = r->round;
	return FM_OK;
}

static int
tpp_client(void *st, fm_private_update *u)
{
	tp_priv *p = st;
	if (u->dim != p->dim || u->round != p->round) {
		return FM_EINVAL; /* begin first, for this round */
	}
	double norm = p->host->nrm2(u->dim, u->delta);
	if (norm > p->clip) {
		p->host->scal(u->dim, (float)(p->clip / norm), u->delta);
	}
	u->num_examples /= 2;
	return FM_OK;
}

static int
tpp_server(void *st, fm_rows *r)
{
	tp_priv *p = st;
	fm_rng g;
	if (r->dim != p->dim || (r->n > 0 && r->deltas == NULL)) {
		return FM_EINVAL;
	}
	if (r->n == 0) {
		return FM_OK;
	}
	p->host->rng_seed(&g, r->seed, 3);
	for (size_t j = 0; j < r->dim; j++) {
		r->deltas[j] += (float)p->host->rng_uniform(&g);
	}
	return FM_OK;
}

static const fm_privacy_ops tpp_ops = {
	.base = FM_OPS(fm_privacy_ops, FM_KIND_PRIVACY, tp_priv, tpp_init,
	    tpp_fini),
	.begin = tpp_begin,
	.client = tpp_client,
	.server = tpp_server,
};

static const fm_param_desc tpp_params[] = {
	{ "clip", FM_PARAM_REAL, 1.0, 0.0, 1e6, NULL,
	    "L2 norm bound of a client's update." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc tpp_components[] = {
	FM_COMPONENT(FM_KIND_PRIVACY, "clip_offset",
	    "test: clips client updates, adds a seeded offset on the server",
	    tpp_params, tpp_ops, FM_PRIVACY_CLIENT | FM_PRIVACY_SERVER),
};

FM_PLUGIN("tp_privacy", "1.0.0", "MIT", "privacy kind test plugin",
    tpp_components, NULL);
