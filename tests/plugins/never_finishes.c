/* SPDX-License-Identifier: MIT */
/* never_finishes.c: an aggregator whose every a_finish fails and says why
 * (host->set_error): a run with it aggregates no round. */
#include "tp_common.h"

static const fm_instance *self; /* one instance at a time in the tests */

static int
nf_init(void *st, const fm_instance *inst)
{
	(void)st;
	self = inst;
	return FM_OK;
}

static int
nf_finish(void *st, const float *global, float *out, size_t dim)
{
	(void)st;
	(void)global;
	(void)out;
	(void)dim;
	if (FM_HOST_HAS(self->host, set_error)) {
		self->host->set_error(self, "never_finishes never finishes");
	}
	return FM_EIO;
}

static const fm_aggregator_ops ops = {
	.base = FM_OPS(fm_aggregator_ops, FM_KIND_AGGREGATOR, tp_state,
	    nf_init, tp_fini),
	.begin = tp_begin, .accept = tp_accept, .finish = nf_finish,
};

static const fm_component_desc comps[] = {
	FM_COMPONENT(FM_KIND_AGGREGATOR, "never_finishes",
	    "an aggregator that fails every round", NULL, ops, 0),
};

FM_PLUGIN("never_finishes", "1.0.0", "MIT",
    "an aggregator that fails every round", comps, NULL);
