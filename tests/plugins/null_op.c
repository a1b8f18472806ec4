/* SPDX-License-Identifier: MIT */
/* null_op.c: an aggregator without accept (required). */
#include "tp_common.h"

static const fm_aggregator_ops ops = {
	.base = FM_OPS(fm_aggregator_ops, FM_KIND_AGGREGATOR, tp_state,
	    tp_init, tp_fini),
	.begin = tp_begin, .finish = tp_finish,
};

static const fm_component_desc comps[] = {
	FM_COMPONENT(FM_KIND_AGGREGATOR, "null_op", "NULL required op", NULL,
	    ops, 0),
};

FM_PLUGIN("null_op", "1.0.0", "MIT", "NULL required op", comps, NULL);
