/* SPDX-License-Identifier: MIT */
/* ops_size.c: an aggregator ops table cut short: the component's
 * ops_size (and the table's base.struct_size) end before finish. */
#include <stddef.h>

#include "tp_common.h"

static const fm_aggregator_ops ops = {
	.base = { (uint32_t)offsetof(fm_aggregator_ops, finish),
		FM_KIND_AGGREGATOR, sizeof(tp_state), tp_init, tp_fini, NULL,
		NULL, NULL, NULL },
	.begin = tp_begin, .accept = tp_accept, .finish = tp_finish,
};

static const fm_component_desc comps[] = {
	{ (uint32_t)sizeof(fm_component_desc), FM_KIND_AGGREGATOR, "ops_size",
	    "ops table too small", NULL, (uint32_t)sizeof(fm_param_desc), 0,
	    &ops, (uint32_t)offsetof(fm_aggregator_ops, finish), 0 },
};

FM_PLUGIN("ops_size", "1.0.0", "MIT", "ops struct too small", comps, NULL);
