/* SPDX-License-Identifier: MIT */
/* never_finishes.c: an aggregator whose every a_finish fails and says why
 * (host->set_error, ABI 1.4): a run with it aggregates no round. */
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
nf_finish(void *st, float *global, size_t dim)
{
	(void)st;
	(void)global;
	(void)dim;
	if (FM_HOST_HAS(self->host, set_error)) {
		self->host->set_error(self, "never_finishes never finishes");
	}
	return FM_EIO;
}

static const fm_component_desc comps[] = {
	TP_COMPONENT("never_finishes"),
};

FM_PLUGIN_DEFINE("never_finishes", "1.0.0", "MIT",
    "an aggregator that fails every round", comps);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = { sizeof(fm_aggregator_ops),
		FM_KIND_AGGREGATOR, "never_finishes", 8, nf_init, tp_fini,
		tp_begin, tp_accept, nf_finish, NULL, NULL, NULL, NULL, NULL,
		NULL, NULL };
	return host->register_component(r, &ops, sizeof ops);
}
