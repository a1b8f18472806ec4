/* SPDX-License-Identifier: MIT */
/* a1_dropmax.c: an ABI 1.4 defence that passes every row but the one with
 * the largest norm (the first of equal ones), each with its own example
 * count. d_init refuses max_updates == 1 (1.4), saying why. */
#include "fedmesh_plugin_1_4.h"

typedef struct a1_dropmax {
	const fm_host_api *host;
} a1_dropmax;

static int
dm_init(void *st, const fm_instance *inst)
{
	a1_dropmax *s = st;
	s->host = inst->host;
	if (inst->host->abi_minor >= 4 && inst->max_updates == 1) {
		inst->host->set_error(inst, "a1_dropmax needs at least 2 "
		    "updates a round but at most 1 arrives");
		return FM_EINVAL;
	}
	return FM_OK;
}

static void
dm_fini(void *st)
{
	(void)st;
}

static int
dm_apply(void *st, fm_defence_round *r)
{
	a1_dropmax *s = st;
	uint32_t worst = 0;
	double wn = -1;
	if (r->n == 0) {
		r->nkeep = 0;
		return FM_OK;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		double nrm = s->host->nrm2(r->dim, r->deltas + i * r->stride);
		if (r->updates[i].delta != r->deltas + i * r->stride) {
			return FM_EINVAL; /* updates[i].delta is row i */
		}
		if (nrm > wn) {
			wn = nrm;
			worst = i;
		}
	}
	r->nkeep = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		if (i != worst) {
			r->keep[r->nkeep] = i;
			r->keep_examples[r->nkeep] = r->updates[i].num_examples;
			r->nkeep++;
		}
	}
	return FM_OK;
}

static const fm_component_desc a1_dropmax_components[] = {
	{ FM_KIND_DEFENCE, "a1_dropmax", "1.4 defence: drop the largest row",
	    NULL },
};

FM_PLUGIN_DEFINE("a1_dropmax", "1.0.0", "MIT", "ABI 1.4 test defence",
    a1_dropmax_components);

FM_PLUGIN_INIT(r, host)
{
	static const fm_defence_ops ops = { sizeof(fm_defence_ops),
		FM_KIND_DEFENCE, "a1_dropmax", sizeof(a1_dropmax), dm_init,
		dm_fini, dm_apply, NULL, NULL };
	return host->register_component(r, &ops, sizeof ops);
}
