/* SPDX-License-Identifier: MIT */
/* null_ops.c: a component without an ops table (ops NULL). */
#include "tp_common.h"

static const fm_component_desc comps[] = {
	{ (uint32_t)sizeof(fm_component_desc), FM_KIND_AGGREGATOR, "null_ops",
	    "no ops table", NULL, (uint32_t)sizeof(fm_param_desc), 0, NULL,
	    0, 0 },
};

FM_PLUGIN("null_ops", "1.0.0", "MIT", "component without ops", comps, NULL);
