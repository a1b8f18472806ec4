/* SPDX-License-Identifier: MIT */
/* a1_mean.c: an ABI 1.4 aggregator taking updates one at a time
 * (a_accept only; see a1_avg.h). */
#include "a1_avg.h"

static const fm_aggregator_ops a1_mean_ops = {
	sizeof(fm_aggregator_ops), FM_KIND_AGGREGATOR, "a1_mean",
	sizeof(a1_avg), a1_avg_init, a1_avg_fini, a1_avg_begin, a1_avg_accept,
	a1_avg_finish, a1_avg_on_message, a1_avg_on_timer, NULL, NULL, NULL,
	NULL, NULL
};

static const fm_component_desc a1_mean_components[] = {
	{ FM_KIND_AGGREGATOR, "a1_mean", "1.4 example-weighted mean",
	    a1_avg_params },
};

FM_PLUGIN_DEFINE("a1_mean", "1.0.0", "MIT", "ABI 1.4 test aggregator",
    a1_mean_components);

FM_PLUGIN_INIT(r, host)
{
	a1_avg_registrar = r;
	a1_avg_ops = &a1_mean_ops;
	a1_avg_ops_size = sizeof a1_mean_ops;
	return host->register_component(r, &a1_mean_ops, sizeof a1_mean_ops);
}
