/* SPDX-License-Identifier: MIT */
/* a1_prox.c: an ABI 1.2-style aggregator with a client-side local hook
 * (a_local_begin, FedProx style): 2.0 moved those to the local kind, so the
 * host refuses it. */
#include "a1_avg.h"

static int
px_local_begin(void *st, const fm_local_task *t)
{
	(void)st;
	(void)t;
	return FM_OK;
}

static const fm_component_desc a1_prox_components[] = {
	{ FM_KIND_AGGREGATOR, "a1_prox", "1.2 aggregator with local hooks",
	    a1_avg_params },
};

FM_PLUGIN_DEFINE("a1_prox", "1.0.0", "MIT", "ABI 1.2 local hooks",
    a1_prox_components);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = { sizeof(fm_aggregator_ops),
		FM_KIND_AGGREGATOR, "a1_prox", sizeof(a1_avg), a1_avg_init,
		a1_avg_fini, a1_avg_begin, a1_avg_accept, a1_avg_finish, NULL,
		NULL, px_local_begin, NULL, NULL, NULL, NULL };
	return host->register_component(r, &ops, sizeof ops);
}
