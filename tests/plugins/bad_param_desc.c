/* SPDX-License-Identifier: MIT */
/* bad_param_desc.c: a parameter whose default lies outside its range. */
#include "tp_common.h"

static const fm_param_desc params[] = {
	{ "lr", FM_PARAM_REAL, 5.0, 0.0, 1.0, NULL, "out of its own range" },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc comps[] = {
	FM_COMPONENT(FM_KIND_AGGREGATOR, "bad_param_desc", "bad declaration",
	    params, tp_ops, 0),
};

FM_PLUGIN("bad_param_desc", "1.0.0", "MIT", "bad parameter declaration",
    comps, NULL);
