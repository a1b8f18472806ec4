/* SPDX-License-Identifier: MIT */
/* a1_wavg.c: an ABI 1.4 consensus rule: the models' average with the
 * topology's weights, normalised over the models that arrived; c_outgoing
 * attaches 1 / (out_degree + 1). The mass each neighbour attached is
 * reported as the metric "a1_mass" (their sum). */
#include "fedmesh_plugin_1_4.h"

typedef struct a1_wavg {
	const fm_instance *inst;
} a1_wavg;

static int
wa_init(void *st, const fm_instance *inst)
{
	a1_wavg *s = st;
	s->inst = inst;
	return inst->role == FM_ROLE_PEER ? FM_OK : FM_EINVAL;
}

static void
wa_fini(void *st)
{
	(void)st;
}

static int
wa_outgoing(void *st, uint32_t round, uint32_t out_degree, double *mass)
{
	(void)st;
	(void)round;
	*mass = 1.0 / (out_degree + 1.0);
	return FM_OK;
}

static int
wa_mix(void *st, const fm_mix *m, float *model, size_t dim)
{
	a1_wavg *s = st;
	double wsum = m->own->weight, mass = 0;
	for (uint32_t k = 0; k < m->nneighbours; k++) {
		wsum += m->neighbours[k].weight;
		mass += m->neighbours[k].mass;
	}
	if (!(wsum > 0)) {
		return FM_ERANGE;
	}
	for (size_t i = 0; i < dim; i++) {
		double acc = m->own->weight * (double)m->own->params[i];
		for (uint32_t k = 0; k < m->nneighbours; k++) {
			acc += m->neighbours[k].weight *
			    (double)m->neighbours[k].params[i];
		}
		model[i] = (float)(acc / wsum);
	}
	s->inst->host->metric(s->inst, "a1_mass", mass);
	return FM_OK;
}

static const fm_component_desc a1_wavg_components[] = {
	{ FM_KIND_CONSENSUS, "a1_wavg", "1.4 consensus: weighted average",
	    NULL },
};

FM_PLUGIN_DEFINE("a1_wavg", "1.0.0", "MIT", "ABI 1.4 test consensus",
    a1_wavg_components);

FM_PLUGIN_INIT(r, host)
{
	static const fm_consensus_ops ops = { sizeof(fm_consensus_ops),
		FM_KIND_CONSENSUS, "a1_wavg", sizeof(a1_wavg), wa_init, wa_fini,
		wa_outgoing, wa_mix, NULL, NULL };
	return host->register_component(r, &ops, sizeof ops);
}
