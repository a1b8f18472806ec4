/* SPDX-License-Identifier: MIT */
/* null_op.c: an aggregator without a_accept (required). */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("null_op") };

FM_PLUGIN_DEFINE("null_op", "1.0.0", "MIT", "NULL required op", comps);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = { sizeof(fm_aggregator_ops),
		FM_KIND_AGGREGATOR, "null_op", 8, tp_init, tp_fini, tp_begin,
		NULL, tp_finish, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	return host->register_component(r, &ops, sizeof ops);
}
