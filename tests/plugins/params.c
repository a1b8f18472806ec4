/* SPDX-License-Identifier: MIT */
/* params.c: "paramtest", an aggregator declaring one parameter per type. */
#include "tp_common.h"

static const fm_param_desc params[] = {
	{ "k", FM_PARAM_INT, 3, 1, 10, NULL, "An integer in [1, 10]." },
	{ "lr", FM_PARAM_REAL, 0.1, 0, 1, NULL, "A real in [0, 1]." },
	{ "nesterov", FM_PARAM_BOOL, 0, 0, 1, NULL, "A boolean." },
	{ "mode", FM_PARAM_STRING, 0, 0, 0, "fast", "A string." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc comps[] = {
	{ FM_KIND_AGGREGATOR, "paramtest", "declares every parameter type",
	    params },
};

FM_PLUGIN_DEFINE("paramtest", "1.0.0", "MIT", "parameter resolution "
    "fixture", comps);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = TP_OPS("paramtest");
	return host->register_component(r, &ops, sizeof ops);
}
