/* SPDX-License-Identifier: MIT */
/* bad_param_size.c: a component whose param_size is smaller than a
 * fm_param_desc. */
#include <stddef.h>

#include "tp_common.h"

static const fm_param_desc params[] = {
	{ "lr", FM_PARAM_REAL, 0.5, 0.0, 1.0, NULL, "a rate" },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc comps[] = {
	{ (uint32_t)sizeof(fm_component_desc), FM_KIND_AGGREGATOR,
	    "bad_param_size", "param_size too small", params,
	    (uint32_t)offsetof(fm_param_desc, doc), 0, &tp_ops,
	    (uint32_t)sizeof(tp_ops), 0 },
};

FM_PLUGIN("bad_param_size", "1.0.0", "MIT", "param_size too small", comps,
    NULL);
