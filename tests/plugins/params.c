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
	FM_COMPONENT(FM_KIND_AGGREGATOR, "paramtest",
	    "declares every parameter type", params, tp_ops, 0),
};

FM_PLUGIN("paramtest", "1.0.0", "MIT", "parameter resolution fixture",
    comps, NULL);
