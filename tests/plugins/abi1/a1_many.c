/* SPDX-License-Identifier: MIT */
/* a1_many.c: the a1_avg.h aggregator with the ABI 1.3 a_accept_many. */
#include "a1_avg.h"

static const fm_aggregator_ops a1_many_ops = {
	sizeof(fm_aggregator_ops), FM_KIND_AGGREGATOR, "a1_many",
	sizeof(a1_avg), a1_avg_init, a1_avg_fini, a1_avg_begin, a1_avg_accept,
	a1_avg_finish, NULL, NULL, NULL, NULL, NULL, NULL, a1_avg_accept_many
};

static const fm_component_desc a1_many_components[] = {
	{ FM_KIND_AGGREGATOR, "a1_many", "1.4 mean with a_accept_many",
	    a1_avg_params },
};

FM_PLUGIN_DEFINE("a1_many", "1.0.0", "MIT", "ABI 1.4 test aggregator",
    a1_many_components);

FM_PLUGIN_INIT(r, host)
{
	a1_avg_registrar = r;
	a1_avg_ops = &a1_many_ops;
	a1_avg_ops_size = sizeof a1_many_ops;
	return host->register_component(r, &a1_many_ops, sizeof a1_many_ops);
}
